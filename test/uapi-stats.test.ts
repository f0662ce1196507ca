// sixpn's own `stats=1` UAPI request (wg never sends it): parsed like get=1, answered with the
// device's counters, or -EPROTO by a device that has none.
import test from 'ava';
import { UapiParser } from '../src/uapi/protocol.ts';

function requests(text: string) {
  const p = new UapiParser();
  p.feed(Buffer.from(text));
  const out = [];
  for (let r = p.next(); r !== null; r = p.next()) out.push(r);
  return out;
}

test('stats=1 is a request of its own, between gets and sets', (t) => {
  t.deepEqual(requests('stats=1\n\nget=1\n\nstats=1\n\n').map((r) => r.kind), ['stats', 'get', 'stats']);
});

test('stats=1 followed by anything but the empty line is -EINVAL, like get=1', (t) => {
  const [r] = requests('stats=1\nx');
  t.is(r.kind, 'error');
  t.is((r as { errno: number }).errno, -22);
});

test('stats=2 is not an operation (-EPROTO)', (t) => {
  const [r] = requests('stats=2\n\n');
  t.is(r.kind, 'error');
  t.is((r as { errno: number }).errno, -71);
});

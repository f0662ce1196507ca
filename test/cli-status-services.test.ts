// `sixpn status` prints the services line of a host's snapshot (issue 13) only when there is
// something to say: flows, held packets or static egress.
import test from 'ava';
import { formatStatus } from '../src/cli/status.ts';

test('the services line: flows, held packets, autostarts and autostops, static egress per app', (t) => {
  const text = formatStatus({ host: 'ams1', services: { flows: 3, held: 1, autostarted: 2, autostopped: 0, staticEgress: { db: '2001:db8:e::a' } } });
  t.regex(text, /^ {2}services: 3 flows, 1 packets held for autostart, 2 autostarted, 0 autostopped; static egress db 2001:db8:e::a$/m);
  t.notRegex(formatStatus({ host: 'ams1', services: { flows: 0, held: 0, staticEgress: {} } }), /services:/);
});

// The forwarder for names outside `.internal`: ID and question restore, timeouts, next upstream,
// bounds; and resolv.conf parsing. Messages are built and read by hand here.
import test from 'ava';
import { FWD_CLIENT, FWD_NONE, FWD_UPSTREAM, Forwarder, parseResolvConf } from '../src/dns/index.ts';

function query(id: number, name: string, qtype = 28, edns = false): Uint8Array {
  const b = [id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0];
  for (const l of name.split('.')) b.push(l.length, ...Array.from(l, (c) => c.charCodeAt(0)));
  b.push(0, qtype >> 8, qtype & 0xff, 0, 1);
  if (edns) b.push(0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0);
  return Uint8Array.from(b);
}
/** An upstream's reply to `q`: QR|RA, one AAAA answer pointing at the question, name case as given. */
function replyTo(q: Uint8Array, o: { id?: number; name?: string } = {}): Uint8Array {
  const b = Array.from(q);
  if (o.name !== undefined) {
    const re = query(0, o.name);
    b.splice(12, re.length - 12 - 4, ...re.subarray(12, re.length - 4));
  }
  const id = o.id ?? ((b[0] << 8) | b[1]);
  b[0] = id >> 8; b[1] = id & 0xff; b[2] |= 0x80; b[3] = 0x80; b[7] = 1; b[11] = 0;
  const qEnd = b.indexOf(0, 12) + 5;
  b.length = qEnd;
  b.push(0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16, 0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1);
  return Uint8Array.from(b);
}
const id16 = (b: Uint8Array) => (b[0] << 8) | b[1];
const rcode = (b: Uint8Array) => b[3] & 15;
const ids = (...xs: number[]) => { let i = 0; return () => xs[i++ % xs.length]; };
const up = [{ address: '192.0.2.1', port: 53 }, { address: '2001:db8::53', port: 53 }];

test('resolv.conf: nameserver lines in order, comments and other lines ignored', (t) => {
  const conf = [
    '# generated', 'search example.com', 'nameserver 192.0.2.1', 'nameserver   2001:db8::53 # second',
    '; nameserver 192.0.2.9', 'nameserver fe80::1%eth0', 'nameserver not-an-ip', 'options edns0 ndots:1', 'nameserver',
  ].join('\n');
  t.deepEqual(parseResolvConf(conf), [
    { address: '192.0.2.1', port: 53 }, { address: '2001:db8::53', port: 53 }, { address: 'fe80::1%eth0', port: 53 },
  ]);
});

test('a query goes upstream under a fresh ID; the reply gets the client\'s ID and question back', (t) => {
  const f = new Forwarder<string>({ upstreams: up, randomId: ids(0x7777) });
  const out = new Uint8Array(4096);
  const q = query(0x1234, 'WwW.Example.COM');
  const a = f.query(q, 'client-1', 1000, out);
  t.is(a.kind, FWD_UPSTREAM);
  t.is(a.upstream, 0);
  const sent = out.slice(0, a.length);
  t.is(id16(sent), 0x7777);
  t.deepEqual(sent.subarray(2), q.subarray(2));
  t.is(f.outstanding, 1);
  // The upstream answers in another case (0x20-style); the client sees its own bytes.
  const r = f.reply(replyTo(sent, { name: 'www.example.com' }), 0, 1010, out);
  t.is(r.kind, FWD_CLIENT);
  t.is(r.client, 'client-1');
  const back = out.slice(0, r.length);
  t.is(id16(back), 0x1234);
  t.deepEqual(back.subarray(12, q.length), q.subarray(12));
  t.deepEqual(back.subarray(q.length + 12, q.length + 28), Uint8Array.from([0x20, 1, 0xd, 0xb8, ...new Array(11).fill(0), 1]));
  t.is(f.outstanding, 0);
  t.is(f.reply(replyTo(sent), 0, 1020, out).kind, FWD_NONE); // a duplicate finds nothing
});

test('replies that do not match are dropped and the query stays outstanding', (t) => {
  const f = new Forwarder<string>({ upstreams: up, randomId: ids(0x0101) });
  const out = new Uint8Array(4096);
  const a = f.query(query(9, 'example.com'), 'c', 0, out);
  const sent = out.slice(0, a.length);
  t.is(f.reply(replyTo(sent, { id: 0x0102 }), 0, 1, out).kind, FWD_NONE); // other ID
  t.is(f.reply(replyTo(sent), 1, 1, out).kind, FWD_NONE); // from the other upstream
  t.is(f.reply(replyTo(sent, { name: 'example.org' }), 0, 1, out).kind, FWD_NONE); // other question
  t.is(f.reply(replyTo(query(0x0101, 'example.com', 1)), 0, 1, out).kind, FWD_NONE); // other type
  t.is(f.reply(sent, 0, 1, out).kind, FWD_NONE); // not a response
  const noQuestion = replyTo(sent).slice(0, 12); noQuestion[5] = 0; noQuestion[7] = 0;
  t.is(f.reply(noQuestion, 0, 1, out).kind, FWD_NONE);
  t.is(f.reply(new Uint8Array(5), 0, 1, out).kind, FWD_NONE);
  t.is(f.outstanding, 1);
  t.is(f.reply(replyTo(sent), 0, 1, out).kind, FWD_CLIENT);
});

test('timeout: the next upstream under a new ID, then SERVFAIL with the client\'s ID and question', (t) => {
  const f = new Forwarder<string>({ upstreams: up, timeoutMs: 2000, randomId: ids(0x1111, 0x2222) });
  const out = new Uint8Array(4096);
  const q = query(0xabcd, 'slow.example', 28, true);
  const first = out.slice(0, f.query(q, 'c', 0, out).length);
  t.is(f.nextDeadline(), 2000);
  t.is(f.poll(1999, out).kind, FWD_NONE);
  const retry = f.poll(2000, out);
  t.is(retry.kind, FWD_UPSTREAM);
  t.is(retry.upstream, 1);
  t.is(id16(out), 0x2222);
  t.deepEqual(out.subarray(2, retry.length), q.subarray(2));
  t.is(f.poll(2001, out).kind, FWD_NONE);
  t.is(f.reply(replyTo(first), 0, 2500, out).kind, FWD_NONE); // late answer to the first try
  t.is(f.nextDeadline(), 4000);
  const fail = f.poll(4000, out);
  t.is(fail.kind, FWD_CLIENT);
  t.is(fail.client, 'c');
  const sf = out.slice(0, fail.length);
  t.is(id16(sf), 0xabcd);
  t.is(sf[2] & 0x80, 0x80); // QR
  t.is(sf[2] & 1, 1); // RD copied
  t.is(rcode(sf), 2);
  t.deepEqual(sf.subarray(12, q.length - 11), q.subarray(12, q.length - 11)); // the question
  t.is(sf[11], 1); // an OPT, because the client used EDNS
  t.true(sf.length <= q.length);
  t.is(f.outstanding, 0);
  t.is(f.nextDeadline(), undefined);
});

test('one upstream: timeout is SERVFAIL at once; several expire in one poll loop', (t) => {
  const f = new Forwarder<number>({ upstreams: [up[0]], timeoutMs: 100 });
  const out = new Uint8Array(4096);
  for (let c = 0; c < 3; c++) f.query(query(c, `n${c}.example`), c, c, out);
  const clients: number[] = [];
  for (let a = f.poll(1000, out); a.kind !== FWD_NONE; a = f.poll(1000, out)) {
    t.is(a.kind, FWD_CLIENT);
    t.is(rcode(out), 2);
    t.is(id16(out), a.client!);
    clients.push(a.client!);
  }
  t.deepEqual(clients, [0, 1, 2]);
});

test('outstanding queries are bounded: past the bound the client gets SERVFAIL', (t) => {
  const f = new Forwarder<number>({ upstreams: up, maxOutstanding: 2 });
  const out = new Uint8Array(4096);
  t.is(f.query(query(1, 'a.example'), 1, 0, out).kind, FWD_UPSTREAM);
  t.is(f.query(query(2, 'b.example'), 2, 0, out).kind, FWD_UPSTREAM);
  const a = f.query(query(3, 'c.example'), 3, 0, out);
  t.is(a.kind, FWD_CLIENT);
  t.is(rcode(out), 2);
  t.is(f.outstanding, 2);
});

test('IDs in flight are never reused; default IDs come from a CSPRNG', (t) => {
  const f = new Forwarder<number>({ upstreams: up, randomId: ids(5, 5, 5, 6) });
  const out = new Uint8Array(4096);
  f.query(query(1, 'a.example'), 1, 0, out);
  t.is(id16(out), 5);
  f.query(query(1, 'b.example'), 2, 0, out);
  t.is(id16(out), 6);
  const g = new Forwarder<number>({ upstreams: up, maxOutstanding: 5000 });
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    g.query(query(42, 'x.example'), i, 0, out);
    seen.add(id16(out));
  }
  t.is(seen.size, 1000);
});

test('garbage from upstreams and clients never throws', (t) => {
  const f = new Forwarder<number>({ upstreams: up });
  const out = new Uint8Array(4096);
  let s = 99;
  const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) >>> 8;
  for (let i = 0; i < 3000; i++) {
    const b = Uint8Array.from({ length: rnd() % 64 }, () => rnd() & 0xff);
    if (i % 2 === 0 && b.length > 2) b[2] |= 0x80;
    t.notThrows(() => f.reply(b, rnd() % 2, i, out));
    t.notThrows(() => f.query(b, i, i, out));
  }
  t.notThrows(() => { while (f.poll(1e9, out).kind !== FWD_NONE); });
});

// Sizes, EDNS0, truncation, malformed queries and a fuzz run of the `.internal` server.
// Queries are built and replies decoded here by hand, independently of src/dns/wire.ts.
import test from 'ava';
import { InternalResolver, TcpDeframer, frameTcp, type DnsMachine, type DnsView } from '../src/dns/index.ts';

const AAAA = 28, TXT = 16;

// ---- one org with a 40-machine app ---------------------------------------------------------------
const big: DnsMachine[] = Array.from({ length: 40 }, (_, k) => {
  const address = new Uint8Array([0xfd, 0xaa, 0, 0, 0, 0x1a, 0x0a, 0x7b, 0, 0x7d, 0xf0, k, 0xb8, 0x3b, 0, 2]);
  return { id: (0x3d8d9a1c2e0000 + k).toString(16), app: 'big', region: ['iad', 'lhr', 'syd'][k % 3], processGroup: 'app',
    metadata: {}, address, started: true };
});
const asker = big[0].address;
const view: DnsView = {
  askerOf: (src) => (src.subarray(0, 14).every((v, i) => v === asker[i]) ? { org: 'o3', region: 'iad' } : undefined),
  apps: (org) => (org === 'o3' ? ['big'] : []),
  machines: (org, app) => (org === 'o3' && app === 'big' ? big : []),
  peers: () => [],
};
const resolver = new InternalResolver(view);

interface QOpts { id?: number; edns?: number; ednsVersion?: number; dnssecOk?: boolean }
function query(name: string, qtype: number, o: QOpts = {}): Uint8Array {
  const id = o.id ?? 0x4242;
  const b = [id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, o.edns === undefined ? 0 : 1];
  for (const l of name.split('.')) b.push(l.length, ...Array.from(l, (c) => c.charCodeAt(0)));
  b.push(0, qtype >> 8, qtype & 0xff, 0, 1);
  if (o.edns !== undefined) b.push(0, 0, 41, o.edns >> 8, o.edns & 0xff, 0, o.ednsVersion ?? 0, o.dnssecOk ? 0x80 : 0, 0, 0, 0);
  return Uint8Array.from(b);
}

/** Minimal reply walk: header fields, counts, and every record's type (throws if malformed). */
function decode(b: Uint8Array) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const skipName = (p: number): number => {
    for (;;) {
      if (p >= b.length) throw new Error('past end');
      if (b[p] >= 0xc0) return p + 2;
      if (b[p] === 0) return p + 1;
      p += 1 + b[p];
    }
  };
  const f = dv.getUint16(2);
  let p = 12;
  for (let i = 0; i < dv.getUint16(4); i++) p = skipName(p) + 4;
  const types: number[][] = [[], [], []];
  const opt = { payload: 0, extRcode: 0, flags: 0 };
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < dv.getUint16(6 + 2 * s); i++) {
      p = skipName(p);
      const type = dv.getUint16(p);
      if (type === 41) Object.assign(opt, { payload: dv.getUint16(p + 2), extRcode: b[p + 4], flags: dv.getUint16(p + 6) });
      types[s].push(type);
      p += 10 + dv.getUint16(p + 8);
    }
  }
  if (p !== b.length) throw new Error(`length ${b.length}, records end at ${p}`);
  return { id: dv.getUint16(0), qr: f >> 15, tc: (f >> 9) & 1, rcode: f & 15, qd: dv.getUint16(4), an: types[0], ns: types[1], ar: types[2], opt };
}

const out = new Uint8Array(65535);
function run(q: Uint8Array, transport: 'udp' | 'tcp' = 'udp', r = resolver): Uint8Array {
  const n = r.answer(q, asker, transport, out);
  return out.slice(0, Math.max(0, n));
}

// ---- truncation and EDNS0 ------------------------------------------------------------------------
test('40 machines over UDP without EDNS: TC=1 and the whole records that fit in 512 bytes', (t) => {
  const reply = run(query('big.internal', AAAA));
  const r = decode(reply);
  t.is(r.tc, 1);
  t.is(r.rcode, 0);
  t.true(reply.length <= 512);
  t.is(r.an.length, Math.floor((512 - 12 - 18) / 28)); // 17, as REFERENCE.md says
  t.deepEqual(r.ar, []);
});

test('40 machines with EDNS bufsize 4096: whole, with an OPT that advertises our size', (t) => {
  const reply = run(query('big.internal', AAAA, { edns: 4096, dnssecOk: true }));
  const r = decode(reply);
  t.is(r.tc, 0);
  t.is(r.an.length, 40);
  t.deepEqual(r.ar, [41]);
  t.is(r.opt.payload, 1232);
  t.is(r.opt.flags, 0x8000); // DO copied (RFC 3225)
  t.is(reply.length, 12 + 18 + 40 * 28 + 11);
});

test('40 machines over TCP: whole, framed with a 2-byte length and deframed from pieces', (t) => {
  const frame = new Uint8Array(65537);
  const n = resolver.answer(query('big.internal', AAAA), asker, 'tcp', frame.subarray(2));
  const total = frameTcp(frame, n);
  t.is(total, n + 2);
  t.is((frame[0] << 8) | frame[1], n);
  const d = new TcpDeframer();
  const stream = new Uint8Array([...frame.subarray(0, total), ...frame.subarray(0, total)]);
  for (let i = 0; i < stream.length; i += 97) t.true(d.push(stream.subarray(i, i + 97)));
  const msgs: Uint8Array[] = [];
  for (let m = d.next(); m !== undefined; m = d.next()) msgs.push(m.slice());
  t.is(msgs.length, 2);
  t.is(decode(msgs[0]).an.length, 40);
  t.is(decode(msgs[0]).tc, 0);
  t.is(d.buffered, 0);
  t.false(new TcpDeframer().push(new Uint8Array([0, 5, 1, 2, 3]))); // shorter than a header
});

test('the requestor\'s payload size is honoured, 512 at least, our cap at most', (t) => {
  for (const size of [600, 1000]) {
    const reply = run(query('big.internal', AAAA, { edns: size }));
    const r = decode(reply);
    t.true(reply.length <= size);
    t.is(r.tc, 1);
    t.is(r.an.length, Math.floor((size - 12 - 18 - 11) / 28));
  }
  const tiny = run(query('big.internal', AAAA, { edns: 100 }));
  t.is(decode(tiny).an.length, Math.floor((512 - 12 - 18 - 11) / 28));
  const capped = run(query('big.internal', AAAA, { edns: 4096 }), 'udp', new InternalResolver(view, { maxUdpPayload: 700 }));
  t.true(capped.length <= 700);
  t.is(decode(capped).tc, 1);
});

test('a TXT record larger than the UDP limit: TC=1 with no answer; whole over TCP', (t) => {
  const udp = decode(run(query('_instances.internal', TXT)));
  t.is(udp.tc, 1);
  t.deepEqual(udp.an, []);
  const tcp = decode(run(query('_instances.internal', TXT), 'tcp'));
  t.is(tcp.tc, 0);
  t.deepEqual(tcp.an, [TXT]);
});

test('EDNS version 1 gets BADVERS (extended rcode 16) and an OPT', (t) => {
  const r = decode(run(query('big.internal', AAAA, { edns: 1232, ednsVersion: 1 })));
  t.is(r.rcode, 0);
  t.is(r.opt.extRcode, 1);
  t.deepEqual(r.an, []);
});

// ---- malformed queries: no reply, or a reply no longer than the query --------------------------
test('no reply to responses, to QDCOUNT ≠ 1, to records in the answer section, to short messages', (t) => {
  const good = query('big.internal', AAAA);
  const mutate = (f: (b: Uint8Array) => void) => { const b = good.slice(); f(b); return b; };
  t.is(run(mutate((b) => { b[2] |= 0x80; })).length, 0); // QR
  t.is(run(mutate((b) => { b[5] = 0; })).length, 0); // QDCOUNT 0
  t.is(run(mutate((b) => { b[5] = 2; })).length, 0); // QDCOUNT 2
  t.is(run(mutate((b) => { b[7] = 1; })).length, 0); // ANCOUNT 1
  t.is(run(good.subarray(0, 11)).length, 0);
  t.true(good.length > 12 && run(good.subarray(0, 12)).length <= 12);
});

test('truncated or looping question: header-only FORMERR; other opcodes: NOTIMP', (t) => {
  const good = query('big.internal', AAAA);
  const cut = run(good.subarray(0, good.length - 2));
  t.is(decode(cut).rcode, 1);
  t.is(cut.length, 12);
  const loop = Uint8Array.from([...good.subarray(0, 12), 3, 0x61, 0x62, 0x63, 0xc0, 12, 0, 28, 0, 1]);
  t.is(decode(run(loop)).rcode, 1);
  const forward = Uint8Array.from([...good.subarray(0, 12), 0xc0, 14, 0, 0, 28, 0, 1]);
  t.is(decode(run(forward)).rcode, 1);
  const longLabel = Uint8Array.from([...good.subarray(0, 12), 64, ...new Array(64).fill(0x61), 0, 0, 28, 0, 1]);
  t.is(decode(run(longLabel)).rcode, 1);
  const status = good.slice();
  status[2] = (2 << 3) | 1; // opcode STATUS
  const s = decode(run(status));
  t.is(s.rcode, 4);
  t.is(s.qd, 0);
  const twoOpt = Uint8Array.from([...good, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
  twoOpt[11] = 2;
  t.is(decode(run(twoOpt)).rcode, 1);
});

test('a name of more than 255 bytes is FORMERR', (t) => {
  const name = (n: number, len: number) => [...Array.from({ length: n }, () => 'a'.repeat(len)), 'internal'].join('.');
  t.is(decode(run(query(name(4, 61), AAAA))).rcode, 1); // 4 × 62 + 9 + 1 = 258
  t.is(decode(run(query(name(4, 60), AAAA))).rcode, 3); // 4 × 61 + 9 + 1 = 254: parsed, no such name
});

// ---- fuzz --------------------------------------------------------------------------------------
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
}

/** The payload size a query asks for, by this test's own reading (512 if none is readable). */
function requestedPayload(q: Uint8Array): number {
  try {
    const dv = new DataView(q.buffer, q.byteOffset, q.byteLength);
    let p = 12;
    const skip = () => {
      for (;;) {
        if (p >= q.length) throw new Error('past end');
        if (q[p] === 0) { p++; return; }
        if (q[p] >= 0xc0) { p += 2; return; }
        p += 1 + q[p];
      }
    };
    skip(); p += 4;
    let size = 512;
    for (let i = 0; i < dv.getUint16(10); i++) {
      skip();
      if (dv.getUint16(p) === 41) size = Math.max(size, dv.getUint16(p + 2));
      p += 10 + dv.getUint16(p + 8);
    }
    return size;
  } catch {
    return 512;
  }
}

test('fuzz: 10,000 random and mutated queries never throw and never exceed max(512, payload)', (t) => {
  const rnd = xorshift(0x6e5d);
  const seeds = [
    query('big.internal', AAAA), query('big.internal', AAAA, { edns: 4096 }), query('big.internal', AAAA, { edns: 700 }),
    query('_instances.internal', TXT, { edns: 1232 }), query('top30.nearest.of.big.internal', AAAA, { edns: 2000 }),
    query('vms.big.internal', TXT), query('iad.big.internal', 255), query('nope.internal', 1, { edns: 512 }),
  ];
  let replies = 0;
  for (let i = 0; i < 10_000; i++) {
    let q: Uint8Array;
    if (i % 10 === 0) {
      q = Uint8Array.from({ length: rnd() % 80 }, () => rnd() & 0xff);
    } else {
      const base = Array.from(seeds[rnd() % seeds.length]);
      for (let m = 1 + (rnd() % 4); m > 0 && base.length > 0; m--) {
        const at = rnd() % base.length;
        switch (rnd() % 5) {
          case 0: base[at] ^= 1 << (rnd() % 8); break;
          case 1: base[at] = rnd() & 0xff; break;
          case 2: base.splice(at, 1); break;
          case 3: base.splice(at, 0, rnd() & 0xff); break;
          default: base.length = Math.max(0, at); break;
        }
      }
      if (i % 3 === 0) base[2] &= 0x7f; // keep many of them queries
      q = Uint8Array.from(base);
    }
    const n = resolver.answer(q, asker, 'udp', out);
    if (n <= 0) continue;
    replies++;
    const bound = Math.min(1232, Math.max(512, requestedPayload(q)));
    if (n > bound) t.fail(`reply ${n} > ${bound} for ${Buffer.from(q).toString('hex')}`);
    const r = decode(out.subarray(0, n));
    if (r.qr !== 1 || r.id !== ((q[0] << 8) | q[1])) t.fail(`bad header for ${Buffer.from(q).toString('hex')}`);
    if (r.rcode !== 0 && r.rcode !== 3 && n > q.length) t.fail(`error reply ${n} > query ${q.length}`);
  }
  t.true(replies > 1000, `only ${replies} replies`);
});

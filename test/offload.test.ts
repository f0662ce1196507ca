// src/offload: cutting super-packets (Segmenter) and coalescing segments (Coalescer), IPv4 and
// IPv6, TCP and UDP. The coalescer is checked against a reference model of the kernel's GRO rules
// on random segment sequences (reordering, PSH, options, ECN, IPv4 options, short tails), and
// every super-packet it builds is cut again and compared with what went in.
import test from 'ava';
import fc from 'fast-check';
import { fold, sumWords, readU16, readU32, writeU16, writeU32 } from '../src/ipv6/index.ts';
import {
  Coalescer, SEGMENT_INVALID, Segmenter, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4, VNET_HDR_LEN, completeChecksum, pseudoSum, vnetGsoSize, vnetGsoType, writeL4Checksum,
  writeIpv4HeaderChecksum, writeVnetHdr, type Slots,
} from '../src/offload/index.ts';

const TCP = 6;
const UDP = 17;
const ACK = 0x10;
const PSH = 0x08;

interface Pkt {
  v: 4 | 6;
  proto?: number;
  src?: number; // last address byte
  sport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  tos?: number;
  id?: number;
  ipOptions?: number; // IPv4 option bytes (multiple of 4)
  tcpOptions?: Uint8Array; // multiple of 4
  window?: number;
  payload: Uint8Array;
}

/** An IPv4 or IPv6 TCP/UDP packet with valid checksums. */
function build(p: Pkt): Uint8Array {
  const proto = p.proto ?? TCP;
  const ipLen = p.v === 4 ? 20 + (p.ipOptions ?? 0) : 40;
  const opts = p.tcpOptions ?? new Uint8Array(0);
  const thLen = proto === TCP ? 20 + opts.length : 8;
  const total = ipLen + thLen + p.payload.length;
  const b = new Uint8Array(total);
  if (p.v === 4) {
    b[0] = 0x40 | (ipLen / 4);
    b[1] = p.tos ?? 0;
    writeU16(b, 2, total);
    writeU16(b, 4, p.id ?? 0);
    b[6] = 0x40; // DF
    b[8] = 64;
    b[9] = proto;
    b.set([10, 0, 0, p.src ?? 1], 12);
    b.set([10, 0, 0, 9], 16);
    for (let i = 20; i < ipLen; i++) b[i] = 1; // NOP options
    writeIpv4HeaderChecksum(b, 0, ipLen);
  } else {
    b[0] = 0x60 | ((p.tos ?? 0) >> 4);
    b[1] = ((p.tos ?? 0) & 0x0f) << 4;
    writeU16(b, 4, total - 40);
    b[6] = proto;
    b[7] = 64;
    b[8] = 0xfd;
    b[23] = p.src ?? 1;
    b[24] = 0xfd;
    b[39] = 9;
  }
  const t = ipLen;
  writeU16(b, t, p.sport ?? 1000);
  writeU16(b, t + 2, 5201);
  if (proto === TCP) {
    writeU32(b, t + 4, p.seq ?? 0);
    writeU32(b, t + 8, p.ack ?? 77);
    b[t + 12] = (thLen / 4) << 4;
    b[t + 13] = p.flags ?? ACK;
    writeU16(b, t + 14, p.window ?? 500);
    b.set(opts, t + 20);
  } else {
    writeU16(b, t + 4, thLen + p.payload.length);
  }
  b.set(p.payload, ipLen + thLen);
  writeL4Checksum(b, 0, p.v, proto, t, total - ipLen);
  return b;
}

function l4Valid(b: Uint8Array, off: number, len: number): boolean {
  const v = b[off] >> 4;
  const ipLen = v === 4 ? (b[off] & 15) * 4 : 40;
  const proto = v === 4 ? b[off + 9] : b[off + 6];
  return fold(sumWords(b, off + ipLen, len - ipLen, pseudoSum(b, off, v, proto, len - ipLen))) === 0xffff;
}

function ipv4HeaderValid(b: Uint8Array, off: number): boolean {
  return fold(sumWords(b, off, (b[off] & 15) * 4, 0)) === 0xffff;
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A super-packet with its virtio header in front, as a TUN read gives it. */
function superPacket(p: Pkt, gsoType: number, gsoSize: number): Uint8Array {
  const pkt = build(p);
  const out = new Uint8Array(VNET_HDR_LEN + pkt.length);
  out.set(pkt, VNET_HDR_LEN);
  const ipLen = p.v === 4 ? 20 + (p.ipOptions ?? 0) : 40;
  // as the kernel hands it: the checksum field holds the pseudo-header sum only
  const proto = p.proto ?? TCP;
  const field = VNET_HDR_LEN + ipLen + (proto === TCP ? 16 : 6);
  writeU16(out, field, fold(pseudoSum(out, VNET_HDR_LEN, p.v, proto, pkt.length - ipLen)));
  writeVnetHdr(out, 0, { flags: VNET_F_NEEDS_CSUM, gsoType, gsoSize, csumStart: ipLen, csumOffset: proto === TCP ? 16 : 6 });
  return out;
}

function cut(sp: Uint8Array): Uint8Array[] {
  const s = new Segmenter();
  const n = s.begin(sp, 0, VNET_HDR_LEN, sp.length - VNET_HDR_LEN);
  if (n === SEGMENT_INVALID) throw new Error('segment invalid');
  const out: Uint8Array[] = [];
  const scratch = new Uint8Array(70_000);
  for (let k = 0; k < n; k++) out.push(scratch.slice(0, s.write(k, scratch, 0)));
  return out;
}

for (const v of [4, 6] as const) {
  test(`IPv${v} TCP super-packet: segments have the right seq, flags, lengths, ids and checksums`, (t) => {
    const payload = bytes(10_000, v);
    const opts = new Uint8Array([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    const sp = superPacket({ v, seq: 0xfffff000, flags: ACK | PSH | 0x80, id: 65534, tcpOptions: opts, ipOptions: v === 4 ? 4 : 0, payload }, v === 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6, 1388);
    const segs = cut(sp);
    t.is(segs.length, Math.ceil(10_000 / 1388));
    const ipLen = v === 4 ? 24 : 40;
    const joined: number[] = [];
    segs.forEach((s, k) => {
      t.true(l4Valid(s, 0, s.length), `segment ${k} checksum`);
      const tcp = ipLen;
      t.is(readU32(s, tcp + 4), (0xfffff000 + k * 1388) >>> 0);
      const last = k === segs.length - 1;
      t.is(s[tcp + 13] & PSH, last ? PSH : 0);
      t.is(s[tcp + 13] & 0x80, k === 0 ? 0x80 : 0); // CWR on the first only
      t.deepEqual([...s.subarray(tcp + 20, tcp + 32)], [...opts]);
      if (v === 4) {
        t.is(readU16(s, 2), s.length);
        t.is(readU16(s, 4), (65534 + k) & 0xffff);
        t.true(ipv4HeaderValid(s, 0));
      } else {
        t.is(readU16(s, 4), s.length - 40);
      }
      joined.push(...s.subarray(ipLen + 32));
    });
    t.deepEqual(Uint8Array.from(joined), payload);
  });

  test(`IPv${v} UDP super-packet (USO): one datagram per gso_size, lengths and checksums`, (t) => {
    const payload = bytes(5000, 7 + v);
    const segs = cut(superPacket({ v, proto: UDP, payload }, VNET_GSO_UDP_L4, 1200));
    t.is(segs.length, 5);
    const ipLen = v === 4 ? 20 : 40;
    const joined: number[] = [];
    for (const s of segs) {
      t.true(l4Valid(s, 0, s.length));
      t.is(readU16(s, ipLen + 4), s.length - ipLen);
      joined.push(...s.subarray(ipLen + 8));
    }
    t.deepEqual(Uint8Array.from(joined), payload);
  });
}

test('Segmenter refuses a header that does not match the packet', (t) => {
  const s = new Segmenter();
  const sp = superPacket({ v: 6, payload: bytes(3000, 1) }, VNET_GSO_TCPV4, 1000); // says v4, is v6
  t.is(s.begin(sp, 0, VNET_HDR_LEN, sp.length - VNET_HDR_LEN), SEGMENT_INVALID);
  const udp = superPacket({ v: 6, proto: UDP, payload: bytes(3000, 1) }, VNET_GSO_TCPV6, 1000);
  t.is(s.begin(udp, 0, VNET_HDR_LEN, udp.length - VNET_HDR_LEN), SEGMENT_INVALID);
  const zero = superPacket({ v: 6, payload: bytes(3000, 1) }, VNET_GSO_TCPV6, 0);
  t.is(s.begin(zero, 0, VNET_HDR_LEN, zero.length - VNET_HDR_LEN), SEGMENT_INVALID);
  t.is(s.begin(sp, 0, VNET_HDR_LEN, 30), SEGMENT_INVALID); // truncated
});

test('completeChecksum finishes a partial checksum, IPv4 and IPv6', (t) => {
  for (const v of [4, 6] as const) {
    const sp = superPacket({ v, proto: UDP, payload: bytes(333, 3) }, VNET_GSO_NONE, 0);
    t.false(l4Valid(sp, VNET_HDR_LEN, sp.length - VNET_HDR_LEN));
    t.true(completeChecksum(sp, 0, VNET_HDR_LEN, sp.length - VNET_HDR_LEN));
    t.true(l4Valid(sp, VNET_HDR_LEN, sp.length - VNET_HDR_LEN));
    t.is(sp[0] & VNET_F_NEEDS_CSUM, 0);
  }
});

// ---- coalescing ----

function slots(size: number, slot = 70_000): Slots & { lengths: number[] } {
  const slab = new Uint8Array(size * slot);
  const lengths = new Array<number>(size).fill(0);
  return { size, slab, slotSize: slot, headroom: 0, offset: (i) => i * slot, setLength: (i, n) => (lengths[i] = n), lengths };
}

/** The records a coalescer produced, as (vnet header, packet) pairs. */
function records(c: Coalescer, out: ReturnType<typeof slots>): Uint8Array[] {
  const n = c.finish();
  const r: Uint8Array[] = [];
  for (let i = 0; i < n; i++) r.push(out.slab.slice(out.offset(i), out.offset(i) + out.lengths[i]));
  c.reset();
  return r;
}

/** Cuts a record as the kernel would (a zero header: the packet itself). */
function unpack(rec: Uint8Array): Uint8Array[] {
  if (vnetGsoType(rec, 0) === VNET_GSO_NONE) return [rec.slice(VNET_HDR_LEN)];
  return cut(rec);
}

test('an in-order stream coalesces into 64 KB super-packets with the right virtio header', (t) => {
  for (const v of [4, 6] as const) {
    const out = slots(8);
    const c = new Coalescer(out, true);
    const pkts = Array.from({ length: 60 }, (_, k) => build({ v, seq: 1000 + k * 1400, id: k, payload: bytes(1400, k) }));
    for (const p of pkts) t.true(c.add(p, 0, p.length));
    const recs = records(c, out);
    const ipLen = v === 4 ? 20 : 40;
    const perSuper = Math.floor((65535 - ipLen - 20) / 1400);
    t.is(recs.length, Math.ceil(60 / perSuper));
    const r0 = recs[0];
    t.is(r0[0], VNET_F_NEEDS_CSUM);
    t.is(vnetGsoType(r0, 0), v === 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6);
    t.is(vnetGsoSize(r0, 0), 1400);
    t.true(r0.length - VNET_HDR_LEN <= 65535);
    if (v === 4) t.true(ipv4HeaderValid(r0, VNET_HDR_LEN));
    const again = recs.flatMap(unpack);
    t.deepEqual(again.map((p) => Buffer.from(p).toString('hex')), pkts.map((p) => Buffer.from(p).toString('hex')));
  }
});

test('a plain (non-vnet) coalescer only copies', (t) => {
  const out = slots(4);
  const c = new Coalescer(out, false);
  const a = build({ v: 6, seq: 0, payload: bytes(100, 1) });
  const b = build({ v: 6, seq: 100, payload: bytes(100, 2) });
  c.add(a, 0, a.length);
  c.add(b, 0, b.length);
  const recs = records(c, out);
  t.deepEqual(recs, [a, b]);
});

// The reference model: the GRO rules from coalesce.ts's header, written plainly over objects.
interface ModelPkt extends Pkt {
  bytes: Uint8Array;
}
interface Group {
  first: ModelPkt;
  payload: number;
  total: number;
  nextSeq: number;
  lastId: number;
  open: boolean;
  members: number;
}

function flowKey(p: ModelPkt): string {
  return [p.v, p.proto ?? TCP, p.src, p.sport].join('/');
}

function headerKey(p: ModelPkt): string {
  const opts = p.tcpOptions ? Buffer.from(p.tcpOptions).toString('hex') : '';
  return [p.ack, p.tos, p.window, opts, p.ipOptions ?? 0].join('/');
}

function model(pkts: ModelPkt[], batch: number): number[] {
  // returns, per output record, how many input packets it holds
  const groups: Group[] = [];
  for (const p of pkts) {
    const flags = p.flags ?? ACK;
    const tcp = (p.proto ?? TCP) === TCP;
    const plainHeader = p.v === 6 || (p.ipOptions ?? 0) === 0;
    const data = tcp && plainHeader && p.payload.length > 0 && (flags === ACK || flags === (ACK | PSH));
    const g = tcp ? groups.find((x) => x.open && flowKey(x.first) === flowKey(p)) : undefined;
    if (g !== undefined) {
      const ok = data && headerKey(g.first) === headerKey(p) && g.nextSeq === p.seq && p.payload.length <= g.payload &&
        g.total + p.payload.length <= 65535 && (p.v === 6 || p.id === ((g.lastId + 1) & 0xffff));
      if (ok) {
        g.total += p.payload.length;
        g.nextSeq = (g.nextSeq + p.payload.length) >>> 0;
        g.lastId = p.id ?? 0;
        g.members++;
        if (flags & PSH || p.payload.length < g.payload) g.open = false;
        continue;
      }
      g.open = false;
    }
    if (groups.length === batch) throw new Error('model: batch full');
    groups.push({
      first: p, payload: p.payload.length, total: p.bytes.length, nextSeq: ((p.seq ?? 0) + p.payload.length) >>> 0,
      lastId: p.id ?? 0, members: 1, open: data && flags === ACK,
    });
  }
  return groups.map((g) => g.members);
}

/** Packets (as hex) per flow: IP version, source, ports, protocol. */
function byFlow(packets: Uint8Array[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of packets) {
    const v4 = p[0] >> 4 === 4;
    const ipLen = v4 ? (p[0] & 15) * 4 : 40;
    const key = `${v4 ? p[15] : p[23]}/${v4 ? p[9] : p[6]}/${readU16(p, ipLen)}`;
    (out[key] ??= []).push(Buffer.from(p).toString('hex'));
  }
  return out;
}

const arbStream = fc.record({
  v: fc.constantFrom(4 as const, 6 as const),
  flows: fc.integer({ min: 1, max: 3 }),
  mss: fc.integer({ min: 1, max: 1460 }),
  n: fc.integer({ min: 1, max: 40 }),
  events: fc.array(fc.record({
    flow: fc.nat(2),
    kind: fc.constantFrom('next', 'next', 'next', 'next', 'short', 'psh', 'swap', 'tos', 'opt', 'ipopt', 'syn', 'udp', 'gap', 'idjump'),
  }), { minLength: 40, maxLength: 40 }),
});

test('coalescer = reference model on random segment sequences; every super-packet cuts back into its inputs', (t) => {
  fc.assert(fc.property(arbStream, (s) => {
    const seq = [1000, 5_000_000, 0xfffffff0];
    const id = [0, 100, 65530];
    const pkts: ModelPkt[] = [];
    for (let k = 0; k < s.n; k++) {
      const e = s.events[k];
      const f = e.flow % s.flows;
      let size = s.mss;
      let flags = ACK;
      let tos = 0;
      let proto = TCP;
      let tcpOptions: Uint8Array | undefined;
      let ipOptions = 0;
      if (e.kind === 'short') size = Math.max(1, s.mss >> 1);
      if (e.kind === 'psh') flags = ACK | PSH;
      if (e.kind === 'syn') flags = 0x02;
      if (e.kind === 'tos') tos = 0x03; // ECN CE
      if (e.kind === 'opt') tcpOptions = new Uint8Array([1, 1, 1, 1]);
      if (e.kind === 'ipopt' && s.v === 4) ipOptions = 4;
      if (e.kind === 'udp') proto = UDP;
      if (e.kind === 'gap') seq[f] = (seq[f] + 7) >>> 0;
      if (e.kind === 'idjump') id[f] = (id[f] + 3) & 0xffff;
      const payload = bytes(size, k);
      const p: Pkt = { v: s.v, proto, src: f + 1, sport: 1000 + f, seq: seq[f], id: id[f], flags, tos, tcpOptions, ipOptions, payload };
      seq[f] = (seq[f] + size) >>> 0;
      id[f] = (id[f] + 1) & 0xffff;
      pkts.push({ ...p, bytes: build(p) });
      if (e.kind === 'swap' && pkts.length >= 2) {
        const last = pkts.pop()!;
        pkts.splice(pkts.length - 1, 0, last); // reordered
      }
    }
    const out = slots(64);
    const c = new Coalescer(out, true);
    for (const p of pkts) if (!c.add(p.bytes, 0, p.bytes.length)) return false;
    const recs = records(c, out);
    const expect = model(pkts, 64);
    const got: number[] = [];
    const again: Uint8Array[] = [];
    for (const r of recs) {
      const parts = unpack(r);
      got.push(parts.length);
      again.push(...parts);
      if (parts.length > 1) {
        if (r.length - VNET_HDR_LEN > 65535) return false;
        // the super-packet's own header is consistent: a partial checksum the kernel can finish
        const copy = r.slice();
        if (!completeChecksum(copy, 0, VNET_HDR_LEN, copy.length - VNET_HDR_LEN)) return false;
        if (!l4Valid(copy, VNET_HDR_LEN, copy.length - VNET_HDR_LEN)) return false;
      }
    }
    t.deepEqual(got, expect);
    // cut again, the records give back exactly the packets that went in, in order within each flow
    // (records of different flows may interleave differently, as with the kernel's GRO)
    t.deepEqual(byFlow(again), byFlow(pkts.map((p) => p.bytes)));
    return true;
  }), { numRuns: 300 });
});

test('coalescer: a full batch says so, and a packet longer than a slot is refused', (t) => {
  const out = slots(2, 2000);
  const c = new Coalescer(out, true);
  const a = build({ v: 6, proto: UDP, payload: bytes(100, 1) });
  t.true(c.add(a, 0, a.length));
  t.true(c.add(a, 0, a.length));
  t.true(c.full);
  t.false(c.add(a, 0, a.length));
  records(c, out);
  const big = build({ v: 6, proto: UDP, payload: bytes(3000, 1) });
  t.false(c.add(big, 0, big.length));
});

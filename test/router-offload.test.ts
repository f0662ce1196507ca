// Offload mode of the router (host config "offload": true, src/router/offload.ts): cutting a
// 64 KB TCP segment into MSS-sized packets and completing partial checksums, checked against
// src/ipv6's full computation; and the router's `whole` path — an offloaded packet goes on
// unchanged only where each of its pieces would go (the egress, a machine of this host), and
// every other decision (another org, the mesh, DNS, errors) is left to the pieces.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  Ipv6Info,
  PARSE_OK,
  fold,
  parsePacket,
  pseudoHeaderSum,
  verifyChecksum,
  writeChecksum,
} from '../src/ipv6/index.ts';
import {
  SEGMENT_INVALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_HDR_LEN,
  completeChecksum,
  gsoSegment,
  gsoSegmentCount,
  vnetOffloaded,
  writeVnetHdr,
} from '../src/offload/index.ts';
import { Router } from '../src/router/router.ts';
import { parseTopology, type Machine } from '../src/topology/index.ts';
import { mergeHostConfig, parseHostConfigFile, parseHostFlags } from '../src/topology/host-config.ts';
import { RecordingIO } from './helpers/router-net.ts';
import { addr } from './helpers/router-gen.ts';

// ---- a small seeded generator (reproducible failures) ----
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SRC = addr('fdaa:0:18:a7b:1:0:101:2');
const DST = addr('2001:db8::80');
const HOPOPT = 0;

interface Tcp {
  src?: Uint8Array;
  dst?: Uint8Array;
  payload: Uint8Array;
  seq: number;
  flags: number;
  options?: number; // bytes of TCP options (multiple of 4)
  ext?: boolean; // a hop-by-hop options header before TCP
  hopLimit?: number;
}

/**
 * A virtio_net_hdr and a TCP/IPv6 packet as a machine's kernel hands it over with TSO: buf[0, 10)
 * the header, the packet behind, its checksum field holding the pseudo-header sum only.
 */
function gsoPacket(p: Tcp, mss: number, opts: { partial?: boolean; ecn?: boolean } = {}): { buf: Uint8Array; len: number } {
  const ext = p.ext ? 8 : 0;
  const thl = 20 + (p.options ?? 0);
  const len = 40 + ext + thl + p.payload.length;
  const buf = new Uint8Array(VNET_HDR_LEN + len + 16);
  const b = Buffer.from(buf.buffer, VNET_HDR_LEN, len);
  b[0] = 0x60;
  b.writeUInt16BE(len - 40, 4);
  b[6] = p.ext ? HOPOPT : IPPROTO_TCP;
  b[7] = p.hopLimit ?? 64;
  b.set(p.src ?? SRC, 8);
  b.set(p.dst ?? DST, 24);
  if (p.ext) {
    b[40] = IPPROTO_TCP;
    b[41] = 0; // 8 bytes
    b[42] = 1; // PadN, 4 bytes of padding
    b[43] = 4;
  }
  const t = 40 + ext;
  b.writeUInt16BE(40000, t);
  b.writeUInt16BE(5201, t + 2);
  b.writeUInt32BE(p.seq >>> 0, t + 4);
  b.writeUInt32BE(0xa1b2c3d4, t + 8);
  b[t + 12] = (thl / 4) << 4;
  b[t + 13] = p.flags;
  b.writeUInt16BE(512, t + 14);
  for (let i = 20; i < thl; i++) b[t + i] = 1; // NOP options
  b.set(p.payload, t + thl);
  const partial = opts.partial ?? true;
  if (partial) b.writeUInt16BE(fold(pseudoHeaderSum(b, 0, len - t, IPPROTO_TCP)), t + 16);
  else writeChecksum(b, 0, t, len - t, IPPROTO_TCP);
  writeVnetHdr(buf, 0, {
    flags: partial ? VNET_F_NEEDS_CSUM : 0,
    gsoType: VNET_GSO_TCPV6 | (opts.ecn ? VNET_GSO_ECN : 0),
    hdrLen: t + thl,
    gsoSize: mss,
    csumStart: t,
    csumOffset: 16,
  });
  return { buf, len };
}

const info = new Ipv6Info();

function cut(g: { buf: Uint8Array; len: number }): Buffer[] {
  const out = new Uint8Array(70_000);
  const pieces: Buffer[] = [];
  for (let k = 0; ; k++) {
    const n = gsoSegment(g.buf, 0, VNET_HDR_LEN, g.len, k, out, 3);
    if (n === 0) break;
    if (n < 0) throw new Error(`segment ${k}: ${n}`);
    pieces.push(Buffer.from(out.subarray(3, 3 + n)));
  }
  return pieces;
}

test('segments of random TCP payloads: checksums, sequence numbers, lengths, flags, data', (t) => {
  const r = rng(5);
  for (let round = 0; round < 200; round++) {
    const size = round < 5 ? [0, 1, 1000, 1348, 1349][round] : Math.floor(r() * 65_000);
    const mss = 500 + Math.floor(r() * 1000);
    const payload = randomBytes(size);
    const seq = round % 7 === 0 ? 0xffffffff - Math.floor(r() * 40_000) : Math.floor(r() * 2 ** 32); // wraps too
    const flags = 0x10 | 0x08 | 0x01 | (round % 3 === 0 ? 0x80 : 0); // ACK PSH FIN (+CWR)
    const options = [0, 12, 20][round % 3];
    const ext = round % 4 === 0;
    const g = gsoPacket({ payload, seq, flags, options, ext }, mss, { partial: round % 5 !== 0, ecn: round % 3 === 0 });
    t.true(vnetOffloaded(g.buf, 0));
    const pieces = cut(g);
    const count = size === 0 ? 1 : Math.ceil(size / mss);
    t.is(pieces.length, count, `round ${round}`);
    t.is(gsoSegmentCount(g.buf, 0, VNET_HDR_LEN, g.len), count);
    const data: Buffer[] = [];
    pieces.forEach((p, k) => {
      t.is(parsePacket(p, 0, p.length, info), PARSE_OK);
      t.is(info.packetLen, p.length, 'payload length field');
      t.is(info.protocol, IPPROTO_TCP);
      t.true(verifyChecksum(p, 0, info.l4Off, info.l4Len, IPPROTO_TCP), `round ${round} segment ${k} checksum`);
      const tcp = info.l4Off;
      t.is(p.readUInt32BE(tcp + 4), (seq + k * mss) >>> 0, 'sequence number');
      const last = k === count - 1;
      t.is(p[tcp + 13] & 0x09, last ? 0x09 : 0, 'FIN and PSH on the last only');
      t.is(p[tcp + 13] & 0x80, k === 0 ? flags & 0x80 : 0, 'CWR on the first only');
      t.is(p[tcp + 13] & 0x10, 0x10, 'ACK on all');
      const thl = (p[tcp + 12] >> 4) * 4;
      t.is(thl, 20 + options);
      t.true(p.length - (tcp + thl) <= mss);
      if (!last) t.is(p.length - (tcp + thl), mss);
      data.push(p.subarray(tcp + thl));
    });
    t.true(Buffer.concat(data).equals(payload), 'the data, in order');
  }
});

test('segmenting refuses what it cannot cut', (t) => {
  const g = gsoPacket({ payload: randomBytes(5000), seq: 1, flags: 0x18 }, 1000);
  const out = new Uint8Array(2000);
  t.true(gsoSegment(g.buf, 0, VNET_HDR_LEN, g.len, 0, out, 0) > 0);
  t.is(gsoSegment(g.buf, 0, VNET_HDR_LEN, g.len, 5, out, 0), 0, 'past the last');
  t.is(gsoSegment(g.buf, 0, VNET_HDR_LEN, g.len, 0, new Uint8Array(500), 0), SEGMENT_INVALID, 'no room');
  const udp = gsoPacket({ payload: randomBytes(5000), seq: 1, flags: 0x18 }, 1000);
  udp.buf[1] = VNET_GSO_UDP_L4;
  t.is(gsoSegment(udp.buf, 0, VNET_HDR_LEN, udp.len, 0, out, 0), SEGMENT_INVALID, 'USO');
  t.is(gsoSegmentCount(udp.buf, 0, VNET_HDR_LEN, udp.len), 0);
  const zero = gsoPacket({ payload: randomBytes(5000), seq: 1, flags: 0x18 }, 1000);
  zero.buf[4] = zero.buf[5] = 0;
  t.is(gsoSegment(zero.buf, 0, VNET_HDR_LEN, zero.len, 0, out, 0), SEGMENT_INVALID, 'gso_size 0');
  const notTcp = gsoPacket({ payload: randomBytes(5000), seq: 1, flags: 0x18 }, 1000);
  notTcp.buf[VNET_HDR_LEN + 6] = IPPROTO_UDP;
  t.is(gsoSegment(notTcp.buf, 0, VNET_HDR_LEN, notTcp.len, 0, out, 0), SEGMENT_INVALID, 'not TCP');
  const short = gsoPacket({ payload: randomBytes(5000), seq: 1, flags: 0x18 }, 1000);
  t.is(gsoSegment(short.buf, 0, VNET_HDR_LEN, short.len - 100, 0, out, 0), SEGMENT_INVALID, 'payload length past the end');
});

test('partial checksums completed equal the full computation (TCP and UDP, random)', (t) => {
  const r = rng(11);
  for (let round = 0; round < 300; round++) {
    const udp = round % 2 === 1;
    const size = Math.floor(r() * 3000);
    const l4h = udp ? 8 : 20;
    const len = 40 + l4h + size;
    const h = 6;
    const buf = new Uint8Array(h + VNET_HDR_LEN + len);
    const off = h + VNET_HDR_LEN;
    const b = Buffer.from(buf.buffer, off, len);
    b[0] = 0x60;
    b.writeUInt16BE(len - 40, 4);
    b[6] = udp ? IPPROTO_UDP : IPPROTO_TCP;
    b[7] = 64;
    b.set(randomBytes(32), 8);
    b.set(randomBytes(l4h + size), 40);
    if (udp) b.writeUInt16BE(l4h + size, 44);
    else b[52] = 5 << 4;
    const field = udp ? 6 : 16;
    const want = writeChecksum(b, 0, 40, len - 40, b[6]);
    b.writeUInt16BE(fold(pseudoHeaderSum(b, 0, len - 40, b[6])), 40 + field); // what the kernel leaves
    writeVnetHdr(buf, h, { flags: VNET_F_NEEDS_CSUM, csumStart: 40, csumOffset: field });
    t.true(completeChecksum(buf, h, off, len));
    const got = b.readUInt16BE(40 + field);
    t.true(got === want || (want === 0 && got === 0xffff), `round ${round}: ${got} vs ${want}`);
    t.true(verifyChecksum(b, 0, 40, len - 40, b[6]));
    t.is(buf[h] & VNET_F_NEEDS_CSUM, 0, 'flag cleared');
    t.false(vnetOffloaded(buf, h));
  }
});

test('completeChecksum: nothing to do, and offsets outside the packet', (t) => {
  const buf = new Uint8Array(VNET_HDR_LEN + 60);
  writeVnetHdr(buf, 0, {});
  t.true(completeChecksum(buf, 0, VNET_HDR_LEN, 60));
  t.false(vnetOffloaded(buf, 0));
  writeVnetHdr(buf, 0, { flags: VNET_F_NEEDS_CSUM, csumStart: 40, csumOffset: 19 });
  t.false(completeChecksum(buf, 0, VNET_HDR_LEN, 60), 'field past the end');
  writeVnetHdr(buf, 0, { flags: VNET_F_NEEDS_CSUM, csumStart: 4, csumOffset: 6 });
  t.false(completeChecksum(buf, 0, VNET_HDR_LEN, 60), 'inside the IPv6 header');
  t.is(buf[0], VNET_F_NEEDS_CSUM, 'left as it was');
  writeVnetHdr(buf, 0, { gsoType: VNET_GSO_NONE });
  t.false(vnetOffloaded(buf, 0));
});

// ---- the router's whole path ----

const key = (i: number) => Buffer.alloc(32, i).toString('base64');
const AMS1 = 0x0a7b0001;
const ORD1 = 0x0a7b0002;
const T = parseTopology(JSON.stringify({
  version: 1,
  orgs: [{ name: 'acme', network: '0x18' }, { name: 'initech', network: '0x863' }],
  hosts: [
    { name: 'ams1', id: AMS1, region: 'ams', publicKey: key(1), endpoint: '192.0.2.1:51820' },
    { name: 'ord1', id: ORD1, region: 'ord', publicKey: key(2), endpoint: '192.0.2.2:51820' },
  ],
  apps: [{ name: 'web', org: 'acme' }, { name: 'ledger', org: 'initech' }],
  machines: [
    { id: 'acmeweb0000a01', app: 'web', region: 'ams', host: 'ams1', instance: '0x101' },
    { id: 'acmeweb0000a02', app: 'web', region: 'ams', host: 'ams1', instance: '0x102' },
    { id: 'acmeweb0000a03', app: 'web', region: 'ams', host: 'ams1', instance: '0x103', state: 'stopped' },
    { id: 'acmeweb0000b01', app: 'web', region: 'ord', host: 'ord1', instance: '0x201' },
    { id: 'acmewebmoved02', app: 'web', region: 'ams', host: 'ams1', instance: '0x104', previous: ['fdaa:0:18:a7b:2:0:204:2'] },
    { id: 'initechled0a01', app: 'ledger', region: 'ams', host: 'ams1', instance: '0x401' },
  ],
  peers: [{ name: 'laptop', org: 'acme', gateway: 'ams1', publicKey: key(9), address: 'fdaa:0:18:a7b:1:0:a:2/120' }],
}), 'router-offload');
const M = (id: string): Machine => T.machine(id)!;
const A1 = M('acmeweb0000a01');
const A2 = M('acmeweb0000a02');
const I1 = M('initechled0a01');

interface Outcome {
  whole: boolean;
  /** calls made and counters moved by the refused whole attempt (must be none) */
  sideEffects: number;
  calls: string[]; // kind:target:length
  counters: Record<string, number>;
}

/** Routes one offloaded packet whole; when refused, its pieces one by one (as the host does). */
function route(dst: Uint8Array, opts: { egress?: boolean; hopLimit?: number; src?: Uint8Array; size?: number } = {}): Outcome {
  const io = new RecordingIO(AMS1, opts.egress ?? false);
  const r = new Router(T, AMS1, io);
  const g = gsoPacket({ src: opts.src ?? A1.address, dst, payload: randomBytes(opts.size ?? 60_000), seq: 7, flags: 0x18, hopLimit: opts.hopLimit }, 1348);
  const whole = r.fromMachine(A1, g.buf, VNET_HDR_LEN, g.len, true);
  const sideEffects = whole ? 0 : io.calls.length + Object.values(r.counters).reduce((a, b) => a + b, 0);
  if (!whole) {
    const out = new Uint8Array(16 + 1500 + 64);
    for (let k = 0; ; k++) {
      const n = gsoSegment(g.buf, 0, VNET_HDR_LEN, g.len, k, out, 16);
      if (n <= 0) break;
      r.fromMachine(A1, out, 16, n);
    }
  }
  const counters: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.counters)) if (v !== 0) counters[k] = v;
  return { whole, sideEffects, calls: io.calls.map((c) => `${c.kind}:${c.target}:${c.bytes.length}`), counters };
}

test('whole: to a machine of this host and to the egress, unchanged and once', (t) => {
  const local = route(A2.address, { size: 60_000 });
  t.true(local.whole);
  t.deepEqual(local.calls, [`machine:${A2.id}:${40 + 20 + 60_000}`]);
  t.deepEqual(local.counters, { forwarded_local: 1 });
  const out = route(DST, { egress: true, size: 60_000 });
  t.true(out.whole);
  t.deepEqual(out.calls, [`egress:${A1.id}:${40 + 20 + 60_000}`]);
  t.deepEqual(out.counters, { forwarded_egress: 1 });
});

test('whole refused without side effects; the pieces take the ordinary decisions', (t) => {
  const pieces = Math.ceil(60_000 / 1348);
  // another org, on this host: every piece refused, counted and answered
  const cross = route(I1.address);
  t.false(cross.whole);
  t.is(cross.sideEffects, 0);
  t.is(cross.counters.dropped_cross_org, pieces);
  t.false('forwarded_local' in cross.counters, 'never delivered');
  t.true(cross.calls.every((c) => c.startsWith(`machine:${A1.id}:`)), 'only errors back to the sender');
  // another host: the mesh, piece by piece, none larger than the mesh MTU
  const mesh = route(M('acmeweb0000b01').address);
  t.false(mesh.whole);
  t.is(mesh.counters.forwarded_mesh, pieces);
  t.true(mesh.calls.every((c) => c.startsWith(`mesh:${ORD1}:`) && Number(c.split(':')[2]) <= 1420));
  // DNS, the org's ::3 and fdaa::3
  for (const d of ['fdaa::3', 'fdaa:0:18::3']) {
    const dns = route(addr(d));
    t.false(dns.whole);
    t.is(dns.counters.dns, pieces);
  }
  // a stopped machine, hop limit 1, no egress, an external peer, an old address of a migrated machine
  const stopped = route(M('acmeweb0000a03').address);
  t.false(stopped.whole);
  t.is(stopped.counters.dropped_unreachable, pieces);
  const hop = route(A2.address, { hopLimit: 1 });
  t.false(hop.whole);
  t.is(hop.counters.dropped_hop_limit, pieces);
  const noEgress = route(DST, { egress: false });
  t.false(noEgress.whole);
  t.is(noEgress.counters.dropped_no_egress, pieces);
  const peer = route(addr('fdaa:0:18:a7b:1:0:a:5'));
  t.false(peer.whole);
  t.is(peer.counters.forwarded_peer, pieces);
  const moved = route(addr('fdaa:0:18:a7b:2:0:204:2'));
  t.false(moved.whole);
  t.is(moved.counters.migrated_rewrite, pieces);
  t.is(moved.counters.forwarded_local, pieces);
});

test('whole: the checks before routing still apply (spoofed source, not unicast)', (t) => {
  const spoofed = route(A2.address, { src: addr('fdaa:0:18:a7b:1:0:102:2') });
  t.true(spoofed.whole, 'handled: dropped');
  t.deepEqual(spoofed.calls, []);
  t.deepEqual(spoofed.counters, { dropped_spoofed: 1 });
  const multicast = route(addr('ff02::1'));
  t.true(multicast.whole);
  t.deepEqual(multicast.counters, { dropped_not_unicast: 1 });
  const foreign = route(DST, { egress: true, src: I1.address });
  t.deepEqual(foreign.counters, { dropped_spoofed: 1 }, 'another org\'s source never reaches the egress');
});

test('whole and pieces decide alike over random destinations', (t) => {
  const r = rng(3);
  const dsts = [A2.address, I1.address, DST, M('acmeweb0000b01').address, M('acmeweb0000a03').address, addr('fdaa::3'),
    addr('fdaa:0:863::3'), addr('fdaa:0:18:a7b:1:0:a:5'), addr('fdaa:0:18:a7b:9:0:1:2'), addr('fe80::1'), addr('fc00::1'), addr('::1')];
  for (let i = 0; i < 60; i++) {
    const dst = dsts[Math.floor(r() * dsts.length)];
    const egress = r() < 0.5;
    const hopLimit = r() < 0.2 ? 1 : 64;
    const size = 1 + Math.floor(r() * 20_000);
    const w = route(dst, { egress, hopLimit, size });
    t.is(w.sideEffects, 0);
    // the same packet cut first, never offered whole
    const io = new RecordingIO(AMS1, egress);
    const rt = new Router(T, AMS1, io);
    const g = gsoPacket({ src: A1.address, dst, payload: randomBytes(size), seq: 7, flags: 0x18, hopLimit }, 1348);
    const out = new Uint8Array(1600);
    for (let k = 0; ; k++) {
      const n = gsoSegment(g.buf, 0, VNET_HDR_LEN, g.len, k, out, 16);
      if (n <= 0) break;
      rt.fromMachine(A1, out, 16, n);
    }
    const kinds = (calls: string[]) => [...new Set(calls.map((c) => c.split(':').slice(0, 2).join(':')))].sort();
    const cutKinds = kinds(io.calls.map((c) => `${c.kind}:${c.target}:${c.bytes.length}`));
    t.deepEqual(kinds(w.calls), cutKinds, `destination ${Buffer.from(dst).toString('hex')} egress ${egress} hop ${hopLimit}`);
    if (!w.whole) t.deepEqual(w.counters, Object.fromEntries(Object.entries(rt.counters).filter(([, v]) => v !== 0)));
  }
});

test('host config: "offload" and --offload (alone or with a value), default off', (t) => {
  t.is(parseHostConfigFile('{"offload": true}', 'h.json').offload, true);
  t.is(parseHostConfigFile('{"offload": false}', 'h.json').offload, false);
  t.throws(() => parseHostConfigFile('{"offload": "yes"}', 'h.json'), { message: /h\.json: offload: "yes" is not true or false/ });
  t.is(parseHostFlags(['--offload']).config.offload, true);
  t.is(parseHostFlags(['--offload', '--host', 'ams1']).config.offload, true);
  t.is(parseHostFlags(['--offload', 'false']).config.offload, false);
  t.is(parseHostFlags(['--offload=true', 'up']).config.offload, true);
  t.deepEqual(parseHostFlags(['--offload', 'up']).rest, ['up']);
  t.is(mergeHostConfig({ host: 'a', privateKeyFile: '/k' }, {}).offload, undefined);
});

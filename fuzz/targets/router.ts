// The router's packet decision: random IPv6 (extension header chains, fragments, ICMPv6 errors
// quoting anything, lying lengths) through every entry point of two routers (the example
// topology's ams1, with peers and egress; a random topology's first host with migrations).
// Input: [router and entry][sender][packet]. Invariants: nothing throws; every packet the
// router hands on is inside its buffer and parses; org isolation — what reaches a machine, a
// peer, another host or the egress stays in one org (or comes from the DNS address).
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import {
  IPV6_OFF_DST,
  IPV6_OFF_SRC,
  Ipv6Info,
  PARSE_OK,
  SWAP_BOTH,
  getNetwork,
  isGlobalDns,
  isSixpn,
  parsePacket,
  prefixMatch,
  swapPacket,
  writeChecksum,
} from '../../src/ipv6/index.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../../src/noise/index.ts';
import { Router, type RouterIO } from '../../src/router/router.ts';
import { parseTopology, type Machine, type Peer, type Topology } from '../../src/topology/index.ts';
import { Rng, addr, randomTopology, sixpn } from '../../test/helpers/router-gen.ts';
import { mutatedBytes, type FuzzTarget } from '../lib.ts';

const EXAMPLE = new URL('../../examples/topology.example.json', import.meta.url);
const HEADROOM = MESSAGE_TRANSPORT_HEADER_SIZE;
const ENTRIES = 4; // fromMachine, fromMesh, fromPeer, fromLocal

/** Addresses worth sending from and to in `t`: its machines (old and new), peers, DNS, others. */
function addressPool(t: Topology): Uint8Array[] {
  const a = addr;
  const pool = [a('fdaa::3'), a('2001:db8::1'), a('fe80::1'), a('ff02::1'), a('::1'), new Uint8Array(16), a('fd00:1::1'), a('2001:db8:e::11')];
  for (const m of t.machines) {
    pool.push(m.address, sixpn(m.network, m.host, 0, 1), sixpn(m.network, 0, 0, 3));
    for (const p of m.previous) pool.push(p.address);
  }
  for (const p of t.peers) pool.push(p.address, p.prefix);
  for (const h of t.hosts) pool.push(sixpn(t.orgs[0].network, h.id, 0xdead, 2), sixpn(0x7777, h.id, 1, 2));
  return pool;
}

interface ExtHeader {
  type: number;
  words: number; // extension length (8-octet units beyond the first)
  fragOffset: number;
  more: boolean;
}

export interface PacketShape {
  src: number;
  dst: number;
  hopLimit: number;
  exts: ExtHeader[];
  proto: number;
  icmpType: number;
  icmpCode: number;
  payload: Uint8Array;
  quote: PacketShape | null;
  lengthDelta: number; // a payload length field that lies
  checksum: boolean;
  /** Keep to RFC 8200's rules (Hop-by-Hop first, one Fragment header, 8-octet fragments). */
  strict: boolean;
}

const ext: fc.Arbitrary<ExtHeader> = fc.record({
  type: fc.constantFrom(0, 43, 44, 60, 51, 0, 44),
  words: fc.oneof(fc.constant(0), fc.nat(3), fc.nat(255)),
  fragOffset: fc.oneof(fc.constant(0), fc.nat(0x1fff)),
  more: fc.boolean(),
});

export function shape(depth: number): fc.Arbitrary<PacketShape> {
  return fc.record({
    src: fc.nat(),
    dst: fc.nat(),
    hopLimit: fc.constantFrom(0, 1, 2, 64, 255),
    exts: fc.array(ext, { maxLength: depth === 0 ? 4 : 2 }),
    proto: fc.constantFrom(6, 17, 58, 58, 59, 50, 0, 132, 255),
    icmpType: fc.constantFrom(1, 2, 3, 4, 128, 129, 133, 135, 136, 137, 143, 0, 255),
    icmpCode: fc.nat(8),
    payload: fc.uint8Array({ maxLength: depth === 0 ? 1600 : 64 }),
    quote: depth === 0 ? fc.option(shape(1), { freq: 2 }) : fc.constant(null),
    lengthDelta: fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, { arbitrary: fc.integer({ min: -48, max: 48 }), weight: 1 }),
    checksum: fc.boolean(),
    strict: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
  });
}

/** Writes the packet a shape describes. */
export function build(s: PacketShape, pool: Uint8Array[], limit: number): Uint8Array {
  const parts: number[] = [];
  let exts = s.exts;
  if (s.strict) {
    let fragment = false;
    exts = exts.map((e, i) => {
      const type = (e.type === 0 && i > 0) || (e.type === 44 && fragment) ? 60 : e.type;
      if (type === 44) fragment = true;
      return { ...e, type, fragOffset: e.fragOffset & 0xff };
    });
  }
  for (let i = 0; i < exts.length; i++) {
    const next = i + 1 < exts.length ? exts[i + 1].type : s.proto;
    const e = exts[i];
    if (e.type === 44) {
      const fo = (e.fragOffset << 3) | (e.more ? 1 : 0);
      parts.push(next, 0, fo >> 8, fo & 0xff, 0x12, 0x34, 0x56, 0x78);
    } else if (e.type === 51) {
      const w = Math.min(e.words, 4) + 1; // AH length is in 4-octet units minus 2
      parts.push(next, w, 0, 0, ...new Array(4 + 4 * w).fill(0));
    } else {
      const w = Math.min(e.words, 8);
      parts.push(next, w, ...new Array(6 + 8 * w).fill(e.type === 43 ? 1 : 0));
    }
  }
  const l4Start = 40 + parts.length;
  let l4: Uint8Array;
  if (s.proto === 58) {
    const quoted = s.quote ? build(s.quote, pool, 1232) : s.payload;
    l4 = new Uint8Array(8 + quoted.length);
    l4[0] = s.icmpType;
    l4[1] = s.icmpCode;
    l4.set(quoted.subarray(0, 4), 4);
    l4.set(quoted, 8);
  } else if (s.proto === 6 || s.proto === 17) {
    l4 = new Uint8Array((s.proto === 6 ? 20 : 8) + s.payload.length);
    l4.set(s.payload.subarray(0, 4), 0);
    if (s.proto === 17) l4[3] = 53 * (s.payload.length & 1); // DNS now and then
    if (s.proto === 6) l4[12] = 0x50;
    l4.set(s.payload, l4.length - s.payload.length);
  } else l4 = s.payload;
  if (s.strict && exts.some((e) => e.type === 44 && e.more) && l4.length % 8 !== 0) {
    // a first or middle fragment carries a multiple of 8 octets (RFC 8200 §4.5)
    const padded = new Uint8Array(l4.length + 8 - (l4.length % 8));
    padded.set(l4);
    l4 = padded;
  }
  const total = Math.min(limit, l4Start + l4.length);
  const b = new Uint8Array(total);
  b[0] = 0x60;
  const plen = Math.max(0, Math.min(0xffff, total - 40 + s.lengthDelta));
  b[4] = plen >> 8;
  b[5] = plen & 0xff;
  b[6] = exts.length > 0 ? exts[0].type : s.proto;
  b[7] = s.hopLimit;
  b.set(pool[s.src % pool.length], IPV6_OFF_SRC);
  b.set(pool[s.dst % pool.length], IPV6_OFF_DST);
  b.set(Uint8Array.from(parts).subarray(0, Math.max(0, total - 40)), 40);
  if (l4Start < total) b.set(l4.subarray(0, total - l4Start), l4Start);
  if (s.checksum && (s.proto === 6 || s.proto === 17 || s.proto === 58) && l4Start + 8 <= total && s.lengthDelta === 0) {
    writeChecksum(b, 0, l4Start, total - l4Start, s.proto);
  }
  return b;
}

export async function routerTarget(): Promise<FuzzTarget> {
  const example = parseTopology(readFileSync(EXAMPLE, 'utf8'), 'topology.example.json');
  const random = randomTopology(new Rng(0x6b0b)).topology;
  const info = new Ipv6Info();
  const scratch = new Uint8Array(HEADROOM + 65_600);
  let current: Router;

  const fail = (what: string, buf: Uint8Array, off: number, len: number) => {
    throw new Error(`${what}: ${Buffer.from(buf.subarray(off, Math.min(off + len, buf.length, off + 80))).toString('hex')}`);
  };
  const whole = (kind: string, buf: Uint8Array, off: number, len: number) => {
    if (off < 0 || len < 40 || off + len > buf.length) fail(`${kind}: ${len} bytes at ${off} of ${buf.length}`, buf, 0, 0);
    if (parsePacket(buf, off, len, info) !== PARSE_OK) fail(`${kind}: a packet that does not parse`, buf, off, len);
  };
  const sameOrg = (kind: string, buf: Uint8Array, off: number, network: number) => {
    const src = off + IPV6_OFF_SRC;
    if (isGlobalDns(buf, src)) return;
    if (!isSixpn(buf, src) || getNetwork(buf, src) !== network) fail(`${kind}: crosses orgs (to network ${network.toString(16)})`, buf, off, 40);
  };
  const io: RouterIO = {
    toMachine(m: Machine, buf, off, len) {
      whole('toMachine', buf, off, len);
      if (!prefixMatch(buf, off + IPV6_OFF_DST, m.address, 0, 112)) fail(`toMachine ${m.id}: not its address`, buf, off, 40);
      sameOrg(`toMachine ${m.id}`, buf, off, m.network);
    },
    toMesh(host, buf, off, len) {
      whole('toMesh', buf, off, len);
      if (current.topology.host(host) === undefined) fail(`toMesh: unknown host ${host}`, buf, off, 40);
      const copy = buf.slice(off, off + 40);
      swapPacket(copy, 0, SWAP_BOTH);
      if (!isSixpn(copy, IPV6_OFF_DST)) fail('toMesh: not a 6PN destination', copy, 0, 40);
      sameOrg('toMesh', copy, 0, getNetwork(copy, IPV6_OFF_DST));
    },
    toPeer(p: Peer, buf, off, len) {
      whole('toPeer', buf, off, len);
      if (!prefixMatch(buf, off + IPV6_OFF_DST, p.address, 0, 120)) fail(`toPeer ${p.name}: not its /120`, buf, off, 40);
      sameOrg(`toPeer ${p.name}`, buf, off, p.network);
    },
    toDns(buf, off, len) {
      whole('toDns', buf, off, len);
    },
    toEgress(m: Machine, buf, off, len) {
      whole('toEgress', buf, off, len);
      if (!prefixMatch(buf, off + IPV6_OFF_SRC, m.address, 0, 112)) fail(`toEgress ${m.id}: not its source`, buf, off, 40);
      return true;
    },
  };

  let routers: Array<{ r: Router; t: Topology; local: Machine[]; peers: Peer[]; now: number }> = [];
  const reset = () => {
    routers = [example, random].map((t) => {
      const hostId = t.hosts[0].id;
      const box = { r: null as unknown as Router, t, local: [...t.machinesOnHost(hostId)], peers: [...t.peersOnGateway(hostId)], now: 0 };
      box.r = new Router(t, hostId, io, { now: () => box.now });
      return box;
    });
  };
  reset();

  const pools = [addressPool(example), addressPool(random)];
  const seeds: Uint8Array[] = [];
  // seeds: a few structured packets per entry point (fast-check's own sample, fixed seed)
  const samples = fc.sample(shape(0), { numRuns: 48, seed: 42 });
  samples.forEach((s, i) => seeds.push(Uint8Array.from([i % (2 * ENTRIES), i, ...build(s, pools[i & 1], 1500)])));

  const structured = fc
    .tuple(fc.nat(2 * ENTRIES - 1), fc.nat(255), fc.boolean(), shape(0))
    .map(([entry, sender, offloaded, s]) => Uint8Array.from([entry | (offloaded ? 0x80 : 0), sender, ...build(s, pools[entry & 1], 65_000)]));

  return {
    name: 'router',
    seeds,
    arbitrary: (s) => fc.oneof({ arbitrary: structured, weight: 3 }, { arbitrary: mutatedBytes(s, 4096), weight: 1 }),
    run(input: Uint8Array): void {
      if (input.length < 2) return;
      const which = routers[input[0] & 1];
      current = which.r;
      which.now += 1000;
      if ((input[1] & 0x3f) === 0) which.r.expire();
      const len = input.length - 2;
      scratch.set(input.subarray(2), HEADROOM);
      const off = HEADROOM;
      const entry = ((input[0] & 0x7f) >> 1) % ENTRIES;
      const sender = input[1];
      // most of the time the source is one the sender may use (bit 6 of the sender byte: as built)
      const own = (sender & 0x40) === 0 && len >= 40;
      if (entry === 0 && which.local.length > 0) {
        const m = which.local[sender % which.local.length];
        if (own) scratch.set(m.address, off + IPV6_OFF_SRC);
        which.r.fromMachine(m, scratch, off, len, (input[0] & 0x80) !== 0);
      } else if (entry === 1) {
        const h = which.t.hosts[sender % which.t.hosts.length];
        const theirs = which.t.machinesOnHost(h.id);
        if (own && theirs.length > 0) scratch.set(theirs[sender % theirs.length].address, off + IPV6_OFF_SRC);
        if ((sender & 0x80) === 0 && len >= 40) swapPacket(scratch, off, SWAP_BOTH); // as a host would send it
        which.r.fromMesh(h.id, scratch, off, len);
      } else if (entry === 2 && which.peers.length > 0) {
        const p = which.peers[sender % which.peers.length];
        if (own) scratch.set(p.address, off + IPV6_OFF_SRC);
        which.r.fromPeer(p, scratch, off, len);
      } else {
        which.r.fromLocal(scratch, off, len);
      }
    },
    reset,
  };
}

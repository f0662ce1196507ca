// Packets and topologies for the router tests: a seeded PRNG, hand-built IPv6 packets (ICMPv6
// echo, UDP, TCP) with valid checksums, and random topology documents that go through the real
// validator (parseTopology), so every topology a test uses is one a host would accept.
import {
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_OFF_DST,
  IPV6_OFF_SRC,
  Ipv6Info,
  PARSE_OK,
  addressBytes,
  encodeSixpn,
  formatAddress,
  parsePacket,
  verifyChecksum,
  writeChecksum,
} from '../../src/ipv6/index.ts';
import { parseTopology, type Topology } from '../../src/topology/index.ts';

// ---- PRNG ----

/** mulberry32: small, seeded, good enough to pick cases. */
export class Rng {
  private s: number;
  readonly seed: number;
  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.s = this.seed;
  }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor((this.u32() / 0x100000000) * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(0, a.length - 1)];
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

// ---- Addresses ----

export function sixpn(network: number, host: number, instance: number, free: number): Uint8Array {
  const a = new Uint8Array(16);
  encodeSixpn(a, 0, network, host, instance, free);
  return a;
}

export const addr = (t: string): Uint8Array => addressBytes(t);

export const text = (a: Uint8Array, off = 0): string => formatAddress(a, off);

// ---- Packets ----

export type Proto = 'icmp' | 'udp' | 'tcp';

export interface PacketSpec {
  src: Uint8Array;
  dst: Uint8Array;
  proto: Proto;
  hopLimit?: number;
  /** ICMPv6 echo: identifier; UDP/TCP: source port */
  id?: number;
  /** UDP/TCP destination port; ICMPv6 echo: sequence */
  port?: number;
  /** 128 echo request (default) or 129 echo reply */
  icmpType?: number;
  payload?: Uint8Array;
  tcpFlags?: number;
}

/** A whole IPv6 packet with a valid upper-layer checksum. */
export function packet(p: PacketSpec): Buffer {
  const data = p.payload ?? new Uint8Array(0);
  const l4h = p.proto === 'tcp' ? 20 : 8;
  const l4len = l4h + data.length;
  const b = Buffer.alloc(40 + l4len);
  b[0] = 0x60;
  b[1] = 0x01; // a flow label, carried unchanged
  b[2] = 0x23;
  b[3] = 0x45;
  b.writeUInt16BE(l4len, 4);
  b[6] = p.proto === 'icmp' ? IPPROTO_ICMPV6 : p.proto === 'udp' ? IPPROTO_UDP : IPPROTO_TCP;
  b[7] = p.hopLimit ?? 64;
  b.set(p.src, IPV6_OFF_SRC);
  b.set(p.dst, IPV6_OFF_DST);
  const id = p.id ?? 0x1234;
  const port = p.port ?? 7;
  if (p.proto === 'icmp') {
    b[40] = p.icmpType ?? 128;
    b[41] = 0;
    b.writeUInt16BE(id, 44);
    b.writeUInt16BE(port, 46);
  } else if (p.proto === 'udp') {
    b.writeUInt16BE(id, 40);
    b.writeUInt16BE(port, 42);
    b.writeUInt16BE(l4len, 44);
  } else {
    b.writeUInt16BE(id, 40);
    b.writeUInt16BE(port, 42);
    b.writeUInt32BE(0x01020304, 44);
    b.writeUInt32BE(0, 48);
    b[52] = 5 << 4;
    b[53] = p.tcpFlags ?? 0x02;
    b.writeUInt16BE(65000, 54);
  }
  b.set(data, 40 + l4h);
  writeChecksum(b, 0, 40, l4len, b[6]);
  return b;
}

/** The reply a destination would send: addresses and ports swapped, echo request → reply. */
export function replyTo(req: Uint8Array): Buffer {
  const b = Buffer.from(req);
  b.set(req.subarray(IPV6_OFF_DST, IPV6_OFF_DST + 16), IPV6_OFF_SRC);
  b.set(req.subarray(IPV6_OFF_SRC, IPV6_OFF_SRC + 16), IPV6_OFF_DST);
  b[7] = 64;
  if (b[6] === IPPROTO_ICMPV6) b[40] = 129;
  else {
    b.writeUInt16BE(Buffer.from(req).readUInt16BE(42), 40);
    b.writeUInt16BE(Buffer.from(req).readUInt16BE(40), 42);
  }
  if (b[6] === IPPROTO_TCP) b[53] = 0x12;
  b.writeUInt16BE(0, b[6] === IPPROTO_UDP ? 46 : b[6] === IPPROTO_TCP ? 56 : 42);
  writeChecksum(b, 0, 40, b.length - 40, b[6]);
  return b;
}

const scratch = new Ipv6Info();
/** Whole packet parses and its TCP/UDP/ICMPv6 checksum verifies. */
export function checksumValid(b: Uint8Array): boolean {
  if (parsePacket(b, 0, b.length, scratch) !== PARSE_OK) return false;
  return verifyChecksum(b, 0, scratch.l4Off, scratch.l4Len, scratch.protocol);
}

// ---- Topologies ----

export interface GenMachine {
  id: string;
  org: number; // index into orgs
  network: number;
  host: number; // host id
  instance: number;
  started: boolean;
  previous: Array<{ host: number; instance: number }>;
}

export interface GenTopology {
  networks: number[];
  hosts: number[];
  machines: GenMachine[];
  doc: Record<string, unknown>;
  topology: Topology;
}

const REGIONS = ['ams', 'ord', 'syd', 'fra', 'iad'];

function nonzeroU32(r: Rng, used: Set<number>): number {
  for (;;) {
    // small ids sometimes (as real ones often are), full 32-bit ones too
    const v = r.chance(0.3) ? r.int(1, 0xffff) : r.u32();
    if (v > 1 && !used.has(v)) { // 0 and 1 are reserved (host 0:1: the service block)
      used.add(v);
      return v;
    }
  }
}

function machineId(r: Rng, used: Set<string>): string {
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
  for (;;) {
    let s = '';
    for (let i = 0; i < 14; i++) s += abc[r.int(0, abc.length - 1)];
    if (!used.has(s)) {
      used.add(s);
      return s;
    }
  }
}

export function documentOf(g: Omit<GenTopology, 'doc' | 'topology'>, publicKeys: string[]): Record<string, unknown> {
  return {
    version: 1,
    orgs: g.networks.map((n, i) => ({ name: `org${i}`, network: n })),
    hosts: g.hosts.map((h, i) => ({
      name: `h${i}`, id: h, region: REGIONS[i % REGIONS.length], publicKey: publicKeys[i], endpoint: `192.0.2.${i + 1}:51820`,
    })),
    apps: g.networks.map((_, i) => ({ name: `app${i}`, org: `org${i}` })),
    machines: g.machines.map((m) => ({
      id: m.id, app: `app${m.org}`, host: g.hosts.indexOf(m.host) >= 0 ? `h${g.hosts.indexOf(m.host)}` : m.host,
      instance: m.instance, state: m.started ? 'started' : 'stopped',
      ...(m.previous.length ? { previous: m.previous.map((p) => ({ address: text(sixpn(m.network, p.host, p.instance, 2)) })) } : {}),
    })),
    peers: [],
  };
}

/** A random topology: 2–4 orgs, 2–5 hosts, 1–40 machines, some stopped, some migrated. */
export function randomTopology(r: Rng): GenTopology {
  const nets = new Set<number>();
  const hostIds = new Set<number>();
  const networks = Array.from({ length: r.int(2, 4) }, () => nonzeroU32(r, nets));
  const hosts = Array.from({ length: r.int(2, 5) }, () => nonzeroU32(r, hostIds));
  // hosts that existed once (machines were migrated away from them) but are gone
  const goneHosts = Array.from({ length: 2 }, () => nonzeroU32(r, hostIds));
  const ids = new Set<string>();
  const instancesOnHost = new Map<number, Set<number>>(hosts.map((h) => [h, new Set<number>()]));
  const slots = new Set<string>(); // network:host:instance of current and previous /112s
  const machines: GenMachine[] = [];
  const n = r.int(1, 40);
  for (let i = 0; i < n; i++) {
    const org = r.int(0, networks.length - 1);
    const host = r.pick(hosts);
    const used = instancesOnHost.get(host)!;
    let instance = 0;
    while (instance === 0 || used.has(instance) || slots.has(`${networks[org]}:${host}:${instance}`)) {
      instance = r.chance(0.5) ? r.int(1, 64) : r.u32();
    }
    used.add(instance);
    slots.add(`${networks[org]}:${host}:${instance}`);
    machines.push({ id: machineId(r, ids), org, network: networks[org], host, instance, started: r.chance(0.8), previous: [] });
  }
  // previous addresses, added once every current /112 is known
  for (const m of machines) {
    if (!r.chance(0.3)) continue;
    for (let k = r.int(1, 2); k > 0; k--) {
      const host = r.pick([...hosts, ...goneHosts]);
      let instance = 0;
      // a small instance sometimes lands on another org's current /112 on that host: allowed
      while (instance === 0 || slots.has(`${m.network}:${host}:${instance}`) || (host === m.host && instance === m.instance)) {
        instance = r.chance(0.5) ? r.int(1, 64) : r.u32();
      }
      slots.add(`${m.network}:${host}:${instance}`);
      m.previous.push({ host, instance });
    }
  }
  const keys = hosts.map(() => Buffer.from(r.bytes(32)).toString('base64'));
  const base = { networks, hosts, machines };
  const doc = documentOf(base, keys);
  return { ...base, doc, topology: parseTopology(JSON.stringify(doc), `(random topology, seed ${r.seed})`) };
}

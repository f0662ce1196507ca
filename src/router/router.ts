// The 6PN forwarding decision (DESIGN.md "Packet path"), sans-IO: packets come in from a
// machine's TUN, from the mesh (another host) or from an external WireGuard peer; they leave
// through `RouterIO`. Org isolation is enforced here and nowhere else.
//
// From a machine:
//   1. the IPv6 header and extension chain parse; the source is inside the machine's /112;
//   2. fdaa::3 or its org's ::3 → DNS;
//   3. an old address of a migrated machine of its org → rewritten to the new one (and the
//      replies of that flow rewritten back when they are delivered);
//   4. another org's prefix → dropped, counted, answered with "administratively prohibited";
//   5. this host → the destination machine's TUN (unknown or stopped: unreachable);
//   6. an external peer's /120 → that peer (this host is its gateway) or its gateway's mesh;
//   7. another host → host/net swap → that host's mesh peer;
//   8. anything else (global unicast) → egress (SNAT66), when the host has one.
// Hop limit is decremented at every forward; expiry sends Time Exceeded; a packet larger than
// the mesh MTU gets Packet Too Big. From the mesh, the WireGuard device has already checked the
// swapped source against the sending host's /48; the router swaps back and checks again that
// source and destination are in one org.
import {
  ICMPV6_UNREACH_ADDR,
  ICMPV6_UNREACH_ADMIN,
  ICMPV6_UNREACH_NO_ROUTE,
  IPV6_OFF_DST,
  IPV6_OFF_HOP_LIMIT,
  IPV6_OFF_SRC,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  Ipv6Info,
  PARSE_OK,
  SWAP_BOTH,
  buildDestUnreachable,
  buildPacketTooBig,
  buildTimeExceeded,
  checksumOffset,
  decrementHopLimit,
  encodeSixpn,
  getFree,
  getHost,
  getInstance,
  getNetwork,
  isGlobalDns,
  isOrgDns,
  isSixpn,
  parsePacket,
  prefixMatch,
  rewriteAddress,
  swapPacket,
} from '../ipv6/index.ts';
import { readU16 } from '../bytes.ts';
import { DNS_PORT } from '../dns/wire.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../noise/constants.ts';
import { SERVICE_HOST } from '../topology/model.ts';
import type { Machine, Peer, Topology, TopologyDiff } from '../topology/index.ts';
import { TokenBucket } from './token-bucket.ts';
import { isUnspecifiedOrLoopback } from './packet-util.ts';
import { MIGRATION_FLOWS_MAX, MigrationFlows } from './migration.ts';
import { SERVICE_COUNTERS, SOURCE_BASE, ServiceTable, isClientSource } from './services.ts';
import type { ServiceCounter, ServiceOptions, ServiceRouter } from './services.ts';
import { buildTcpReset } from './tcp-reset.ts';

/** The MTU of a machine's interface, and what the mesh carries at most: the one definition. */
export const MACHINE_MTU = 1420;

export interface RouterIO {
  /** Delivers a packet to a machine of this host. */
  toMachine(machine: Machine, buf: Uint8Array, off: number, len: number): void;
  /** Sends a packet (already in swapped form) to another host over the mesh. */
  toMesh(hostId: number, buf: Uint8Array, off: number, len: number): void;
  /** Sends a packet to an external WireGuard peer whose gateway is this host. */
  toPeer(peer: Peer, buf: Uint8Array, off: number, len: number): void;
  /** A packet for the DNS address (fdaa::3 or an org's ::3) from a known machine or peer. */
  toDns(buf: Uint8Array, off: number, len: number): void;
  /** A packet for the Internet from a machine (SNAT66). False when this host has no egress. */
  toEgress(machine: Machine, buf: Uint8Array, off: number, len: number): boolean;
}

export const COUNTERS = [
  'forwarded_local', // delivered to a machine on this host
  'forwarded_mesh', // sent to another host
  'forwarded_peer', // sent to an external peer
  'forwarded_egress',
  'dns',
  'migrated_rewrite', // old address rewritten to the new one (either direction)
  'dropped_malformed',
  'dropped_not_unicast', // link-local source or multicast destination (neighbour discovery, MLD): not routed
  'dropped_spoofed', // source outside the sender's /112 (or /120, or the sending host's machines)
  'dropped_cross_org',
  'dropped_no_route', // unknown host or prefix
  'dropped_unreachable', // unknown or stopped machine
  'dropped_hop_limit',
  'dropped_too_big',
  'dropped_no_egress',
  'dropped_not_local', // a mesh packet for a machine this host does not have
  'icmp_sent',
  'icmp_rate_limited', // an ICMPv6 error not sent: over ICMP_ERRORS_PER_SECOND (RFC 4443 §2.4 f)
  'migrated_flows_evicted', // the oldest migration flow forgotten to make room (MIGRATION_FLOWS_MAX)
  ...SERVICE_COUNTERS, // service addresses (services.ts)
] as const;
export type Counter = (typeof COUNTERS)[number];

// ICMP errors are built with headroom in front (the mesh device seals in place: room for the
// WireGuard transport header) and room behind for padding and the tag.
const ICMP_HEADROOM = MESSAGE_TRANSPORT_HEADER_SIZE;
const ICMP_ROOM = ICMP_HEADROOM + 1280 + 64;
export { MIGRATION_FLOWS_MAX };
/**
 * ICMPv6 errors this router sends (RFC 4443 §2.4 f: a token bucket): at most this many per
 * second on average, in bursts of at most ICMP_ERROR_BURST (Linux's icmp_msgs_per_sec and
 * icmp_msgs_burst are 1000 and 50).
 */
export const ICMP_ERRORS_PER_SECOND = 1000;
export const ICMP_ERROR_BURST = 100;

export interface RouterOptions {
  meshMtu?: number;
  now?: () => number;
  /** ICMPv6 errors per second (Infinity: no limit) and the bucket's size. */
  icmpErrorsPerSecond?: number;
  icmpErrorBurst?: number;
  migrationFlowsMax?: number;
  services?: ServiceOptions;
}

export class Router implements ServiceRouter {
  topology: Topology;
  readonly hostId: number;
  /** Largest packet the mesh carries (the machines' MTU is at most this). */
  meshMtu: number;
  readonly counters: Record<Counter, number>;
  readonly info = new Ipv6Info();
  private readonly icmp = new Uint8Array(ICMP_ROOM);
  private readonly routerAddr = new Uint8Array(16);
  /** Flows to old addresses of migrated machines (migration.ts). */
  private readonly migratedFlows: MigrationFlows;
  private readonly icmpBucket: TokenBucket;
  readonly io: RouterIO;
  now: () => number;
  /** Flows to service addresses (services.ts). */
  readonly services: ServiceTable;
  private peerSender: Peer | null = null;

  constructor(topology: Topology, hostId: number, io: RouterIO, opts: RouterOptions = {}) {
    this.topology = topology;
    this.hostId = hostId;
    this.io = io;
    this.meshMtu = opts.meshMtu ?? MACHINE_MTU;
    this.now = opts.now ?? (() => performance.now());
    this.counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<Counter, number>;
    this.icmpBucket = new TokenBucket(opts.icmpErrorsPerSecond ?? ICMP_ERRORS_PER_SECOND, opts.icmpErrorBurst ?? ICMP_ERROR_BURST);
    this.migratedFlows = new MigrationFlows(opts.migrationFlowsMax ?? MIGRATION_FLOWS_MAX, () => this.counters.migrated_flows_evicted++);
    this.services = new ServiceTable(this, opts.services);
  }

  /** Flows to migrated machines' old addresses remembered now (status, tests). */
  get migratedFlowCount(): number {
    return this.migratedFlows.size;
  }

  setTopology(t: Topology, diff?: TopologyDiff): void { // diff: what changed, when known (services.ts)
    this.topology = t;
    this.migratedFlows.setTopology(t);
    this.services.setTopology(t, diff);
  }

  /** Drops expired migration and service flows, times out held packets (call now and then). */
  expire(): void {
    this.migratedFlows.expire(this.now());
    this.services.expire();
  }

  // ---------------------------------------------------------------------------------------
  // Entry points

  /**
   * A packet read from the TUN of `machine` (a machine of this host).
   *
   * `whole`: an offloaded packet (src/offload: a 64 KB TSO segment, or one with a
   * partial checksum) that may go on unchanged only to the egress or to a machine of this host.
   * The checks above the routing run on it as on any packet (they read the IPv6 header, which
   * every piece of it shares). Returns false when it would go anywhere else — nothing was
   * sent or counted then: the caller cuts it into ordinary packets and hands each here.
   */
  fromMachine(machine: Machine, buf: Uint8Array, off: number, len: number, whole = false): boolean {
    const info = this.info;
    const c = this.counters;
    if (parsePacket(buf, off, len, info) !== PARSE_OK) {
      c.dropped_malformed++;
    } else if (buf[off + IPV6_OFF_DST] === 0xff || (buf[off + IPV6_OFF_SRC] === 0xfe && (buf[off + IPV6_OFF_SRC + 1] & 0xc0) === 0x80)) {
      c.dropped_not_unicast++;
    } else if (!prefixMatch(buf, off + IPV6_OFF_SRC, machine.address, 0, 112)) {
      c.dropped_spoofed++; // anti-spoofing: the TUN names the sender, which may only use its own /112
    } else if (!machine.started) {
      c.dropped_unreachable++;
    } else {
      if (whole) return this.routeWhole(buf, off, info.packetLen, machine);
      this.route(buf, off, info.packetLen, machine.network, machine);
    }
    return true;
  }

  /**
   * An offloaded packet from a machine: sent as route() would send each of its pieces, when
   * that is the egress or a started machine of this host with nothing to rewrite and the hop
   * limit left; otherwise false (and no side effect). Every refusal, error and other path —
   * DNS, another org, the mesh, a peer, migration — is left to route() on the pieces.
   */
  private routeWhole(buf: Uint8Array, off: number, len: number, machine: Machine): boolean {
    const dst = off + IPV6_OFF_DST;
    if (!isSixpn(buf, dst)) {
      // route() step 8: global unicast only, to the egress (false from toEgress: no egress)
      if ((buf[dst] & 0xe0) !== 0x20 || !this.io.toEgress(machine, buf, off, len)) return false;
      this.counters.forwarded_egress++;
      return true;
    }
    if (isGlobalDns(buf, dst) || isOrgDns(buf, dst) || getNetwork(buf, dst) !== machine.network) return false;
    if (getInstance(buf, dst) === 0) return this.services.whole(buf, off, len); // service flows (services.ts)
    const target = this.topology.machineAt(buf, dst);
    if (target === undefined || target.host !== this.hostId || !target.started) return false;
    if (buf[off + IPV6_OFF_HOP_LIMIT] <= 1) return false;
    // a reply that restoreMigratedSource may rewrite goes in pieces; every other flow stays whole
    if (this.migratedFlows.size !== 0 && machine.previous.length !== 0) return false;
    this.deliver(target, buf, off, len, null);
    return true;
  }

  /** A packet from an external WireGuard peer (the device checked its source is in the /120). */
  fromPeer(peer: Peer, buf: Uint8Array, off: number, len: number): void {
    const info = this.info;
    if (parsePacket(buf, off, len, info) !== PARSE_OK) return void this.counters.dropped_malformed++;
    if (!prefixMatch(buf, off + IPV6_OFF_SRC, peer.address, 0, 120)) return void this.counters.dropped_spoofed++;
    this.peerSender = peer;
    this.route(buf, off, info.packetLen, peer.network, null);
    this.peerSender = null;
  }

  /** A decrypted packet from the mesh peer of host `fromHost`, still in swapped form. */
  fromMesh(fromHost: number, buf: Uint8Array, off: number, len: number): void {
    const info = this.info;
    if (parsePacket(buf, off, len, info) !== PARSE_OK) return void this.counters.dropped_malformed++;
    swapPacket(buf, off, SWAP_BOTH);
    const src = off + IPV6_OFF_SRC;
    const dst = off + IPV6_OFF_DST;
    // a host may only send from addresses it hosts (its machines and its gateway peers)
    if (!isSixpn(buf, src) || getHost(buf, src) !== fromHost) return void this.counters.dropped_spoofed++;
    if (!isSixpn(buf, dst) || getNetwork(buf, src) !== getNetwork(buf, dst)) return void this.counters.dropped_cross_org++;
    if (getHost(buf, dst) !== this.hostId) return void this.counters.dropped_not_local++; // no transit
    if (this.topology.orgOfAddress(buf, src) === undefined) return void this.counters.dropped_no_route++;
    const target = this.topology.machineAt(buf, dst);
    if (target !== undefined) return this.deliver(target, buf, off, info.packetLen, fromHost);
    const peer = this.topology.peerAt(buf, dst);
    if (peer !== undefined && peer.gateway === this.hostId) return this.toPeer(peer, buf, off, info.packetLen, fromHost);
    if (getInstance(buf, dst) === 0 && getFree(buf, dst) >= SOURCE_BASE) return this.toClient(buf, off, info.packetLen, fromHost);
    this.unreachable(buf, off, info.packetLen, ICMPV6_UNREACH_ADDR, fromHost);
  }

  /**
   * A packet from this host's own DNS service (src/host/dns-service.ts): a reply from a DNS address
   * (fdaa::3 or an org's ::3) to a machine or external peer of this host: TCP or UDP from port
   * 53, or ICMPv6. The org ::3 only answers its own org; anything else is dropped.
   */
  fromLocal(buf: Uint8Array, off: number, len: number): void {
    const info = this.info;
    if (parsePacket(buf, off, len, info) !== PARSE_OK) return void this.counters.dropped_malformed++;
    const src = off + IPV6_OFF_SRC;
    const dst = off + IPV6_OFF_DST;
    if (!isOrgDns(buf, src) || !isSixpn(buf, dst)) return void this.counters.dropped_not_unicast++;
    const dns = (info.protocol === IPPROTO_TCP || info.protocol === IPPROTO_UDP) && !info.fragment && info.l4Len >= 4 &&
      readU16(buf, info.l4Off) === DNS_PORT;
    if (!dns && info.protocol !== IPPROTO_ICMPV6) return void this.counters.dropped_spoofed++;
    if (!isGlobalDns(buf, src) && getNetwork(buf, src) !== getNetwork(buf, dst)) return void this.counters.dropped_cross_org++;
    const target = this.topology.machineAt(buf, dst);
    if (target !== undefined) return this.deliver(target, buf, off, info.packetLen, null);
    const peer = this.topology.peerAt(buf, dst);
    if (peer !== undefined && peer.gateway === this.hostId) return this.toPeer(peer, buf, off, info.packetLen, null);
    this.counters.dropped_no_route++;
  }

  // ---------------------------------------------------------------------------------------
  // Forwarding

  /** Routes a packet from a local sender (machine or peer) of org `network`. */
  private route(buf: Uint8Array, off: number, len: number, network: number, machine: Machine | null): void {
    const dst = off + IPV6_OFF_DST;
    const t = this.topology;
    // 1. DNS: fdaa::3 for machines, <org>::3 for everyone of that org
    if (isGlobalDns(buf, dst) || (isOrgDns(buf, dst) && getNetwork(buf, dst) === network)) {
      this.counters.dns++;
      return this.io.toDns(buf, off, len);
    }
    if (!isSixpn(buf, dst)) {
      // 8. the Internet: global unicast (2000::/3) only; loopback, unspecified, link-local,
      // other unique-local prefixes and the like are not routed anywhere
      if ((buf[dst] & 0xe0) !== 0x20) {
        if (buf[dst] === 0xfe || isUnspecifiedOrLoopback(buf, dst)) return void this.counters.dropped_not_unicast++;
        this.counters.dropped_no_route++;
        return this.icmpError(buf, off, len, 1, ICMPV6_UNREACH_NO_ROUTE, null);
      }
      if (machine !== null && this.io.toEgress(machine, buf, off, len)) return void this.counters.forwarded_egress++;
      this.counters.dropped_no_egress++;
      return this.icmpError(buf, off, len, 1, ICMPV6_UNREACH_NO_ROUTE, null);
    }
    // service addresses of the sender's org (services.ts)
    if (getHost(buf, dst) === SERVICE_HOST && getNetwork(buf, dst) === network) {
      const svc = t.serviceAt(buf, dst);
      const sender = machine ?? this.peerSender;
      if (svc !== undefined && sender !== null) return this.services.forward(svc, sender, buf, off, len);
    }
    // 4. another org: never
    if (getNetwork(buf, dst) !== network) {
      this.counters.dropped_cross_org++;
      return this.icmpError(buf, off, len, 1, ICMPV6_UNREACH_ADMIN, null);
    }
    // 3. an old address of a migrated machine
    let target = t.machineAt(buf, dst);
    if (target === undefined) {
      const moved = t.movedFrom(buf, dst);
      if (moved !== undefined && moved.machine.network === network) {
        // errors about this packet must quote the address the sender used: check first
        const m = moved.machine;
        if (m.host === this.hostId && !m.started) return this.unreachable(buf, off, len, ICMPV6_UNREACH_ADDR, null);
        if (m.host !== this.hostId && len > this.meshMtu) {
          this.counters.dropped_too_big++;
          return this.icmpError(buf, off, len, 2, this.meshMtu, null);
        }
        if (buf[off + IPV6_OFF_HOP_LIMIT] <= 1) return this.timeExceeded(buf, off, len, null);
        this.migratedFlows.remember(buf, off, this.info, moved.previous.address, m.address, this.now());
        this.rewrite(buf, off, IPV6_OFF_DST, m.address);
        this.counters.migrated_rewrite++;
        if (m.host === this.hostId) return this.deliver(m, buf, off, len, null, true);
        return this.toMesh(m.host, buf, off, len);
      }
    }
    if (target !== undefined) {
      if (target.host === this.hostId) return this.deliver(target, buf, off, len, null);
      return this.toMesh(target.host, buf, off, len);
    }
    // 6. an external peer's /120
    const p = t.peerAt(buf, dst);
    if (p !== undefined) {
      if (p.gateway === this.hostId) return this.toPeer(p, buf, off, len, null);
      return this.toMesh(p.gateway, buf, off, len);
    }
    // 5./7. nothing lives there: a known host means an unknown or stopped machine
    const host = getHost(buf, dst);
    // a host's own client-source addresses (services.ts): replies of exposed services go there
    if (getInstance(buf, dst) === 0 && getFree(buf, dst) >= SOURCE_BASE) {
      if (host === this.hostId) return this.toClient(buf, off, len, null);
      if (t.host(host) !== undefined) return this.toMesh(host, buf, off, len);
    }
    if (host === this.hostId || t.host(host) !== undefined) return this.unreachable(buf, off, len, ICMPV6_UNREACH_ADDR, null);
    this.counters.dropped_no_route++;
    this.icmpError(buf, off, len, 1, ICMPV6_UNREACH_NO_ROUTE, null);
  }

  /** `rewritten`: the request that was just rewritten to the new address (not a reply). */
  deliver(target: Machine, buf: Uint8Array, off: number, len: number, fromHost: number | null, rewritten = false): void {
    if (target.host !== this.hostId) return void this.counters.dropped_not_local++;
    // (a service flow to a machine this host has not seen started yet: silently; topologies converge)
    if (!target.started) return this.unreachable(buf, off, len, isClientSource(buf, off + IPV6_OFF_SRC) ? -1 : ICMPV6_UNREACH_ADDR, fromHost);
    if (decrementHopLimit(buf, off) === 0) return this.timeExceeded(buf, off, len, fromHost);
    this.services.delivered(target); // activity, for autostop
    if (!rewritten) this.restoreMigratedSource(buf, off);
    this.counters.forwarded_local++;
    this.io.toMachine(target, buf, off, len);
  }

  toMesh(host: number, buf: Uint8Array, off: number, len: number): void {
    if (this.topology.host(host) === undefined) {
      this.counters.dropped_no_route++;
      return this.icmpError(buf, off, len, 1, ICMPV6_UNREACH_NO_ROUTE, null);
    }
    if (len > this.meshMtu) {
      this.counters.dropped_too_big++;
      return this.icmpError(buf, off, len, 2, this.meshMtu, null);
    }
    if (decrementHopLimit(buf, off) === 0) return this.timeExceeded(buf, off, len, null);
    swapPacket(buf, off, SWAP_BOTH);
    this.counters.forwarded_mesh++;
    this.io.toMesh(host, buf, off, len);
  }

  private toPeer(peer: Peer, buf: Uint8Array, off: number, len: number, fromHost: number | null): void {
    if (decrementHopLimit(buf, off) === 0) return this.timeExceeded(buf, off, len, fromHost);
    this.counters.forwarded_peer++;
    this.io.toPeer(peer, buf, off, len);
  }

  // ---------------------------------------------------------------------------------------
  // Migration: clients that cached an old address keep working (seed 002)

  /** A reply delivered to a client that reached the machine through its old address gets it back. */
  private restoreMigratedSource(buf: Uint8Array, off: number): void {
    const old = this.migratedFlows.restore(buf, off, this.info, this.topology, this.now());
    if (old === undefined) return;
    this.rewrite(buf, off, IPV6_OFF_SRC, old);
    this.counters.migrated_rewrite++;
  }

  /**
   * A packet for one of this host's client-source addresses: a reply of an exposed service's flow
   * goes back to its client (from the service address); anything else is unreachable.
   */
  private toClient(buf: Uint8Array, off: number, len: number, fromHost: number | null): void {
    const f = this.services.restore(buf, off);
    const m = f === undefined ? undefined : this.topology.machineAt(f.client, 0);
    if (m !== undefined && m.host === this.hostId) return this.deliver(m, buf, off, len, fromHost, true);
    const p = f === undefined ? undefined : this.topology.peerAt(f.client, 0);
    if (p !== undefined && p.gateway === this.hostId) return this.toPeer(p, buf, off, len, fromHost);
    this.unreachable(buf, off, len, ICMPV6_UNREACH_ADDR, fromHost);
  }

  count(name: ServiceCounter): void {
    this.counters[name]++;
  }

  /** A held packet (services.ts autostart) sent as if it came in now, from the sender as it is now. */
  replay(sender: Machine | Peer, buf: Uint8Array, off: number, len: number): void {
    if ('app' in sender) {
      const m = this.topology.machine(sender.id);
      if (m !== undefined && m.host === this.hostId) this.fromMachine(m, buf, off, len);
    } else {
      const p = this.topology.peer(sender.org, sender.name);
      if (p !== undefined && p.gateway === this.hostId) this.fromPeer(p, buf, off, len);
    }
  }

  /** A refusal from `from` (a service address): ICMPv6 type 1 or 2, or with code -1 a TCP reset. */
  refuse(buf: Uint8Array, off: number, len: number, type: 1 | 2, param: number, from: Uint8Array): void {
    if (param >= 0) return this.icmpError(buf, off, len, type, param, null, from);
    const n = buildTcpReset(this.icmp, ICMP_HEADROOM, from, 0, buf, off, this.info.l4Off, this.info.l4Len);
    if (n > 0) this.sendBack(this.icmp, ICMP_HEADROOM, n, null);
  }

  /** Rewrites an address and fixes the upper-layer checksum (RFC 1624). */
  rewrite(buf: Uint8Array, off: number, which: number, addr: Uint8Array): void {
    const info = this.info;
    const rel = info.fragment ? -1 : checksumOffset(info.protocol);
    const csum = rel < 0 ? -1 : info.l4Off + rel;
    rewriteAddress(buf, off + which, addr, 0, csum, info.protocol);
  }

  // ---------------------------------------------------------------------------------------
  // ICMPv6 errors back to the sender

  private unreachable(buf: Uint8Array, off: number, len: number, code: number, fromHost: number | null): void {
    this.counters.dropped_unreachable++;
    if (code >= 0) this.icmpError(buf, off, len, 1, code, fromHost); // -1: no error
  }

  timeExceeded(buf: Uint8Array, off: number, len: number, fromHost: number | null): void {
    this.counters.dropped_hop_limit++;
    this.icmpError(buf, off, len, 3, 0, fromHost);
  }

  /**
   * Builds an ICMPv6 error (type 1 unreachable with `param` as code, 2 too big with `param` as
   * MTU, 3 time exceeded) from this host's router address in the sender's org
   * (fdaa:NET:HOST::1, inside this host's space so the mesh accepts it) to the packet's source,
   * and sends it back the way the packet came: to the local machine or peer, or over the mesh
   * to `fromHost`.
   */
  private icmpError(buf: Uint8Array, off: number, len: number, type: 1 | 2 | 3, param: number, fromHost: number | null, from?: Uint8Array): void {
    const src = off + IPV6_OFF_SRC;
    if (!isSixpn(buf, src)) return;
    if (!this.icmpBucket.take(this.now())) return void this.counters.icmp_rate_limited++;
    encodeSixpn(this.routerAddr, 0, getNetwork(buf, src), this.hostId, 0, 1);
    const a = from ?? this.routerAddr;
    const out = this.icmp;
    const o = ICMP_HEADROOM;
    const n =
      type === 1
        ? buildDestUnreachable(out, o, a, 0, buf, off, len, param)
        : type === 2
          ? buildPacketTooBig(out, o, a, 0, buf, off, len, param)
          : buildTimeExceeded(out, o, a, 0, buf, off, len, param);
    if (n > 0) this.sendBack(out, o, n, fromHost);
  }

  /** Sends what this router built back the way a packet came: to its local sender, or over the mesh. */
  private sendBack(out: Uint8Array, o: number, n: number, fromHost: number | null): void {
    if (fromHost !== null) {
      swapPacket(out, o, SWAP_BOTH);
      this.counters.icmp_sent++;
      this.io.toMesh(fromHost, out, o, n);
      return;
    }
    const t = this.topology;
    const m = t.machineAt(out, o + IPV6_OFF_DST);
    if (m !== undefined && m.host === this.hostId) {
      this.counters.icmp_sent++;
      return this.io.toMachine(m, out, o, n);
    }
    const p = t.peerAt(out, o + IPV6_OFF_DST);
    if (p !== undefined && p.gateway === this.hostId) {
      this.counters.icmp_sent++;
      this.io.toPeer(p, out, o, n);
    }
  }
}

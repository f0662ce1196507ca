// Service addresses in the router (issue 13): an app-wide address (fdaa | org network | 0:1 | 0 | N)
// whose TCP connections and UDP flows the client's host balances over the started machines of
// the app. Sans-IO, part of the Router (router.ts calls in where a packet is routed to a service
// or client-source address, delivered, passed whole, and on topology changes and expiry).
//
// A new flow (a TCP SYN, any UDP datagram) to a port the service serves picks one started
// machine: on this host first, then in this host's region, then the others; among equals the one
// with the fewest flows in this table (then in turn). The choice is kept in a bounded flow table
// with conntrack-like timeouts, keyed both ways:
//   forward  (proto, client, service address, client port, port)   → rewrite dst to the machine
//   reverse  (proto, machine, source it sees, port, client port)     → rewrite src to the service
// so every packet of a flow reaches the same machine and its replies come from the service
// address. Across the mesh both legs are ordinary 6PN traffic of the app's org.
//
// The client's address is rewritten too, to fdaa | A | this host | 0 | SOURCE_BASE + slot (A: the
// app's org): this host's own addresses (instance 0, reserved by validation), one slot per client
// address while it has flows. So the reverse key is only ever a service flow's (a client that
// also talks to the machine directly, from a port a service flow used, gets its replies
// untouched), and a machine sees every client in its own org. Exposure to another org: a service
// address in org B's /48 is reached by B's machines and peers only (route() sends nothing else of
// B to A). A reply to a client-source address comes back to this host (router.ts sends
// instance-0 addresses to their host) and passes only if it matches a flow exactly; anything
// else there is unreachable. Nothing of org A reaches org B otherwise.
//
// Refusals: a port the service does not serve: TCP reset (UDP: ICMPv6 port unreachable), from
// the service address; no started machine: ICMPv6 address unreachable, unless the service has
// autostart: then the first packets are held (bounded) while the host starts a machine through
// the topology store, and replayed once the topology has one started; the rest are refused at
// the timeout.

import {
  ICMPV6_UNREACH_PORT,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_OFF_DST,
  IPV6_OFF_HOP_LIMIT,
  IPV6_OFF_SRC,
  TCP_OFF_CHECKSUM,
  TCP_OFF_FLAGS,
  UDP_OFF_CHECKSUM,
  encodeSixpn,
  getFree,
  getHost,
  getInstance,
  readU16,
  rewriteAddress,
  writeU16,
} from '../ipv6/index.ts';
import { SERVICE_HOST } from '../topology/model.ts';
import { changed } from '../topology/diff.ts';
import type { Ipv6Info } from '../ipv6/index.ts';
import type { Machine, Peer, Service, Topology, TopologyDiff } from '../topology/index.ts';
import { HOLD_TIMEOUT_MS, Holds } from './service-hold.ts';
import { restoreError } from './service-icmp.ts';
import { Activity } from './service-activity.ts';
import { FragmentFlows, rewriteFragment } from './service-fragments.ts';
import type { IdleMachine } from './service-activity.ts';

export { HOLD_MAX, HOLD_PER_SERVICE, HOLD_TIMEOUT_MS } from './service-hold.ts';
const w16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];

/** Whether the address at buf[off] is some host's client-source address (fdaa | org | host | 0 | ≥ SOURCE_BASE). */
export function isClientSource(buf: Uint8Array, off: number): boolean {
  return buf[off] === 0xfd && buf[off + 1] === 0xaa && getInstance(buf, off) === 0 && getFree(buf, off) >= SOURCE_BASE &&
    getHost(buf, off) > SERVICE_HOST;
}

/** A flow key without allocating anything but the string: protocol, two addresses, two ports. */
function flowKey(proto: number, a: Uint8Array, ao: number, b: Uint8Array, bo: number, p1: number, p2: number): string {
  return String.fromCharCode(
    proto, w16(a, ao), w16(a, ao + 2), w16(a, ao + 4), w16(a, ao + 6), w16(a, ao + 8), w16(a, ao + 10), w16(a, ao + 12), w16(a, ao + 14),
    w16(b, bo), w16(b, bo + 2), w16(b, bo + 4), w16(b, bo + 6), w16(b, bo + 8), w16(b, bo + 10), w16(b, bo + 12), w16(b, bo + 14), p1, p2,
  );
}

/** Flows remembered at most; past it the oldest not established goes first (see evict). */
export const SERVICE_FLOWS_MAX = 65_536;
/** The free field of the first client-source address (fdaa | org | host | 0 | SOURCE_BASE + slot). */
export const SOURCE_BASE = 0x100;
export const SOURCE_SLOTS = 0x10000 - SOURCE_BASE;
// Idle timeouts, as Linux conntrack's (nf_conntrack_tcp_timeout_*, nf_conntrack_udp_timeout*).
export const TCP_SYN_TIMEOUT_MS = 120_000;
export const TCP_ESTABLISHED_TIMEOUT_MS = 432_000_000; // 5 days
export const TCP_CLOSING_TIMEOUT_MS = 120_000; // FIN seen (time_wait)
export const TCP_RESET_TIMEOUT_MS = 10_000; // RST seen (close)
export const UDP_TIMEOUT_MS = 30_000;
export const UDP_REPLIED_TIMEOUT_MS = 120_000;

const EVICT_SCAN = 8;
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

const NEW = 0;
const REPLIED = 1;
const CLOSING = 2;
const RESET = 3;

export interface ServiceFlow {
  readonly service: Service;
  readonly backend: Machine;
  readonly proto: number;
  /** The client's address, and the one the machine sees (a client-source address of this host). */
  readonly client: Uint8Array;
  readonly source: Uint8Array;
  readonly clientPort: number;
  readonly port: number;
  /** The slot of `source`. */
  readonly slot: number;
  state: number;
  expires: number;
  readonly fwd: string;
  readonly rev: string;
}

/** What the router gives the service table: its state and its ways out. */
export interface ServiceRouter {
  readonly topology: Topology;
  readonly hostId: number;
  readonly info: Ipv6Info;
  readonly meshMtu: number;
  now: () => number;
  count(name: ServiceCounter): void;
  rewrite(buf: Uint8Array, off: number, which: number, addr: Uint8Array): void;
  deliver(target: Machine, buf: Uint8Array, off: number, len: number, fromHost: number | null, rewritten?: boolean): void;
  toMesh(host: number, buf: Uint8Array, off: number, len: number): void;
  timeExceeded(buf: Uint8Array, off: number, len: number, fromHost: number | null): void;
  /** An ICMPv6 error from `from` (type 1 unreachable, 2 too big), or with code -1 a TCP reset. */
  refuse(buf: Uint8Array, off: number, len: number, type: 1 | 2, param: number, from: Uint8Array): void;
  /** Replays a held packet as if it came in now. */
  replay(sender: Machine | Peer, buf: Uint8Array, off: number, len: number): void;
}

export const SERVICE_COUNTERS = [
  'service_flows', // new flows to a service address
  'service_forwarded', // packets of clients rewritten to a machine
  'service_replies', // packets of machines rewritten back to the service address
  'service_refused_port', // a port (or protocol) the service does not serve
  'service_refused_none', // no started machine (and no autostart, or it timed out)
  'service_no_flow', // a TCP segment other than SYN with no flow: reset
  'service_held', // held for autostart
  'service_flows_evicted', // a flow forgotten to make room (SERVICE_FLOWS_MAX)
  'service_fragments_dropped', // a later fragment whose datagram's first fragment was not seen
] as const;
export type ServiceCounter = (typeof SERVICE_COUNTERS)[number];

export interface ServiceOptions {
  flowsMax?: number;
  holdTimeoutMs?: number;
  /** Called when a flow finds no started machine of an autostart service (at most once per hold). */
  onAutostart?: (service: Service) => void;
}

export class ServiceTable {
  private readonly r: ServiceRouter;
  /** Forward key → flow, oldest first. */
  private readonly flows = new Map<string, ServiceFlow>();
  private readonly reverse = new Map<string, ServiceFlow>();
  /** Flows per machine id (least connections). */
  private readonly load = new Map<string, number>();
  /** "client hex|org network" → slot and its flows; free slots. */
  private readonly slots = new Map<string, { slot: number; refs: number }>();
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  /** First packets waiting for autostart (service-hold.ts). */
  private readonly holds: Holds;
  private turn = 0;
  /** The flows of fragmented datagrams (service-fragments.ts). */
  private readonly frags = new FragmentFlows<ServiceFlow>();
  /** Autostop's clock (service-activity.ts). */
  private readonly activity = new Activity();
  private readonly flowsMax: number;

  constructor(r: ServiceRouter, opts: ServiceOptions = {}) {
    this.r = r;
    this.flowsMax = opts.flowsMax ?? SERVICE_FLOWS_MAX;
    this.holds = new Holds(r, opts.holdTimeoutMs ?? HOLD_TIMEOUT_MS, (svc) => this.pick(svc) !== undefined);
    this.holds.onAutostart = opts.onAutostart;
    this.setTopology(r.topology);
  }

  get size(): number {
    return this.flows.size;
  }
  get heldPackets(): number {
    return this.holds.count;
  }
  /** Called when a flow finds no started machine of an autostart service (once per hold). */
  set onAutostart(f: ((service: Service) => void) | undefined) {
    this.holds.onAutostart = f;
  }

  /** Releases held packets whose service has a started machine now; refuses those past their time. */
  release(): void {
    this.holds.release();
  }
  /** Flows now per machine id (status, tests). */
  flowsPerMachine(): ReadonlyMap<string, number> {
    return this.load;
  }
  /** The flows, oldest first (status, tests). */
  list(): IterableIterator<ServiceFlow> {
    return this.flows.values();
  }

  // ---- client → service address ----

  /**
   * A packet from a local client (a machine, or a peer of this gateway) of the service's client
   * org to `svc`'s address. Sends it on, refuses it, or holds it.
   */
  forward(svc: Service, sender: Machine | Peer, buf: Uint8Array, off: number, len: number): void {
    const r = this.r;
    const info = r.info;
    const tcp = info.protocol === IPPROTO_TCP;
    if (!tcp && info.protocol !== IPPROTO_UDP) {
      r.count('service_refused_port'); // no ports to balance by: only TCP and UDP are served
      return r.refuse(buf, off, len, 1, ICMPV6_UNREACH_PORT, svc.address);
    }
    if (info.nonFirstFragment) return this.sendOn(this.frags.find(buf, off, info, r.now()), buf, off, len, true);
    if (info.l4Len < (tcp ? 20 : 8)) return void r.count('service_refused_port'); // a first fragment without ports
    const cport = readU16(buf, info.l4Off);
    const port = readU16(buf, info.l4Off + 2);
    const proto = tcp ? 'tcp' : 'udp';
    let served = false;
    for (const p of svc.ports) if (p.port === port && p.protocol === proto) served = true;
    if (!served) {
      r.count('service_refused_port');
      return r.refuse(buf, off, len, 1, tcp ? -1 : ICMPV6_UNREACH_PORT, svc.address);
    }
    const flags = tcp ? buf[info.l4Off + TCP_OFF_FLAGS] : 0;
    const key = flowKey(info.protocol, buf, off + IPV6_OFF_SRC, buf, off + IPV6_OFF_DST, cport, port);
    let f = this.flows.get(key);
    // (setTopology ends the flows of machines that went away)
    if (f !== undefined && tcp && f.state >= CLOSING && (flags & (SYN | ACK)) === SYN) {
      this.remove(f); // the client reuses the ports for a new connection
      f = undefined;
    }
    if (f === undefined) {
      if (tcp && (flags & (SYN | ACK | RST)) !== SYN) {
        r.count('service_no_flow'); // mid-connection with no flow (expired, or the machine went away)
        return r.refuse(buf, off, len, 1, -1, svc.address);
      }
      const backend = this.pick(svc);
      if (backend === undefined) return this.holds.hold(svc, sender, buf, off, len);
      // errors about this packet quote what the client sent: check before rewriting
      if (backend.host !== r.hostId && len > r.meshMtu) return r.refuse(buf, off, len, 2, r.meshMtu, svc.address);
      if (buf[off + IPV6_OFF_HOP_LIMIT] <= 1) return r.timeExceeded(buf, off, len, null);
      f = this.create(svc, backend, buf, off, key, cport, port);
      if (f === undefined) return this.holds.hold(svc, sender, buf, off, len);
    } else {
      if (f.backend.host !== r.hostId && len > r.meshMtu) return r.refuse(buf, off, len, 2, r.meshMtu, svc.address);
      if (buf[off + IPV6_OFF_HOP_LIMIT] <= 1) return r.timeExceeded(buf, off, len, null);
    }
    this.track(f, flags, tcp);
    this.sendOn(f, buf, off, len, true);
  }

  /** Rewrites a packet of flow `f` (undefined: a fragment of no known datagram, dropped) and sends it on. */
  private sendOn(f: ServiceFlow | undefined, buf: Uint8Array, off: number, len: number, toBackend: boolean): void {
    const r = this.r;
    const info = r.info;
    if (f === undefined || this.flows.get(f.fwd) !== f) return void r.count('service_fragments_dropped');
    if (!toBackend) {
      if (info.fragment && !info.nonFirstFragment) this.frags.remember(buf, off, info, f, r.now());
      if (info.fragment) rewriteFragment(buf, off, info, f.service.address, f.client);
      else r.rewrite(buf, off, IPV6_OFF_SRC, f.service.address), r.rewrite(buf, off, IPV6_OFF_DST, f.client);
      return void r.count('service_replies');
    }
    if (info.nonFirstFragment && f.backend.host !== r.hostId && len > r.meshMtu) return r.refuse(buf, off, len, 2, r.meshMtu, f.service.address);
    if (info.nonFirstFragment && buf[off + IPV6_OFF_HOP_LIMIT] <= 1) return r.timeExceeded(buf, off, len, null);
    if (info.fragment && !info.nonFirstFragment) this.frags.remember(buf, off, info, f, r.now());
    if (info.fragment) rewriteFragment(buf, off, info, f.source, f.backend.address);
    else r.rewrite(buf, off, IPV6_OFF_SRC, f.source), r.rewrite(buf, off, IPV6_OFF_DST, f.backend.address);
    r.count('service_forwarded');
    if (f.backend.host === r.hostId) return r.deliver(f.backend, buf, off, len, null, true);
    r.toMesh(f.backend.host, buf, off, len);
  }

  private alive(f: ServiceFlow): boolean {
    const m = this.r.topology.machine(f.backend.id);
    return m !== undefined && m.started && m.address.every((b, i) => b === f.backend.address[i]);
  }

  /** Same host, then same region, then the others; the fewest flows; ties in turn. */
  private pick(svc: Service): Machine | undefined {
    const r = this.r;
    const region = r.topology.host(r.hostId)?.region;
    const ms = r.topology.machinesOfApp(svc.app);
    let best: Machine | undefined;
    let bestRank = 3;
    let bestLoad = Infinity;
    const n = ms.length;
    const start = n === 0 ? 0 : this.turn++ % n;
    for (let k = 0; k < n; k++) {
      const m = ms[(start + k) % n];
      if (!m.started || r.topology.host(m.host) === undefined) continue;
      const rank = m.host === r.hostId ? 0 : m.region === region ? 1 : 2;
      const load = this.load.get(m.id) ?? 0;
      if (rank < bestRank || (rank === bestRank && load < bestLoad)) {
        best = m;
        bestRank = rank;
        bestLoad = load;
      }
    }
    return best;
  }

  private create(svc: Service, backend: Machine, buf: Uint8Array, off: number, key: string, cport: number, port: number): ServiceFlow | undefined {
    const r = this.r;
    const client = buf.slice(off + IPV6_OFF_SRC, off + IPV6_OFF_SRC + 16);
    const slot = this.takeSlot(client, backend.network);
    if (slot < 0) return undefined;
    const source = new Uint8Array(16);
    encodeSixpn(source, 0, backend.network, r.hostId, 0, SOURCE_BASE + slot);
    if (this.flows.size >= this.flowsMax) this.evict();
    const rev = flowKey(this.r.info.protocol, backend.address, 0, source, 0, port, cport);
    const f: ServiceFlow = {
      service: svc, backend, proto: this.r.info.protocol, client, source, clientPort: cport, port, slot,
      state: NEW, expires: 0, fwd: key, rev,
    };
    this.flows.set(key, f);
    this.reverse.set(rev, f);
    this.load.set(backend.id, (this.load.get(backend.id) ?? 0) + 1);
    r.count('service_flows');
    return f;
  }

  /**
   * Makes room: among the EVICT_SCAN oldest flows the first one not established (conntrack's
   * early drop), else the oldest.
   */
  private evict(): void {
    let victim: ServiceFlow | undefined;
    let k = 0;
    for (const f of this.flows.values()) {
      victim ??= f;
      if (f.state !== REPLIED) {
        victim = f;
        break;
      }
      if (++k >= EVICT_SCAN) break;
    }
    if (victim === undefined) return;
    this.remove(victim);
    this.r.count('service_flows_evicted');
  }

  private takeSlot(client: Uint8Array, network: number): number {
    const k = flowKey(0, client, 0, client, 0, network >>> 16, network & 0xffff);
    const s = this.slots.get(k);
    if (s !== undefined) {
      s.refs++;
      return s.slot;
    }
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.nextSlot < SOURCE_SLOTS ? this.nextSlot++ : -1;
    if (slot >= 0) this.slots.set(k, { slot, refs: 1 });
    return slot;
  }

  private remove(f: ServiceFlow): void {
    this.flows.delete(f.fwd);
    this.reverse.delete(f.rev);
    const n = (this.load.get(f.backend.id) ?? 1) - 1;
    if (n > 0) this.load.set(f.backend.id, n);
    else this.load.delete(f.backend.id);
    {
      const k = flowKey(0, f.client, 0, f.client, 0, f.backend.network >>> 16, f.backend.network & 0xffff);
      const s = this.slots.get(k);
      if (s !== undefined && --s.refs === 0) {
        this.slots.delete(k);
        this.freeSlots.push(s.slot);
      }
    }
  }

  private track(f: ServiceFlow, flags: number, tcp: boolean): void {
    const now = this.r.now();
    if (!tcp) {
      f.expires = now + (f.state === REPLIED ? UDP_REPLIED_TIMEOUT_MS : UDP_TIMEOUT_MS);
      return;
    }
    if ((flags & RST) !== 0) f.state = RESET;
    else if ((flags & FIN) !== 0 && f.state < CLOSING) f.state = CLOSING;
    f.expires = now + (f.state === NEW ? TCP_SYN_TIMEOUT_MS : f.state === REPLIED ? TCP_ESTABLISHED_TIMEOUT_MS
      : f.state === CLOSING ? TCP_CLOSING_TIMEOUT_MS : TCP_RESET_TIMEOUT_MS);
  }

  // ---- machine → client: replies; activity for autostop ----

  /** A packet delivered to `target`, a machine of this host: its activity. */
  delivered(target: Machine): void {
    if (this.activity.watching) this.activity.touch(target, this.r.now());
  }

  /** Started machines of this host idle past their service's autostop (service-activity.ts). */
  idleMachines(): IdleMachine[] {
    const r = this.r;
    return this.activity.idle(r.topology, r.hostId, r.now(), (id) => this.flowsOf(id));
  }

  /**
   * A packet for one of this host's client-source addresses: if it is a reply of a flow, its
   * source becomes the service address again and its destination the client. Returns the flow,
   * or undefined (nothing changed).
   */
  restore(buf: Uint8Array, off: number): ServiceFlow | undefined {
    if (this.flows.size === 0) return undefined;
    const r = this.r;
    const info = r.info;
    if (info.protocol === IPPROTO_ICMPV6) {
      const e = restoreError(buf, off, info, (proto, a, b, p1, p2) => this.reverse.get(flowKey(proto, buf, a, buf, b, p1, p2)));
      if (e !== undefined) r.count('service_replies');
      return e;
    }
    if (info.protocol !== IPPROTO_TCP && info.protocol !== IPPROTO_UDP) return undefined;
    if (info.nonFirstFragment) {
      const g = this.frags.find(buf, off, info, r.now());
      if (g === undefined || this.flows.get(g.fwd) !== g) return undefined;
      this.sendOn(g, buf, off, 0, false);
      return g;
    }
    if (info.l4Len < 8) return undefined;
    const sport = readU16(buf, info.l4Off);
    const dport = readU16(buf, info.l4Off + 2);
    const key = flowKey(info.protocol, buf, off + IPV6_OFF_SRC, buf, off + IPV6_OFF_DST, sport, dport);
    const f = this.reverse.get(key);
    if (f === undefined) return undefined;
    const tcp = info.protocol === IPPROTO_TCP;
    const flags = tcp ? buf[info.l4Off + TCP_OFF_FLAGS] : 0;
    if (f.state === NEW && (!tcp || (flags & (SYN | ACK)) === (SYN | ACK))) f.state = REPLIED;
    this.track(f, flags, tcp);
    this.sendOn(f, buf, off, 0, false);
    return f;
  }

  /**
   * routeWhole's part: a whole offloaded packet (a TSO segment or one with a partial checksum)
   * from a machine to a service address or to a client-source address of this host. When its
   * flow exists and the other end is a started machine of this host, both addresses are
   * rewritten (the field holds the pseudo-header sum, not complemented: the RFC 1624 update is
   * made on its complement, as src/nat66/partial-checksum.ts does) and it is delivered whole;
   * otherwise false, with nothing changed (its pieces go through route()).
   */
  whole(buf: Uint8Array, off: number, len: number): boolean {
    const r = this.r;
    const info = r.info;
    const tcp = info.protocol === IPPROTO_TCP;
    if ((!tcp && info.protocol !== IPPROTO_UDP) || info.fragment || info.l4Len < 8 || buf[off + IPV6_OFF_HOP_LIMIT] <= 1) return false;
    const dst = off + IPV6_OFF_DST;
    const key = flowKey(info.protocol, buf, off + IPV6_OFF_SRC, buf, dst, readU16(buf, info.l4Off), readU16(buf, info.l4Off + 2));
    const toService = getHost(buf, dst) === SERVICE_HOST;
    const f = toService ? this.flows.get(key) : getHost(buf, dst) === r.hostId ? this.reverse.get(key) : undefined;
    if (f === undefined) return false;
    const target = toService ? f.backend : r.topology.machineAt(f.client, 0);
    if (target === undefined || target.host !== r.hostId || !target.started) return false;
    const flags = tcp ? buf[info.l4Off + TCP_OFF_FLAGS] : 0;
    if (!toService && f.state === NEW && (!tcp || (flags & (SYN | ACK)) === (SYN | ACK))) f.state = REPLIED;
    this.track(f, flags, tcp);
    const pos = info.l4Off + (tcp ? TCP_OFF_CHECKSUM : UDP_OFF_CHECKSUM);
    let g = ~readU16(buf, pos) & 0xffff;
    writeU16(buf, pos, g === 0 ? 0xffff : g);
    rewriteAddress(buf, off + IPV6_OFF_SRC, toService ? f.source : f.service.address, 0, pos, info.protocol);
    rewriteAddress(buf, dst, toService ? f.backend.address : f.client, 0, pos, info.protocol);
    g = ~readU16(buf, pos) & 0xffff;
    writeU16(buf, pos, g);
    r.count(toService ? 'service_forwarded' : 'service_replies');
    r.deliver(target, buf, off, len, null, true);
    return true;
  }


  // ---- upkeep ----

  /** A new topology: flows whose machine is gone or stopped, or whose service is gone, end. */
  setTopology(t: Topology, diff?: TopologyDiff): void {
    this.activity.setTopology(t, diff === undefined || changed(diff.apps));
    for (const f of [...this.flows.values()]) {
      const svc = t.serviceAt(f.service.address, 0);
      const served = svc?.ports.some((p) => p.port === f.port && (p.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP) === f.proto);
      if (svc === undefined || svc.app !== f.service.app || !served || !this.alive(f)) this.remove(f);
    }
    this.release();
  }

  /** Drops expired flows and times out held packets (call now and then). */
  expire(): void {
    const now = this.r.now();
    for (const f of [...this.flows.values()]) if (f.expires < now) this.remove(f);
    this.frags.expire(now);
    this.release();
  }

  /** Flows of this table to a machine. */
  flowsOf(machineId: string): number {
    return this.load.get(machineId) ?? 0;
  }
}

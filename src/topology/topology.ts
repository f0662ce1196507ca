import { createHash } from 'node:crypto';
// A validated topology with the indexes the router and the DNS server ask for. Built whole from a
// document (a file edit, a store load), or changed in place by an edit (patch.ts: the cost of the
// edit, not of the topology; the same object, its indexes updated in one task, so the packet path
// never sees half an edit).
//
// The address lookups (machineAt, movedFrom, peerAt, orgOfAddress) take (buf, off) and allocate
// nothing, so the packet path can call them: a /112 is found by host id then instance id
// (instance ids are unique on a host), and the network field is compared last.

import type { DnsAsker, DnsMachine, DnsPeer, DnsService, DnsView } from '../dns/view.ts';
import { formatAddress, getFree, getHost, getInstance, getNetwork, isSixpn } from '../ipv6/index.ts';
import { SERVICE_HOST, formatEndpoint } from './model.ts';
import type { App, Host, Machine, Org, Peer, PreviousAddress, Service, TopologyData } from './model.ts';

/** A machine found by one of its previous addresses, and which one. */
export interface MovedMachine {
  readonly machine: Machine;
  readonly previous: PreviousAddress;
}

const NONE: readonly never[] = Object.freeze([]);

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}

function pull<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  const i = a ? a.indexOf(v) : -1;
  if (i < 0) return;
  a!.splice(i, 1);
  if (a!.length === 0) m.delete(k);
}

function slot<V>(m: Map<number, Map<number, V>>, host: number, key: number, v: V): void {
  let inner = m.get(host);
  if (!inner) m.set(host, (inner = new Map()));
  inner.set(key, v);
}

/** What an edit changes, section by section: the objects that leave and the ones that join (patch.ts). */
export interface EntityEdit {
  readonly orgs?: Swap<Org>;
  readonly hosts?: Swap<Host>;
  readonly apps?: Swap<App>;
  readonly machines?: Swap<Machine>;
  readonly peers?: Swap<Peer>;
}
export interface Swap<T> {
  readonly before: readonly T[];
  readonly after: readonly T[];
}

const peerKey = (p: Peer) => `${p.org}/${p.name}`;
const peerSlotKey = (p: Peer) => getInstance(p.prefix, 0) * 256 + p.prefix[14];

export class Topology implements TopologyData {
  /** Where it was loaded from (a file path, a store and revision), for messages. */
  source: string;

  // The entities by identity: the truth. The arrays (`orgs`, `machines`, …) are built from them
  // when asked for after an edit (in insertion order: a replaced entity keeps its place, a new one
  // comes last, as in the store's document), so an edit never copies a section.
  private readonly orgByName = new Map<string, Org>();
  private readonly appByName = new Map<string, App>();
  private readonly hostById = new Map<number, Host>();
  private readonly machineById = new Map<string, Machine>();
  private readonly peerByName = new Map<string, Peer>(); // `${org}/${name}`
  private lists: { orgs?: readonly Org[]; apps?: readonly App[]; hosts?: readonly Host[]; machines?: readonly Machine[]; peers?: readonly Peer[]; services?: readonly Service[] } = {};

  private readonly orgByNet = new Map<number, Org>();
  private readonly appsByOrg = new Map<string, App[]>();
  private readonly hostByName_ = new Map<string, Host>();
  private readonly hostByKey_ = new Map<string, Host>();
  private readonly hostByEndpoint_ = new Map<string, Host>(); // formatEndpoint
  private readonly egressOwner_ = new Map<string, Host | App>(); // egress address text → its host or app
  private readonly machinesByApp = new Map<string, Machine[]>();
  private readonly machinesByOrg = new Map<string, Machine[]>();
  private readonly machinesByHost = new Map<number, Machine[]>();
  private readonly current = new Map<number, Map<number, Machine>>(); // host → instance → machine
  private readonly moved = new Map<number, Map<number, MovedMachine[]>>(); // old host → old instance
  private readonly peersByOrg = new Map<string, Peer[]>();
  private readonly peersByGateway = new Map<number, Peer[]>();
  private readonly peerByKey_ = new Map<string, Peer>(); // public key base64
  private readonly peerSlots = new Map<number, Map<number, Peer[]>>(); // host → instance·256+block
  private readonly serviceSlots = new Map<number, Map<number, Service>>(); // network → N
  private readonly servicesByClient = new Map<string, Service[]>();

  constructor(data: TopologyData, source = '(memory)') {
    this.source = source;
    for (const o of data.orgs) this.addOrg(o);
    for (const a of data.apps) this.addApp(a);
    for (const h of data.hosts) this.addHost(h);
    for (const m of data.machines) this.index(m);
    for (const p of data.peers) this.addPeer(p);
  }

  get orgs(): readonly Org[] {
    return (this.lists.orgs ??= Object.freeze([...this.orgByName.values()]));
  }
  get apps(): readonly App[] {
    return (this.lists.apps ??= Object.freeze([...this.appByName.values()]));
  }
  get hosts(): readonly Host[] {
    return (this.lists.hosts ??= Object.freeze([...this.hostById.values()]));
  }
  get machines(): readonly Machine[] {
    return (this.lists.machines ??= Object.freeze([...this.machineById.values()]));
  }
  get peers(): readonly Peer[] {
    return (this.lists.peers ??= Object.freeze([...this.peerByName.values()]));
  }
  /** Every app's service addresses. */
  get services(): readonly Service[] {
    return (this.lists.services ??= Object.freeze(this.apps.flatMap((a) => a.services)));
  }

  private addOrg(o: Org): void {
    this.orgByName.set(o.name, o);
    this.orgByNet.set(o.network, o);
  }
  private dropOrg(o: Org, keep: boolean): void {
    if (!keep) this.orgByName.delete(o.name);
    if (this.orgByNet.get(o.network) === o) this.orgByNet.delete(o.network);
  }

  private addApp(a: App): void {
    this.appByName.set(a.name, a);
    push(this.appsByOrg, a.org, a);
    for (const sv of a.services) {
      slot(this.serviceSlots, sv.network, getFree(sv.address, 0), sv);
      push(this.servicesByClient, sv.clientOrg, sv);
    }
    for (const e of a.egress) this.egressOwner_.set(e.text, a);
  }
  private dropApp(a: App, keep: boolean): void {
    if (!keep) this.appByName.delete(a.name);
    pull(this.appsByOrg, a.org, a);
    for (const sv of a.services) {
      const inner = this.serviceSlots.get(sv.network);
      if (inner?.get(getFree(sv.address, 0)) === sv) inner.delete(getFree(sv.address, 0));
      if (inner?.size === 0) this.serviceSlots.delete(sv.network);
      pull(this.servicesByClient, sv.clientOrg, sv);
    }
    for (const e of a.egress) if (this.egressOwner_.get(e.text) === a) this.egressOwner_.delete(e.text);
  }

  private addHost(h: Host): void {
    this.hostById.set(h.id, h);
    this.hostByName_.set(h.name, h);
    this.hostByKey_.set(h.publicKeyBase64, h);
    this.hostByEndpoint_.set(formatEndpoint(h.endpoint), h);
    if (h.egress) this.egressOwner_.set(formatAddress(h.egress, 0), h);
  }
  private dropHost(h: Host, keep: boolean): void {
    if (!keep) this.hostById.delete(h.id);
    const drop = <K>(m: Map<K, Host | App>, k: K) => {
      if (m.get(k) === h) m.delete(k);
    };
    drop(this.hostByName_, h.name);
    drop(this.hostByKey_, h.publicKeyBase64);
    drop(this.hostByEndpoint_, formatEndpoint(h.endpoint));
    if (h.egress) drop(this.egressOwner_, formatAddress(h.egress, 0));
  }

  private addPeer(p: Peer): void {
    this.peerByName.set(peerKey(p), p);
    push(this.peersByOrg, p.org, p);
    push(this.peersByGateway, p.gateway, p);
    this.peerByKey_.set(p.publicKeyBase64, p);
    const list = this.peerSlots.get(p.gateway)?.get(peerSlotKey(p));
    if (list) list.push(p);
    else slot(this.peerSlots, p.gateway, peerSlotKey(p), [p]);
  }
  private dropPeer(p: Peer, keep: boolean): void {
    if (!keep) this.peerByName.delete(peerKey(p));
    pull(this.peersByOrg, p.org, p);
    pull(this.peersByGateway, p.gateway, p);
    if (this.peerByKey_.get(p.publicKeyBase64) === p) this.peerByKey_.delete(p.publicKeyBase64);
    const inner = this.peerSlots.get(p.gateway);
    const list = inner?.get(peerSlotKey(p));
    if (list === undefined) return;
    const rest = list.filter((x) => x !== p);
    if (rest.length > 0) inner!.set(peerSlotKey(p), rest);
    else inner!.delete(peerSlotKey(p));
    if (inner!.size === 0) this.peerSlots.delete(p.gateway);
  }

  /**
   * Applies a validated edit in place (patch.ts has checked the result as a whole load would):
   * each `before` leaves every index, each `after` joins them; an entity replaced by one of the
   * same identity keeps its place. Costs the entities changed, in one task.
   */
  applyEdit(e: EntityEdit): void {
    const swap = <T, K>(s: Swap<T> | undefined, key: (t: T) => K, drop: (t: T, keep: boolean) => void, add: (t: T) => void): void => {
      if (s === undefined) return;
      const staying = new Set(s.after.map(key));
      for (const t of s.before) drop(t, staying.has(key(t)));
      for (const t of s.after) add(t);
    };
    swap(e.orgs, (o) => o.name, (o, k) => this.dropOrg(o, k), (o) => this.addOrg(o));
    swap(e.hosts, (h) => h.id, (h, k) => this.dropHost(h, k), (h) => this.addHost(h));
    swap(e.apps, (a) => a.name, (a, k) => this.dropApp(a, k), (a) => this.addApp(a));
    swap(e.machines, (m) => m.id, (m, k) => this.unindex(m, k), (m) => this.index(m));
    swap(e.peers, peerKey, (p, k) => this.dropPeer(p, k), (p) => this.addPeer(p));
    const l = { ...this.lists };
    if (e.orgs) delete l.orgs;
    if (e.hosts) delete l.hosts;
    if (e.apps) {
      delete l.apps;
      delete l.services;
    }
    if (e.machines) delete l.machines;
    if (e.peers) delete l.peers;
    this.lists = l;
  }

  // ---- Orgs and apps ----

  org(name: string): Org | undefined {
    return this.orgByName.get(name);
  }
  orgByNetwork(network: number): Org | undefined {
    return this.orgByNet.get(network >>> 0);
  }
  /** The org whose /48 holds the address, if it is 6PN and the org exists. */
  orgOfAddress(addr: Uint8Array, off = 0): Org | undefined {
    return isSixpn(addr, off) ? this.orgByNet.get(getNetwork(addr, off)) : undefined;
  }
  app(name: string): App | undefined {
    return this.appByName.get(name);
  }
  appsOfOrg(org: string): readonly App[] {
    return this.appsByOrg.get(org) ?? NONE;
  }

  // ---- Hosts ----

  host(id: number): Host | undefined {
    return this.hostById.get(id >>> 0);
  }
  hostByName(name: string): Host | undefined {
    return this.hostByName_.get(name);
  }
  /** By mesh public key, wg(8) base64. */
  hostByKey(publicKeyBase64: string): Host | undefined {
    return this.hostByKey_.get(publicKeyBase64);
  }
  /** By endpoint, as formatEndpoint writes it. */
  hostByEndpoint(endpoint: string): Host | undefined {
    return this.hostByEndpoint_.get(endpoint);
  }
  /** The host or app whose egress address this is (its RFC 5952 text). */
  egressOwner(text: string): Host | App | undefined {
    return this.egressOwner_.get(text);
  }

  // ---- Machines ----

  private index(m: Machine): void {
    this.machineById.set(m.id, m);
    push(this.machinesByApp, m.app, m);
    push(this.machinesByOrg, m.org, m);
    push(this.machinesByHost, m.host, m);
    slot(this.current, m.host, m.instance, m);
    for (const p of m.previous) {
      const inst = getInstance(p.address, 0);
      const list = this.moved.get(p.host)?.get(inst);
      if (list) list.push({ machine: m, previous: p });
      else slot(this.moved, p.host, inst, [{ machine: m, previous: p }]);
    }
  }

  private unindex(m: Machine, keep = false): void {
    if (!keep && this.machineById.get(m.id) === m) this.machineById.delete(m.id);
    pull(this.machinesByApp, m.app, m);
    pull(this.machinesByOrg, m.org, m);
    pull(this.machinesByHost, m.host, m);
    const onHost = this.current.get(m.host);
    if (onHost?.get(m.instance) === m) onHost.delete(m.instance);
    for (const p of m.previous) {
      const inst = getInstance(p.address, 0);
      const list = this.moved.get(p.host)?.get(inst);
      if (list === undefined) continue;
      const rest = list.filter((x) => x.machine !== m);
      if (rest.length > 0) this.moved.get(p.host)!.set(inst, rest);
      else this.moved.get(p.host)!.delete(inst);
    }
  }

  /** The machine whose current /112 is (host, instance), in any org (an instance is unique on its host). */
  machineOn(hostId: number, instance: number): Machine | undefined {
    return this.current.get(hostId >>> 0)?.get(instance >>> 0);
  }
  /** Every machine with a previous /112 on this host, with that address. */
  *movedOffHost(hostId: number): Iterable<MovedMachine> {
    for (const list of this.moved.get(hostId >>> 0)?.values() ?? NONE) yield* list;
  }
  /** The machines one of whose previous /112s is (host, instance). */
  movedOn(hostId: number, instance: number): readonly MovedMachine[] {
    return this.moved.get(hostId >>> 0)?.get(instance >>> 0) ?? NONE;
  }

  machine(id: string): Machine | undefined {
    return this.machineById.get(id);
  }
  machinesOfApp(app: string): readonly Machine[] {
    return this.machinesByApp.get(app) ?? NONE;
  }
  machinesOfOrg(org: string): readonly Machine[] {
    return this.machinesByOrg.get(org) ?? NONE;
  }
  machinesOnHost(hostId: number): readonly Machine[] {
    return this.machinesByHost.get(hostId >>> 0) ?? NONE;
  }
  /** The machine whose current /112 holds the address (started or not). */
  machineAt(addr: Uint8Array, off = 0): Machine | undefined {
    if (!isSixpn(addr, off)) return undefined;
    const m = this.current.get(getHost(addr, off))?.get(getInstance(addr, off));
    return m !== undefined && m.network === getNetwork(addr, off) ? m : undefined;
  }
  /** The migrated machine one of whose previous /112s holds the address. */
  movedFrom(addr: Uint8Array, off = 0): MovedMachine | undefined {
    if (!isSixpn(addr, off)) return undefined;
    const list = this.moved.get(getHost(addr, off))?.get(getInstance(addr, off));
    if (list === undefined) return undefined;
    const net = getNetwork(addr, off);
    for (let i = 0; i < list.length; i++) if (list[i].machine.network === net) return list[i];
    return undefined;
  }

  // ---- Service addresses ----

  /** The service whose address this is (fdaa | network | 0:1 | 0 | N). */
  serviceAt(addr: Uint8Array, off = 0): Service | undefined {
    if (!isSixpn(addr, off) || getHost(addr, off) !== SERVICE_HOST || getInstance(addr, off) !== 0) return undefined;
    return this.serviceSlots.get(getNetwork(addr, off))?.get(getFree(addr, off));
  }
  /** The services whose addresses are in this org's /48 (the ones its machines and peers reach). */
  servicesForOrg(org: string): readonly Service[] {
    return this.servicesByClient.get(org) ?? NONE;
  }

  // ---- WireGuard peers ----

  peer(org: string, name: string): Peer | undefined {
    return this.peerByName.get(`${org}/${name}`);
  }
  /** By public key, wg(8) base64. */
  peerByKey(publicKeyBase64: string): Peer | undefined {
    return this.peerByKey_.get(publicKeyBase64);
  }
  peersOfOrg(org: string): readonly Peer[] {
    return this.peersByOrg.get(org) ?? NONE;
  }
  peersOnGateway(hostId: number): readonly Peer[] {
    return this.peersByGateway.get(hostId >>> 0) ?? NONE;
  }
  /** The peer whose /120 holds the address. */
  peerAt(addr: Uint8Array, off = 0): Peer | undefined {
    if (!isSixpn(addr, off)) return undefined;
    const list = this.peerSlots.get(getHost(addr, off))?.get(getInstance(addr, off) * 256 + addr[off + 14]);
    if (list === undefined) return undefined;
    const net = getNetwork(addr, off);
    for (let i = 0; i < list.length; i++) if (list[i].network === net) return list[i];
    return undefined;
  }
}

/** The topology as the `.internal` DNS server reads it (src/dns/view.ts). */
export function dnsView(topology: () => Topology): DnsView {
  return {
    askerOf(source: Uint8Array): DnsAsker | undefined {
      const t = topology();
      const m = t.machineAt(source, 0);
      if (m) return { org: m.org, region: m.region };
      const p = t.peerAt(source, 0);
      if (p) return { org: p.org, region: t.host(p.gateway)?.region };
      return undefined;
    },
    apps(org: string): Iterable<string> {
      return topology().appsOfOrg(org).map((a) => a.name);
    },
    machines(org: string, app: string): Iterable<DnsMachine> {
      const t = topology();
      return t.app(app)?.org === org ? t.machinesOfApp(app) : NONE;
    },
    peers(org: string): Iterable<DnsPeer> {
      return topology().peersOfOrg(org);
    },
    services(org: string): Iterable<DnsService> {
      return topology().servicesForOrg(org);
    },
  };
}

/**
 * A short digest of what the routers act on (machines with their addresses and states, hosts,
 * peers): two hosts that report the same digest forward alike. `sixpn status` shows it.
 */
export function topologyDigest(t: Topology): string {
  // Sorted lines: the same topology gives the same digest in any order (a file and an etcd store
  // list entries differently).
  const lines: string[] = [];
  for (const m of t.machines) lines.push(`m ${m.id} ${m.addressText} ${m.state} ${m.previous.map((p) => p.text).join(',')}\n`);
  for (const x of t.hosts) lines.push(`h ${x.id} ${x.publicKeyBase64} ${x.endpoint.address} ${x.endpoint.port}\n`);
  for (const p of t.peers) lines.push(`p ${p.org} ${p.name} ${p.publicKeyBase64} ${p.addressText}\n`);
  for (const s of t.services) {
    lines.push(`s ${s.app} ${s.addressText} ${s.ports.map((p) => `${p.port}/${p.protocol}`).join(',')} ${s.autostart} ${s.autostopSeconds} ${s.minRunning}\n`);
  }
  for (const a of t.apps) for (const e of a.egress ?? NONE) lines.push(`e ${a.name} ${e.region} ${e.text}\n`);
  lines.sort();
  const h = createHash('sha256');
  for (const l of lines) h.update(l);
  return h.digest('hex').slice(0, 16);
}

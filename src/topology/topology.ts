import { createHash } from 'node:crypto';
// A validated topology with the indexes the router and the DNS server ask for. Built whole from a
// document (a file edit, a store load), or changed in place by an edit of machines only
// (patch.ts: the cost of the edit, not of the topology; the same object, its indexes updated in
// one task, so the packet path never sees half an edit).
//
// The address lookups (machineAt, movedFrom, peerAt, orgOfAddress) take (buf, off) and allocate
// nothing, so the packet path can call them: a /112 is found by host id then instance id
// (instance ids are unique on a host), and the network field is compared last.

import type { DnsAsker, DnsMachine, DnsPeer, DnsService, DnsView } from '../dns/view.ts';
import { getFree, getHost, getInstance, getNetwork, isSixpn } from '../ipv6/index.ts';
import { SERVICE_HOST } from './model.ts';
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

export class Topology implements TopologyData {
  readonly orgs: readonly Org[];
  readonly apps: readonly App[];
  readonly hosts: readonly Host[];
  readonly peers: readonly Peer[];
  /** Every app's service addresses. */
  readonly services: readonly Service[];
  /** Where it was loaded from (a file path, a store and revision), for messages. */
  source: string;
  private readonly machineList: Machine[];

  private readonly orgByName = new Map<string, Org>();
  private readonly orgByNet = new Map<number, Org>();
  private readonly appByName = new Map<string, App>();
  private readonly appsByOrg = new Map<string, App[]>();
  private readonly hostById = new Map<number, Host>();
  private readonly hostByName_ = new Map<string, Host>();
  private readonly hostByKey_ = new Map<string, Host>();
  private readonly machineById = new Map<string, Machine>();
  private readonly machinesByApp = new Map<string, Machine[]>();
  private readonly machinesByOrg = new Map<string, Machine[]>();
  private readonly machinesByHost = new Map<number, Machine[]>();
  private readonly current = new Map<number, Map<number, Machine>>(); // host → instance → machine
  private readonly moved = new Map<number, Map<number, MovedMachine[]>>(); // old host → old instance
  private readonly peersByOrg = new Map<string, Peer[]>();
  private readonly peersByGateway = new Map<number, Peer[]>();
  private readonly peerByName = new Map<string, Peer>(); // `${org}/${name}`
  private readonly peerSlots = new Map<number, Map<number, Peer[]>>(); // host → instance·256+block
  private readonly serviceSlots = new Map<number, Map<number, Service>>(); // network → N
  private readonly servicesByClient = new Map<string, Service[]>();

  constructor(data: TopologyData, source = '(memory)') {
    this.orgs = Object.freeze(data.orgs.slice());
    this.apps = Object.freeze(data.apps.slice());
    this.hosts = Object.freeze(data.hosts.slice());
    this.machineList = data.machines.slice();
    this.peers = Object.freeze(data.peers.slice());
    this.source = source;
    for (const o of this.orgs) {
      this.orgByName.set(o.name, o);
      this.orgByNet.set(o.network, o);
    }
    const services: Service[] = [];
    for (const a of this.apps) {
      this.appByName.set(a.name, a);
      push(this.appsByOrg, a.org, a);
      for (const sv of a.services ?? NONE) {
        services.push(sv);
        slot(this.serviceSlots, sv.network, getFree(sv.address, 0), sv);
        push(this.servicesByClient, sv.clientOrg, sv);
      }
    }
    this.services = Object.freeze(services);
    for (const h of this.hosts) {
      this.hostById.set(h.id, h);
      this.hostByName_.set(h.name, h);
      this.hostByKey_.set(h.publicKeyBase64, h);
    }
    for (const m of this.machineList) this.index(m);
    for (const p of this.peers) {
      push(this.peersByOrg, p.org, p);
      push(this.peersByGateway, p.gateway, p);
      this.peerByName.set(`${p.org}/${p.name}`, p);
      const key = getInstance(p.prefix, 0) * 256 + p.prefix[14];
      const list = this.peerSlots.get(p.gateway)?.get(key);
      if (list) list.push(p);
      else slot(this.peerSlots, p.gateway, key, [p]);
    }
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

  // ---- Machines ----

  get machines(): readonly Machine[] {
    return this.machineList;
  }

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

  private unindex(m: Machine): void {
    if (this.machineById.get(m.id) === m) this.machineById.delete(m.id);
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

  /**
   * Replaces machines in place (patch.ts, which has validated the result): each `before` leaves
   * every index, each `after` joins them; a machine replaced by one of the same id keeps its
   * place in `machines`. Costs the machines changed (and the length of `machines` to find them).
   */
  replaceMachines(before: readonly Machine[], after: readonly Machine[]): void {
    const place = new Map<string, number>();
    for (const m of before) {
      this.unindex(m);
      const i = this.machineList.indexOf(m);
      if (i >= 0) place.set(m.id, i);
    }
    const appended: Machine[] = [];
    for (const m of after) {
      const i = place.get(m.id);
      if (i === undefined) appended.push(m);
      else {
        this.machineList[i] = m;
        place.delete(m.id);
      }
      this.index(m);
    }
    // removed machines: their places go, highest first
    for (const i of [...place.values()].sort((a, b) => b - a)) this.machineList.splice(i, 1);
    this.machineList.push(...appended);
  }

  /** The machine whose current /112 is (host, instance), in any org (an instance is unique on its host). */
  machineOn(hostId: number, instance: number): Machine | undefined {
    return this.current.get(hostId >>> 0)?.get(instance >>> 0);
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

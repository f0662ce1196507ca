// The indexes an incremental validation (patch.ts) runs against: the Validator's own maps
// (validate.ts), each answering first for the entries of the edit (as the validation of them
// fills it) and then from the running topology, for every entity the edit does not touch. An
// entity the edit touches is never answered from the topology: its old version is going away.
// Every answer is one lookup in a Topology index, so validating an edit costs the edit.

import { IPV6_ADDR_LEN, parseAddress } from '../ipv6/index.ts';
import type { App, Host, Org, Peer } from './model.ts';
import type { Section } from './stores.ts';
import type { Topology } from './topology.ts';
import type { ValidatorIndexes } from './validate.ts';

/** A map whose misses are answered by `base`. */
class Over<K, V> extends Map<K, V> {
  private readonly base: (k: K) => V | undefined;
  constructor(base: (k: K) => V | undefined) {
    super();
    this.base = base;
  }
  override get(k: K): V | undefined {
    return super.has(k) ? super.get(k) : this.base(k);
  }
  override has(k: K): boolean {
    return super.has(k) || this.base(k) !== undefined;
  }
}

class OverSet<K> extends Set<K> {
  private readonly base: (k: K) => boolean;
  constructor(base: (k: K) => boolean) {
    super();
    this.base = base;
  }
  override has(k: K): boolean {
    return super.has(k) || this.base(k);
  }
}

const address = (text: string): Uint8Array | undefined => {
  const a = new Uint8Array(IPV6_ADDR_LEN);
  return parseAddress(text, a, 0) ? a : undefined;
};

/** The identities an edit touches, by section (org, host and app names, machine ids, "org/name" of peers). */
export type Touched = Readonly<Record<Section, ReadonlySet<string>>>;

export class PatchContext {
  readonly t: Topology;
  readonly touched: Touched;
  constructor(t: Topology, touched: Touched) {
    this.t = t;
    this.touched = touched;
  }

  // The running topology's entities the edit leaves alone.
  org(name: string): Org | undefined {
    return this.touched.orgs.has(name) ? undefined : this.t.org(name);
  }
  app(name: string): App | undefined {
    return this.touched.apps.has(name) ? undefined : this.t.app(name);
  }
  host(h: Host | undefined): Host | undefined {
    return h === undefined || this.touched.hosts.has(h.name) ? undefined : h;
  }
  peer(p: Peer | undefined): Peer | undefined {
    return p === undefined || this.touched.peers.has(`${p.org}/${p.name}`) ? undefined : p;
  }
  machineKept(id: string): boolean {
    return !this.touched.machines.has(id);
  }

  /** The Validator's indexes over this topology. */
  indexes(): ValidatorIndexes {
    const t = this.t;
    const owner = (o: Host | App | Peer) => ('endpoint' in o ? `host "${o.name}"` : 'gateway' in o ? `peer "${o.name}"` : `app "${o.name}"`);
    return {
      orgs: new Over((name) => this.org(name)),
      orgNetworks: new Over((n) => {
        const o = t.orgByNetwork(n);
        return o && this.org(o.name);
      }),
      apps: new Over((name) => this.app(name)),
      hostsByName: new Over((name) => this.host(t.hostByName(name))),
      hostsById: new Over((id) => this.host(t.host(id))),
      keys: new Over((key) => {
        const o = this.host(t.hostByKey(key)) ?? this.peer(t.peerByKey(key));
        return o && owner(o);
      }),
      slots: new Over((slot) => {
        const [network, host, instance] = slot.split(':').map(Number);
        const m = t.machineOn(host, instance);
        if (m !== undefined && m.network === network && this.machineKept(m.id)) return `machine "${m.id}"`;
        const was = t.movedOn(host, instance).find((x) => x.machine.network === network && this.machineKept(x.machine.id));
        return was && `a previous address of machine "${was.machine.id}"`;
      }),
      onHost: new Over((slot) => {
        const [host, instance] = slot.split(':').map(Number);
        const m = t.machineOn(host, instance);
        return m !== undefined && this.machineKept(m.id) ? `machine "${m.id}"` : undefined;
      }),
      serviceAddresses: new Over((text) => {
        const a = address(text);
        const s = a && t.serviceAt(a, 0);
        return s && this.app(s.app) && `a service address of app "${s.app}"`;
      }),
      egressAddresses: new Over((text) => {
        const o = t.egressOwner(text);
        const kept = o && ('endpoint' in o ? this.host(o) : this.app(o.name));
        return kept && owner(kept);
      }),
      endpoints: new Over((text) => this.host(t.hostByEndpoint(text))),
      hostEgress: new Over((text) => {
        const o = t.egressOwner(text);
        return o && 'endpoint' in o ? this.host(o) : undefined;
      }),
      peerNames: new OverSet((key) => {
        const i = key.indexOf('/');
        return this.peer(t.peer(key.slice(0, i), key.slice(i + 1))) !== undefined;
      }),
      peerPrefixes: new Over((text) => {
        const a = address(text.slice(0, text.indexOf('/')));
        return a && this.peer(t.peerAt(a, 0));
      }),
    };
  }
}

// The operator's edits of a topology document, with the ids the control plane allocates:
// org network ids, host ids, machine ids and instance ids, and external peers' /120s, in the
// address layout of seeds 003 and 004 (fdaa | network 32 | host 32 | instance 32 | 16 free).
//
// Each function edits the document in place and is meant to run inside TopologyStore.update:
// it reads the current document, picks the lowest free id, and the store commits the result only
// if nobody wrote in between (otherwise the edit runs again on the new document and picks again).
// That is what makes allocations unique when several operators or scripts run at once.
//
// A refusal is an EditError naming the object and the rule it breaks:
//   app "shop-web": has 2 machines (1781e6f1c23a89, 3d8e0c71a2b95f); destroy them first
// The store then validates the whole resulting document as a topology file is validated.

import { randomInt } from 'node:crypto';
import { formatAddress, getInstance, peerAddress } from '../ipv6/index.ts';
import { moveMachine } from './edit.ts';
import {
  SERVICE_HOST,
  LABEL_RE, MACHINE_ID_RE, METADATA_KEY_RE, PEER_NAME_RE, REGION_RE, U32_MAX, formatId32, parseEndpoint, parseId32,
} from './model.ts';
import type { Host, MachineState, Org } from './model.ts';
import { topologyFromDocument } from './stores.ts';
import type { Entry, TopologyDocument } from './stores.ts';
import { SECTIONS } from './stores.ts';
import type { Topology } from './topology.ts';

export class EditError extends Error {
  readonly code = 'EEDIT';
  /** The object: `org "acme"`, `machine "148e21ea235a89"`. */
  readonly object: string;
  readonly rule: string;
  constructor(object: string, rule: string) {
    super(`${object}: ${rule}`);
    this.name = 'EditError';
    this.object = object;
    this.rule = rule;
  }
}

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

function topologyOf(doc: TopologyDocument): Topology {
  return topologyFromDocument(doc, '(the topology before this edit)');
}

/** The lowest id ≥ 1 not in `used` (32-bit). */
function lowestFree(used: Set<number>, what: string): number {
  for (let i = 1; i <= U32_MAX; i++) if (!used.has(i)) return i;
  throw new Error(`no free ${what} left`);
}

function needLabel(object: string, field: string, v: string, re: RegExp, what: string): void {
  if (!re.test(v)) throw new EditError(object, `${field} ${JSON.stringify(v)} is not ${what}`);
}

// ---- orgs ----

export function createOrg(doc: TopologyDocument, name: string, opts: { network?: string | number } = {}): Entry {
  const obj = `org "${name}"`;
  needLabel(obj, 'name', name, LABEL_RE, 'a lower-case DNS label');
  const t = topologyOf(doc);
  if (t.org(name)) throw new EditError(obj, 'already exists (org names are unique)');
  let network: number;
  if (opts.network !== undefined) {
    const n = parseId32(opts.network);
    if (n === undefined || n === 0) throw new EditError(obj, `network ${JSON.stringify(opts.network)} is not a non-zero 32-bit id`);
    const other = t.orgByNetwork(n);
    if (other) throw new EditError(obj, `network ${formatId32(n)} is already the network of org "${other.name}"`);
    network = n;
  } else network = lowestFree(new Set(t.orgs.map((o) => o.network)), 'org network id');
  const e: Entry = { name, network: hex32(network) };
  doc.orgs.push(e);
  return e;
}

export function removeOrg(doc: TopologyDocument, name: string): void {
  const obj = `org "${name}"`;
  const t = topologyOf(doc);
  if (!t.org(name)) throw new EditError(obj, 'does not exist');
  const apps = t.appsOfOrg(name);
  if (apps.length) throw new EditError(obj, `has ${apps.length} app${apps.length === 1 ? '' : 's'} (${apps.map((a) => a.name).join(', ')}); remove them first`);
  const peers = t.peers.filter((p) => p.org === name);
  if (peers.length) throw new EditError(obj, `has ${peers.length} WireGuard peer${peers.length === 1 ? '' : 's'} (${peers.map((p) => p.name).join(', ')}); remove them first`);
  doc.orgs = doc.orgs.filter((e) => e.name !== name);
}

// ---- apps ----

export function createApp(doc: TopologyDocument, name: string, org: string): Entry {
  const obj = `app "${name}"`;
  needLabel(obj, 'name', name, LABEL_RE, 'a lower-case DNS label');
  const t = topologyOf(doc);
  const other = t.app(name);
  if (other) throw new EditError(obj, `already exists in org "${other.org}" (app names are unique across orgs)`);
  if (!t.org(org)) throw new EditError(obj, `org "${org}" does not exist`);
  const e: Entry = { name, org };
  doc.apps.push(e);
  return e;
}

export function removeApp(doc: TopologyDocument, name: string): void {
  const obj = `app "${name}"`;
  const t = topologyOf(doc);
  if (!t.app(name)) throw new EditError(obj, 'does not exist');
  const ms = t.machines.filter((m) => m.app === name);
  if (ms.length) throw new EditError(obj, `has ${ms.length} machine${ms.length === 1 ? '' : 's'} (${ms.map((m) => m.id).join(', ')}); destroy them first`);
  doc.apps = doc.apps.filter((e) => e.name !== name);
}

// ---- hosts ----

export interface HostSpec {
  readonly name: string;
  readonly region: string;
  /** ip:port or [ipv6]:port of its mesh WireGuard. */
  readonly endpoint: string;
  readonly publicKey: string;
  readonly egress?: string;
  /** A chosen host id; default the lowest free one. */
  readonly id?: string | number;
}

export function addHost(doc: TopologyDocument, spec: HostSpec): Entry {
  const obj = `host "${spec.name}"`;
  needLabel(obj, 'name', spec.name, LABEL_RE, 'a lower-case DNS label');
  needLabel(obj, 'region', spec.region, REGION_RE, 'a three-letter region code');
  const ep = parseEndpoint(spec.endpoint);
  if (typeof ep === 'string') throw new EditError(obj, `endpoint ${ep}`);
  const t = topologyOf(doc);
  if (t.hostByName(spec.name)) throw new EditError(obj, 'already exists (host names are unique)');
  let id: number;
  if (spec.id !== undefined) {
    const n = parseId32(spec.id);
    if (n === undefined || n === 0) throw new EditError(obj, `id ${JSON.stringify(spec.id)} is not a non-zero 32-bit id`);
    const other = t.host(n);
    if (other) throw new EditError(obj, `id ${formatId32(n)} is already the id of host "${other.name}"`);
    id = n;
  } else {
    // Ids of removed hosts that previous addresses still name are not given out again.
    const used = new Set(t.hosts.map((h) => h.id));
    used.add(SERVICE_HOST); // the service addresses' block
    for (const m of t.machines) for (const p of m.previous) used.add(p.host);
    id = lowestFree(used, 'host id');
  }
  const e: Entry = {
    name: spec.name, id: formatId32(id), region: spec.region, publicKey: spec.publicKey, endpoint: spec.endpoint,
    ...(spec.egress !== undefined ? { egress: spec.egress } : {}),
  };
  doc.hosts.push(e);
  return e;
}

export function removeHost(doc: TopologyDocument, name: string): void {
  const obj = `host "${name}"`;
  const t = topologyOf(doc);
  const h = t.hostByName(name);
  if (!h) throw new EditError(obj, 'does not exist');
  const ms = t.machinesOnHost(h.id);
  if (ms.length) throw new EditError(obj, `runs ${ms.length} machine${ms.length === 1 ? '' : 's'} (${ms.map((m) => m.id).join(', ')}); migrate or destroy them first`);
  const ps = t.peersOnGateway(h.id);
  if (ps.length) throw new EditError(obj, `is the gateway of ${ps.length} WireGuard peer${ps.length === 1 ? '' : 's'} (${ps.map((p) => `${p.org}/${p.name}`).join(', ')}); remove them first`);
  // Previous addresses that name it by name would dangle: name it by id instead.
  for (const m of doc.machines) {
    if (Array.isArray(m.previous)) {
      m.previous = m.previous.map((p: unknown) => (typeof p === 'object' && p !== null && (p as Entry).host === name ? { ...(p as Entry), host: formatId32(h.id) } : p));
    }
  }
  doc.hosts = doc.hosts.filter((e) => e.name !== name);
}

// ---- machines ----

/** Instance ids in use on a host: its machines', previous addresses' on it, and its peers' /120s. */
function usedInstances(t: Topology, host: number, except?: string): Set<number> {
  const used = new Set(t.machinesOnHost(host).filter((m) => m.id !== except).map((m) => m.instance));
  for (const m of t.machines) for (const p of m.previous) if (p.host === host) used.add(getInstance(p.address, 0));
  for (const p of t.peersOnGateway(host)) used.add(getInstance(p.prefix, 0));
  return used;
}

function pickHost(t: Topology, obj: string, region: string, name: string | undefined, load: (h: Host) => number): Host {
  if (name !== undefined) {
    const h = t.hostByName(name) ?? t.host(parseId32(name) ?? 0);
    if (!h) throw new EditError(obj, `host "${name}" does not exist`);
    if (h.region !== region) throw new EditError(obj, `host "${h.name}" is in region "${h.region}", not "${region}"`);
    return h;
  }
  const hosts = t.hosts.filter((h) => h.region === region);
  if (hosts.length === 0) {
    const known = [...new Set(t.hosts.map((h) => h.region))].sort().join(', ') || 'none';
    throw new EditError(obj, `no host in region "${region}" (regions with hosts: ${known})`);
  }
  // The least loaded host of the region; ties go to the lower id.
  return hosts.reduce((a, b) => (load(b) < load(a) || (load(b) === load(a) && b.id < a.id) ? b : a));
}

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function newMachineId(taken: (id: string) => boolean): string {
  for (;;) {
    let id = '';
    for (let i = 0; i < 14; i++) id += ID_CHARS[randomInt(ID_CHARS.length)];
    if (!taken(id)) return id;
  }
}

export interface MachineSpec {
  readonly app: string;
  readonly region: string;
  readonly host?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly processGroup?: string;
  readonly state?: MachineState;
  /** A chosen machine id (default random) and instance id (default the lowest free on its host). */
  readonly id?: string;
  readonly instance?: string | number;
}

export function createMachine(doc: TopologyDocument, spec: MachineSpec): Entry {
  const obj = spec.id !== undefined ? `machine "${spec.id}"` : `new machine of app "${spec.app}"`;
  needLabel(obj, 'region', spec.region, REGION_RE, 'a three-letter region code');
  if (spec.processGroup !== undefined) needLabel(obj, 'process group', spec.processGroup, LABEL_RE, 'a lower-case DNS label');
  for (const k of Object.keys(spec.metadata ?? {})) needLabel(obj, 'metadata key', k, METADATA_KEY_RE, '1-63 characters of A-Z, a-z, 0-9, _ and -');
  const t = topologyOf(doc);
  if (!t.app(spec.app)) throw new EditError(obj, `app "${spec.app}" does not exist`);
  if (spec.id !== undefined) {
    needLabel(obj, 'id', spec.id, MACHINE_ID_RE, 'a machine id (14 characters of a-z, 0-9)');
    if (t.machine(spec.id)) throw new EditError(obj, 'already exists (machine ids are unique)');
  }
  const host = pickHost(t, obj, spec.region, spec.host, (h) => t.machinesOnHost(h.id).length);
  const used = usedInstances(t, host.id);
  let instance: number;
  if (spec.instance !== undefined) {
    const n = parseId32(spec.instance);
    if (n === undefined) throw new EditError(obj, `instance ${JSON.stringify(spec.instance)} is not a 32-bit id`);
    if (used.has(n)) throw new EditError(obj, `instance ${formatId32(n)} is already used on host "${host.name}"`);
    instance = n;
  } else instance = lowestFree(used, `instance id on host "${host.name}"`);
  const id = spec.id ?? newMachineId((x) => t.machine(x) !== undefined);
  const e: Entry = {
    id, app: spec.app, region: spec.region, host: host.name, instance: hex32(instance),
    ...(spec.processGroup !== undefined ? { processGroup: spec.processGroup } : {}),
    ...(spec.metadata && Object.keys(spec.metadata).length ? { metadata: { ...spec.metadata } } : {}),
    state: spec.state ?? 'started',
  };
  doc.machines.push(e);
  return e;
}

function machineEntry(doc: TopologyDocument, id: string): Entry {
  const e = doc.machines.find((m) => m.id === id);
  if (!e) throw new EditError(`machine "${id}"`, 'does not exist');
  return e;
}

export function setMachineStateIn(doc: TopologyDocument, id: string, state: MachineState): Entry {
  const e = machineEntry(doc, id);
  e.state = state;
  return e;
}

export function destroyMachine(doc: TopologyDocument, id: string): Entry {
  const e = machineEntry(doc, id);
  doc.machines = doc.machines.filter((m) => m !== e);
  return e;
}

/** Moves a machine to another host (its region follows the host); the old address goes in `previous`. */
export function migrateMachine(doc: TopologyDocument, id: string, toHost: string): Entry {
  const obj = `machine "${id}"`;
  machineEntry(doc, id);
  const t = topologyOf(doc);
  const h = t.hostByName(toHost) ?? t.host(parseId32(toHost) ?? 0);
  if (!h) throw new EditError(obj, `host "${toHost}" does not exist`);
  if (t.machine(id)!.host === h.id) throw new EditError(obj, `is already on host "${h.name}"`);
  const next = moveMachine(doc, id, h.name) as TopologyDocument;
  for (const s of SECTIONS) doc[s] = next[s];
  const e = machineEntry(doc, id);
  e.region = h.region;
  return e;
}

// ---- external WireGuard peers ----

export interface PeerSpec {
  readonly org: string;
  readonly region: string;
  readonly name: string;
  readonly publicKey: string;
  /** A chosen gateway host in the region; default the one with the fewest peers. */
  readonly gateway?: string;
}

/** Adds a peer with a free /120 on a gateway of the region: fdaa | org | gateway | instance | block·256 + 2. */
export function createPeer(doc: TopologyDocument, spec: PeerSpec): { entry: Entry; org: Org; gateway: Host } {
  const obj = `peer "${spec.name}" of org "${spec.org}"`;
  needLabel(obj, 'name', spec.name, PEER_NAME_RE, 'a peer name (1-63 characters of A-Z, a-z, 0-9 and -)');
  needLabel(obj, 'region', spec.region, REGION_RE, 'a three-letter region code');
  const t = topologyOf(doc);
  const org = t.org(spec.org);
  if (!org) throw new EditError(obj, `org "${spec.org}" does not exist`);
  if (t.peer(spec.org, spec.name)) throw new EditError(obj, 'already exists (peer names are unique in an org)');
  const gw = pickHost(t, obj, spec.region, spec.gateway, (h) => t.peersOnGateway(h.id).length);
  // Instances of machines (now or before) on the gateway are not for peers; instances that
  // already hold peers are filled first, 256 /120s each.
  const machines = new Set(t.machinesOnHost(gw.id).map((m) => m.instance));
  for (const m of t.machines) for (const p of m.previous) if (p.host === gw.id) machines.add(getInstance(p.address, 0));
  const taken = new Set(t.peersOnGateway(gw.id).filter((p) => p.network === org.network).map((p) => `${getInstance(p.prefix, 0)}:${p.prefix[14]}`));
  const peerInstances = [...new Set(t.peersOnGateway(gw.id).map((p) => getInstance(p.prefix, 0)))].sort((a, b) => a - b);
  const address = new Uint8Array(16);
  const tryInstance = (inst: number): boolean => {
    for (let block = 0; block < 256; block++) {
      if (taken.has(`${inst}:${block}`)) continue;
      peerAddress(address, 0, org.network, gw.id, inst, block);
      return true;
    }
    return false;
  };
  let found = peerInstances.some(tryInstance);
  for (let inst = 1; !found && inst <= U32_MAX; inst++) if (!machines.has(inst) && !peerInstances.includes(inst)) found = tryInstance(inst);
  if (!found) throw new EditError(obj, `no free /120 on gateway host "${gw.name}"`);
  const entry: Entry = { name: spec.name, org: spec.org, gateway: gw.name, publicKey: spec.publicKey, address: `${formatAddress(address, 0)}/120` };
  doc.peers.push(entry);
  return { entry, org, gateway: gw };
}

export function removePeer(doc: TopologyDocument, org: string, name: string): Entry {
  const e = doc.peers.find((p) => p.org === org && p.name === name);
  if (!e) throw new EditError(`peer "${name}" of org "${org}"`, 'does not exist');
  doc.peers = doc.peers.filter((p) => p !== e);
  return e;
}

// ---- whole documents ----

/** Replaces everything with `next` (topology import); the store validates it whole. */
export function replaceDocument(doc: TopologyDocument, next: TopologyDocument): void {
  for (const k of Object.keys(doc)) delete doc[k];
  Object.assign(doc, structuredClone(next));
}

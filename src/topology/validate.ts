// Validation of a parsed topology document (the JSON of examples/topology.example.json) into
// the model. Every problem is collected, each naming the file, the entry and what is wrong:
//   topology.json: machines[4] "3d8e0c71a2b95f": app: unknown app "shop-api"
// An entry with a problem is left out of the result; references to it are not reported again,
// so one typo gives one message.

import { parseKeyBase64 } from '../noise/keys.ts';
import {
  IPV6_ADDR_LEN,
  SIXPN_PEER_PREFIX_LEN,
  formatAddress,
  getHost,
  getInstance,
  getNetwork,
  isInOrg,
  isLinkLocal,
  isLoopback,
  isMulticast,
  isSixpn,
  isUnspecified,
  maskPrefix,
  parseAddress,
  parseCidr,
} from '../ipv6/index.ts';
import {
  LABEL_RE,
  PEER_NAME_RE,
  REGION_RE,
  formatEndpoint,
  formatId32,
  parseEndpoint,
  parseId32,
} from './model.ts';
import { SERVICE_HOST } from './model.ts';
import type { App, Host, Machine, Org, Peer, TopologyData } from './model.ts';
import { requiredKeys, sectionKeys, topologySection } from './fields.ts';
import { previousSlots, validateMachine } from './validate-machines.ts';
import { validateAppEgress, validateServices } from './validate-services.ts';
import type { ServiceContext } from './validate-services.ts';

/** The format version this code reads (`"version": 1`). */
export const TOPOLOGY_VERSION = 1;

export interface Problem {
  readonly file: string;
  /** The entry: `machines[4] "3d8e0c71a2b95f"`, `hosts[0] "ams1"`, `version`, `(document)`. */
  readonly entry: string;
  readonly message: string;
}

/** A refused topology: every problem found, one per line in `message`. */
export class TopologyError extends Error {
  readonly code = 'ETOPOLOGY';
  readonly file: string;
  readonly problems: readonly Problem[];
  constructor(file: string, problems: readonly Problem[]) {
    const n = problems.length;
    const lines = problems.map((p) => `  ${p.file}: ${p.entry}: ${p.message}`);
    super(`topology ${file} refused, ${n} problem${n === 1 ? '' : 's'}:\n${lines.join('\n')}`);
    this.name = 'TopologyError';
    this.file = file;
    this.problems = problems;
  }
}

// The allowed and required keys of each section come from the field table (fields.ts), which
// docs/config.md is generated from: a field is accepted here only once it is documented there.
const TOP_KEYS = sectionKeys(topologySection('topology'));
const [ORG_KEYS, ORG_REQUIRED] = keysOf('orgs');
const [APP_KEYS, APP_REQUIRED] = keysOf('apps');
const [HOST_KEYS, HOST_REQUIRED] = keysOf('hosts');
const [PEER_KEYS, PEER_REQUIRED] = keysOf('peers');

export function keysOf(section: string): [string[], string[]] {
  const s = topologySection(section);
  return [sectionKeys(s), requiredKeys(s)];
}

export type Obj = Record<string, unknown>;

export function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A section of a document held as the JSON texts of its entries (a store's), parsed one at a time
 * as the validation reaches them: the parsed entries die young instead of all being held at once
 * beside the model being built from them. Each text must parse (the store checked it).
 */
export class EntryTexts implements Iterable<unknown> {
  private readonly texts: Iterable<string>;
  constructor(texts: Iterable<string>) {
    this.texts = texts;
  }
  *[Symbol.iterator](): Iterator<unknown> {
    for (const t of this.texts) yield JSON.parse(t);
  }
}

/** Validates a parsed document; `data` is set only when there are no problems. */
export function validateTopology(doc: unknown, file: string): { data?: TopologyData; problems: Problem[] } {
  const v = new Validator(file);
  const data = v.run(doc);
  return v.problems.length === 0 ? { data, problems: [] } : { problems: v.problems };
}

/**
 * The indexes a validation run checks references and uniqueness against. A whole run fills them
 * as it goes; an incremental one (patch-context.ts) gives maps that also answer from the running
 * topology, for every entity the edit leaves alone.
 */
export interface ValidatorIndexes {
  // name → entity, or null when declared by an entry that has a problem of its own
  readonly orgs: Map<string, Org | null>;
  readonly orgNetworks: Map<number, Org>; // of the orgs accepted
  readonly apps: Map<string, App | null>;
  readonly hostsByName: Map<string, Host | null>;
  readonly hostsById: Map<number, Host>;
  readonly keys: Map<string, string>; // public key → owner ("host "ams1"")
  // "network:host:instance" of every /112 in use → its owner, for collisions
  readonly slots: Map<string, string>;
  readonly onHost: Map<string, string>; // "host:instance" → owner
  readonly serviceAddresses: Map<string, string>;
  readonly egressAddresses: Map<string, string>; // hosts' and apps'
  // of the entities accepted so far, for the uniqueness rules (no scan of what came before)
  readonly endpoints: Map<string, Host>; // formatEndpoint → host
  readonly hostEgress: Map<string, Host>; // egress address text → host
  readonly peerNames: Set<string>; // "org/name"
  readonly peerPrefixes: Map<string, Peer>; // prefix text → peer
}

/** The state of one validation run (validate-machines.ts works on it too). */
export class Validator implements ValidatorIndexes {
  readonly file: string;
  readonly problems: Problem[] = [];
  readonly orgs: Map<string, Org | null>;
  readonly orgNetworks: Map<number, Org>;
  readonly apps: Map<string, App | null>;
  readonly hostsByName: Map<string, Host | null>;
  readonly hostsById: Map<number, Host>;
  readonly machineIds = new Set<string>();
  readonly keys: Map<string, string>;
  readonly slots: Map<string, string>;
  readonly onHost: Map<string, string>;
  readonly entries = new Map<Machine, string>(); // machine → its entry label
  readonly serviceAddresses: Map<string, string>;
  readonly egressAddresses: Map<string, string>;
  readonly endpoints: Map<string, Host>;
  readonly hostEgress: Map<string, Host>;
  readonly peerNames: Set<string>;
  readonly peerPrefixes: Map<string, Peer>;
  readonly badEntries = new Set<string>(); // entries with a problem
  private brokenOrgs = false; // an org entry was refused
  constructor(file: string, indexes: Partial<ValidatorIndexes> = {}) {
    this.file = file;
    this.orgs = indexes.orgs ?? new Map();
    this.orgNetworks = indexes.orgNetworks ?? new Map();
    this.apps = indexes.apps ?? new Map();
    this.hostsByName = indexes.hostsByName ?? new Map();
    this.hostsById = indexes.hostsById ?? new Map();
    this.keys = indexes.keys ?? new Map();
    this.slots = indexes.slots ?? new Map();
    this.onHost = indexes.onHost ?? new Map();
    this.serviceAddresses = indexes.serviceAddresses ?? new Map();
    this.egressAddresses = indexes.egressAddresses ?? new Map();
    this.endpoints = indexes.endpoints ?? new Map();
    this.hostEgress = indexes.hostEgress ?? new Map();
    this.peerNames = indexes.peerNames ?? new Set();
    this.peerPrefixes = indexes.peerPrefixes ?? new Map();
  }

  add(entry: string, message: string): void {
    this.problems.push({ file: this.file, entry, message });
    this.badEntries.add(entry);
  }

  run(doc: unknown): TopologyData {
    const out = { orgs: [] as Org[], apps: [] as App[], hosts: [] as Host[], machines: [] as Machine[], peers: [] as Peer[] };
    if (!isObj(doc)) {
      this.add('(document)', 'the top level must be a JSON object');
      return out;
    }
    for (const k of Object.keys(doc)) {
      if (!TOP_KEYS.includes(k)) this.add('(document)', `unknown key ${show(k)} (expected: ${TOP_KEYS.join(', ')})`);
    }
    if (doc.version !== TOPOLOGY_VERSION) {
      this.add('version', `must be ${TOPOLOGY_VERSION}, found ${show(doc.version)}`);
    }
    const section = (name: string): Iterable<unknown> => {
      const s = doc[name];
      if (s === undefined) return [];
      if (Array.isArray(s) || s instanceof EntryTexts) return s;
      this.add(name, 'must be an array');
      return [];
    };
    const each = (name: string, f: (e: unknown, i: number) => void) => {
      let i = 0;
      for (const e of section(name)) f(e, i++);
    };
    each('orgs', (e, i) => this.org(e, i, out.orgs));
    each('hosts', (e, i) => this.host(e, i, out.hosts));
    each('apps', (e, i) => this.app(e, i, out.apps));
    each('machines', (e, i) => validateMachine(this, e, i, out.machines));
    // Previous addresses are checked once every current /112 is known.
    for (const m of out.machines) previousSlots(this, m);
    each('peers', (e, i) => this.peer(e, i, out.peers));
    return out;
  }

  // The entry label and its object, or undefined (reported) when it is not an object. `i` is the
  // entry's index in its section, or -1 for an entry of an incremental edit (no index to give).
  fields(section: string, i: number, e: unknown, allowed: string[], required: string[], key = 'name'): [string, Obj?] {
    const id = isObj(e) && typeof e[key] === 'string' && e[key] !== '' ? ` ${show(e[key])}` : '';
    const entry = `${section}${i >= 0 ? `[${i}]` : ''}${id}`; // i < 0: an entry of an edit (patch.ts), named by itself
    if (!isObj(e)) {
      this.add(entry, 'must be a JSON object');
      return [entry];
    }
    for (const k of Object.keys(e)) {
      if (!allowed.includes(k)) this.add(entry, `unknown field ${show(k)} (expected: ${allowed.join(', ')})`);
    }
    for (const k of required) if (e[k] === undefined) this.add(entry, `missing ${show(k)}`);
    if (e.comment !== undefined && typeof e.comment !== 'string') this.add(entry, 'comment must be a string');
    return [entry, e];
  }

  label(entry: string, field: string, v: unknown, re: RegExp, what: string): string | undefined {
    if (v === undefined) return undefined;
    if (typeof v === 'string' && re.test(v)) return v;
    this.add(entry, `${field}: ${show(v)} is not ${what}`);
    return undefined;
  }

  id32(entry: string, field: string, v: unknown): number | undefined {
    if (v === undefined) return undefined;
    const n = parseId32(v);
    if (n === undefined) this.add(entry, `${field}: ${show(v)} is not a 32-bit id (an integer, "0x…" or "hhhh:hhhh")`);
    return n;
  }

  key(entry: string, field: string, v: unknown, owner: string): Uint8Array | undefined {
    if (v === undefined) return undefined;
    let k: Uint8Array;
    try {
      if (typeof v !== 'string') throw new Error(`${show(v)} is not a string`);
      k = parseKeyBase64(v);
    } catch (err) {
      this.add(entry, `${field}: ${(err as Error).message}`);
      return undefined;
    }
    const b64 = Buffer.from(k).toString('base64');
    const other = this.keys.get(b64);
    if (other !== undefined) {
      this.add(entry, `${field}: the same key as ${other}`);
      return undefined;
    }
    this.keys.set(b64, owner);
    return k;
  }

  // A host reference: a host name, or a host id in any parseId32 form.
  hostRef(v: unknown): Host | null | undefined {
    if (typeof v === 'string' && this.hostsByName.has(v)) return this.hostsByName.get(v);
    const id = parseId32(v);
    return id === undefined ? undefined : this.hostsById.get(id);
  }

  org(e: unknown, i: number, out: Org[]): void {
    const [entry, o] = this.fields('orgs', i, e, ORG_KEYS, ORG_REQUIRED);
    if (!o) return;
    const name = this.label(entry, 'name', o.name, LABEL_RE, 'a lower-case DNS label');
    let network = this.id32(entry, 'network', o.network);
    if (network === 0) {
      this.add(entry, 'network: 0 is reserved (fdaa::3, the machines\' DNS address, lives there)');
      network = undefined;
    }
    if (network !== undefined) {
      const other = this.orgNetworks.get(network);
      if (other) this.add(entry, `network: ${formatId32(network)} is already the network of org "${other.name}"`);
      if (other) network = undefined;
    }
    if (name !== undefined && this.orgs.has(name)) {
      this.add(entry, `duplicate org name "${name}"`);
      return;
    }
    const ok = name !== undefined && network !== undefined && this.entryOk(entry);
    const org: Org | null = ok ? Object.freeze({ name, network: network! }) : null;
    if (typeof o.name === 'string') this.orgs.set(o.name, org);
    if (typeof o.name === 'string' && !org) this.brokenOrgs = true;
    if (org) {
      this.orgNetworks.set(org.network, org);
      out.push(org);
    }
  }

  // Whether no problem names this entry yet (entries with problems are left out).
  entryOk(entry: string): boolean {
    return !this.badEntries.has(entry);
  }

  host(e: unknown, i: number, out: Host[]): void {
    const [entry, o] = this.fields('hosts', i, e, HOST_KEYS, HOST_REQUIRED);
    if (!o) return;
    const name = this.label(entry, 'name', o.name, LABEL_RE, 'a lower-case DNS label');
    if (name !== undefined && this.hostsByName.has(name)) {
      this.add(entry, `duplicate host name "${name}"`);
      return;
    }
    let id = this.id32(entry, 'id', o.id);
    if (id === 0) this.add(entry, 'id: 0 is reserved (the org-wide addresses such as <org>::3 have host 0)');
    if (id === SERVICE_HOST) this.add(entry, 'id: 0:1 is reserved (service addresses are <org>:0:1::N)');
    if (id !== undefined && this.hostsById.has(id)) {
      this.add(entry, `id: ${formatId32(id)} is already the id of host "${this.hostsById.get(id)!.name}"`);
      id = undefined;
    }
    const region = this.label(entry, 'region', o.region, REGION_RE, 'a three-letter region code');
    const publicKey = this.key(entry, 'publicKey', o.publicKey, `host ${show(o.name)}`);
    let endpoint: Host['endpoint'] | undefined;
    if (o.endpoint !== undefined) {
      const r = typeof o.endpoint === 'string' ? parseEndpoint(o.endpoint) : `${show(o.endpoint)} is not a string`;
      if (typeof r === 'string') this.add(entry, `endpoint: ${r}`);
      else {
        const other = this.endpoints.get(formatEndpoint(r));
        if (other) this.add(entry, `endpoint: ${formatEndpoint(r)} is also the endpoint of host "${other.name}"`);
        else endpoint = r;
      }
    }
    let egress: Uint8Array | undefined;
    if (o.egress !== undefined) {
      egress = new Uint8Array(IPV6_ADDR_LEN);
      const why = typeof o.egress !== 'string' || !parseAddress(o.egress, egress, 0)
        ? 'is not an IPv6 address'
        : isSixpn(egress, 0) ? 'is a 6PN address (fdaa::/16), egress must be routable outside'
        : isMulticast(egress, 0) || isUnspecified(egress, 0) || isLoopback(egress, 0) || isLinkLocal(egress, 0)
          ? 'is not a unicast address usable for egress'
          : this.hostEgress.has(formatAddress(egress, 0))
            ? 'is also the egress address of another host' : '';
      if (why) this.add(entry, `egress: ${show(o.egress)} ${why}`);
    }
    const ok = this.entryOk(entry) && name && id && region && publicKey && endpoint;
    const host = ok
      ? Object.freeze({
          id: id!, name: name!, region: region!, publicKey: publicKey!,
          publicKeyBase64: Buffer.from(publicKey!).toString('base64'), endpoint: endpoint!,
          ...(egress ? { egress } : {}),
        })
      : null;
    if (typeof o.name === 'string') this.hostsByName.set(o.name, host);
    if (host?.egress) this.egressAddresses.set(formatAddress(host.egress, 0), `host "${host.name}"`);
    if (host) {
      this.hostsById.set(host.id, host);
      this.endpoints.set(formatEndpoint(host.endpoint), host);
      if (host.egress) this.hostEgress.set(formatAddress(host.egress, 0), host);
      out.push(host);
    }
  }

  app(e: unknown, i: number, out: App[]): void {
    const [entry, o] = this.fields('apps', i, e, APP_KEYS, APP_REQUIRED);
    if (!o) return;
    const name = this.label(entry, 'name', o.name, LABEL_RE, 'a lower-case DNS label');
    if (name !== undefined && this.apps.has(name)) {
      this.add(entry, `duplicate app name "${name}" (app names are unique across orgs)`);
      return;
    }
    const org = this.ref(entry, 'org', o.org, this.orgs);
    const ctx: ServiceContext = {
      add: (msg) => this.add(entry, msg),
      orgByNetwork: (n) => this.orgNetworks.get(n),
      brokenOrgs: this.brokenOrgs,
      serviceAddresses: this.serviceAddresses,
      egressAddresses: this.egressAddresses,
    };
    const services = name && org ? validateServices(ctx, name, org.name, o.services) : undefined;
    const egress = name ? validateAppEgress(ctx, name, o.egress) : undefined;
    const app = this.entryOk(entry) && name && org && services && egress
      ? Object.freeze({ name, org: org.name, services, egress }) : null;
    if (typeof o.name === 'string') this.apps.set(o.name, app);
    if (app) out.push(app);
  }

  // A reference by name; reports unknown names, stays quiet about declared-but-broken ones.
  ref<T>(entry: string, field: string, v: unknown, known: Map<string, T | null>): T | undefined {
    if (v === undefined) return undefined;
    const t = typeof v === 'string' ? known.get(v) : undefined;
    if (t === undefined) this.add(entry, `${field}: unknown ${field === 'gateway' ? 'host' : field} ${show(v)}`);
    return t ?? undefined;
  }

  peer(e: unknown, i: number, out: Peer[]): void {
    const [entry, o] = this.fields('peers', i, e, PEER_KEYS, PEER_REQUIRED);
    if (!o) return;
    const name = this.label(entry, 'name', o.name, PEER_NAME_RE, 'a peer name (1-63 characters of A-Z, a-z, 0-9 and -)');
    const org = this.ref(entry, 'org', o.org, this.orgs);
    if (name && org && this.peerNames.has(`${org.name}/${name}`)) {
      this.add(entry, `duplicate peer name "${name}" in org "${org.name}"`);
      return;
    }
    const publicKey = this.key(entry, 'publicKey', o.publicKey, `peer ${show(o.name)}`);
    let gateway: Host | undefined;
    if (o.gateway !== undefined) {
      const h = this.hostRef(o.gateway);
      if (h === undefined) this.add(entry, `gateway: unknown host ${show(o.gateway)}`);
      gateway = h ?? undefined;
    }
    const address = new Uint8Array(IPV6_ADDR_LEN);
    let prefix: Uint8Array | undefined;
    if (o.address !== undefined) {
      const len = typeof o.address === 'string' ? parseCidr(o.address, address, 0) : -1;
      const text = formatAddress(address, 0);
      if (len < 0) this.add(entry, `address: ${show(o.address)} is not an IPv6 address/length`);
      else if (len !== SIXPN_PEER_PREFIX_LEN) this.add(entry, `address: ${show(o.address)} must be a /${SIXPN_PEER_PREFIX_LEN}`);
      else if (getInstance(address, 0) === 0) this.add(entry, `address: ${text}/120 has instance 0, reserved for the host's own addresses`);
      else if (org && !isInOrg(address, 0, org.network)) {
        this.add(entry, `address: ${text}/120 is outside org "${org.name}" (fdaa:${formatId32(org.network)}::/48)`);
      } else if (gateway && getHost(address, 0) !== gateway.id) {
        this.add(entry, `address: ${text}/120 is not on gateway host "${gateway.name}": its host field is ${formatId32(getHost(address, 0))}, the gateway's id ${formatId32(gateway.id)}`);
      } else if (org && gateway) {
        prefix = address.slice();
        maskPrefix(prefix, 0, SIXPN_PEER_PREFIX_LEN);
        const ptext = `${formatAddress(prefix, 0)}/120`;
        const same = this.peerPrefixes.get(ptext);
        const slot = `${org.network}:${gateway.id}:${getInstance(address, 0)}`;
        const machine = this.slots.get(slot);
        const onHost = this.onHost.get(`${gateway.id}:${getInstance(address, 0)}`);
        if (same) this.add(entry, `address: ${ptext} overlaps ${same.prefixText} of peer "${same.name}"`);
        else if (machine) this.add(entry, `address: ${ptext} lies in the /112 of ${machine}`);
        else if (onHost?.startsWith('machine')) {
          this.add(entry, `address: instance ${formatId32(getInstance(address, 0))} of ${ptext} is already used on host "${gateway.name}" by ${onHost}`);
        }
      }
    }
    if (!this.entryOk(entry) || !name || !org || !publicKey || !gateway || !prefix) return;
    const peer: Peer = Object.freeze({
      name, org: org.name, network: getNetwork(address, 0), publicKey,
      publicKeyBase64: Buffer.from(publicKey).toString('base64'),
      address, addressText: formatAddress(address, 0),
      prefix, prefixText: `${formatAddress(prefix, 0)}/${SIXPN_PEER_PREFIX_LEN}`, gateway: gateway.id,
    });
    this.peerNames.add(`${org.name}/${name}`);
    this.peerPrefixes.set(peer.prefixText, peer);
    out.push(peer);
  }
}

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
  getFree,
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
  SIXPN_MACHINE_SUFFIX,
} from '../ipv6/index.ts';
import {
  DEFAULT_PROCESS_GROUP,
  LABEL_RE,
  MACHINE_ID_RE,
  METADATA_KEY_RE,
  METADATA_VALUE_MAX_LEN,
  PEER_NAME_RE,
  REGION_RE,
  deriveMachineAddress,
  formatEndpoint,
  formatId32,
  parseEndpoint,
  parseId32,
} from './model.ts';
import { SERVICE_HOST } from './model.ts';
import type { App, Host, Machine, MachineState, Org, Peer, PreviousAddress, TopologyData } from './model.ts';
import { requiredKeys, sectionKeys, topologySection } from './fields.ts';
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
const [MACHINE_KEYS, MACHINE_REQUIRED] = keysOf('machines');
const PREVIOUS_KEYS = sectionKeys(topologySection('machines[].previous'));
const [PEER_KEYS, PEER_REQUIRED] = keysOf('peers');

function keysOf(section: string): [string[], string[]] {
  const s = topologySection(section);
  return [sectionKeys(s), requiredKeys(s)];
}

type Obj = Record<string, unknown>;

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a parsed document; `data` is set only when there are no problems. */
export function validateTopology(doc: unknown, file: string): { data?: TopologyData; problems: Problem[] } {
  const v = new Validator(file);
  const data = v.run(doc);
  return v.problems.length === 0 ? { data, problems: [] } : { problems: v.problems };
}

class Validator {
  readonly file: string;
  readonly problems: Problem[] = [];
  // name → entity, or null when declared by an entry that has a problem of its own
  readonly orgs = new Map<string, Org | null>();
  readonly apps = new Map<string, App | null>();
  readonly hostsByName = new Map<string, Host | null>();
  readonly hostsById = new Map<number, Host>();
  readonly machineIds = new Set<string>();
  readonly keys = new Map<string, string>(); // public key → owner ("host "ams1"")
  // "network:host:instance" of every /112 in use → its owner, for collisions
  readonly slots = new Map<string, string>();
  readonly onHost = new Map<string, string>(); // "host:instance" → owner
  readonly entries = new Map<Machine, string>(); // machine → its entry label
  readonly serviceAddresses = new Map<string, string>();
  readonly egressAddresses = new Map<string, string>(); // hosts' and apps'
  // of the entities accepted so far, for the uniqueness rules (no scan of what came before)
  readonly endpoints = new Map<string, Host>(); // formatEndpoint → host
  readonly hostEgress = new Map<string, Host>(); // egress address text → host
  readonly peerNames = new Set<string>(); // "org/name"
  readonly peerPrefixes = new Map<string, Peer>(); // prefix text → peer
  readonly badEntries = new Set<string>(); // entries with a problem
  constructor(file: string) {
    this.file = file;
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
    const section = (name: string): unknown[] => {
      const s = doc[name];
      if (s === undefined) return [];
      if (Array.isArray(s)) return s;
      this.add(name, 'must be an array');
      return [];
    };
    section('orgs').forEach((e, i) => this.org(e, i, out.orgs));
    section('hosts').forEach((e, i) => this.host(e, i, out.hosts));
    section('apps').forEach((e, i) => this.app(e, i, out.apps));
    section('machines').forEach((e, i) => this.machine(e, i, out.machines));
    // Previous addresses are checked once every current /112 is known.
    for (const m of out.machines) this.previousSlots(m);
    section('peers').forEach((e, i) => this.peer(e, i, out.peers));
    return out;
  }

  // The entry label and its object, or undefined (reported) when it is not an object.
  fields(section: string, i: number, e: unknown, allowed: string[], required: string[], key = 'name'): [string, Obj?] {
    const id = isObj(e) && typeof e[key] === 'string' && e[key] !== '' ? ` ${show(e[key])}` : '';
    const entry = `${section}[${i}]${id}`;
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
      const other = out.find((x) => x.network === network);
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
    if (org) out.push(org);
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
      orgByNetwork: (n) => [...this.orgs.values()].find((x) => x?.network === n) ?? undefined,
      brokenOrgs: [...this.orgs.values()].includes(null),
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

  machine(e: unknown, i: number, out: Machine[]): void {
    const [entry, o] = this.fields('machines', i, e, MACHINE_KEYS, MACHINE_REQUIRED, 'id');
    if (!o) return;
    const id = this.label(entry, 'id', o.id, MACHINE_ID_RE, 'a machine id (14 characters of a-z, 0-9)');
    if (id !== undefined && this.machineIds.has(id)) {
      this.add(entry, `duplicate machine id "${id}"`);
      return;
    }
    if (id !== undefined) this.machineIds.add(id);
    const app = this.ref(entry, 'app', o.app, this.apps);
    const org = app ? this.orgs.get(app.org)! : undefined;
    let region = this.label(entry, 'region', o.region, REGION_RE, 'a three-letter region code');
    const processGroup = o.processGroup === undefined ? DEFAULT_PROCESS_GROUP
      : this.label(entry, 'processGroup', o.processGroup, LABEL_RE, 'a lower-case DNS label');
    let state: MachineState | undefined = 'started';
    if (o.state !== undefined) {
      state = o.state === 'started' || o.state === 'stopped' ? o.state : undefined;
      if (!state) this.add(entry, `state: ${show(o.state)} is not "started" or "stopped"`);
    }
    const metadata = this.metadata(entry, o.metadata);
    let host: Host | undefined;
    if (o.host !== undefined) {
      const h = this.hostRef(o.host);
      if (h === undefined) this.add(entry, `host: unknown host ${show(o.host)}`);
      host = h ?? undefined;
    }
    // A machine runs where its host is: its region is the host's (written or left out).
    if (host && region !== undefined && region !== host.region) {
      this.add(entry, `region: "${region}" is not the region of its host "${host.name}" ("${host.region}")`);
    }
    const instance = this.id32(entry, 'instance', o.instance);
    if (instance === 0) this.add(entry, 'instance: 0 is reserved (the host\'s own addresses: its router and service sources)');
    if (host && instance !== undefined) {
      const slot = `${host.id}:${instance}`;
      const other = this.onHost.get(slot);
      if (other) this.add(entry, `instance: ${formatId32(instance)} is already used on host "${host.name}" by ${other}`);
      else this.onHost.set(slot, `machine "${id}"`);
    }
    const previous = org && host && instance !== undefined
      ? this.previous(entry, o.previous, org, host.id, instance) : undefined;
    if (o.region === undefined && host) region = host.region;
    if (!this.entryOk(entry) || !id || !app || !org || !region || !processGroup || !state || !metadata
      || !host || instance === undefined || !previous) return;
    const address = deriveMachineAddress(org.network, host.id, instance);
    this.slots.set(`${org.network}:${host.id}:${instance}`, `machine "${id}"`);
    out.push(Object.freeze({
      id, app: app.name, org: org.name, network: org.network, region, processGroup, metadata,
      host: host.id, instance, state, started: state === 'started',
      address, addressText: formatAddress(address, 0), previous,
    }));
    this.entries.set(out[out.length - 1], entry);
  }

  metadata(entry: string, v: unknown): Readonly<Record<string, string>> | undefined {
    if (v === undefined) return Object.freeze({});
    if (!isObj(v)) {
      this.add(entry, 'metadata must be an object of string values');
      return undefined;
    }
    const out: Record<string, string> = {};
    let ok = true;
    for (const [k, val] of Object.entries(v)) {
      if (!METADATA_KEY_RE.test(k)) {
        this.add(entry, `metadata: key ${show(k)} is not 1-63 characters of A-Z, a-z, 0-9, _ and -`);
        ok = false;
      } else if (typeof val !== 'string' || val.length > METADATA_VALUE_MAX_LEN) {
        this.add(entry, `metadata: value of ${show(k)} must be a string of at most ${METADATA_VALUE_MAX_LEN} characters`);
        ok = false;
      } else out[k] = val;
    }
    return ok ? Object.freeze(out) : undefined;
  }

  previous(entry: string, v: unknown, org: Org, host: number, instance: number): PreviousAddress[] | undefined {
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.add(entry, 'previous must be an array of addresses');
      return undefined;
    }
    const out: PreviousAddress[] = [];
    let ok = true;
    v.forEach((p, j) => {
      const where = `previous[${j}]`;
      const fail = (msg: string) => {
        this.add(entry, `${where}: ${msg}`);
        ok = false;
      };
      const o: Obj = isObj(p) ? p : { address: p };
      for (const k of Object.keys(o)) if (!PREVIOUS_KEYS.includes(k)) return fail(`unknown field ${show(k)}`);
      const a = new Uint8Array(IPV6_ADDR_LEN);
      if (typeof o.address !== 'string' || !parseAddress(o.address, a, 0)) return fail(`${show(o.address)} is not an IPv6 address`);
      const text = formatAddress(a, 0);
      if (!isInOrg(a, 0, org.network)) return fail(`${text} is outside org "${org.name}" (fdaa:${formatId32(org.network)}::/48)`);
      if (getFree(a, 0) !== SIXPN_MACHINE_SUFFIX || getHost(a, 0) === 0) return fail(`${text} is not a machine address (::2 of a /112 on a host)`);
      if (getHost(a, 0) === host && getInstance(a, 0) === instance) return fail(`${text} is the machine's current address`);
      const h = o.host === undefined ? undefined : this.hostRef(o.host);
      if (o.host !== undefined && h !== null) { // null: a host with problems of its own
        const hid = h ? h.id : parseId32(o.host);
        if (hid === undefined) return fail(`host: unknown host ${show(o.host)}`);
        if (hid !== getHost(a, 0)) return fail(`${text} was not on host ${show(o.host)} (${formatId32(hid)}); its host field is ${formatId32(getHost(a, 0))}`);
      }
      if (out.some((x) => x.text === text)) return fail(`${text} is listed twice`);
      out.push(Object.freeze({ address: a, text, host: getHost(a, 0) }));
    });
    return ok ? Object.freeze(out) as PreviousAddress[] : undefined;
  }

  // A previous /112 must not be any machine's current /112 nor another machine's previous one.
  previousSlots(m: Machine): void {
    const entry = this.entries.get(m)!;
    m.previous.forEach((p, j) => {
      const slot = `${m.network}:${p.host}:${getInstance(p.address, 0)}`;
      const other = this.slots.get(slot);
      if (other) this.add(entry, `previous[${j}]: ${p.text} is ${other.startsWith('machine') ? 'the current address of ' : ''}${other}`);
      else this.slots.set(slot, `a previous address of machine "${m.id}"`);
    });
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

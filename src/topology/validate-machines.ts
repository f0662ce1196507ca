// Validation of machine entries (for validate.ts, on its Validator): fields, references to the
// app, org and host, the region (the host's), the instance (unique on the host), metadata and
// previous addresses. The incremental path of an edit (patch.ts) runs the same functions on the
// edited entries, with a Validator whose indexes also answer from the running topology.

import {
  IPV6_ADDR_LEN,
  SIXPN_MACHINE_SUFFIX,
  formatAddress,
  getFree,
  getHost,
  getInstance,
  isInOrg,
  parseAddress,
} from '../ipv6/index.ts';
import {
  DEFAULT_PROCESS_GROUP,
  LABEL_RE,
  MACHINE_ID_RE,
  METADATA_KEY_RE,
  METADATA_VALUE_MAX_LEN,
  REGION_RE,
  SERVICE_HOST,
  deriveMachineAddress,
  formatId32,
  parseId32,
} from './model.ts';
import type { Host, Machine, MachineState, Org, PreviousAddress } from './model.ts';
import { sectionKeys, topologySection } from './fields.ts';
import { Validator, isObj, keysOf, show, type Obj } from './validate.ts';

const [MACHINE_KEYS, MACHINE_REQUIRED] = keysOf('machines');
// Shared by the machines that have none (50,000 machines, one object each otherwise).
const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});
const NO_PREVIOUS: PreviousAddress[] = Object.freeze([]) as unknown as PreviousAddress[];
const PREVIOUS_KEYS = sectionKeys(topologySection('machines[].previous'));

export function validateMachine(v: Validator, e: unknown, i: number, out: Machine[]): void {
  const [entry, o] = v.fields('machines', i, e, MACHINE_KEYS, MACHINE_REQUIRED, 'id');
  if (!o) return;
  const id = v.label(entry, 'id', o.id, MACHINE_ID_RE, 'a machine id (14 characters of a-z, 0-9)');
  if (id !== undefined && v.machineIds.has(id)) {
    v.add(entry, `duplicate machine id "${id}"`);
    return;
  }
  if (id !== undefined) v.machineIds.add(id);
  const app = v.ref(entry, 'app', o.app, v.apps);
  const org = app ? v.orgs.get(app.org)! : undefined;
  let region = v.label(entry, 'region', o.region, REGION_RE, 'a three-letter region code');
  const processGroup = o.processGroup === undefined ? DEFAULT_PROCESS_GROUP
    : v.label(entry, 'processGroup', o.processGroup, LABEL_RE, 'a lower-case DNS label');
  let state: MachineState | undefined = 'started';
  if (o.state !== undefined) {
    state = o.state === 'started' || o.state === 'stopped' ? o.state : undefined;
    if (!state) v.add(entry, `state: ${show(o.state)} is not "started" or "stopped"`);
  }
  const metadata = metadataOf(v, entry, o.metadata);
  let host: Host | undefined;
  if (o.host !== undefined) {
    const h = v.hostRef(o.host);
    if (h === undefined) v.add(entry, `host: unknown host ${show(o.host)}`);
    host = h ?? undefined;
  }
  // A machine runs where its host is: its region is the host's (written or left out).
  if (host && region !== undefined && region !== host.region) {
    v.add(entry, `region: "${region}" is not the region of its host "${host.name}" ("${host.region}")`);
  }
  const instance = v.id32(entry, 'instance', o.instance);
  if (instance === 0) v.add(entry, 'instance: 0 is reserved (the host\'s own addresses: its router and service sources)');
  if (host && instance !== undefined) {
    const slot = `${host.id}:${instance}`;
    const other = v.onHost.get(slot);
    if (other) v.add(entry, `instance: ${formatId32(instance)} is already used on host "${host.name}" by ${other}`);
    else v.onHost.set(slot, `machine "${id}"`);
  }
  const previous = org && host && instance !== undefined
    ? previousOf(v, entry, o.previous, org, host.id, instance) : undefined;
  if (o.region === undefined && host) region = host.region;
  if (!v.entryOk(entry) || !id || !app || !org || !region || !processGroup || !state || !metadata
    || !host || instance === undefined || !previous) return;
  const address = deriveMachineAddress(org.network, host.id, instance);
  v.slots.set(`${org.network}:${host.id}:${instance}`, `machine "${id}"`);
  // The region, state and process group as the host's and the constants' strings, not the
  // entry's copies (one each per machine otherwise).
  out.push(Object.freeze({
    id, app: app.name, org: org.name, network: org.network, region: region === host.region ? host.region : region,
    processGroup: processGroup === DEFAULT_PROCESS_GROUP ? DEFAULT_PROCESS_GROUP : processGroup, metadata,
    host: host.id, instance, state: state === 'started' ? 'started' : 'stopped', started: state === 'started',
    address, addressText: formatAddress(address, 0), previous,
  }));
  v.entries.set(out[out.length - 1], entry);
}

function metadataOf(v: Validator, entry: string, m: unknown): Readonly<Record<string, string>> | undefined {
  if (m === undefined) return NO_METADATA;
  if (!isObj(m)) {
    v.add(entry, 'metadata must be an object of string values');
    return undefined;
  }
  const out: Record<string, string> = {};
  let ok = true;
  for (const [k, val] of Object.entries(m)) {
    if (!METADATA_KEY_RE.test(k)) {
      v.add(entry, `metadata: key ${show(k)} is not 1-63 characters of A-Z, a-z, 0-9, _ and -`);
      ok = false;
    } else if (typeof val !== 'string' || val.length > METADATA_VALUE_MAX_LEN) {
      v.add(entry, `metadata: value of ${show(k)} must be a string of at most ${METADATA_VALUE_MAX_LEN} characters`);
      ok = false;
    } else out[k] = val;
  }
  return ok ? Object.freeze(out) : undefined;
}

function previousOf(v: Validator, entry: string, list: unknown, org: Org, host: number, instance: number): PreviousAddress[] | undefined {
  if (list === undefined) return NO_PREVIOUS;
  if (!Array.isArray(list)) {
    v.add(entry, 'previous must be an array of addresses');
    return undefined;
  }
  const out: PreviousAddress[] = [];
  let ok = true;
  list.forEach((p, j) => {
    const where = `previous[${j}]`;
    const fail = (msg: string) => {
      v.add(entry, `${where}: ${msg}`);
      ok = false;
    };
    const o: Obj = isObj(p) ? p : { address: p };
    for (const k of Object.keys(o)) if (!PREVIOUS_KEYS.includes(k)) return fail(`unknown field ${show(k)}`);
    const a = new Uint8Array(IPV6_ADDR_LEN);
    if (typeof o.address !== 'string' || !parseAddress(o.address, a, 0)) return fail(`${show(o.address)} is not an IPv6 address`);
    const text = formatAddress(a, 0);
    if (!isInOrg(a, 0, org.network)) return fail(`${text} is outside org "${org.name}" (fdaa:${formatId32(org.network)}::/48)`);
    if (getFree(a, 0) !== SIXPN_MACHINE_SUFFIX || getHost(a, 0) === 0 || getHost(a, 0) === SERVICE_HOST) return fail(`${text} is not a machine address (::2 of a /112 on a host)`);
    if (getHost(a, 0) === host && getInstance(a, 0) === instance) return fail(`${text} is the machine's current address`);
    const h = o.host === undefined ? undefined : v.hostRef(o.host);
    if (o.host !== undefined && h !== null) { // null: a host with problems of its own
      const hid = h ? h.id : parseId32(o.host);
      if (hid === undefined) return fail(`host: unknown host ${show(o.host)}`);
      if (hid !== getHost(a, 0)) return fail(`${text} was not on host ${show(o.host)} (${formatId32(hid)}); its host field is ${formatId32(getHost(a, 0))}`);
    }
    if (out.some((x) => x.text === text)) return fail(`${text} is listed twice`);
    // Named by host name: that host's removal makes it unknown (patch.ts checks it).
    const named = typeof o.host === 'string' && h != null && h.name === o.host;
    out.push(Object.freeze({ address: a, text, host: getHost(a, 0), ...(named ? { hostName: o.host as string } : {}) }));
  });
  return ok ? Object.freeze(out) as PreviousAddress[] : undefined;
}

// A previous /112 must not be any machine's current /112 nor another machine's previous one.
export function previousSlots(v: Validator, m: Machine): void {
  const entry = v.entries.get(m)!;
  m.previous.forEach((p, j) => {
    const slot = `${m.network}:${p.host}:${getInstance(p.address, 0)}`;
    const other = v.slots.get(slot);
    if (other) v.add(entry, `previous[${j}]: ${p.text} is ${other.startsWith('machine') ? 'the current address of ' : ''}${other}`);
    else v.slots.set(slot, `a previous address of machine "${m.id}"`);
  });
}

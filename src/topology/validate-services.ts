// Validation of an app's service addresses and static egress addresses (the `services` and
// `egress` fields of an app entry), for validate.ts. Each problem is reported through `add`,
// naming the field: `services[0]: address: fdaa:0:18:7d::3 is not in the service block …`.
//
// The layout of a service address (seed 004): fdaa | org network | 0:1 | 0 | N, N 1-ffff.
// Host id 0:1 is reserved for it (validate.ts refuses a host with that id), so no machine or peer
// address can fall there; the org's ::3 (host 0) is elsewhere too.

import {
  IPV6_ADDR_LEN,
  formatAddress,
  getFree,
  getHost,
  getInstance,
  getNetwork,
  isLinkLocal,
  isLoopback,
  isMulticast,
  isSixpn,
  isUnspecified,
  parseAddress,
} from '../ipv6/index.ts';
import { REGION_RE, SERVICE_HOST, SERVICE_INDEX_MAX, formatId32 } from './model.ts';
import type { AppEgress, Org, Service, ServicePort, ServiceProtocol } from './model.ts';
import { sectionKeys, topologySection } from './fields.ts';

const SERVICE_KEYS = sectionKeys(topologySection('apps[].services'));
export const AUTOSTOP_MAX_SECONDS = 86_400;
export const MIN_RUNNING_MAX = 1000;

export interface ServiceContext {
  /** Reports a problem of the app entry being validated. */
  add(message: string): void;
  orgByNetwork(network: number): Org | undefined;
  /** Whether an org entry was refused (its network unknown: an address outside the orgs may be its). */
  readonly brokenOrgs: boolean;
  /** Service address text → "app "x" services[0]", across all apps. */
  readonly serviceAddresses: Map<string, string>;
  /** Egress address text → its owner, across apps and hosts. */
  readonly egressAddresses: Map<string, string>;
}

type Obj = Record<string, unknown>;
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The services of app `app` of org `org`; undefined when any is refused (reported). */
export function validateServices(ctx: ServiceContext, app: string, org: string, v: unknown): Service[] | undefined {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    ctx.add('services must be an array');
    return undefined;
  }
  const out: Service[] = [];
  let ok = true;
  v.forEach((e, i) => {
    const where = `services[${i}]`;
    const fail = (msg: string): void => {
      ctx.add(`${where}: ${msg}`);
      ok = false;
    };
    if (!isObj(e)) return fail('must be a JSON object');
    for (const k of Object.keys(e)) if (!SERVICE_KEYS.includes(k)) return fail(`unknown field ${show(k)} (expected: ${SERVICE_KEYS.join(', ')})`);
    if (e.address === undefined) return fail('missing "address"');
    if (e.ports === undefined) return fail('missing "ports"');
    const a = new Uint8Array(IPV6_ADDR_LEN);
    if (typeof e.address !== 'string' || !parseAddress(e.address, a, 0)) return fail(`address: ${show(e.address)} is not an IPv6 address`);
    const text = formatAddress(a, 0);
    const clientOrg = isSixpn(a, 0) ? ctx.orgByNetwork(getNetwork(a, 0)) : undefined;
    if (clientOrg === undefined) {
      if (ctx.brokenOrgs) return void (ok = false); // it may be that org's: reported there
      return fail(`address: ${text} is not in the /48 of any org`);
    }
    if (getHost(a, 0) !== SERVICE_HOST || getInstance(a, 0) !== 0 || getFree(a, 0) === 0) {
      return fail(`address: ${text} is not a service address (fdaa:${formatId32(clientOrg.network)}:0:1::N, N 1-${SERVICE_INDEX_MAX.toString(16)})`);
    }
    const other = ctx.serviceAddresses.get(text);
    if (other !== undefined) return fail(`address: ${text} is also ${other}`);
    const ports = validatePorts(e.ports, fail);
    if (!ports) return;
    if (e.autostart !== undefined && typeof e.autostart !== 'boolean') return fail(`autostart: ${show(e.autostart)} is not true or false`);
    const autostop = e.autostop ?? 0;
    if (!Number.isInteger(autostop) || (autostop as number) < 0 || (autostop as number) > AUTOSTOP_MAX_SECONDS) {
      return fail(`autostop: ${show(e.autostop)} is not 0-${AUTOSTOP_MAX_SECONDS} seconds`);
    }
    const minRunning = e.minRunning ?? 0;
    if (!Number.isInteger(minRunning) || (minRunning as number) < 0 || (minRunning as number) > MIN_RUNNING_MAX) {
      return fail(`minRunning: ${show(e.minRunning)} is not an integer 0-${MIN_RUNNING_MAX}`);
    }
    if (e.comment !== undefined && typeof e.comment !== 'string') return fail('comment must be a string');
    ctx.serviceAddresses.set(text, `a service address of app "${app}"`);
    out.push(Object.freeze({
      app, org, clientOrg: clientOrg.name, network: clientOrg.network, address: a, addressText: text,
      ports, autostart: e.autostart === true, autostopSeconds: autostop as number, minRunning: minRunning as number,
    }));
  });
  return ok ? Object.freeze(out) as Service[] : undefined;
}

function validatePorts(v: unknown, fail: (msg: string) => void): ServicePort[] | undefined {
  if (!Array.isArray(v) || v.length === 0) {
    fail(`ports: ${show(v)} is not a non-empty array of "PORT/tcp" or "PORT/udp"`);
    return undefined;
  }
  const out: ServicePort[] = [];
  for (const p of v) {
    const m = typeof p === 'string' ? /^([1-9][0-9]{0,4})\/(tcp|udp)$/.exec(p) : null;
    if (!m || Number(m[1]) > 65535) {
      fail(`ports: ${show(p)} is not "PORT/tcp" or "PORT/udp" (port 1-65535)`);
      return undefined;
    }
    const port = Number(m[1]);
    const protocol = m[2] as ServiceProtocol;
    if (out.some((x) => x.port === port && x.protocol === protocol)) {
      fail(`ports: ${p} is listed twice`);
      return undefined;
    }
    out.push(Object.freeze({ port, protocol }));
  }
  return Object.freeze(out) as ServicePort[];
}

/** Why an address cannot be an egress address ('' when it can); `out` receives its bytes. */
export function egressProblem(v: unknown, out: Uint8Array): string {
  if (typeof v !== 'string' || !parseAddress(v, out, 0)) return 'is not an IPv6 address';
  if (isSixpn(out, 0)) return 'is a 6PN address (fdaa::/16), egress must be routable outside';
  if (isMulticast(out, 0) || isUnspecified(out, 0) || isLoopback(out, 0) || isLinkLocal(out, 0)) {
    return 'is not a unicast address usable for egress';
  }
  return '';
}

/** An app's static egress addresses: `{ "ams": "2001:db8:e::100" }`. */
export function validateAppEgress(ctx: ServiceContext, app: string, v: unknown): AppEgress[] | undefined {
  if (v === undefined) return [];
  if (!isObj(v)) {
    ctx.add('egress must be an object of region → IPv6 address');
    return undefined;
  }
  const out: AppEgress[] = [];
  let ok = true;
  for (const [region, text] of Object.entries(v)) {
    const a = new Uint8Array(IPV6_ADDR_LEN);
    const why = !REGION_RE.test(region) ? 'is not under a three-letter region code' : egressProblem(text, a);
    const owner = why ? undefined : ctx.egressAddresses.get(formatAddress(a, 0));
    if (why || owner) {
      ctx.add(`egress: ${show(region)}: ${show(text)} ${why || `is also the egress address of ${owner}`}`);
      ok = false;
      continue;
    }
    const t = formatAddress(a, 0);
    ctx.egressAddresses.set(t, `app "${app}"`);
    out.push(Object.freeze({ region, address: a, text: t }));
  }
  return ok ? Object.freeze(out) as AppEgress[] : undefined;
}

/**
 * The `.internal` name table: which names exist for an asker's org and what they hold.
 * Pure lookup over a `DnsView`; the message around it is built by `resolver.ts`.
 *
 * | name                                        | data                                  |
 * |---------------------------------------------|---------------------------------------|
 * | `internal`                                  | SOA (zone apex)                       |
 * | `<app>`, `global.<app>`                     | AAAA all started machines of the app  |
 * | `<region>.<app>`                            | AAAA started machines in the region   |
 * | `top<N>.nearest.of.<app>`                   | AAAA N started machines nearest asker |
 * | `<machine_id>.vm.<app>`                     | AAAA that machine                     |
 * | `<group>.process.<app>`                     | AAAA machines of the process group    |
 * | `<value>.<key>.kv._metadata.<app>`          | AAAA machines with metadata key=value |
 * | `<peer>._peer`                              | AAAA that WireGuard peer              |
 * | `vms.<app>`                                 | TXT `<id> <region>`, comma-separated  |
 * | `regions.<app>`                             | TXT regions, comma-separated          |
 * | `_apps`, `_peer`, `_instances`              | TXT lists of the org                  |
 *
 * Existence follows RFC 8020 (NXDOMAIN means nothing exists below): the empty non-terminals on
 * the way to deeper names (`vm.<app>`, `process.<app>`, `_metadata.<app>`, `kv._metadata.<app>`,
 * `<key>.kv._metadata.<app>` when some machine has the key, `of.<app>`, `nearest.of.<app>`) exist
 * and answer NODATA. A fixed name whose list is empty (an app with no started machine,
 * `_peer` with no visible peer) exists too: NODATA, never NXDOMAIN (RFC 2308 §2.2).
 */
import type { DnsAsker, DnsMachine, DnsPeer, DnsView } from './view.ts';
import { asciiLower } from './wire.ts';
import { formatAddress } from '../ipv6/index.ts';
import { regionDistanceKm, type LatLon } from './regions.ts';

export const ZONE_APEX = 'internal';
/** The zone of service addresses: `<app>.sixpn` (apart from `.internal`: no app, region or machine name can collide). */
export const SERVICE_ZONE = 'sixpn';
export const HIDDEN_PEER_PREFIX = 'interactive-';

export const LOOKUP_NXDOMAIN = 0; // the name does not exist
export const LOOKUP_NODATA = 1; // the name exists and holds nothing
export const LOOKUP_AAAA = 2;
export const LOOKUP_TXT = 3;
export const LOOKUP_APEX = 4; // the zone apex: SOA

export interface Lookup {
  kind: number;
  addrs: Uint8Array[]; // LOOKUP_AAAA
  txt: string; // LOOKUP_TXT
}

export function newLookup(): Lookup {
  return { kind: LOOKUP_NXDOMAIN, addrs: [], txt: '' };
}

const TOP_N = /^top([1-9][0-9]{0,5})$/; // top1 … top999999; `top0` and `top01` do not exist

/**
 * Looks up `lower` (ASCII-lower-cased labels, the last one `internal`) for `asker`, into `r`.
 */
export function lookupInternal(
  view: DnsView,
  asker: DnsAsker,
  lower: readonly string[],
  regions: ReadonlyMap<string, LatLon>,
  r: Lookup,
): void {
  r.kind = LOOKUP_NXDOMAIN;
  r.addrs.length = 0;
  r.txt = '';
  const n = lower.length;
  if (n === 1) {
    r.kind = LOOKUP_APEX;
    return;
  }
  const org = asker.org;
  const second = lower[n - 2];
  if (n === 2) {
    if (second === '_apps') return txt(r, [...view.apps(org)].sort().join(','));
    if (second === '_peer') return txt(r, visiblePeers(view, org).map((p) => p.name).sort().join(','));
    if (second === '_instances') return txt(r, instances(view, org));
  }
  if (second === '_peer') {
    if (n !== 3) return;
    const peer = visiblePeers(view, org).find((p) => asciiLower(p.name) === lower[0]);
    if (peer !== undefined) aaaa(r, [peer.address]);
    return;
  }
  const app = findApp(view, org, second);
  if (app === undefined) return;
  const started: DnsMachine[] = [];
  for (const m of view.machines(org, app)) if (m.started) started.push(m);
  if (n === 2) return aaaa(r, started.map((m) => m.address));
  lookupApp(started, lower, n - 2, asker, regions, r);
}

/** Names below `<app>.internal`; `lower[0 … depth)` are the labels below the app. */
function lookupApp(
  started: DnsMachine[],
  lower: readonly string[],
  depth: number,
  asker: DnsAsker,
  regions: ReadonlyMap<string, LatLon>,
  r: Lookup,
): void {
  const last = lower[depth - 1]; // the label right below the app
  if (depth === 1) {
    switch (last) {
      case 'global':
        return aaaa(r, started.map((m) => m.address));
      case 'vms':
        return txt(r, started.map((m) => `${m.id} ${m.region}`).join(','));
      case 'regions':
        return txt(r, [...new Set(started.map((m) => m.region))].sort().join(','));
      case 'vm':
      case 'process':
      case '_metadata':
      case 'of':
        r.kind = LOOKUP_NODATA;
        return;
      default:
        return aaaaOrNx(r, started.filter((m) => asciiLower(m.region) === last));
    }
  }
  const l0 = lower[0];
  if (depth === 2) {
    if (last === 'vm') return aaaaOrNx(r, started.filter((m) => asciiLower(m.id) === l0));
    if (last === 'process') return aaaaOrNx(r, started.filter((m) => asciiLower(m.processGroup) === l0));
    if ((last === '_metadata' && l0 === 'kv') || (last === 'of' && l0 === 'nearest')) r.kind = LOOKUP_NODATA;
    return;
  }
  if (depth === 3) {
    if (last === '_metadata' && lower[1] === 'kv') {
      if (started.some((m) => metadataValue(m, l0) !== undefined)) r.kind = LOOKUP_NODATA;
      return;
    }
    const top = TOP_N.exec(l0);
    if (last === 'of' && lower[1] === 'nearest' && top !== null) {
      return aaaa(r, nearest(started, asker.region, Number(top[1]), regions));
    }
    return;
  }
  if (depth === 4 && last === '_metadata' && lower[2] === 'kv') {
    aaaaOrNx(r, started.filter((m) => metadataValue(m, lower[1]) === l0));
  }
}

/** The `n` machines nearest to `from` by great-circle distance of their regions; ties (same
 * region) keep the view's order. Machines in regions missing from the table come last. */
function nearest(
  started: DnsMachine[],
  from: string | undefined,
  n: number,
  regions: ReadonlyMap<string, LatLon>,
): Uint8Array[] {
  const origin = from === undefined ? undefined : asciiLower(from);
  const ranked = started.map((m, i) => ({
    m,
    i,
    d: origin === undefined ? Infinity : regionDistanceKm(origin, asciiLower(m.region), regions),
  }));
  ranked.sort((a, b) => (a.d === b.d ? a.i - b.i : a.d < b.d ? -1 : 1));
  return ranked.slice(0, n).map((x) => x.m.address);
}

/** `<key>` matched case-insensitively; the value returned lower-cased for comparison. */
function metadataValue(m: DnsMachine, key: string): string | undefined {
  for (const k in m.metadata) {
    if (asciiLower(k) === key) return asciiLower(m.metadata[k]);
  }
  return undefined;
}

function findApp(view: DnsView, org: string, label: string): string | undefined {
  for (const app of view.apps(org)) if (asciiLower(app) === label) return app;
  return undefined;
}

function visiblePeers(view: DnsView, org: string): DnsPeer[] {
  const out: DnsPeer[] = [];
  for (const p of view.peers(org)) if (!asciiLower(p.name).startsWith(HIDDEN_PEER_PREFIX)) out.push(p);
  return out;
}

function instances(view: DnsView, org: string): string {
  const entries: string[] = [];
  for (const app of [...view.apps(org)].sort()) {
    for (const m of view.machines(org, app)) {
      if (m.started) entries.push(`instance=${m.id},app=${app},ip=${formatAddress(m.address, 0)},region=${m.region}`);
    }
  }
  return entries.join(';');
}

/**
 * Looks up `lower` (the last label `sixpn`): the apex is the zone's SOA, `<app>.sixpn` the
 * addresses of the app's services the asker's org may use; nothing else exists.
 */
export function lookupService(view: DnsView, asker: DnsAsker, lower: readonly string[], r: Lookup): void {
  r.kind = LOOKUP_NXDOMAIN;
  r.addrs.length = 0;
  r.txt = '';
  if (lower.length === 1) {
    r.kind = LOOKUP_APEX;
    return;
  }
  if (lower.length !== 2 || view.services === undefined) return;
  const addrs: Uint8Array[] = [];
  for (const s of view.services(asker.org)) if (asciiLower(s.app) === lower[0]) addrs.push(s.address);
  if (addrs.length > 0) aaaa(r, addrs);
}

function txt(r: Lookup, text: string): void {
  r.kind = text === '' ? LOOKUP_NODATA : LOOKUP_TXT;
  r.txt = text;
}

function aaaa(r: Lookup, addrs: Uint8Array[]): void {
  r.kind = addrs.length === 0 ? LOOKUP_NODATA : LOOKUP_AAAA;
  for (const a of addrs) r.addrs.push(a);
}

function aaaaOrNx(r: Lookup, machines: DnsMachine[]): void {
  if (machines.length > 0) aaaa(r, machines.map((m) => m.address));
}

// An edit applied to a running topology at the cost of the edit (issue 12): a host watching a
// store of 50,000 machines does not validate and index them all again because one was started,
// a peer created or an app given a service address. The changed entries are validated as the
// whole-document validation would (validate.ts, validate-machines.ts), section by section in its
// order, against indexes that answer for the edit's own entries first and then from the topology
// for everything the edit leaves alone (patch-context.ts). What the entries' own validation
// cannot see is then checked here, through the topology's indexes:
//   - nothing left alone refers to an org, host or app the edit removes (apps and peers to their
//     org, service addresses to the org of their /48, machines to their app and host, peers to
//     their gateway, previous addresses that name their old host by name);
//   - a machine's current /112 is no previous one of a machine left alone, and neither its
//     current instance nor its previous /112s are taken by a peer left alone;
//   - a host's egress address is no app's left alone (the whole validation checks it on the app).
// Only then is the topology changed, in place and in one task (Topology.applyEdit), and the diff
// of the edit returned.
//
// Some edits change what entities the edit does not name derive from them, which is the work of
// the whole document, not of the edit; those are given back as `whole` (the caller builds the
// topology from the whole document):
//   - an org's network changes: the addresses of its machines, peers and service addresses;
//   - a host's id or region changes: the addresses or regions of its machines and peers;
//   - an app with machines moves to another org: their addresses and org;
//   - a host whose name reads as an id (`0x18`, `a7b:7d`) comes or goes: references by that text
//     change from the id to the name or back.

import { formatAddress, getInstance } from '../ipv6/index.ts';
import { diffEdit, type TopologyDiff } from './diff.ts';
import { formatId32, parseId32 } from './model.ts';
import type { App, Host, Machine, Org, Peer } from './model.ts';
import { PatchContext, type Touched } from './patch-context.ts';
import type { Section } from './stores.ts';
import type { EntityEdit, Topology } from './topology.ts';
import { Validator, isObj, type Problem } from './validate.ts';
import { previousSlots, validateMachine } from './validate-machines.ts';

/**
 * An entry as the store now holds it: `id` its identity in its section (an org, host or app
 * name, a machine id, a peer's "org/name"), `entry` undefined when it was removed.
 */
export interface EntryChange {
  readonly section: Section;
  readonly id: string;
  readonly entry: unknown;
}

export type PatchResult = { diff: TopologyDiff } | { problems: Problem[] } | { whole: string };

const formatEgress = (a: Uint8Array) => formatAddress(a, 0);

type Out = { orgs: Org[]; hosts: Host[]; apps: App[]; machines: Machine[]; peers: Peer[] };

const identity: { [S in Section]: (x: Out[S][number]) => string } = {
  orgs: (o) => o.name,
  hosts: (h) => h.name,
  apps: (a) => a.name,
  machines: (m) => m.id,
  peers: (p) => `${p.org}/${p.name}`,
};

/** The edit needs the whole document (see the top of the file): why, or undefined. */
function needsWhole(t: Topology, edits: Record<Section, Map<string, unknown>>): string | undefined {
  for (const [name, e] of edits.orgs) {
    const o = t.org(name);
    const n = isObj(e) ? parseId32(e.network) : undefined;
    if (o !== undefined && n !== undefined && n !== o.network) return `org "${name}" changes its network`;
  }
  for (const [name, e] of edits.hosts) {
    const h = t.hostByName(name);
    if (parseId32(name) !== undefined) return `host "${name}" has a name that reads as a host id`;
    if (h === undefined || !isObj(e)) continue;
    const id = parseId32(e.id);
    if (id !== undefined && id !== h.id) return `host "${name}" changes its id`;
    if (typeof e.region === 'string' && e.region !== h.region) return `host "${name}" changes its region`;
  }
  for (const [name, e] of edits.apps) {
    const a = t.app(name);
    if (a !== undefined && isObj(e) && typeof e.org === 'string' && e.org !== a.org && t.machinesOfApp(name).length > 0) {
      return `app "${name}" with machines moves to org "${e.org}"`;
    }
  }
  return undefined;
}

/**
 * Applies the changes to `t` in place and returns their diff; or the problems (and `t` is left
 * as it was); or `whole` when the edit is one to build from the whole document. `file` names the
 * source in problems (a store location and revision).
 */
export function patchTopology(t: Topology, changes: readonly EntryChange[], file: string): PatchResult {
  const edits = { orgs: new Map(), hosts: new Map(), apps: new Map(), machines: new Map(), peers: new Map() } as Record<Section, Map<string, unknown>>;
  for (const c of changes) edits[c.section].set(c.id, c.entry);
  const why = needsWhole(t, edits);
  if (why !== undefined) return { whole: why };
  const touched = Object.fromEntries(Object.entries(edits).map(([s, m]) => [s, new Set(m.keys())])) as unknown as Touched;
  const ctx = new PatchContext(t, touched);
  const v = new Validator(file, ctx.indexes());
  const out: Out = { orgs: [], hosts: [], apps: [], machines: [], peers: [] };
  const present = (s: Section) => [...edits[s].values()].filter((e) => e !== undefined);
  for (const e of present('orgs')) v.org(e, -1, out.orgs);
  for (const e of present('hosts')) v.host(e, -1, out.hosts);
  for (const e of present('apps')) v.app(e, -1, out.apps);
  for (const e of present('machines')) validateMachine(v, e, -1, out.machines);
  for (const m of out.machines) previousSlots(v, m);
  for (const e of present('peers')) v.peer(e, -1, out.peers);
  if (v.problems.length > 0) return { problems: v.problems };

  const problems: Problem[] = [];
  const add = (entry: string, message: string) => problems.push({ file, entry, message });
  for (const s of Object.keys(out) as Section[]) {
    for (const x of out[s]) {
      const id = identity[s](x as never);
      if (!touched[s].has(id)) add(`${s} "${id}"`, `the entry of ${s.slice(0, -1)} "${[...touched[s]][0]}" holds ${s.slice(0, -1)} "${id}"`);
    }
  }
  const before: { [S in Section]: Out[S] } = {
    orgs: [...touched.orgs].map((n) => t.org(n)).filter((x) => x !== undefined),
    hosts: [...touched.hosts].map((n) => t.hostByName(n)).filter((x) => x !== undefined),
    apps: [...touched.apps].map((n) => t.app(n)).filter((x) => x !== undefined),
    machines: [...touched.machines].map((id) => t.machine(id)).filter((x) => x !== undefined),
    peers: [...touched.peers].map((k) => t.peer(k.slice(0, k.indexOf('/')), k.slice(k.indexOf('/') + 1))).filter((x) => x !== undefined),
  };
  const gone = <T>(s: Section, list: T[]) => {
    const kept = new Set(out[s].map((y) => identity[s](y as never)));
    return list.filter((x) => !kept.has(identity[s](x as never)));
  };
  checkRemovals(ctx, gone('orgs', before.orgs), gone('hosts', before.hosts), gone('apps', before.apps), add);
  checkMachines(ctx, out.machines, add);
  for (const h of out.hosts) {
    const o = h.egress && t.egressOwner(formatEgress(h.egress));
    if (o !== undefined && !('endpoint' in o) && ctx.app(o.name)) add(`hosts "${h.name}"`, `egress: ${formatEgress(h.egress!)} is also the egress address of app "${o.name}"`);
  }
  if (problems.length > 0) return { problems };

  const edit: { -readonly [S in keyof EntityEdit]: EntityEdit[S] } = {};
  for (const s of Object.keys(out) as Section[]) if (touched[s].size > 0) edit[s] = { before: before[s], after: out[s] } as never;
  t.applyEdit(edit);
  t.source = file;
  return { diff: diffEdit(edit) };
}

/** Entities left alone that refer to a removed org, host or app. */
function checkRemovals(ctx: PatchContext, orgs: Org[], hosts: Host[], apps: App[], add: (entry: string, message: string) => void): void {
  const t = ctx.t;
  for (const o of orgs) {
    for (const a of t.appsOfOrg(o.name)) if (ctx.app(a.name)) add(`apps "${a.name}"`, `org: unknown org "${o.name}"`);
    for (const p of t.peersOfOrg(o.name)) if (ctx.peer(p)) add(`peers "${p.org}/${p.name}"`, `org: unknown org "${o.name}"`);
    for (const s of t.servicesForOrg(o.name)) if (ctx.app(s.app)) add(`apps "${s.app}"`, `services: address: ${s.addressText} is not in the /48 of any org`);
  }
  for (const h of hosts) {
    for (const m of t.machinesOnHost(h.id)) if (ctx.machineKept(m.id)) add(`machines "${m.id}"`, `host: unknown host "${h.name}"`);
    for (const p of t.peersOnGateway(h.id)) if (ctx.peer(p)) add(`peers "${p.org}/${p.name}"`, `gateway: unknown host "${h.name}"`);
    for (const x of t.movedOffHost(h.id)) {
      if (x.previous.hostName === h.name && ctx.machineKept(x.machine.id)) add(`machines "${x.machine.id}"`, `previous: host: unknown host "${h.name}"`);
    }
  }
  for (const a of apps) {
    for (const m of t.machinesOfApp(a.name)) if (ctx.machineKept(m.id)) add(`machines "${m.id}"`, `app: unknown app "${a.name}"`);
  }
}

/** The edited machines against the previous addresses and peers of the entities left alone. */
function checkMachines(ctx: PatchContext, machines: Machine[], add: (entry: string, message: string) => void): void {
  const t = ctx.t;
  const peerOn = (host: number, instance: number, network?: number) =>
    t.peersOnGateway(host).find((p) => getInstance(p.prefix, 0) === instance && (network === undefined || p.network === network) && ctx.peer(p));
  for (const m of machines) {
    const entry = `machines "${m.id}"`;
    const peer = peerOn(m.host, m.instance);
    if (peer !== undefined) add(entry, `instance: ${formatId32(m.instance)} is already used on host ${formatId32(m.host)} by peer "${peer.name}" (${peer.prefixText})`);
    const was = t.movedOn(m.host, m.instance).find((x) => x.machine.network === m.network && ctx.machineKept(x.machine.id));
    if (was !== undefined) add(entry, `${m.addressText} is a previous address of machine "${was.machine.id}"`);
    m.previous.forEach((p, j) => {
      const other = peerOn(p.host, getInstance(p.address, 0), m.network);
      if (other !== undefined) add(entry, `previous[${j}]: ${p.text} holds the /120 of peer "${other.name}" (${other.prefixText})`);
    });
  }
}

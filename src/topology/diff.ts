// What changed between two topologies, in the terms the router acts on: machines added,
// removed, started, stopped, moved (their address changed: another host, instance or org) or
// otherwise updated; hosts, peers, orgs and apps added, removed or updated.
//
// Identity: machines by id, hosts by id, peers by (org, name), orgs and apps by name. A machine
// that moved and was also stopped appears in both `moved` and `stopped`.

import { addressEquals } from '../ipv6/index.ts';
import { formatEndpoint, formatId32 } from './model.ts';
import type { App, Host, Machine, Org, Peer } from './model.ts';
import type { EntityEdit, Swap, Topology } from './topology.ts';

export interface Change<T> {
  readonly before: T;
  readonly after: T;
}

export interface EntityDiff<T> {
  readonly added: readonly T[];
  readonly removed: readonly T[];
  /**
   * Present in both with some field changed. For machines: a field other than the address and
   * the state (which have their own lists), or `previous` of a machine that did not move.
   */
  readonly updated: readonly Change<T>[];
}

export interface MachineDiff extends EntityDiff<Machine> {
  readonly started: readonly Machine[]; // stopped before, started now (after-values)
  readonly stopped: readonly Machine[];
  readonly moved: readonly Change<Machine>[]; // the address changed
}

export interface TopologyDiff {
  readonly machines: MachineDiff;
  readonly hosts: EntityDiff<Host>;
  readonly peers: EntityDiff<Peer>;
  readonly orgs: EntityDiff<Org>;
  readonly apps: EntityDiff<App>;
  /** True when nothing changed. */
  readonly empty: boolean;
}

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function recordEqual(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function entities<T>(
  before: readonly T[],
  after: readonly T[],
  key: (t: T) => string | number,
  same: (a: T, b: T) => boolean,
): { added: T[]; removed: T[]; both: Change<T>[]; updated: Change<T>[] } {
  const old = new Map(before.map((t) => [key(t), t] as const));
  const now = new Map(after.map((t) => [key(t), t] as const));
  const out = { added: [] as T[], removed: [] as T[], both: [] as Change<T>[], updated: [] as Change<T>[] };
  for (const t of before) if (!now.has(key(t))) out.removed.push(t);
  for (const t of after) {
    const b = old.get(key(t));
    if (b === undefined) out.added.push(t);
    else {
      out.both.push({ before: b, after: t });
      if (!same(b, t)) out.updated.push({ before: b, after: t });
    }
  }
  return out;
}

const sameOrg = (a: Org, b: Org) => a.network === b.network;
const appText = (a: App) => JSON.stringify([
  a.services.map((s) => [s.addressText, s.ports, s.autostart, s.autostopSeconds, s.minRunning]), a.egress.map((e) => [e.region, e.text]),
]);
const sameApp = (a: App, b: App) => a.org === b.org && appText(a) === appText(b);
const sameHost = (a: Host, b: Host) =>
  a.name === b.name && a.region === b.region && a.publicKeyBase64 === b.publicKeyBase64 &&
  formatEndpoint(a.endpoint) === formatEndpoint(b.endpoint) && bytesEqual(a.egress, b.egress);
const samePeer = (a: Peer, b: Peer) =>
  a.publicKeyBase64 === b.publicKeyBase64 && a.addressText === b.addressText && a.gateway === b.gateway;
// Machine fields other than the address, the state and the previous addresses; a move to
// another host brings its region with it (a machine's region is its host's).
const sameMachine = (a: Machine, b: Machine) =>
  a.app === b.app && (a.region === b.region || a.host !== b.host) && a.processGroup === b.processGroup &&
  recordEqual(a.metadata, b.metadata);
const samePrevious = (a: Machine, b: Machine) =>
  a.previous.length === b.previous.length && a.previous.every((p, i) => p.text === b.previous[i].text);

function machineDiff(before: readonly Machine[], after: readonly Machine[]): MachineDiff {
  const m = entities(before, after, (x) => x.id, () => true);
  const started: Machine[] = [];
  const stopped: Machine[] = [];
  const moved: Change<Machine>[] = [];
  for (const c of m.both) {
    const move = !addressEquals(c.before.address, 0, c.after.address, 0);
    if (move) moved.push(c);
    if (c.before.started !== c.after.started) (c.after.started ? started : stopped).push(c.after);
    // A move appends the old address to `previous`: that is not an update of its own.
    if (!sameMachine(c.before, c.after) || (!move && !samePrevious(c.before, c.after))) m.updated.push(c);
  }
  return { added: m.added, removed: m.removed, updated: m.updated, started, stopped, moved };
}

const NO_CHANGE: EntityDiff<never> = Object.freeze({ added: [], removed: [], updated: [] });
const NO_MACHINES: MachineDiff = Object.freeze({ ...NO_CHANGE, started: [], stopped: [], moved: [] });

function machinesEmpty(m: MachineDiff): boolean {
  return [m.added, m.removed, m.updated, m.started, m.stopped, m.moved].every((p) => p.length === 0);
}

const strip = <T>(e: { added: T[]; removed: T[]; updated: Change<T>[] }): EntityDiff<T> => ({
  added: e.added, removed: e.removed, updated: e.updated,
});

/** Whether a section's diff holds any change. */
export function changed(e: EntityDiff<unknown>): boolean {
  return e.added.length + e.removed.length + e.updated.length > 0;
}

function assemble(machines: MachineDiff, hosts: EntityDiff<Host>, peers: EntityDiff<Peer>, orgs: EntityDiff<Org>, apps: EntityDiff<App>): TopologyDiff {
  return { machines, hosts, peers, orgs, apps, empty: machinesEmpty(machines) && ![hosts, peers, orgs, apps].some(changed) };
}

// Each section's diff between two versions of its entities: by identity, compared field by field.
const hostsDiff = (b: readonly Host[], a: readonly Host[]) => strip(entities(b, a, (x) => x.id, sameHost));
const peersDiff = (b: readonly Peer[], a: readonly Peer[]) => strip(entities(b, a, (x) => `${x.org}/${x.name}`, samePeer));
const orgsDiff = (b: readonly Org[], a: readonly Org[]) => strip(entities(b, a, (x) => x.name, sameOrg));
const appsDiff = (b: readonly App[], a: readonly App[]) => strip(entities(b, a, (x) => x.name, sameApp));

/**
 * The diff of an edit (patch.ts): per section, `before` the old versions of the entities it
 * touched (those that existed), `after` their new versions (those that exist now). Costs the edit.
 */
export function diffEdit(e: EntityEdit): TopologyDiff {
  const part = <T>(s: Swap<T> | undefined, diff: (b: readonly T[], a: readonly T[]) => EntityDiff<T>): EntityDiff<T> =>
    s === undefined ? NO_CHANGE : diff(s.before, s.after);
  return assemble(
    e.machines ? machineDiff(e.machines.before, e.machines.after) : NO_MACHINES,
    part(e.hosts, hostsDiff),
    part(e.peers, peersDiff),
    part(e.orgs, orgsDiff),
    part(e.apps, appsDiff),
  );
}

export function diffTopology(before: Topology, after: Topology): TopologyDiff {
  return assemble(
    machineDiff(before.machines, after.machines),
    hostsDiff(before.hosts, after.hosts),
    peersDiff(before.peers, after.peers),
    orgsDiff(before.orgs, after.orgs),
    appsDiff(before.apps, after.apps),
  );
}

/** One line per change, for logs: `machine 1781e6f1c23a89 moved fdaa:…:2 → fdaa:…:2`. */
export function describeDiff(d: TopologyDiff): string[] {
  const out: string[] = [];
  const m = d.machines;
  for (const x of m.added) out.push(`machine ${x.id} added (${x.app}, ${x.addressText}, ${x.state})`);
  for (const x of m.removed) out.push(`machine ${x.id} removed (${x.app}, ${x.addressText})`);
  for (const c of m.moved) {
    out.push(`machine ${c.after.id} moved ${c.before.addressText} → ${c.after.addressText} ` +
      `(host ${formatId32(c.before.host)} → ${formatId32(c.after.host)})`);
  }
  for (const x of m.started) out.push(`machine ${x.id} started`);
  for (const x of m.stopped) out.push(`machine ${x.id} stopped`);
  for (const c of m.updated) out.push(`machine ${c.after.id} updated`);
  const named = (kind: string, e: EntityDiff<{ name: string }>) => {
    for (const x of e.added) out.push(`${kind} ${x.name} added`);
    for (const x of e.removed) out.push(`${kind} ${x.name} removed`);
    for (const c of e.updated) out.push(`${kind} ${c.after.name} updated`);
  };
  named('host', d.hosts);
  named('peer', d.peers);
  named('org', d.orgs);
  named('app', d.apps);
  return out;
}

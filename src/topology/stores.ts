// Where the topology lives: the document, its parsing into a Topology, and the interface of a
// store, with two backends in the edge (src/store, which does their I/O):
//
//   file   the JSON file of examples/topology.example.json (the embedded default for one box),
//          watched by polling (src/store/file.ts); writes take a lock file next to it, then
//          replace it atomically, so two operators on the same box serialize.
//   etcd   etcd v3 (src/store/etcd.ts): one key per entry under a prefix, every host watching
//          from the revision it loaded; writes are transactions guarded by the revision they read.
//
// Both give the same three things: `read` (the document as stored, even if it is invalid, for
// `sixpn topology validate`), `update` (an edit of the document that is validated whole before
// it is committed, retried on a concurrent write) and `watch` (for `sixpn up`: the topology in
// force and each applied change).
//
// A store is named by `--store` or `store` in the host config: `etcd://h1:2379,h2:2379` (TLS
// with `etcds://`, or with a CA given), optionally with a key prefix as its path
// (`etcd://h1:2379/team-a/sixpn`; default /sixpn/v1); anything else is a topology file path.

import { resolve } from 'node:path';
import type { TopologyDiff } from './diff.ts';
import { Topology } from './topology.ts';
import { TOPOLOGY_VERSION, TopologyError, validateTopology } from './validate.ts';

export const DEFAULT_TOPOLOGY_FILE = '/etc/sixpn/topology.json';
export const TOPOLOGY_POLL_INTERVAL_MS = 1000;

/** Validates parsed JSON; throws TopologyError with every problem. */
export function topologyFromDocument(doc: unknown, file: string): Topology {
  const { data, problems } = validateTopology(doc, file);
  if (!data) throw new TopologyError(file, problems);
  return new Topology(data, file);
}

/** Parses and validates the text of a topology file; throws TopologyError. */
export function parseTopology(text: string, file: string): Topology {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const why = text.trim() === '' ? 'the file is empty' : `not valid JSON: ${(err as Error).message}`;
    throw new TopologyError(file, [{ file, entry: '(document)', message: why }]);
  }
  return topologyFromDocument(doc, file);
}

/** Where a running host gets its topology from. */
export interface TopologySource {
  /** The topology in force. */
  readonly current: Topology;
  close(): void;
  /** How the store is doing (etcd: connected, revision; see stores.ts), for `sixpn status`. */
  status?(): unknown;
}

/**
 * How `sixpn up` gets its source: by default watchTopology on the host config's file; with
 * `--store etcd://…` a source that src/cli/up.ts loaded from etcd before the host started.
 */
export type TopologySourceFactory = (
  file: string,
  onChange: (next: Topology, diff: TopologyDiff, previous: Topology) => void,
  onError: (err: Error) => void,
  options: WatchOptions,
) => TopologySource;


export interface WatchOptions {
  /** Poll interval; a change applies after two polls see the same stat. Default 1 s. */
  readonly intervalMs?: number;
  /** The topology in force now; by default the file is loaded (and must be valid) first. */
  readonly initial?: Topology;
}

export interface TopologyWatcher extends TopologySource {
  /** Checks the file now, as a poll does: resolves to true if a new topology was applied. */
  check(): Promise<boolean>;
}


/** One entry of a section (an org, app, host, machine or peer) as the document holds it. */
export type Entry = Record<string, unknown>;

export const SECTIONS = ['orgs', 'hosts', 'apps', 'machines', 'peers'] as const;
export type Section = (typeof SECTIONS)[number];

/** The topology document: the JSON of a topology file. */
export interface TopologyDocument {
  version: number;
  comment?: string;
  orgs: Entry[];
  hosts: Entry[];
  apps: Entry[];
  machines: Entry[];
  peers: Entry[];
  [other: string]: unknown;
}

/** An empty topology document. */
export function emptyDocument(): TopologyDocument {
  return { version: TOPOLOGY_VERSION, orgs: [], hosts: [], apps: [], machines: [], peers: [] };
}

/** Any parsed JSON as a document with every section present (the sections are not checked). */
export function asDocument(doc: unknown): TopologyDocument {
  const d = (typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? doc : {}) as TopologyDocument;
  for (const s of SECTIONS) if (d[s] === undefined) d[s] = [];
  return d;
}

/** How the store is doing, for `sixpn status` and logs. */
export interface StoreStatus {
  readonly kind: 'file' | 'etcd';
  readonly location: string;
  /** False while the store cannot be reached (the last applied topology stays in force). */
  readonly connected: boolean;
  /** The store revision of the topology in force (etcd revision; 0 for a file). */
  readonly revision: number;
  /** Since when `connected` has its value (ISO time). */
  readonly since: string;
  /** The last problem: an unreachable store, a refused edit. */
  readonly lastError?: string;
  /** Full reloads after the watch fell behind a compaction. */
  readonly reloads: number;
}

/** A running host's view of the store: the topology in force, and how the store is doing. */
export interface WatchedSource extends TopologySource {
  status(): StoreStatus;
}

/**
 * A change of the topology in force: `next`, what changed (`diff`, with the before-values), and
 * the topology before. An edit of machines only changes the topology in place (patch.ts): then
 * `previous` is `next`, and the diff is the only record of what it was.
 */
export type ChangeHandler = (next: Topology, diff: TopologyDiff, previous: Topology) => void;

export interface StoreWatchOptions extends WatchOptions {
  /** Called when the store becomes unreachable or reachable again (also logged by the host). */
  readonly onStatus?: (s: StoreStatus) => void;
}

export interface UpdateResult<T> {
  readonly result: T;
  /** The topology as committed. */
  readonly topology: Topology;
  readonly revision: number;
  /** False when the edit changed nothing (and nothing was written). */
  readonly changed: boolean;
  /** How many times a concurrent write made the edit start over. */
  readonly conflicts: number;
}

export interface TopologyStore {
  readonly kind: 'file' | 'etcd';
  /** The file path or the etcd endpoints and prefix, for messages. */
  readonly location: string;
  /** The document as stored (not validated) and its revision. */
  read(): Promise<{ doc: TopologyDocument; revision: number }>;
  /**
   * Applies `edit` to a copy of the current document (it changes it in place and may throw to
   * refuse), validates the whole result (TopologyError naming the entry and the rule) and commits
   * it only if no other write came in between; otherwise reads again and repeats the edit.
   * `what` names the edit in messages ("machine create shop-web").
   */
  update<T>(what: string, edit: (doc: TopologyDocument) => T): Promise<UpdateResult<T>>;
  /** Loads the whole topology (it must be valid), then applies each change as it comes. */
  watch(onChange: ChangeHandler, onError: (err: Error) => void, options?: StoreWatchOptions): Promise<WatchedSource>;
  close(): Promise<void>;
}

// ---- store names ----

export interface StoreTls {
  /** PEM file paths: the CA that signed etcd's certificate, and this client's certificate and key. */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export type StoreSpec =
  | { readonly kind: 'file'; readonly file: string }
  | { readonly kind: 'etcd'; readonly endpoints: readonly string[]; readonly prefix: string; readonly tls: boolean } & StoreTls;

export const DEFAULT_ETCD_PREFIX = '/sixpn/v1';

/** `etcd://h1:2379,h2:2379[/prefix]`, `etcds://…`, or a file path (relative to `cwd`). Throws on a bad URL. */
export function parseStoreSpec(text: string, tls: StoreTls = {}, cwd = process.cwd()): StoreSpec {
  const m = /^(etcds?):\/\/([^/]*)(\/.*)?$/.exec(text);
  if (!m) {
    if (/^[a-z0-9+.-]+:\/\//i.test(text)) throw new Error(`store "${text}": unknown scheme (etcd:// or etcds://, or a file path)`);
    return { kind: 'file', file: resolve(cwd, text) };
  }
  const endpoints = m[2].split(',').map((s) => s.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new Error(`store "${text}": no endpoint (etcd://host:port[,host:port…])`);
  for (const e of endpoints) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$/.test(e)) {
      throw new Error(`store "${text}": endpoint "${e}" is not host:port or [ipv6]:port`);
    }
  }
  const prefix = (m[3] ?? DEFAULT_ETCD_PREFIX).replace(/\/+$/, '') || DEFAULT_ETCD_PREFIX;
  return {
    kind: 'etcd',
    endpoints: endpoints.map((e) => (/:[0-9]{1,5}$/.test(e) ? e : `${e}:2379`)),
    prefix,
    tls: m[1] === 'etcds' || tls.ca !== undefined,
    ...(tls.ca !== undefined ? { ca: resolve(cwd, tls.ca) } : {}),
    ...(tls.cert !== undefined ? { cert: resolve(cwd, tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: resolve(cwd, tls.key) } : {}),
  };
}

export function describeStore(spec: StoreSpec): string {
  return spec.kind === 'file' ? spec.file : `${spec.tls ? 'etcds' : 'etcd'}://${spec.endpoints.join(',')}${spec.prefix}`;
}


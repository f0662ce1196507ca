// The etcd v3 topology store: the document of a topology file, one key per entry.
//
//   <prefix>/meta                 {"version":1,"serial":N,"updated":…,"by":…}: the write guard
//   <prefix>/orgs/<name>          {"name":"acme","network":"0x18"}
//   <prefix>/apps/<name>          {"name":"shop-web","org":"acme"}
//   <prefix>/hosts/<name>         {"name":"ams1","id":"a7b:7d",…}
//   <prefix>/machines/<id>        {"id":"148e21ea235a89","app":"shop-web",…}
//   <prefix>/peers/<org>/<name>   {"name":"ops-laptop","org":"acme",…}
//
// Values are the entries of the file format (examples/topology.example.json), so export and
// import are lossless and the validation is the file's, entry for entry.
//
// Writes. An edit reads every key under the prefix at one revision, edits the document, validates
// the whole result and commits a transaction that compares the mod revision of <prefix>/meta
// with the one it read and, if it still holds, puts the changed entries, deletes the removed ones
// and puts meta again. Every write goes through meta, so two concurrent edits cannot both
// commit: the second one's compare fails, it reads again and repeats its edit on the new state
// (allocations are chosen again too). No edit is lost and no invalid combination of two valid
// edits is committed. Entries written behind the CLI's back (etcdctl) are not guarded, but a
// host refuses a state that does not validate, as it refuses a bad file.
//
// Watching. A host loads every key at revision R — in pages of READ_PAGE_KEYS read at R, each
// parsed and dropped before the next, so the load never holds the whole response beside what it
// parsed — and watches the prefix from R+1. Each watch response (all the events of one or more
// revisions) updates the entries it names and then the topology, at the cost of the edit
// (patch.ts): the changed entries are validated as the whole document would validate them and
// applied in place, whatever their section. The few edits that change what other entries derive
// from (an org's network, a host's id or region; see patch.ts) and entries under a key that is
// not their own build the topology again from the entries held. No key is read again. A refused
// edit leaves the topology in force; its entries are tried again with the next edits, so the
// edit that repairs it applies. When etcd cannot be reached the host keeps the topology it
// applied, reports "disconnected" in its status, and the watch reconnects with back-off and
// resumes from the revision after the last one it applied. If that revision has been compacted
// meanwhile, etcd cancels the watch: the host reads everything again at a new revision (the diff
// against the running topology is applied like any edit) and watches from there; a whole read
// whose revision is compacted while it pages starts over.
//
// Why the `etcd3` npm client: it speaks the v3 gRPC API through @grpc/grpc-js with endpoint
// failover, TLS client certificates and watch streams that are re-established with back-off and
// resume from the last revision they delivered; doing that ourselves on @grpc/grpc-js would be
// the same protobuf definitions and reconnection code again. We use only its KV, Txn, Watch and
// Maintenance calls and keep revisions, compaction and validation decisions here.

import { readFileSync } from 'node:fs';
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, Range, isRecoverableError } from 'etcd3';
import type { IKeyValue, IOptions, Namespace, Watcher } from 'etcd3';
import { SECTIONS, TOPOLOGY_VERSION, TopologyError, describeStore, diffTopology, patchTopology, topologyFromDocument } from '../topology/index.ts';
import { Entries, META_KEY, entryKey, sectionOf } from './etcd-entries.ts';
import type { TopologyDiff } from '../topology/index.ts';
export { META_KEY, entryKey } from './etcd-entries.ts';
import type {
  ChangeHandler, Entry, Section, StoreStatus, StoreWatchOptions, TopologyDocument, TopologyStore, UpdateResult, WatchedSource,
} from '../topology/index.ts';
import type { Topology } from '../topology/index.ts';

/** Attempts of one edit before a write gives up on concurrent writers. */
export const MAX_WRITE_ATTEMPTS = 50;
/** etcd's default --max-txn-ops: etcd refuses a larger transaction, and the store says so (refusedWrite). */
export const ETCD_MAX_TXN_OPS = 128;
const CALL_TIMEOUT_MS = 5000;
/**
 * Keys per range request of a whole read: 50,000 machines come in pages of ~0.8 MB instead of one
 * 8.5 MB response held (with its decoded key-values) beside everything parsed from it.
 */
export const READ_PAGE_KEYS = 5000;
/** Whole reads started again because their revision was compacted while they were paging. */
const READ_ATTEMPTS = 5;
const RELOAD_BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type EtcdSpec = { readonly endpoints: readonly string[]; readonly prefix: string; readonly tls: boolean; readonly ca?: string; readonly cert?: string; readonly key?: string };

export class EtcdStore implements TopologyStore {
  readonly kind = 'etcd';
  readonly location: string;
  readonly client: Etcd3;
  readonly ns: Namespace;
  readonly prefix: string;
  /** Keys per range request of a whole read (READ_PAGE_KEYS; tests make it small). */
  readPageKeys = READ_PAGE_KEYS;

  constructor(spec: EtcdSpec) {
    this.location = describeStore({ kind: 'etcd', ...spec });
    this.prefix = `${spec.prefix}/`;
    const options: IOptions = {
      hosts: spec.endpoints.map((e) => `${spec.tls ? 'https' : 'http'}://${e}`),
      dialTimeout: CALL_TIMEOUT_MS,
      // A whole topology comes in one range response: 50,000 machines are about 8.5 MB, over
      // grpc-js's default 4 MiB receive limit (RESOURCE_EXHAUSTED, reported as "etcd unreachable").
      grpcOptions: { 'grpc.max_receive_message_length': -1 },
      // Unary calls fail instead of waiting forever for an etcd that is down; watch streams stay.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
      faultHandling: {
        // An endpoint that failed 3 calls in a row is skipped for a second, then tried again
        // (etcd3's default is 5 s, long for a restarted single member); a call tries each endpoint.
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(2, spec.endpoints.length) }),
        // A broken watch stream is opened again after 100 ms, doubling up to 2 s.
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
      },
    };
    if (spec.tls) {
      const read = (what: string, f: string) => {
        try {
          return readFileSync(f);
        } catch (err) {
          throw new Error(`store ${this.location}: ${what} ${f}: cannot read: ${(err as NodeJS.ErrnoException).code ?? err}`);
        }
      };
      if ((spec.cert === undefined) !== (spec.key === undefined)) {
        throw new Error(`store ${this.location}: a client certificate needs both cert and key`);
      }
      options.credentials = {
        rootCertificate: spec.ca !== undefined ? read('CA', spec.ca) : Buffer.alloc(0),
        ...(spec.cert !== undefined ? { certChain: read('cert', spec.cert), privateKey: read('key', spec.key!) } : {}),
      };
    }
    this.client = new Etcd3(options);
    this.ns = this.client.namespace(this.prefix);
  }

  /**
   * etcd's own limits on one transaction (--max-txn-ops, default ETCD_MAX_TXN_OPS; and
   * --max-request-bytes) said as what to do: the edit is refused whole, nothing of it committed.
   * The limits are etcd's configuration, so etcd decides; undefined for any other error.
   */
  private refusedWrite(err: unknown, what: string, ops: number): Error | undefined {
    const msg = (err as Error)?.message ?? '';
    if (/too many operations in txn/i.test(msg)) {
      return new Error(`store ${this.location}: ${what}: ${ops} keys change in one transaction, more than etcd's --max-txn-ops ` +
        `(default ${ETCD_MAX_TXN_OPS}) allows; nothing was written. Start etcd with a larger --max-txn-ops (ETCD_MAX_TXN_OPS), or make the edit in parts`);
    }
    if (/request is too large|larger than max/i.test(msg)) {
      return new Error(`store ${this.location}: ${what}: the transaction (${ops} keys) is larger than etcd's --max-request-bytes allows; ` +
        'nothing was written. Start etcd with a larger --max-request-bytes (ETCD_MAX_REQUEST_BYTES), or make the edit in parts');
    }
    return undefined;
  }

  private unreachable(err: unknown): Error {
    return new Error(`store ${this.location}: etcd unreachable: ${(err as Error).message}`);
  }

  /**
   * Every key under the prefix at one revision, in pages of READ_PAGE_KEYS: the first page fixes
   * the revision, the next ones are read at it, each from the key after the last one, so the whole
   * is one consistent state; each page is handed to `page` and dropped. `start` is called before
   * the first page and again when the revision was compacted meanwhile (the read starts over).
   */
  async readPages(start: () => void, page: (kvs: readonly IKeyValue[]) => void | Promise<void>): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      start();
      let revision = 0;
      try {
        let from: Buffer | undefined;
        for (;;) {
          let q = this.ns.getAll().limit(this.readPageKeys);
          if (from !== undefined) q = q.inRange(new Range(from, Buffer.from([0]))); // [0]: to the end of the prefix
          if (revision !== 0) q = q.revision(revision);
          const res = await q.exec();
          if (revision === 0) revision = Number(res.header.revision);
          await page(res.kvs);
          if (!res.more || res.kvs.length === 0) return revision;
          from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
        }
      } catch (err) {
        if (revision !== 0 && /compacted/i.test((err as Error).message) && attempt < READ_ATTEMPTS) continue;
        throw this.unreachable(err);
      }
    }
  }

  /** Every entry under the prefix at one revision (read in pages). */
  private async readEntries(): Promise<{ entries: Entries; revision: number; metaMod: number; texts: Map<string, string> }> {
    let entries = new Entries();
    let texts = new Map<string, string>();
    let metaMod = 0;
    const revision = await this.readPages(() => {
      entries = new Entries();
      texts = new Map();
      metaMod = 0;
    }, (kvs) => {
      for (const kv of kvs) {
        const k = kv.key.toString();
        entries.set(k, kv.value);
        if (k === META_KEY) metaMod = Number(kv.mod_revision);
        else {
          const e = entries.bad.has(k) ? undefined : entries.get(k);
          if (e !== undefined) texts.set(k, JSON.stringify(e));
        }
      }
    });
    return { entries, revision, metaMod, texts };
  }

  async read(): Promise<{ doc: TopologyDocument; revision: number }> {
    const { entries, revision } = await this.readEntries();
    if (entries.bad.size > 0) throw entries.topology(this.location); // the TopologyError for the bad keys
    return { doc: entries.document(), revision };
  }

  async update<T>(what: string, edit: (doc: TopologyDocument) => T): Promise<UpdateResult<T>> {
    for (let attempt = 0; ; attempt++) {
      const { entries, revision, metaMod, texts } = await this.readEntries();
      if (entries.bad.size > 0) throw entries.topology(this.location);
      const doc = entries.document();
      const result = edit(doc);
      const source = `${this.location} (after ${what})`;
      const topology = topologyFromDocument(doc, source);
      // The keys of the edited document; the validation made them unique.
      const puts = new Map<string, string>();
      const keep = new Set<string>();
      for (const s of SECTIONS) {
        for (const e of doc[s]) {
          const k = entryKey(s, e)!;
          keep.add(k);
          const text = JSON.stringify(e);
          if (texts.get(k) !== text) puts.set(k, text);
        }
      }
      const deletes = [...texts.keys()].filter((k) => !keep.has(k));
      const metaChanged = (doc.comment ?? undefined) !== (entries.meta.comment ?? undefined) || metaMod === 0;
      if (puts.size === 0 && deletes.length === 0 && !metaChanged) {
        return { result, topology, revision, changed: false, conflicts: attempt };
      }
      const ops = puts.size + deletes.length + 1;
      const meta = {
        version: TOPOLOGY_VERSION,
        ...(doc.comment !== undefined ? { comment: doc.comment } : {}),
        serial: (typeof entries.meta.serial === 'number' ? entries.meta.serial : 0) + 1,
        updated: new Date().toISOString(),
        by: what,
      };
      const guard = metaMod === 0 ? this.ns.if(META_KEY, 'Create', '==', 0) : this.ns.if(META_KEY, 'Mod', '==', metaMod);
      let res;
      try {
        res = await guard.then(
          ...[...puts].map(([k, v]) => this.ns.put(k).value(v)),
          ...deletes.map((k) => this.ns.delete().key(k)),
          this.ns.put(META_KEY).value(JSON.stringify(meta)),
        ).commit();
      } catch (err) {
        throw this.refusedWrite(err, what, ops) ?? this.unreachable(err);
      }
      if (res.succeeded) return { result, topology, revision: Number(res.header.revision), changed: true, conflicts: attempt };
      if (attempt + 1 >= MAX_WRITE_ATTEMPTS) {
        throw new Error(`store ${this.location}: ${what}: gave up after ${MAX_WRITE_ATTEMPTS} attempts, other writers kept changing the topology`);
      }
      await sleep(Math.random() * Math.min(200, 5 * 2 ** attempt));
    }
  }

  async watch(onChange: ChangeHandler, onError: (err: Error) => void, options: StoreWatchOptions = {}): Promise<WatchedSource> {
    const w = new EtcdWatch(this, onChange, onError, options);
    await w.start();
    return w;
  }

  /** Compacts the history up to `revision` (tests, and operators who run no auto-compaction). */
  async compact(revision: number): Promise<void> {
    await this.client.kv.compact({ revision: String(revision), physical: true });
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/** A host's watch of an etcd store (see the top of the file). */
class EtcdWatch implements WatchedSource {
  private readonly store: EtcdStore;
  private readonly onChange: ChangeHandler;
  private readonly onError: (err: Error) => void;
  private readonly onStatus: ((s: StoreStatus) => void) | undefined;
  private entries = new Entries();
  private topology!: Topology;
  private revision = 0; // of the topology in force, or of the last refused state
  private watcher: Watcher | null = null;
  private connected = true;
  private since = new Date().toISOString();
  private lastError: string | undefined;
  private reloads = 0;
  private closed = false;
  // Since the topology in force: the entries changed (key → section), and whether anything needs
  // the whole document (meta's version, an entry under a key that is not its own).
  private readonly pending = new Map<string, Section>();
  private whole = false;

  constructor(store: EtcdStore, onChange: ChangeHandler, onError: (err: Error) => void, options: StoreWatchOptions) {
    this.store = store;
    this.onChange = onChange;
    this.onError = onError;
    this.onStatus = options.onStatus;
  }

  get current(): Topology {
    return this.topology;
  }

  status(): StoreStatus {
    return {
      kind: 'etcd', location: this.store.location, connected: this.connected, revision: this.revision, since: this.since,
      reloads: this.reloads, ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** Reads every entry (in pages) into a new Entries; returns its revision. */
  private async load(): Promise<number> {
    return this.store.readPages(() => (this.entries = new Entries()), (kvs) => {
      for (const kv of kvs) this.entries.set(kv.key.toString(), kv.value);
    });
  }

  /** The first load: throws if etcd cannot be reached or the topology is invalid. */
  async start(): Promise<void> {
    const revision = await this.load();
    this.topology = this.entries.topology(`${this.store.location}@${revision}`);
    this.revision = revision;
    this.follow(revision + 1);
  }

  private setConnected(connected: boolean, why?: string): void {
    if (why !== undefined) this.lastError = why;
    if (connected === this.connected) return;
    this.connected = connected;
    this.since = new Date().toISOString();
    this.onStatus?.(this.status());
  }

  private follow(from: number): void {
    const w = this.store.ns.watch().prefix('').startRevision(String(from)).watcher();
    this.watcher = w;
    w.on('data', (res) => {
      if (this.closed || w !== this.watcher) return;
      for (const ev of res.events) {
        const k = ev.kv.key.toString();
        const version = this.entries.meta.version;
        if (ev.type === 'Put') this.entries.set(k, ev.kv.value);
        else this.entries.delete(k);
        const section = sectionOf(k);
        if (k === META_KEY) this.whole ||= this.entries.meta.version !== version; // every write puts meta
        else if (section !== undefined) {
          this.pending.set(k, section);
          // An entry under another entry's key (written behind the CLI's back): the whole document decides.
          const e = this.entries.get(k);
          if (e !== undefined && (typeof e !== 'object' || e === null || entryKey(section, e as Entry) !== k)) this.whole = true;
        }
      }
      this.applyEntries(Number(res.header.revision));
    });
    w.on('connected', () => {
      if (w === this.watcher) this.setConnected(true);
    });
    w.on('disconnected', (err: Error) => {
      if (w === this.watcher && !this.closed) this.setConnected(false, `etcd unreachable: ${err.message}`);
    });
    // A canceled watch: most often its revision was compacted while it was away. Read everything again.
    w.on('error', (err: Error) => {
      if (w !== this.watcher || this.closed) return;
      this.watcher = null;
      void w.cancel().catch(() => undefined);
      this.lastError = `watch canceled (${err.message}): reloading the whole topology`;
      this.onError(new Error(`store ${this.store.location}: ${this.lastError}`));
      void this.reload();
    });
  }

  private applyEntries(revision: number): void {
    const source = `${this.store.location}@${revision}`;
    if (!this.whole && this.entries.bad.size === 0) {
      this.revision = revision;
      if (this.pending.size === 0) return; // meta only
      const changes = [...this.pending].map(([key, section]) => ({ section, id: key.slice(section.length + 1), entry: this.entries.get(key) }));
      const r = patchTopology(this.topology, changes, source);
      if ('diff' in r) {
        this.pending.clear();
        if (!r.diff.empty && !this.closed) this.onChange(this.topology, r.diff, this.topology);
        return;
      }
      if ('problems' in r) {
        // Refused: the topology in force stays; these entries are tried again with the next edits.
        const err = new TopologyError(source, r.problems);
        this.lastError = err.message;
        this.onError(err);
        return;
      }
      // An edit that changes what other entities derive from it (patch.ts): the whole document.
    }
    let next: Topology;
    try {
      next = this.entries.topology(source);
    } catch (err) {
      this.revision = revision;
      this.lastError = (err as Error).message;
      this.onError(err as Error);
      return;
    }
    this.revision = revision;
    this.whole = false;
    this.pending.clear();
    const previous = this.topology;
    const diff: TopologyDiff = diffTopology(previous, next);
    this.topology = next;
    if (!diff.empty && !this.closed) this.onChange(next, diff, previous);
  }

  private async reload(): Promise<void> {
    for (let i = 0; !this.closed; i++) {
      try {
        const revision = await this.load();
        if (this.closed) return;
        this.whole = true; // everything was read again: compare it whole
        this.reloads++;
        this.setConnected(true);
        this.applyEntries(revision);
        this.follow(revision + 1);
        return;
      } catch (err) {
        this.setConnected(false, (err as Error).message);
        await sleep(RELOAD_BACKOFF_MS[Math.min(i, RELOAD_BACKOFF_MS.length - 1)]);
      }
    }
  }

  close(): void {
    this.closed = true;
    const w = this.watcher;
    this.watcher = null;
    void w?.cancel().catch(() => undefined);
  }
}

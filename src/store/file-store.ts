// The file backend of the topology store (src/topology/stores.ts TopologyStore): the JSON file,
// read and replaced whole; writes hold `<file>.lock` (O_EXCL) while they read, check and replace
// it, so two operators on the same box serialize; watched by src/store/file.ts.

import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { asDocument, emptyDocument, topologyFromDocument } from '../topology/index.ts';
import type { ChangeHandler, StoreWatchOptions, TopologyDocument, TopologyStore, UpdateResult, WatchedSource } from '../topology/index.ts';
import { watchTopology, writeFileAtomic } from './file.ts';

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The JSON topology file; writes hold `<file>.lock` (O_EXCL) while they read, check and replace it. */
export class FileStore implements TopologyStore {
  readonly kind = 'file';
  readonly location: string;
  readonly file: string;
  constructor(file: string) {
    this.file = file;
    this.location = file;
  }

  async read(): Promise<{ doc: TopologyDocument; revision: number }> {
    let text: string;
    let revision: number;
    try {
      revision = Math.floor(statSync(this.file).mtimeMs);
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new Error(`topology file ${this.file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    try {
      return { doc: asDocument(JSON.parse(text)), revision };
    } catch (err) {
      throw new Error(`topology file ${this.file}: not valid JSON: ${(err as Error).message}`);
    }
  }

  private async lock(): Promise<() => void> {
    const path = `${this.file}.lock`;
    const end = Date.now() + LOCK_WAIT_MS;
    for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
      try {
        const fd = openSync(path, 'wx', 0o644);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return () => unlinkSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new Error(`topology file ${this.file}: cannot lock (${path}): ${(err as NodeJS.ErrnoException).code ?? err}`);
        }
      }
      // A lock whose writer died (or that is older than any write takes) is taken over.
      try {
        const pid = Number(readFileSync(path, 'utf8').trim());
        let alive = true;
        try {
          if (pid > 0) process.kill(pid, 0);
        } catch (e) {
          alive = (e as NodeJS.ErrnoException).code === 'EPERM';
        }
        if (!alive || Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS) unlinkSync(path);
      } catch {
        // released meanwhile
      }
      if (Date.now() > end) throw new Error(`topology file ${this.file}: still locked by ${path} after ${LOCK_WAIT_MS / 1000} s`);
      await sleep(wait + Math.random() * wait);
    }
  }

  async update<T>(what: string, edit: (doc: TopologyDocument) => T): Promise<UpdateResult<T>> {
    const unlock = await this.lock();
    try {
      let before = '';
      let doc: TopologyDocument;
      try {
        before = readFileSync(this.file, 'utf8');
        doc = asDocument(JSON.parse(before));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') throw new Error(`topology file ${this.file}: ${code ? `cannot read: ${code}` : `not valid JSON: ${(err as Error).message}`}`);
        doc = emptyDocument(); // the first write creates the file
      }
      const result = edit(doc);
      const topology = topologyFromDocument(doc, `${this.file} (after ${what})`);
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      const changed = text !== before;
      if (changed) writeFileAtomic(this.file, text);
      return { result, topology, revision: Math.floor(statSync(this.file).mtimeMs), changed, conflicts: 0 };
    } finally {
      unlock();
    }
  }

  async watch(onChange: ChangeHandler, onError: (err: Error) => void, options: StoreWatchOptions = {}): Promise<WatchedSource> {
    const since = new Date().toISOString();
    let lastError: string | undefined;
    const w = watchTopology(this.file, onChange, (err) => {
      lastError = err.message;
      onError(err);
    }, options);
    return {
      get current() {
        return w.current;
      },
      close: () => w.close(),
      status: () => ({ kind: 'file', location: this.file, connected: true, revision: 0, since, reloads: 0, ...(lastError ? { lastError } : {}) }),
    };
  }

  async close(): Promise<void> {}
}

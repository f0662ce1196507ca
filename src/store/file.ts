// The topology file on disk (examples/topology.example.json): read and validated as a whole,
// replaced atomically, and watched for edits that apply without a restart (the embedded store
// of one box; file-store.ts writes it under a lock).
//
// Watching: the file is polled with stat (fs.watch misses editors that replace the file by
// rename, and network file systems). A change (inode, size, mtime or ctime) is loaded once
// the stat has stayed the same for one more poll, so a file still being written is not read;
// a file that is read half-written fails to parse and is refused like any bad edit, and the
// next complete write is picked up. A refused edit keeps the running topology and is reported
// once; the file is not read again until it changes.

import { readFileSync, renameSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TOPOLOGY_POLL_INTERVAL_MS, TopologyError, diffTopology, parseTopology } from '../topology/index.ts';
import type { Topology, TopologyDiff, TopologyWatcher, WatchOptions } from '../topology/index.ts';

function readProblem(file: string, err: unknown): TopologyError {
  const e = err as NodeJS.ErrnoException;
  return new TopologyError(file, [{ file, entry: '(file)', message: `cannot read: ${e.code ?? e.message}` }]);
}

/** Reads and validates a topology file; throws TopologyError. */
export function loadTopology(file: string): Topology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw readProblem(file, err);
  }
  return parseTopology(text, file);
}

/**
 * Replaces a file atomically: writes a temporary file next to it, then renames it over the old
 * one, so readers see the old or the new content, never a mix.
 */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o644, flush: true });
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to clean up
    }
    throw err;
  }
}

function signatureOf(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/**
 * Watches a topology file. Throws TopologyError if the file is invalid when it starts (unless
 * `initial` is given). Afterwards, `onChange(next, diff, previous)` is called for each valid
 * edit that changes something and `onError(err)` for each refused one; `current` keeps the last
 * valid topology. The poll timer does not keep the process alive.
 */
export function watchTopology(
  file: string,
  onChange: (next: Topology, diff: TopologyDiff, previous: Topology) => void,
  onError: (err: Error) => void,
  options: WatchOptions = {},
): TopologyWatcher {
  const intervalMs = options.intervalMs ?? TOPOLOGY_POLL_INTERVAL_MS;
  let seen = ''; // the stat signature of the last poll
  let done = ''; // the signature last loaded (applied or refused)
  let lastText: string | undefined; // the text of `current`, when it came from the file
  let current: Topology;
  if (options.initial) current = options.initial;
  else {
    // Stat before reading: a write in between changes the signature and is loaded again.
    try {
      seen = done = signatureOf(statSync(file, { bigint: true }));
      lastText = readFileSync(file, 'utf8');
    } catch (err) {
      throw readProblem(file, err);
    }
    current = parseTopology(lastText, file);
  }
  let busy: Promise<boolean> | undefined;
  let closed = false;

  const signature = async (): Promise<string> => {
    try {
      return signatureOf(await stat(file, { bigint: true }));
    } catch (err) {
      return `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`;
    }
  };

  const load = async (sig: string): Promise<boolean> => {
    done = sig;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      onError(readProblem(file, err));
      return false;
    }
    if (text === lastText) return false; // touched, not changed
    let next: Topology;
    try {
      next = parseTopology(text, file);
    } catch (err) {
      onError(err as Error);
      return false;
    }
    lastText = text;
    const diff = diffTopology(current, next);
    const previous = current;
    current = next;
    if (!diff.empty && !closed) onChange(next, diff, previous);
    return !diff.empty;
  };

  const poll = async (force: boolean): Promise<boolean> => {
    const sig = await signature();
    const settled = sig === seen;
    seen = sig;
    if (closed || sig === done || (!settled && !force)) return false;
    return load(sig);
  };

  const run = (force: boolean): Promise<boolean> => {
    if (busy) return busy;
    busy = poll(force).finally(() => {
      busy = undefined;
    });
    return busy;
  };

  const timer = setInterval(() => {
    run(false).catch((err: unknown) => onError(err as Error));
  }, intervalMs);
  timer.unref();

  return {
    get current() {
      return current;
    },
    check: () => run(true),
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}

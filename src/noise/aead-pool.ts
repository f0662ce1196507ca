// A small pool of worker threads that seal and open AeadBatch record tables for the main thread
// (issue 10, "worker threads"). Everything is shared memory: the packets, records and key slots
// are in the thread's wasm memory (AeadBatch.default() and its companions, a shared
// WebAssembly.Memory), and each worker's job ring is a SharedArrayBuffer of Int32 words driven
// with Atomics — no postMessage, no copy on the packet path. The main thread only fills records
// and does the I/O; a worker runs a whole record table in one wasm call.
//
//   main:   queue fills a region's records → submit(seal|open, region, n, onDone) → goes on
//   worker: Atomics.wait(HEAD) → runRecords(...) → DONE++ → Atomics.notify(DONE)
//   worker: when its ring is empty again, one postMessage (a wake-up with no data in it)
//   main:   the message → poll(): the jobs that are done, in the order they were submitted, get
//           their onDone (the queue hands each message on, in record order), then onDelivered
//           (the I/O side sends and writes what that produced)
// (Atomics.waitAsync would spare the message, but on Node 24 its promise sometimes never
// resolves when the notify comes from a worker while the event loop sleeps: measured here, a
// stall within a few hundred jobs; the message port wakes the loop every time.)
//
// Order: jobs are delivered strictly in submission order, whichever worker finishes first, and a
// queue numbers its messages (counters) in the order it fills records, so a peer's packets leave
// in the order they were encrypted, and are received in the order they arrived (wireguard-go keeps
// the same per-peer order with its sequential sender and receiver after the parallel crypto).
// settle() waits for everything in flight and delivers it (before a key slot is freed, before a
// handshake message is processed, on close).
//
// Jobs run records of one table in sequence: the 1-worker pool is a pipeline (the main thread
// reads the next batch while the worker seals this one), the 2-worker pool also runs two batches
// at once. Whether that wins depends on spare cores: measured in bench:noise and bench:tunnel.
import { Worker } from 'node:worker_threads';
import { AeadBatch } from './aead-batch.ts';

const HEAD = 0; // jobs submitted (main)
const DONE = 1; // jobs finished (worker)
const STOP = 2;
const RING = 8; // jobs in flight per worker
const JOB = 4; // first job word
const JOB_WORDS = 5; // op, records, n, arenaLo, arenaHi
const STRIDE = 64; // Int32 words per worker
export const OP_SEAL = 1;
export const OP_OPEN = 2;
/** Batches of at most this many records, with no job in flight, are run on the calling thread (latency). */
export const INLINE_MAX = 8;
/** At most this many workers (a queue keeps about two regions per worker). */
export const MAX_WORKERS = 8;
/**
 * Workers when none are configured (sixpn-wg's SIXPN_WORKERS, sixpn up's "workers"): the winner
 * of bench:tunnel on the 2-core box these figures come from (README, "Measured").
 */
export const DEFAULT_WORKERS = 0;

/** A worker count from text (an environment variable): 0..MAX_WORKERS; undefined or "" → DEFAULT_WORKERS. */
export function parseWorkers(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_WORKERS;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > MAX_WORKERS) throw new RangeError(`workers must be an integer 0..${MAX_WORKERS}, not "${text}"`);
  return n;
}

interface Ticket {
  w: number;
  seq: number;
  onDone: () => void;
}

let current: AeadPool | null = null;

export class AeadPool {
  readonly size: number;
  /** Batches of at most this many records, with no job in flight, run on the calling thread (tests set 0). */
  inlineMax = INLINE_MAX;
  /** Called after poll() delivered jobs that finished on their own (the I/O side flushes). */
  onDelivered: (() => void) | null = null;
  private readonly ctl: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly scratch: AeadBatch[] = [];
  private readonly heads: number[];
  private readonly tickets: Ticket[] = [];
  private next = 0;
  private delivering = false;
  private closed = false;

  /** The pool of this thread, or null (crypto on the calling thread). */
  static current(): AeadPool | null {
    return current;
  }

  /**
   * Sets this thread's pool to `workers` threads (0: none). The queues look the pool up at each
   * flush; call it before the devices' sockets are made (DeviceSockets hooks onDelivered then):
   * sixpn-wg and sixpn up do, at start.
   */
  static configure(workers: number): AeadPool | null {
    if (!Number.isInteger(workers) || workers < 0 || workers > MAX_WORKERS) throw new RangeError(`workers must be 0..${MAX_WORKERS}: ${workers}`);
    if (current !== null && current.size === workers) return current;
    current?.close();
    current = workers === 0 ? null : new AeadPool(workers);
    return current;
  }

  constructor(workers: number) {
    this.size = workers;
    this.ctl = new Int32Array(new SharedArrayBuffer(workers * STRIDE * 4));
    this.heads = new Array<number>(workers).fill(0);
    const main = AeadBatch.default();
    for (let w = 0; w < workers; w++) {
      // a worker's own scratch (and nothing else it uses) in the shared memory
      const own = AeadBatch.companion({ maxRecords: 1, arenaBytes: 64 });
      this.scratch.push(own);
      const worker = new Worker(new URL('./aead-worker.ts', import.meta.url), {
        workerData: {
          module: AeadBatch.module(), memory: main.memory, base: own.scratchAt,
          keys: { offset: main.keysOffset, slots: main.keySlots }, ctl: this.ctl.buffer, index: w,
        },
      });
      worker.on('message', () => this.poll());
      worker.unref(); // an idle pool does not keep the process alive (one with jobs does: hold)
      worker.on('error', (err) => {
        // a worker that died cannot finish its jobs: the pool is unusable; fail loudly
        throw err;
      });
      this.workers.push(worker);
    }
  }

  /** Jobs submitted and not yet delivered. */
  get inFlight(): number {
    return this.tickets.length;
  }

  /**
   * Runs n records of `b` with `op` on this thread when there is no pool, or when the batch is
   * small (at most inlineMax) and nothing is in flight: a hand-off to a worker and back costs more
   * than a ping or a keepalive, and nothing queued earlier can be overtaken. Returns false when
   * it did not: the caller submits it to the pool (AeadPool.current()).
   */
  static runHere(op: number, b: AeadBatch, n: number): boolean {
    const pool = current;
    if (pool !== null && (n > pool.inlineMax || pool.inFlight !== 0)) return false;
    if (op === OP_SEAL) b.sealBatch(n);
    else b.openBatch(n);
    return true;
  }

  /**
   * A region of `regions` no job is using, for a queue to fill while its other regions are on
   * workers: a free one, else a new one from `make` (up to two per worker), else the oldest job
   * waited for.
   */
  freeRegion<R extends { busy: boolean }>(regions: R[], make: () => R): R {
    for (;;) {
      const free = regions.find((x) => !x.busy);
      if (free !== undefined) return free;
      if (regions.length <= 2 * this.size) {
        const r = make();
        regions.push(r);
        return r;
      }
      this.settle();
    }
  }

  /** Runs n records of `b` (a companion region of this thread's memory) on a worker; onDone when delivered. */
  submit(op: number, b: AeadBatch, n: number, onDone: () => void): void {
    if (this.closed) throw new Error('AeadPool is closed');
    const w = this.next;
    this.next = (w + 1) % this.size;
    const base = w * STRIDE;
    if (this.heads[w] - Atomics.load(this.ctl, base + DONE) >= RING) this.waitFor(w, this.heads[w] - RING + 1);
    const seq = this.heads[w];
    const j = base + JOB + (seq % RING) * JOB_WORDS;
    const ctl = this.ctl;
    ctl[j] = op;
    ctl[j + 1] = b.recordsAt;
    ctl[j + 2] = n;
    ctl[j + 3] = b.arenaOffset;
    ctl[j + 4] = b.arenaOffset + b.arenaBytes;
    this.heads[w] = seq + 1;
    Atomics.store(ctl, base + HEAD, seq + 1);
    Atomics.notify(ctl, base + HEAD);
    if (this.tickets.length === 0) this.hold(true);
    this.tickets.push({ w, seq: seq + 1, onDone });
  }

  /** Jobs in flight keep the event loop alive, so that their wake-up is awaited. */
  private hold(on: boolean): void {
    for (const worker of this.workers) if (on) worker.ref();
    else worker.unref();
  }

  private done(t: Ticket): boolean {
    return Atomics.load(this.ctl, t.w * STRIDE + DONE) >= t.seq;
  }

  private waitFor(w: number, seq: number): void {
    const i = w * STRIDE + DONE;
    for (let d = Atomics.load(this.ctl, i); d < seq; d = Atomics.load(this.ctl, i)) Atomics.wait(this.ctl, i, d, 1000);
  }

  /** Delivers, in submission order, the jobs that are done (a worker's wake-up message). */
  poll(): void {
    if (this.delivering) return;
    let any = false;
    this.delivering = true;
    try {
      while (this.tickets.length > 0 && this.done(this.tickets[0])) {
        this.tickets.shift()!.onDone();
        any = true;
      }
    } finally {
      this.delivering = false;
    }
    if (this.tickets.length === 0) this.hold(false);
    if (any) this.onDelivered?.();
  }

  /** Waits for the oldest job in flight and delivers it, with those done after it (synchronous). */
  settleOldest(): void {
    const t = this.tickets[0];
    if (t === undefined || this.delivering) return;
    this.waitFor(t.w, t.seq);
    this.poll();
  }

  /**
   * Waits for every job in flight and delivers them in order (synchronous). Called while a
   * delivery is under way (re-entrant), it only waits: the crypto is done when it returns, and the
   * delivery that is under way goes on in order.
   */
  settle(): void {
    for (const t of this.tickets) this.waitFor(t.w, t.seq);
    if (this.delivering) return;
    this.delivering = true;
    try {
      while (this.tickets.length > 0) {
        const t = this.tickets.shift()!;
        this.waitFor(t.w, t.seq);
        t.onDone();
      }
    } finally {
      this.delivering = false;
    }
    this.hold(false);
  }

  /** Delivers what is in flight and stops the workers. */
  close(): void {
    if (this.closed) return;
    this.settle();
    this.closed = true;
    for (let w = 0; w < this.size; w++) {
      Atomics.store(this.ctl, w * STRIDE + STOP, 1);
      Atomics.notify(this.ctl, w * STRIDE + HEAD);
    }
    for (const worker of this.workers) void worker.terminate();
    for (const b of this.scratch) AeadBatch.releaseCompanion(b);
    if (current === this) current = null;
  }
}

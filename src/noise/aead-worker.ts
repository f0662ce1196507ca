// A worker of AeadPool (./aead-pool.ts): its own instance of the ChaCha20-Poly1305 module over the
// main thread's shared memory (its scratch at `base`, the main thread's key slots), and a loop
// over its job ring — wait for HEAD to move, run each job's records in one wasm call, publish
// DONE, and when the ring is empty again post one wake-up message (no data: the results are in
// the shared memory).
import { parentPort, workerData } from 'node:worker_threads';
import { AeadBatch, type WasmMemory, type WasmModule } from './aead-batch.ts';

interface Data {
  module: WasmModule;
  memory: WasmMemory;
  base: number;
  keys: { offset: number; slots: number };
  ctl: SharedArrayBuffer;
  index: number;
}

// the job ring's layout, as in ./aead-pool.ts
const HEAD = 0;
const DONE = 1;
const STOP = 2;
const RING = 8;
const JOB = 4;
const JOB_WORDS = 5;
const STRIDE = 64;
const OP_SEAL = 1;

const d = workerData as Data;
const batch = new AeadBatch({ module: d.module, memory: d.memory, base: d.base, keys: d.keys, maxRecords: 1, arenaBytes: 64 });
const ctl = new Int32Array(d.ctl);
const base = d.index * STRIDE;
let done = Atomics.load(ctl, base + DONE);
for (;;) {
  let head = Atomics.load(ctl, base + HEAD);
  while (head === done) {
    if (Atomics.load(ctl, base + STOP) !== 0) process.exit(0);
    Atomics.wait(ctl, base + HEAD, head);
    head = Atomics.load(ctl, base + HEAD);
  }
  while (done !== head) {
    const j = base + JOB + (done % RING) * JOB_WORDS;
    batch.runRecords(ctl[j] === OP_SEAL, ctl[j + 1], ctl[j + 2], ctl[j + 3], ctl[j + 4]);
    done++;
    Atomics.store(ctl, base + DONE, done);
    Atomics.notify(ctl, base + DONE); // a settle() waiting in Atomics.wait
  }
  parentPort!.postMessage(0);
}

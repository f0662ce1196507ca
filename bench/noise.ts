// npm run bench:noise — the WireGuard protocol core on one core (this thread):
//   per primitive and backend: the measurements behind src/noise/crypto.ts's `chosenBackend`;
//   handshakes/s: an initiation checked (mac1) and consumed, a response created, keys derived;
//   transport seal/open per second at 64, 1420 and 8192 bytes, per backend (Keypair.seal/open,
//   one packet per call) and for the batch backend (AeadBatch: BATCH packets per wasm call);
//   node:crypto, the single-packet wasm path and the batches are measured in the same run,
//   interleaved; at 1420 B also in CPU time (robust to other load on a shared box);
//   with workers: 1420-B batches sealed on an AeadPool of 1 and 2 worker threads (the main thread
//   only fills records and hands them over, two jobs in flight per worker), wall clock.
// Median of RUNS runs each. The last line is one JSON object.
import { randomBytes } from 'node:crypto';
import {
  AeadBatch,
  AeadPool,
  CookieChecker,
  OP_SEAL,
  Handshake,
  Keypair,
  StaticIdentity,
  Symmetric,
  chosenBackend,
  consumeInitiation,
  generatePrivateKeyBytes,
  jsBackend,
  nodeBackend,
  paddedLength,
  wasmBackend,
  type CryptoBackend,
} from '../src/noise/index.ts';
import { fmt, machineDescription, median, medianOf, opsPerSecond } from './lib.ts';

const RUNS = Number(process.env.RUNS ?? 5);
const SIZES = [64, 1420, 8192];
const MTU = 8192 + 80;
const BATCH = Number(process.env.BATCH ?? 64);

console.log(machineDescription());
console.log(`runs: ${RUNS} (median reported)\n`);

// ---- primitives ----
function primitives(b: CryptoBackend): Record<string, number> {
  const sym = new Symmetric(b);
  const priv = b.x25519.generate();
  const pub = b.x25519.importPublic(b.x25519.generate().publicKey);
  const out = new Uint8Array(32);
  const m148 = randomBytes(148);
  const key = randomBytes(32);
  const aeadKey = b.aead.importKey(key);
  const pt = new Uint8Array(1420);
  const ct = new Uint8Array(1436);
  const slow = b === jsBackend ? 100 : 250;
  return {
    'x25519 shared secret': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.x25519.dh(priv, pub, out); }, slow)),
    'x25519 generate': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.x25519.generate(); }, slow)),
    'x25519 import public': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.x25519.importPublic(key); })),
    'blake2s-256 148 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.blake2s.hash(m148, null, out); })),
    'hmac-blake2s 33 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) sym.hmac(key, m148.subarray(0, 33), out); })),
    'keyed blake2s-128 116 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.blake2s.mac(key, m148.subarray(0, 116), out.subarray(0, 16)); })),
    'chacha20poly1305 seal 1420 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.aead.seal(aeadKey, i, 0, pt, null, ct, 0); })),
    'chacha20poly1305 import key + seal 32 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) { const k = b.handshakeAead.importKey(key); b.handshakeAead.seal(k, 0, 0, pt.subarray(0, 32), out, ct, 0); k.zero(); } })),
    'xchacha20poly1305 seal 16 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) b.xaead.seal(key, m148.subarray(0, 24), pt.subarray(0, 16), m148.subarray(0, 16), ct); })),
  };
}

// ---- handshakes: responder work per initiation ----
function handshakesPerSecond(b: CryptoBackend, onStart?: () => void): number {
  // initiations are made with the fast backend (not timed), consumed with `b`
  const responder = new StaticIdentity(b, generatePrivateKeyBytes());
  const checker = new CookieChecker(responder);
  const initiatorId = new StaticIdentity(chosenBackend, generatePrivateKeyBytes());
  const toResponder = new Handshake(initiatorId, responder.publicKey);
  const peer = new Handshake(responder, initiatorId.publicKey);
  const lookup = () => peer;
  const count = b === jsBackend ? 60 : 1500;
  const inits: Uint8Array[] = [];
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const m = new Uint8Array(148);
    toResponder.createInitiation(i, t0 + i * 1000, m);
    toResponder.cookies.addMacs(m, 148, 0);
    inits.push(m);
  }
  const resp = new Uint8Array(92);
  let now = 0;
  onStart?.();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    now += 25; // past the 20 ms flood guard
    if (!checker.checkMac1(inits[i], 148)) throw new Error('mac1');
    const r = consumeInitiation(responder, inits[i], 148, lookup, now);
    if (!r.ok) throw new Error(r.error);
    peer.createResponse(i, resp);
    peer.cookies.addMacs(resp, 92, now);
    peer.deriveKeypair(now)!.zero();
  }
  return (count * 1e9) / Number(process.hrtime.bigint() - start);
}

// ---- the handshake under a flood: where a responder's time goes (issue 10: would batching the
// BLAKE2s/HMAC work help?). The chosen backend's X25519 and BLAKE2s calls are timed inside a run of
// handshakesPerSecond's responder loop; the rest (AEAD, copies, checks) is what remains. ----
function handshakeParts(): { us: number; x25519: number; blake2s: number } {
  const spent = { x25519: 0n, blake2s: 0n };
  const restore: Array<() => void> = [];
  const wrap = (obj: Record<string, unknown>, key: 'x25519' | 'blake2s') => {
    for (const name of Object.keys(obj)) {
      const f = obj[name];
      if (typeof f !== 'function') continue;
      obj[name] = (...a: unknown[]) => {
        const t = process.hrtime.bigint();
        try {
          return (f as (...x: unknown[]) => unknown).apply(obj, a);
        } finally {
          spent[key] += process.hrtime.bigint() - t;
        }
      };
      restore.push(() => { obj[name] = f; });
    }
  };
  wrap(chosenBackend.x25519 as unknown as Record<string, unknown>, 'x25519');
  wrap(chosenBackend.blake2s as unknown as Record<string, unknown>, 'blake2s');
  // only the responder loop counts (the initiations are made before it, with the same backend)
  const perSecond = handshakesPerSecond(chosenBackend, () => { spent.x25519 = spent.blake2s = 0n; });
  for (const r of restore) r();
  const loop = 1500 * (1e9 / perSecond); // handshakesPerSecond's count for a fast backend, in ns
  return { us: 1e6 / perSecond, x25519: Number(spent.x25519) / loop, blake2s: Number(spent.blake2s) / loop };
}

// ---- transport ----
function keypairs(b: CryptoBackend): [Keypair, Keypair] {
  const aead = b.aead;
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  return [
    new Keypair(aead, aead.importKey(k1), aead.importKey(k2), 1, 2, 0, true),
    new Keypair(aead, aead.importKey(k2), aead.importKey(k1), 2, 1, 0, false),
  ];
}

function sealPerSecond(b: CryptoBackend, size: number): number {
  const [tx] = keypairs(b);
  const buf = new Uint8Array(16 + size + 32);
  return opsPerSecond((n) => { for (let i = 0; i < n; i++) tx.seal(buf, 0, size, MTU); });
}

function openPerSecond(b: CryptoBackend, size: number): number {
  const [tx, rx] = keypairs(b);
  const count = Math.max(2000, Math.min(40_000, Math.floor(40e6 / size)));
  const len = 16 + paddedLength(size, MTU) + 16;
  const sealed = new Uint8Array(len * count);
  for (let i = 0; i < count; i++) tx.seal(sealed, i * len, size, MTU);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) if (rx.open(sealed, i * len, len) < 0) throw new Error('open');
  return (count * 1e9) / Number(process.hrtime.bigint() - start);
}

// ---- batches: BATCH packets laid out in the arena, one record each, one wasm call ----
const batch = new AeadBatch({ maxRecords: BATCH, arenaBytes: BATCH * 8448 + 4096 });
function stride(size: number): number {
  return (size + 16 + 63) & ~63;
}
function batchSealPerSecond(size: number): number {
  const slot = batch.allocKey(randomBytes(32));
  const st = stride(size);
  batch.arena.fill(7);
  let counter = 0;
  const rate = opsPerSecond((n) => {
    for (let done = 0; done < n; done += BATCH) {
      // what a sender does per packet: one record (the packet is already in the arena)
      for (let i = 0; i < BATCH; i++) batch.setRecord(i, batch.arenaOffset + i * st, size, slot, counter++, 0);
      batch.sealBatch(BATCH);
    }
  });
  batch.freeKey(slot);
  return rate;
}
function batchOpenPerSecond(size: number): number {
  const slot = batch.allocKey(randomBytes(32));
  const st = stride(size);
  for (let i = 0; i < BATCH; i++) batch.setRecord(i, batch.arenaOffset + i * st, size, slot, i, 0);
  batch.sealBatch(BATCH);
  // opening decrypts in place, so each round starts from a copy of the sealed arena (a memcpy
  // the receive path does not have: the socket writes into the arena; this understates open)
  const image = batch.arena.slice(0, BATCH * st);
  const rate = opsPerSecond((n) => {
    for (let done = 0; done < n; done += BATCH) {
      batch.arena.set(image);
      for (let i = 0; i < BATCH; i++) batch.setRecord(i, batch.arenaOffset + i * st, size + 16, slot, i, 0);
      batch.openBatch(BATCH);
    }
    if (batch.result(BATCH - 1) !== size) throw new Error('batch open');
  });
  batch.freeKey(slot);
  return rate;
}

// ---- the same batches on worker threads (AeadPool): regions filled in turn, 2 jobs per worker in flight ----
function workersSealPerSecond(workers: number, size: number): number {
  const pool = AeadPool.configure(workers)!;
  const slot = AeadBatch.default().allocKey(randomBytes(32));
  const regions = Array.from({ length: 2 * workers }, () => ({ b: AeadBatch.companion({ maxRecords: BATCH, arenaBytes: BATCH * 8448 + 4096 }), busy: false }));
  const st = stride(size);
  let counter = 0;
  let next = 0;
  const rate = opsPerSecond((n) => {
    for (let done = 0; done < n; done += BATCH) {
      const r = regions[next];
      next = (next + 1) % regions.length;
      while (r.busy) pool.settleOldest();
      for (let i = 0; i < BATCH; i++) r.b.setRecord(i, r.b.arenaOffset + i * st, size, slot, counter++, 0);
      r.busy = true;
      pool.submit(OP_SEAL, r.b, BATCH, () => { r.busy = false; });
    }
    pool.settle();
  });
  if (regions[0].b.result(BATCH - 1) !== size + 16) throw new Error('workers seal');
  for (const r of regions) AeadBatch.releaseCompanion(r.b);
  AeadBatch.default().freeKey(slot);
  AeadPool.configure(0);
  return rate;
}

type Row = Record<string, number>;
const results: Record<string, Row> = {};
const backends = [nodeBackend, jsBackend, wasmBackend, chosenBackend];
for (const b of backends.slice(0, 2)) results[b.name] = primitives(b);
// the wasm backend differs from js only in its AEADs
const wasmKey = wasmBackend.aead.importKey(randomBytes(32));
const pt1420 = new Uint8Array(1420);
const ct1420 = new Uint8Array(1436);
const hsKey = randomBytes(32);
const hsOut = new Uint8Array(48);
results.wasm = {
  'chacha20poly1305 seal 1420 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) wasmBackend.aead.seal(wasmKey, i, 0, pt1420, null, ct1420, 0); })),
  'chacha20poly1305 import key + seal 32 B': medianOf(RUNS, () => opsPerSecond((n) => { for (let i = 0; i < n; i++) { const k = wasmBackend.handshakeAead.importKey(hsKey); wasmBackend.handshakeAead.seal(k, 0, 0, pt1420.subarray(0, 32), hsOut.subarray(0, 32), ct1420, 0); k.zero(); } })),
};
wasmKey.zero();
const cols = ['node', 'js', 'wasm'];
console.log('primitives (ops/s)'.padEnd(40) + cols.map((c) => c.padStart(12)).join('') + '   fastest');
for (const name of Object.keys(results.node)) {
  const vals = cols.map((c) => results[c][name]);
  const best = vals.reduce((bi, v, i) => (v !== undefined && v > vals[bi] ? i : bi), 0);
  const sorted = vals.filter((v) => v !== undefined).sort((a, b) => b - a);
  console.log(name.padEnd(40) + vals.map((v) => (v === undefined ? '–' : fmt(v)).padStart(12)).join('') + '   ' + cols[best] + ` (${(sorted[0] / sorted[1]).toFixed(2)}×)`);
}
const which = (k: keyof CryptoBackend) => (chosenBackend[k] === nodeBackend[k] ? 'node' : chosenBackend[k] === jsBackend[k] ? 'js' : 'wasm');
console.log(`chosen: ${(['x25519', 'blake2s', 'aead', 'handshakeAead', 'xaead'] as const).map((k) => `${k}=${which(k)}`).join(' ')}\n`);

// Every backend is measured once per run, one after the other (node, js, wasm, chosen, batch),
// so that load from elsewhere on the machine hits them alike; ratios are taken per run and
// their median reported.
const table: Record<string, Row> = {};
const ratios: Row = {};
for (const name of [...backends.map((b) => b.name), 'batch']) table[name] = {};
const metrics: Array<[string, (b: CryptoBackend | null) => number]> = [['handshake_per_s', (b) => handshakesPerSecond(b!)]];
for (const s of SIZES) {
  metrics.push([`seal_${s}_per_s`, (b) => (b === null ? batchSealPerSecond(s) : sealPerSecond(b, s))]);
  metrics.push([`open_${s}_per_s`, (b) => (b === null ? batchOpenPerSecond(s) : openPerSecond(b, s))]);
}
for (const [key, measure] of metrics) {
  const runs: Record<string, number[]> = {};
  const perRun: number[] = [];
  const withBatch = key !== 'handshake_per_s';
  for (let r = 0; r < RUNS; r++) {
    for (const b of backends) (runs[b.name] ??= []).push(measure(b));
    if (withBatch) {
      (runs.batch ??= []).push(measure(null));
      perRun.push(runs.batch[r] / runs.node[r]);
    }
  }
  for (const name of Object.keys(runs)) table[name][key] = median(runs[name]);
  if (withBatch) ratios[key] = median(perRun);
}
const batchRow = table.batch;

// The same head-to-head at 1420 B in CPU time (process.cpuUsage of this single-threaded process):
// on a box shared with other work, wall time also counts time spent waiting for the core.
function cpuOpsPerSecond(body: (n: number) => void, minMs = 250): number {
  let n = 1;
  body(1);
  for (;;) {
    const t0 = process.cpuUsage();
    body(n);
    const used = process.cpuUsage(t0);
    const ms = (used.user + used.system) / 1000;
    if (ms >= minMs) return (n * 1000) / ms;
    n = ms < 1 ? n * 10 : Math.ceil((n * minMs * 1.2) / ms);
  }
}
const cpu: Record<string, number[]> = { node: [], wasm: [], batch: [], ratio: [] };
{
  const [nodeTx] = keypairs(nodeBackend);
  const [wasmTx] = keypairs(wasmBackend);
  const buf = new Uint8Array(16 + 1420 + 32);
  const slot = batch.allocKey(randomBytes(32));
  const st = stride(1420);
  let counter = 0;
  for (let r = 0; r < RUNS; r++) {
    const n = cpuOpsPerSecond((k) => { for (let i = 0; i < k; i++) nodeTx.seal(buf, 0, 1420, MTU); });
    cpu.node.push(n);
    cpu.wasm.push(cpuOpsPerSecond((k) => { for (let i = 0; i < k; i++) wasmTx.seal(buf, 0, 1420, MTU); }));
    const b = cpuOpsPerSecond((k) => {
      for (let done = 0; done < k; done += BATCH) {
        for (let i = 0; i < BATCH; i++) batch.setRecord(i, batch.arenaOffset + i * st, 1420, slot, counter++, 0);
        batch.sealBatch(BATCH);
      }
    });
    cpu.batch.push(b);
    cpu.ratio.push(b / n);
  }
  batch.freeKey(slot);
}
const WORKER_COUNTS = (process.env.WORKERS ?? '1,2').split(',').map(Number);
const workerRuns: Record<number, number[]> = {};
const workerRatios: number[] = [];
for (let r = 0; r < RUNS; r++) {
  const one = batchSealPerSecond(1420);
  for (const w of WORKER_COUNTS) (workerRuns[w] ??= []).push(workersSealPerSecond(w, 1420));
  workerRatios.push(workerRuns[WORKER_COUNTS[WORKER_COUNTS.length - 1]][r] / one);
}
const workersRow = Object.fromEntries(WORKER_COUNTS.map((w) => [w, median(workerRuns[w])]));
const parts = Array.from({ length: RUNS }, handshakeParts);
const hsParts = { us: median(parts.map((p) => p.us)), x25519: median(parts.map((p) => p.x25519)), blake2s: median(parts.map((p) => p.blake2s)) };
const columns = [...backends.map((b) => b.name), 'batch'];
console.log(`protocol (ops/s; batch = AeadBatch, ${BATCH} packets per call, AEAD only)`);
console.log(''.padEnd(20) + columns.map((c) => c.padStart(12)).join('') + '   batch/node (median of per-run ratios)');
for (const key of Object.keys(table.chosen)) {
  const ratio = ratios[key] !== undefined ? `${ratios[key].toFixed(2)}×` : '';
  console.log(key.padEnd(20) + columns.map((c) => (table[c][key] === undefined ? '–' : fmt(table[c][key])).padStart(12)).join('') + '   ' + ratio);
}
console.log(`seal 1420 B per CPU-second: node ${fmt(median(cpu.node))}, wasm ${fmt(median(cpu.wasm))}, batch ${fmt(median(cpu.batch))}; batch/node ${median(cpu.ratio).toFixed(2)}×`);
console.log(`seal 1420 B on worker threads (AeadPool, ${BATCH} per job): ${WORKER_COUNTS.map((w) => `${w} worker${w > 1 ? 's' : ''} ${fmt(workersRow[w])}`).join(', ')}; ${WORKER_COUNTS[WORKER_COUNTS.length - 1]} workers / one core ${median(workerRatios).toFixed(2)}×`);
console.log(`handshake (responder, ${hsParts.us.toFixed(0)} µs): X25519 ${(hsParts.x25519 * 100).toFixed(0)}%, BLAKE2s/HMAC ${(hsParts.blake2s * 100).toFixed(0)}% of the time; batching BLAKE2s k-wide would save at most ${(hsParts.blake2s * 100).toFixed(0)}% × (1 - 1/k)`);
console.log(`seal 1420 B in Gbit/s: chosen ${((table.chosen.seal_1420_per_s * 1420 * 8) / 1e9).toFixed(2)}, batch ${((table.batch.seal_1420_per_s * 1420 * 8) / 1e9).toFixed(2)}`);

const chosen = table.chosen;
console.log(JSON.stringify({
  bench: 'noise',
  node: process.version,
  runs: RUNS,
  batch_size: BATCH,
  handshake_per_s: Math.round(chosen.handshake_per_s),
  seal_64_per_s: Math.round(chosen.seal_64_per_s),
  open_64_per_s: Math.round(chosen.open_64_per_s),
  seal_1420_per_s: Math.round(chosen.seal_1420_per_s),
  open_1420_per_s: Math.round(chosen.open_1420_per_s),
  seal_8192_per_s: Math.round(chosen.seal_8192_per_s),
  open_8192_per_s: Math.round(chosen.open_8192_per_s),
  seal_1420_node_per_s: Math.round(table.node.seal_1420_per_s),
  open_1420_node_per_s: Math.round(table.node.open_1420_per_s),
  seal_1420_wasm_per_s: Math.round(table.wasm.seal_1420_per_s),
  open_1420_wasm_per_s: Math.round(table.wasm.open_1420_per_s),
  seal_64_batch_per_s: Math.round(batchRow.seal_64_per_s),
  open_64_batch_per_s: Math.round(batchRow.open_64_per_s),
  seal_1420_batch_per_s: Math.round(batchRow.seal_1420_per_s),
  open_1420_batch_per_s: Math.round(batchRow.open_1420_per_s),
  seal_8192_batch_per_s: Math.round(batchRow.seal_8192_per_s),
  open_8192_batch_per_s: Math.round(batchRow.open_8192_per_s),
  // batch / node:crypto at 1420 B, both one core, median of the per-run ratios
  batch_ratio: Number(ratios.seal_1420_per_s.toFixed(2)),
  batch_open_ratio: Number(ratios.open_1420_per_s.toFixed(2)),
  // the same at 1420 B in CPU time (seals per CPU-second), robust to other load on the box
  seal_1420_node_cpu_per_s: Math.round(median(cpu.node)),
  seal_1420_batch_cpu_per_s: Math.round(median(cpu.batch)),
  batch_ratio_cpu: Number(median(cpu.ratio).toFixed(2)),
  // 1420-B batches sealed on the pool with the most workers measured (WORKERS, default 1,2), and each count
  seal_1420_workers_per_s: Math.round(workersRow[WORKER_COUNTS[WORKER_COUNTS.length - 1]]),
  seal_1420_workers: Object.fromEntries(WORKER_COUNTS.map((w) => [w, Math.round(workersRow[w])])),
  workers_ratio: Number(median(workerRatios).toFixed(2)),
  // where a responder handshake's time goes (the handshake loop, chosen backend)
  handshake_x25519_share: Number(hsParts.x25519.toFixed(3)),
  handshake_blake2s_share: Number(hsParts.blake2s.toFixed(3)),
  per_backend: Object.fromEntries(columns.map((c) => [c, Object.fromEntries(Object.entries(table[c]).map(([k, v]) => [k, Math.round(v)]))])),
}));

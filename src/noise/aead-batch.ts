// AeadBatch: ChaCha20-Poly1305 (RFC 8439, WireGuard nonces) over whole batches of packets in
// WebAssembly memory, one JS→wasm call per batch. The code is ours: AssemblyScript with 128-bit
// SIMD in ./wasm/chacha20poly1305.ts (the AEAD and the exports) and ./wasm/chacha20poly1305/
// (ChaCha20, Poly1305, the layout), compiled by `npm run build:wasm` into the checked-in
// ./wasm/chacha20poly1305.wasm (test/noise-wasm.test.ts rebuilds it and compares the bytes).
//
// ## Using a batch (the packet path)
//
//   const batch = new AeadBatch();                  // or AeadBatch.default() (one per thread)
//   const slot = batch.allocKey(sendKey32);         // once per keypair and direction
//   // 1. put packets in the arena: batch.u8 is a view of the whole wasm memory; a packet may
//   //    start anywhere in [batch.arenaOffset, batch.arenaOffset + batch.arenaBytes) as long
//   //    as it (and, when sealing, its 16-byte tag behind it) stays inside. Read the TUN or the
//   //    socket straight into batch.arena (a Uint8Array over just the arena) to avoid a copy.
//   // 2. one record per packet: batch.setRecord(i, offset, length, slot, counterLo, counterHi)
//   //    (offset is absolute in batch.u8; for open, length counts the tag)
//   batch.sealBatch(n);                             // or batch.openBatch(n)
//   // 3. results: batch.result(i) = sealed length (length + 16, tag at offset + length), or
//   //    opened plaintext length (length - 16, plaintext in place at offset), or -1.
//   batch.freeKey(slot);                            // zeroes the key
//
// - Records: RECORD_WORDS u32 words each in batch.records (record i at words 8i..8i+7):
//   offset, length, key slot, counter lo, counter hi, aad offset, aad length, result. Transport
//   data has no aad (leave 0, 0). Nonce = 4 zero bytes ‖ counter as u64 little-endian.
// - Seal: in place, tag appended. Open: the tag is checked (constant time) before anything is
//   decrypted, so a packet that fails (-1) is left exactly as it came in: no half-decrypted or
//   unauthenticated plaintext is ever written. Records that are out of the arena, longer than
//   MAX_PLAINTEXT (seal) / MAX_SEALED (open) or shorter than a tag (open), or name a slot past
//   keySlots, get -1 and touch nothing.
// - Limits: a packet is at most 65535 bytes of plaintext (65551 sealed); a batch is at most
//   maxRecords records (default 1024) and the arena arenaBytes (default 4 MiB); keySlots key
//   slots (default 16384 = 512 KiB). Nothing is allocated per packet, in JS or in wasm.
// - Keys live in key slots (32 bytes each) inside wasm memory, installed once per keypair; no
//   key is copied per packet. freeKey zeroes the slot. Scratch bytes derived from keys (Poly1305
//   key, keystream) are zeroed by the wasm before each call returns.
// - Single packets: sealOne/openOne on a packet already in the arena; wasmAead (the `Aead`
//   interface of ./crypto.ts, for Keypair) copies in and out of a private staging area.
// - With Keypair (./transport.ts), whose keys from wasmAead live in AeadBatch.default():
//     seal: len = kp.prepareSeal(u8, off, n, mtu)   (header, padding, counter; u8 = arena view)
//           setRecord(i, off + 16, len, kp.sendSlot, kp.preparedCounterLo, kp.preparedCounterHi)
//           … sealBatch(k); message i is u8[off, off + 16 + result(i))
//     open: len = kp.prepareOpen(u8, off, n)          (checks; counter read from the header)
//           setRecord(i, off + 16, len, kp.receiveSlot, kp.preparedCounterLo, kp.preparedCounterHi)
//           … openBatch(k); then kp.completeOpen(lo, hi, result(i)) (replay window) for each
//   Records of one batch may name any mix of keys and counters; a peer's order is the record
//   order (the batch runs records in sequence).
//
// ## Worker threads
// The module is compiled once (AeadBatch.module(), a WebAssembly.Module, which postMessage can
// send to a worker); the memory is a shared WebAssembly.Memory (the .wasm imports env.memory
// as shared, maximum MAX_MEMORY_PAGES), which postMessage also shares. A worker builds its own
// instance over the same memory with `new AeadBatch({ module, memory, base, keys })`: `base`
// puts its scratch, records and arena after the main thread's (`batch.end` is the first free
// byte), and `keys: { offset: batch.keysOffset, slots: batch.keySlots }` lets it read the main
// thread's key slots (allocKey/freeKey then stay on the thread that owns the table). Two threads
// must never run a batch on the same scratch or on the same packets at once.
import { TAG_SIZE } from './constants.ts';
import type { Aead, AeadKey } from './crypto.ts';
import { CHACHA20POLY1305_WASM_BASE64 } from './wasm/chacha20poly1305.wasm.ts';

// This project's TypeScript lib (es2024, @types/node) has no WebAssembly types; the little we use:
/** A compiled WebAssembly.Module (structured-clonable: postMessage it to a worker). */
export interface WasmModule {
  readonly [Symbol.toStringTag]: string;
}
/** A WebAssembly.Memory; ours is always shared (its buffer is a SharedArrayBuffer). */
export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: object };
  Memory: new (desc: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export const RECORD_WORDS = 8;
export const RECORD_SIZE = RECORD_WORDS * 4;
const R_OFFSET = 0;
const R_LENGTH = 1;
const R_SLOT = 2;
const R_COUNTER_LO = 3;
const R_COUNTER_HI = 4;
const R_AAD_OFFSET = 5;
const R_AAD_LENGTH = 6;
const R_RESULT = 7;

export const MAX_PLAINTEXT = 65535;
export const MAX_SEALED = MAX_PLAINTEXT + TAG_SIZE;
export const KEY_SLOT_SIZE = 32;
/**
 * Bytes of per-call scratch the wasm uses: 724 of key-derived state (zeroed before each call
 * returns), rotation masks from 768, from 1024 open's 64 KiB keystream buffer (zeroed per packet),
 * then 512 for a sealed packet's last Poly1305 blocks (zeroed before each call returns).
 */
export const SCRATCH_SIZE = 1024 + 65536 + 512;
/** The staging area of the single-packet path: one sealed packet and its aad. */
const STAGE_SIZE = 65536 + 64;
export const MAX_STAGED_AAD = 4096;
export const MAX_MEMORY_PAGES = 16384;
const PAGE = 65536;

interface Exports {
  sealBatch(records: number, n: number, keys: number, keySlots: number, arenaLo: number, arenaHi: number, scratch: number): void;
  openBatch(records: number, n: number, keys: number, keySlots: number, arenaLo: number, arenaHi: number, scratch: number): void;
  seal(key: number, n0: number, lo: number, hi: number, p: number, n: number, aad: number, aadLen: number, scratch: number): number;
  open(key: number, n0: number, lo: number, hi: number, p: number, n: number, aad: number, aadLen: number, scratch: number): number;
  chacha20(key: number, nonce: number, counter: number, p: number, n: number, scratch: number): void;
  poly1305(key: number, p: number, n: number, out: number, scratch: number): void;
}

export interface AeadBatchOptions {
  /** The compiled module (default: AeadBatch.module()). */
  module?: WasmModule;
  /** A shared WebAssembly.Memory (maximum ≤ MAX_MEMORY_PAGES) to use; created when absent. */
  memory?: WasmMemory;
  /** Byte offset where this instance's layout begins (default 0). */
  base?: number;
  /** Key slots to own (default 16384); ignored when `keys` is given. */
  keySlots?: number;
  /** Use another instance's key table in the same memory instead of owning one. */
  keys?: { offset: number; slots: number };
  /** Records per batch (default 1024). */
  maxRecords?: number;
  /** Packet arena bytes (default 4 MiB). */
  arenaBytes?: number;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

let compiled: WasmModule | null = null;
let shared: AeadBatch | null = null;
/** First free byte after the default instance and its companions (this thread's bump allocator). */
let companionTop = 0;
/** Regions of released companions, by "maxRecords/arenaBytes", for the next companion of that shape. */
const releasedCompanions = new Map<string, number[]>();

export class AeadBatch {
  readonly memory: WasmMemory;
  /** The whole wasm memory. Offsets in records are offsets into this view. */
  readonly u8: Uint8Array;
  /** The packet arena (a view of u8 from arenaOffset). */
  readonly arena: Uint8Array;
  /** Record table: RECORD_WORDS u32 per record. */
  readonly records: Uint32Array;
  readonly arenaOffset: number;
  readonly arenaBytes: number;
  readonly maxRecords: number;
  readonly keysOffset: number;
  readonly keySlots: number;
  /** First byte after this instance's layout (where another instance may put its `base`). */
  readonly end: number;
  private readonly wasm: Exports;
  private readonly scratchOffset: number;
  private readonly stageOffset: number;
  private readonly recordsOffset: number;
  private readonly results: Int32Array;
  private readonly mem: Buffer;
  private readonly ownsKeys: boolean;
  private readonly freeSlots: number[] = [];
  private readonly slotInUse: Uint8Array;

  /** The ChaCha20-Poly1305 module, compiled once per thread (throws if WebAssembly SIMD or relaxed SIMD is missing). */
  static module(): WasmModule {
    compiled ??= new WA.Module(Buffer.from(CHACHA20POLY1305_WASM_BASE64, 'base64'));
    return compiled;
  }

  /** One instance per thread with default sizes, for the single-packet path and casual users. */
  static default(): AeadBatch {
    shared ??= new AeadBatch();
    return shared;
  }

  /**
   * Another instance in the default instance's memory that uses its key table (a key installed
   * through wasmAead is usable in its records) but has its own scratch, records and arena: a second
   * queue of this thread (the open queue beside the seal queue), or the main thread's view of a
   * worker's region. Give it back with releaseCompanion when its owner goes away.
   */
  static companion(opts: Pick<AeadBatchOptions, 'maxRecords' | 'arenaBytes'> = {}): AeadBatch {
    const main = AeadBatch.default();
    const shape = `${opts.maxRecords ?? 1024}/${opts.arenaBytes ?? 4 << 20}`;
    const reuse = releasedCompanions.get(shape)?.pop();
    const base = reuse ?? Math.max(companionTop, main.end);
    const b = new AeadBatch({ ...opts, memory: main.memory, base, keys: { offset: main.keysOffset, slots: main.keySlots } });
    if (reuse === undefined) companionTop = b.end;
    return b;
  }

  /** Returns a companion's region for reuse (the instance must not be used after). */
  static releaseCompanion(b: AeadBatch): void {
    const shape = `${b.maxRecords}/${b.arenaBytes}`;
    let list = releasedCompanions.get(shape);
    if (list === undefined) releasedCompanions.set(shape, (list = []));
    list.push(b.scratchOffset);
  }

  constructor(opts: AeadBatchOptions = {}) {
    const base = align(opts.base ?? 0, 64);
    this.maxRecords = opts.maxRecords ?? 1024;
    this.arenaBytes = opts.arenaBytes ?? 4 << 20;
    this.ownsKeys = opts.keys === undefined;
    this.keySlots = opts.keys?.slots ?? opts.keySlots ?? 16384;
    this.scratchOffset = base;
    this.stageOffset = base + SCRATCH_SIZE;
    let at = this.stageOffset + STAGE_SIZE + MAX_STAGED_AAD + 64; // + a key for the raw helpers
    if (this.ownsKeys) {
      this.keysOffset = at;
      at += this.keySlots * KEY_SLOT_SIZE;
    } else {
      this.keysOffset = opts.keys!.offset;
    }
    this.recordsOffset = at;
    at += this.maxRecords * RECORD_SIZE;
    this.arenaOffset = at;
    at += this.arenaBytes;
    this.end = align(at, 64);
    const pages = Math.ceil(this.end / PAGE);
    if (pages > MAX_MEMORY_PAGES) throw new RangeError('AeadBatch layout exceeds the memory maximum');
    this.memory = opts.memory ?? new WA.Memory({ initial: pages, maximum: MAX_MEMORY_PAGES, shared: true });
    const have = this.memory.buffer.byteLength / PAGE;
    if (have < pages) this.memory.grow(pages - have);
    const instance = new WA.Instance(opts.module ?? AeadBatch.module(), { env: { memory: this.memory } });
    this.wasm = instance.exports as unknown as Exports;
    const buf = this.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.mem = Buffer.from(buf);
    this.arena = new Uint8Array(buf, this.arenaOffset, this.arenaBytes);
    this.records = new Uint32Array(buf, this.recordsOffset, this.maxRecords * RECORD_WORDS);
    this.results = new Int32Array(buf, this.recordsOffset, this.maxRecords * RECORD_WORDS);
    this.slotInUse = new Uint8Array(this.ownsKeys ? this.keySlots : 0);
    if (this.ownsKeys) for (let s = this.keySlots - 1; s >= 0; s--) this.freeSlots.push(s);
  }

  // ---- keys ----

  /** Installs a 32-byte key into a free slot and returns the slot number. */
  allocKey(raw: Uint8Array): number {
    if (raw.length !== KEY_SLOT_SIZE) throw new RangeError('AEAD key must be 32 bytes');
    if (!this.ownsKeys) throw new Error('this AeadBatch uses another instance\'s key table');
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new RangeError(`all ${this.keySlots} AEAD key slots are in use`);
    this.u8.set(raw, this.keysOffset + slot * KEY_SLOT_SIZE);
    this.slotInUse[slot] = 1;
    return slot;
  }

  /** Zeroes a slot's key and returns the slot to the free list (a slot not in use throws). */
  freeKey(slot: number): void {
    if (this.slotInUse[slot] !== 1) throw new Error(`AEAD key slot ${slot} is not in use`);
    this.slotInUse[slot] = 0;
    const at = this.keysOffset + slot * KEY_SLOT_SIZE;
    this.u8.fill(0, at, at + KEY_SLOT_SIZE);
    this.freeSlots.push(slot);
  }

  /** Key slots in use. */
  get keysInUse(): number {
    return this.keySlots - this.freeSlots.length;
  }

  // ---- batches ----

  /** Fills record i (offset absolute in u8; for open, length includes the tag). */
  setRecord(i: number, offset: number, length: number, slot: number, counterLo: number, counterHi: number, aadOffset = 0, aadLength = 0): void {
    const r = this.records;
    const w = i * RECORD_WORDS;
    r[w + R_OFFSET] = offset;
    r[w + R_LENGTH] = length;
    r[w + R_SLOT] = slot;
    r[w + R_COUNTER_LO] = counterLo;
    r[w + R_COUNTER_HI] = counterHi;
    r[w + R_AAD_OFFSET] = aadOffset;
    r[w + R_AAD_LENGTH] = aadLength;
  }

  /** Result of record i after a batch: the output length, or -1. */
  result(i: number): number {
    return this.results[i * RECORD_WORDS + R_RESULT];
  }

  /** Seals records 0..n-1 in place (tags appended). */
  sealBatch(n: number): void {
    if (n > this.maxRecords) throw new RangeError(`batch of ${n} exceeds ${this.maxRecords} records`);
    this.wasm.sealBatch(this.recordsOffset, n, this.keysOffset, this.keySlots, this.arenaOffset, this.arenaOffset + this.arenaBytes, this.scratchOffset);
  }

  /** Opens records 0..n-1 in place (tags checked; failures left untouched). */
  openBatch(n: number): void {
    if (n > this.maxRecords) throw new RangeError(`batch of ${n} exceeds ${this.maxRecords} records`);
    this.wasm.openBatch(this.recordsOffset, n, this.keysOffset, this.keySlots, this.arenaOffset, this.arenaOffset + this.arenaBytes, this.scratchOffset);
  }

  /**
   * Runs n records of another instance of this memory (a worker's job: `records` is that
   * instance's record table, arenaLo/arenaHi its arena) with this instance's scratch: seal if
   * `seal`, else open. The key table is this instance's (the same one, for a companion).
   */
  runRecords(seal: boolean, records: number, n: number, arenaLo: number, arenaHi: number): void {
    const run = seal ? this.wasm.sealBatch : this.wasm.openBatch;
    run(records, n, this.keysOffset, this.keySlots, arenaLo, arenaHi, this.scratchOffset);
  }

  /** Byte offset where this instance's layout begins (its scratch): `base` for the same layout elsewhere. */
  get scratchAt(): number {
    return this.scratchOffset;
  }

  /** Byte offset of this instance's record table (for runRecords on another thread). */
  get recordsAt(): number {
    return this.recordsOffset;
  }

  /** Seals u8[offset, offset + length) in place (no aad); returns length + 16. No bounds checks beyond the arguments'. */
  sealOne(slot: number, counterLo: number, counterHi: number, offset: number, length: number): number {
    this.checkArena(offset, length + TAG_SIZE, length > MAX_PLAINTEXT);
    return this.wasm.seal(this.keysOffset + slot * KEY_SLOT_SIZE, 0, counterLo, counterHi, offset, length, 0, 0, this.scratchOffset);
  }

  /** Opens u8[offset, offset + length) (ciphertext ‖ tag) in place; returns length - 16, or -1. */
  openOne(slot: number, counterLo: number, counterHi: number, offset: number, length: number): number {
    this.checkArena(offset, length, length > MAX_SEALED);
    return this.wasm.open(this.keysOffset + slot * KEY_SLOT_SIZE, 0, counterLo, counterHi, offset, length, 0, 0, this.scratchOffset);
  }

  private checkArena(offset: number, length: number, tooLong: boolean): void {
    if (tooLong || offset < this.arenaOffset || offset + length > this.arenaOffset + this.arenaBytes) throw new RangeError('packet outside the AeadBatch arena');
  }

  // ---- the staged single-packet path (WasmAead) ----

  /** seal() of the Aead interface: copies plaintext (and aad) in, seals, copies ciphertext ‖ tag out. */
  stagedSeal(slot: number, counterLo: number, counterHi: number, plaintext: Uint8Array, aad: Uint8Array | null, out: Uint8Array, outOff: number): number {
    const n = plaintext.length;
    if (n > MAX_PLAINTEXT) throw new RangeError(`plaintext longer than ${MAX_PLAINTEXT} bytes`);
    const p = this.stageOffset;
    this.u8.set(plaintext, p);
    const aadLen = this.stageAad(aad);
    const sealed = this.wasm.seal(this.keysOffset + slot * KEY_SLOT_SIZE, 0, counterLo, counterHi, p, n, p + STAGE_SIZE, aadLen, this.scratchOffset);
    this.mem.copy(out, outOff, p, p + sealed);
    return sealed;
  }

  /** open() of the Aead interface: out is written only if the packet authenticates. */
  stagedOpen(slot: number, counterLo: number, counterHi: number, sealed: Uint8Array, aad: Uint8Array | null, out: Uint8Array, outOff: number): number {
    const n = sealed.length;
    if (n < TAG_SIZE || n > MAX_SEALED) return -1;
    const p = this.stageOffset;
    this.u8.set(sealed, p);
    const aadLen = this.stageAad(aad);
    const opened = this.wasm.open(this.keysOffset + slot * KEY_SLOT_SIZE, 0, counterLo, counterHi, p, n, p + STAGE_SIZE, aadLen, this.scratchOffset);
    if (opened >= 0) this.mem.copy(out, outOff, p, p + opened);
    // the staging copy of a plaintext is not left behind in wasm memory
    this.u8.fill(0, p, p + n);
    return opened;
  }

  private stageAad(aad: Uint8Array | null): number {
    if (aad === null || aad.length === 0) return 0;
    if (aad.length > MAX_STAGED_AAD) throw new RangeError(`aad longer than ${MAX_STAGED_AAD} bytes`);
    this.u8.set(aad, this.stageOffset + STAGE_SIZE);
    return aad.length;
  }

  // ---- raw primitives, for known-answer tests (they allocate; not for the packet path) ----

  /** RFC 8439 §2.8 AEAD with any 12-byte nonce: returns ciphertext ‖ tag. */
  sealWithNonce(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const p = this.stageOffset;
    const k = p + STAGE_SIZE + MAX_STAGED_AAD;
    this.u8.set(key, k);
    this.u8.set(plaintext, p);
    const aadLen = this.stageAad(aad);
    const nv = new DataView(nonce.buffer, nonce.byteOffset, 12);
    const n = this.wasm.seal(k, nv.getUint32(0, true), nv.getUint32(4, true), nv.getUint32(8, true), p, plaintext.length, p + STAGE_SIZE, aadLen, this.scratchOffset);
    const out = this.u8.slice(p, p + n);
    this.u8.fill(0, p, p + STAGE_SIZE + MAX_STAGED_AAD + 32);
    return out;
  }

  /** RFC 8439 §2.8 AEAD open with any 12-byte nonce: the plaintext, or null. */
  openWithNonce(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
    const p = this.stageOffset;
    const k = p + STAGE_SIZE + MAX_STAGED_AAD;
    this.u8.set(key, k);
    this.u8.set(sealed, p);
    const aadLen = this.stageAad(aad);
    const nv = new DataView(nonce.buffer, nonce.byteOffset, 12);
    const n = this.wasm.open(k, nv.getUint32(0, true), nv.getUint32(4, true), nv.getUint32(8, true), p, sealed.length, p + STAGE_SIZE, aadLen, this.scratchOffset);
    const out = n < 0 ? null : this.u8.slice(p, p + n);
    this.u8.fill(0, p, p + STAGE_SIZE + MAX_STAGED_AAD + 32);
    return out;
  }

  /** data ^= ChaCha20 keystream (RFC 8439 §2.4) with a 12-byte nonce from block `counter`. */
  chacha20(key: Uint8Array, nonce: Uint8Array, counter: number, data: Uint8Array): void {
    const p = this.stageOffset;
    this.u8.set(key, p + STAGE_SIZE);
    this.u8.set(nonce, p + STAGE_SIZE + 32);
    this.u8.set(data, p);
    this.wasm.chacha20(p + STAGE_SIZE, p + STAGE_SIZE + 32, counter, p, data.length, this.scratchOffset);
    data.set(this.u8.subarray(p, p + data.length));
    this.u8.fill(0, p, p + STAGE_SIZE + 64);
  }

  /** Poly1305 (RFC 8439 §2.5) tag of data under a 32-byte one-time key. */
  poly1305(key: Uint8Array, data: Uint8Array): Uint8Array {
    const p = this.stageOffset;
    this.u8.set(key, p + STAGE_SIZE);
    this.u8.set(data, p);
    this.wasm.poly1305(p + STAGE_SIZE, p, data.length, p + STAGE_SIZE + 32, this.scratchOffset);
    const tag = this.u8.slice(p + STAGE_SIZE + 32, p + STAGE_SIZE + 48);
    this.u8.fill(0, p, p + STAGE_SIZE + 64);
    return tag;
  }
}

// ---- the `Aead` interface (./crypto.ts) over the default instance ----

const registry = new FinalizationRegistry<number>((slot) => AeadBatch.default().freeKey(slot));

/** An AEAD key installed in a slot of AeadBatch.default(); `slot` is usable in batch records. */
export class WasmAeadKey implements AeadKey {
  slot: number;
  constructor(raw: Uint8Array) {
    this.slot = AeadBatch.default().allocKey(raw);
    // a key dropped without zero() still gives its slot back (zeroed) when collected
    registry.register(this, this.slot, this);
  }
  zero(): void {
    if (this.slot < 0) return;
    registry.unregister(this);
    AeadBatch.default().freeKey(this.slot);
    this.slot = -1;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'AeadKey <redacted>';
  }
}

/** ChaCha20-Poly1305 through the wasm module, one packet per call (copied in and out once). */
export const wasmAead: Aead = {
  importKey(raw: Uint8Array): AeadKey {
    if (raw.length !== KEY_SLOT_SIZE) throw new RangeError('AEAD key must be 32 bytes');
    return new WasmAeadKey(raw);
  },
  seal(key, counterLo, counterHi, plaintext, aad, out, outOff): number {
    const slot = (key as WasmAeadKey).slot;
    if (slot < 0) throw new Error('AEAD key was zeroed');
    return AeadBatch.default().stagedSeal(slot, counterLo, counterHi, plaintext, aad, out, outOff);
  },
  open(key, counterLo, counterHi, sealed, aad, out, outOff): number {
    const slot = (key as WasmAeadKey).slot;
    if (slot < 0) throw new Error('AEAD key was zeroed');
    return AeadBatch.default().stagedOpen(slot, counterLo, counterHi, sealed, aad, out, outOff);
  },
};

/** Whether this runtime takes the module (it needs WebAssembly SIMD, relaxed SIMD and shared memory). */
export function wasmAeadSupported(): boolean {
  try {
    AeadBatch.module();
    return true;
  } catch {
    return false;
  }
}

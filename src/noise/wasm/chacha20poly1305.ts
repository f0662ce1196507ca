// @ts-nocheck — AssemblyScript source (v128, u32, load<T> …), compiled by `npm run build:wasm`
// into chacha20poly1305.wasm beside this file; not part of the TypeScript program.
//
// ChaCha20-Poly1305 (RFC 8439) with 128-bit SIMD, for sixpn's batch AEAD (../aead-batch.ts).
// This is the entry file: the AEAD (§2.8), its stitched seal and open, and the functions the wasm
// exports. asc follows its imports, the parts in ./chacha20poly1305/:
//   layout.ts    the scratch and record layout and the limits, mirrored in ../aead-batch.ts
//   chacha20.ts  ChaCha20, four blocks per call in 128-bit SIMD (chacha4), the byte-rotation masks
//   poly1305.ts  Poly1305: 26-bit limbs, scalar and two-lane SIMD; the stitched AEAD's radix 2^32
// The parts sit in a folder named after this file because binaryen (reorder-functions) orders
// functions called equally often by internal name, file path included: under
// chacha20poly1305/ the names sort as they did when this was one file, so the .wasm stayed the
// same bytes. Moving a part elsewhere can reorder the binary's functions (rebuild and commit it).
//
// - The AEAD (§2.8): one-time Poly1305 key = first 32 bytes of block 0; blocks 1.. encrypt. The
//   first four-block call yields the Poly1305 key and the first 192 bytes of keystream at once.
//   The MAC input is aad ‖ pad16 ‖ ciphertext ‖ pad16 ‖ len(aad) u64le ‖ len(ct) u64le, so
//   every Poly1305 block of the AEAD is a full block (partial ones are zero-padded).
// - Seal stitches Poly1305 into the ChaCha20 rounds (as OpenSSL does): while chacha4 encrypts
//   the next 256 bytes on the vector ports, it absorbs the 12 or 16 blocks of ciphertext written
//   before with a scalar Poly1305, one block after each column and each diagonal round of the
//   first 8 double rounds. The scalar chain (i64.mul, integer ports) is latency-bound and the
//   vector rounds are bound by the shuffle/shift ports, so one hides the other: at 1420 B the
//   seal costs ChaCha20 plus about a third of Poly1305 instead of both (1.69 → 1.38 µs, 8192 B:
//   9.0 → 6.9 µs, CPU time). The stitched Poly1305 is in radix 2^32
//   (chacha20poly1305/poly1305.ts), 20 multiplies per block instead of 25. The blocks left at the
//   end of a packet (its last 256 bytes or less, padded, and the lengths block) are copied aside
//   and absorbed by the next packet's first ChaCha20 call (the one that yields its Poly1305 key
//   and has nothing of its own to absorb): the tag is written one packet late, still before that
//   packet's bytes are touched, so records run as in sequence. The last packet of a batch (or one
//   sealed alone) finishes in the 26-bit code after the accumulator is carried into 26-bit limbs.
//   1420 B 1.38 → 1.32 µs, 64 B 0.28 → 0.26 µs (CPU time).
//   Open authenticates before it decrypts (see below), so it stitches Poly1305 over the
//   ciphertext into ChaCha20 calls that write the keystream to a 64 KiB scratch buffer instead,
//   and xors it in (zeroing the buffer as it goes) only once the tag matches: 1420 B 1.99 →
//   1.68 µs, 8192 B 9.7 → 7.6 µs (CPU time, with the bench's copy of the sealed batch).
// - open authenticates first, compares tags in constant time, and decrypts only if they match:
//   a rejected packet's bytes are left exactly as they came in (ciphertext and tag), and the
//   stitched open's keystream buffer is zeroed either way.
//
// Memory: this module owns no layout. The caller passes every pointer: key slots (32 bytes
// each), records (RECORD_SIZE bytes each), the packet arena bounds and a SCRATCH_SIZE-byte
// scratch area, which holds key-derived bytes during a call and is zeroed before each call
// returns. The memory is imported (env.memory, shared) so that one memory can serve several
// threads, each with its own scratch, records and arena.

import {
  MAX_PLAINTEXT, RECORD_SIZE, SCRATCH_BLOCK, SCRATCH_KS, SCRATCH_KSBUF, SCRATCH_PEND,
  SCRATCH_PEND_SIZE, SCRATCH_Q, SCRATCH_TAG, SCRATCH_TAIL, SCRATCH_USED, TAG_SIZE,
} from './chacha20poly1305/layout';
import { chacha4, chachaXor, rotMasks, xorBytes } from './chacha20poly1305/chacha20';
import {
  polyBlocks, polyFinish, polyFull, polyInit, polyPadded, q32Block, q32Init, q32ToLimbs,
} from './chacha20poly1305/poly1305';

// ---- AEAD ----

/** Zeroes the key-derived bytes in scratch. */
function wipe(scr: usize): void {
  memory.fill(scr, 0, SCRATCH_USED);
  memory.fill(scr + SCRATCH_PEND, 0, SCRATCH_PEND_SIZE); // (ciphertext, not secret; left zero too)
}

/**
 * Computes the AEAD tag over aad and the ciphertext ct[0..n) into scr + SCRATCH_TAG. Expects
 * the first four keystream blocks (counter 0..3) in scr + SCRATCH_KS.
 */
function aeadTag(scr: usize, aad: usize, aadLen: u32, ct: usize, n: u32): void {
  polyInit(scr, scr + SCRATCH_KS);
  if (aadLen > 0) polyPadded(scr, aad, aadLen);
  polyPadded(scr, ct, n);
  const b = scr + SCRATCH_BLOCK;
  store<u64>(b, <u64>aadLen, 0);
  store<u64>(b, <u64>n, 8);
  polyBlocks(scr, b, 1, 1 << 24);
  polyFinish(scr, scr + SCRATCH_TAG);
}

/**
 * Seal without aad of p[0..n) in place, Poly1305 stitched into ChaCha20 and pipelined across the
 * packets of a batch. The packet before it (if pendNb > 0) left its last pendNb Poly1305 blocks at
 * scr + SCRATCH_PEND and its accumulator in scr + SCRATCH_Q: this packet's first ChaCha20 call
 * (the Poly1305 key and 192 bytes of keystream, which has nothing of its own to absorb) absorbs
 * them, and that tag goes to pendTag. Then each further call encrypts 256 bytes (the last one,
 * partial, through the tail keystream) and absorbs the ciphertext written before it: bytes
 * [0, 192) in the first, then 256 at a time. What is left (up to 256 bytes of ciphertext, zero
 * padded, and the lengths block: at most 17 blocks, made even by absorbing the first one here)
 * is copied to scr + SCRATCH_PEND for the next packet, or for flushSeal; returns their count
 * (0 for n = 0, whose tag is written at once). The tag goes to p + n.
 */
function sealPiped(key: usize, n0: u32, n1: u32, n2: u32, p: usize, n: u32, scr: usize, pendNb: u32, pendTag: usize): u32 {
  chacha4(key, 0, n0, n1, n2, scr + SCRATCH_KS, false, scr, scr + SCRATCH_PEND, pendNb);
  if (pendNb > 0) {
    q32ToLimbs(scr);
    polyFinish(scr, pendTag);
  }
  q32Init(scr, scr + SCRATCH_KS);
  xorBytes(p, scr + SCRATCH_KS + 64, n < 192 ? n : 192);
  let q: u32 = 0;
  let pos: u32 = 192;
  let ctr: u32 = 4;
  for (; pos + 256 <= n; pos += 256) {
    const nb = (pos - q) >> 4;
    chacha4(key, ctr, n0, n1, n2, p + pos, true, scr, p + q, nb);
    q += nb << 4;
    ctr += 4;
  }
  if (pos < n) {
    const nb = (pos - q) >> 4;
    chacha4(key, ctr, n0, n1, n2, scr + SCRATCH_TAIL, false, scr, p + q, nb);
    q += nb << 4;
    xorBytes(p + pos, scr + SCRATCH_TAIL, n - pos);
  }
  // the rest of the ciphertext (1 to 256 bytes unless n = 0), zero padded to a block, then the
  // lengths block, an even number of blocks for the next packet's first call: if odd, the first
  // (full) one now; for n = 0 the lengths block alone, now, and the tag is written here
  const d = scr + SCRATCH_PEND;
  if (n == 0) {
    store<u64>(d, 0, 0);
    store<u64>(d, 0, 8);
    q32Block(scr, d);
    q32ToLimbs(scr);
    polyFinish(scr, p);
    return 0;
  }
  if ((((n - q + 15) >> 4) & 1) == 0) {
    q32Block(scr, p + q);
    q += 16;
  }
  const rest = n - q;
  const src = p + q;
  let i: u32 = 0;
  for (; i + 16 <= rest; i += 16) v128.store(d + i, v128.load(src + i));
  if (i < rest) {
    v128.store(d + i, i64x2.splat(0));
    for (let j = i; j < rest; j++) store<u8>(d + j, load<u8>(src + j));
    i += 16;
  }
  store<u64>(d + i, 0, 0); // len(aad)
  store<u64>(d + i, <u64>n, 8); // len(ciphertext)
  return (i >> 4) + 1;
}

/**
 * Finishes the tag of the last packet sealed by sealPiped (its blocks at scr + SCRATCH_PEND, its
 * Poly1305 key still in scr + SCRATCH_KS) into `tag`, without a next packet to stitch them into:
 * through the 26-bit code (two lanes for four blocks or more).
 */
function flushSeal(scr: usize, pendNb: u32, tag: usize): void {
  polyInit(scr, scr + SCRATCH_KS);
  q32ToLimbs(scr);
  polyFull(scr, scr + SCRATCH_PEND, pendNb);
  polyFinish(scr, tag);
}

/**
 * The end of a stitched tag (no aad): ct[q..n) (q a multiple of 16), its padding and the lengths
 * block go through the 26-bit code after the radix-2^32 accumulator is carried into it.
 */
function stitchedFinish(scr: usize, ct: usize, q: u32, n: u32): void {
  q32ToLimbs(scr);
  polyPadded(scr, ct + q, n - q);
  const b = scr + SCRATCH_BLOCK;
  store<u64>(b, 0, 0);
  store<u64>(b, <u64>n, 8);
  polyBlocks(scr, b, 1, 1 << 24);
  polyFinish(scr, scr + SCRATCH_TAG);
}

/**
 * Open's first pass without aad, n > 192: the tag of ct[0..n) to scr + SCRATCH_TAG and the
 * keystream for bytes [192, n) (rounded up to 256) to scr + SCRATCH_KSBUF, Poly1305 stitched into
 * the ChaCha20 calls as in sealPiped (here all of the ciphertext is there from the start, so
 * each call absorbs the next 16 blocks). Nothing is written to the packet. Expects the first
 * four keystream blocks in scr + SCRATCH_KS.
 */
function openStitched(key: usize, n0: u32, n1: u32, n2: u32, ct: usize, n: u32, scr: usize): void {
  polyInit(scr, scr + SCRATCH_KS);
  q32Init(scr, scr + SCRATCH_KS);
  const full = n >> 4;
  let qb: u32 = 0; // blocks absorbed
  let ks = scr + SCRATCH_KSBUF;
  let ctr: u32 = 4;
  for (let pos: u32 = 192; pos < n; pos += 256) {
    let nb = full - qb;
    nb = (nb < 16 ? nb : 16) & ~1; // chacha4 absorbs blocks in pairs
    chacha4(key, ctr, n0, n1, n2, ks, false, scr, ct + (<usize>qb << 4), nb);
    qb += nb;
    ctr += 4;
    ks += 256;
  }
  stitchedFinish(scr, ct, qb << 4, n);
}

/** p[0..n) ^= ks[0..n), then ks[0..m) = 0 (m ≥ n, a multiple of 16): open's second pass. */
function xorWipe(p: usize, ks: usize, n: u32, m: u32): void {
  const zero = i64x2.splat(0);
  let i: u32 = 0;
  for (; i + 16 <= n; i += 16) {
    v128.store(p + i, v128.xor(v128.load(p + i), v128.load(ks + i)));
    v128.store(ks + i, zero);
  }
  for (let j = i; j < n; j++) store<u8>(p + j, load<u8>(p + j) ^ load<u8>(ks + j));
  for (; i < m; i += 16) v128.store(ks + i, zero);
}

/** Encrypts p[0..n) with blocks 1.. (blocks 1..3 already in scratch from the first call). */
function encryptBody(key: usize, n0: u32, n1: u32, n2: u32, p: usize, n: u32, scr: usize): void {
  const first = n < 192 ? n : 192;
  xorBytes(p, scr + SCRATCH_KS + 64, first);
  if (n > 192) chachaXor(key, 4, n0, n1, n2, p + 192, n - 192, scr);
}

/** Seals p[0..n) in place and writes the tag at p + n. Nonce words n0 ‖ lo ‖ hi (WireGuard: n0 = 0). */
function sealOne(key: usize, n0: u32, lo: u32, hi: u32, p: usize, n: u32, aad: usize, aadLen: u32, scr: usize): void {
  chacha4(key, 0, n0, lo, hi, scr + SCRATCH_KS, false, scr, 0, 0);
  encryptBody(key, n0, lo, hi, p, n, scr);
  aeadTag(scr, aad, aadLen, p, n);
  v128.store(p + n, v128.load(scr + SCRATCH_TAG));
}

/** Opens p[0..n + 16) in place; returns n, or -1 (p untouched) if the tag does not match. */
function openOne(key: usize, n0: u32, lo: u32, hi: u32, p: usize, n: u32, aad: usize, aadLen: u32, scr: usize): i32 {
  chacha4(key, 0, n0, lo, hi, scr + SCRATCH_KS, false, scr, 0, 0);
  const stitched = aadLen == 0 && n > 192;
  if (stitched) openStitched(key, n0, lo, hi, p, n, scr);
  else aeadTag(scr, aad, aadLen, p, n);
  // constant-time comparison: or of xors, one branch on the result
  const t = scr + SCRATCH_TAG;
  const diff = (load<u64>(t, 0) ^ load<u64>(p + n, 0)) | (load<u64>(t, 8) ^ load<u64>(p + n, 8));
  // the keystream buffer written: one 256-byte chunk per ChaCha20 call past the first
  const ksUsed: u32 = stitched ? (n - 192 + 255) & ~255 : 0;
  if (diff != 0) {
    if (stitched) xorWipe(p, scr + SCRATCH_KSBUF, 0, ksUsed);
    return -1;
  }
  if (stitched) {
    xorBytes(p, scr + SCRATCH_KS + 64, 192);
    xorWipe(p + 192, scr + SCRATCH_KSBUF, n - 192, ksUsed);
  } else {
    encryptBody(key, n0, lo, hi, p, n, scr);
  }
  return <i32>n;
}

function inArena(off: u32, len: u32, lo: u32, hi: u32): bool {
  return off >= lo && off <= hi && len <= hi - off;
}

// ---- exports ----

/**
 * Seals n records at `records`. Each record's packet (offset, length ≤ 65535) is encrypted in
 * place with the key at keys + 32·slot and its tag written behind it; result = length + 16, or
 * -1 if the record is out of bounds. Packets and aad must lie in [arenaLo, arenaHi).
 */
export function sealBatch(records: usize, n: u32, keys: usize, keySlots: u32, arenaLo: u32, arenaHi: u32, scr: usize): void {
  rotMasks(scr);
  let pendNb: u32 = 0; // blocks of the last packet sealed whose tag is not written yet (sealPiped)
  let pendTag: usize = 0;
  for (let i: u32 = 0; i < n; i++) {
    const r = records + <usize>i * RECORD_SIZE;
    const off = load<u32>(r, 0);
    const len = load<u32>(r, 4);
    const slot = load<u32>(r, 8);
    const aadOff = load<u32>(r, 20);
    const aadLen = load<u32>(r, 24);
    if (len > MAX_PLAINTEXT || slot >= keySlots || !inArena(off, len + TAG_SIZE, arenaLo, arenaHi) || (aadLen > 0 && !inArena(aadOff, aadLen, arenaLo, arenaHi))) {
      store<i32>(r, -1, 28);
      continue;
    }
    const key = keys + (<usize>slot << 5);
    // the previous packet's tag is still to be written: sealPiped writes it after this packet's
    // first ChaCha20 call and before it reads this packet's bytes, so records still run as in
    // sequence; the aad path has no place for it (its scratch is the same), so it is written first
    if (pendNb > 0 && aadLen > 0) {
      flushSeal(scr, pendNb, pendTag);
      pendNb = 0;
    }
    if (aadLen == 0) {
      pendNb = sealPiped(key, 0, load<u32>(r, 12), load<u32>(r, 16), off, len, scr, pendNb, pendTag);
      pendTag = off + len;
    } else {
      sealOne(key, 0, load<u32>(r, 12), load<u32>(r, 16), off, len, aadOff, aadLen, scr);
    }
    store<u32>(r, len + TAG_SIZE, 28);
  }
  if (pendNb > 0) flushSeal(scr, pendNb, pendTag);
  wipe(scr);
}

/**
 * Opens n records: each packet (offset, length = ciphertext + 16-byte tag) is authenticated,
 * then decrypted in place; result = length - 16, or -1 (packet bytes untouched) if it does not
 * authenticate, is shorter than a tag or is out of bounds.
 */
export function openBatch(records: usize, n: u32, keys: usize, keySlots: u32, arenaLo: u32, arenaHi: u32, scr: usize): void {
  rotMasks(scr);
  for (let i: u32 = 0; i < n; i++) {
    const r = records + <usize>i * RECORD_SIZE;
    const off = load<u32>(r, 0);
    const len = load<u32>(r, 4);
    const slot = load<u32>(r, 8);
    const aadOff = load<u32>(r, 20);
    const aadLen = load<u32>(r, 24);
    if (len < TAG_SIZE || len > MAX_PLAINTEXT + TAG_SIZE || slot >= keySlots || !inArena(off, len, arenaLo, arenaHi) || (aadLen > 0 && !inArena(aadOff, aadLen, arenaLo, arenaHi))) {
      store<i32>(r, -1, 28);
      continue;
    }
    store<i32>(r, openOne(keys + (<usize>slot << 5), 0, load<u32>(r, 12), load<u32>(r, 16), off, len - TAG_SIZE, aadOff, aadLen, scr), 28);
  }
  wipe(scr);
}

/**
 * One packet, arguments instead of a record (the `Aead` interface path). The nonce is the words
 * n0 ‖ lo ‖ hi (WireGuard: n0 = 0, then the counter). Returns n + 16.
 */
export function seal(key: usize, n0: u32, lo: u32, hi: u32, p: usize, n: u32, aad: usize, aadLen: u32, scr: usize): i32 {
  rotMasks(scr);
  if (aadLen > 0) {
    sealOne(key, n0, lo, hi, p, n, aad, aadLen, scr);
  } else {
    const pendNb = sealPiped(key, n0, lo, hi, p, n, scr, 0, 0);
    if (pendNb > 0) flushSeal(scr, pendNb, p + n);
  }
  wipe(scr);
  return <i32>(n + TAG_SIZE);
}

/** One packet: p[0..n) is ciphertext ‖ tag. Returns n - 16, or -1 (p untouched). */
export function open(key: usize, n0: u32, lo: u32, hi: u32, p: usize, n: u32, aad: usize, aadLen: u32, scr: usize): i32 {
  rotMasks(scr);
  if (n < TAG_SIZE) return -1;
  const r = openOne(key, n0, lo, hi, p, n - TAG_SIZE, aad, aadLen, scr);
  wipe(scr);
  return r;
}

/** Raw ChaCha20 (§2.4) for known-answer tests: p[0..n) ^= keystream(key, nonce at `nonce`, ctr). */
export function chacha20(key: usize, nonce: usize, ctr: u32, p: usize, n: u32, scr: usize): void {
  rotMasks(scr);
  chachaXor(key, ctr, load<u32>(nonce, 0), load<u32>(nonce, 4), load<u32>(nonce, 8), p, n, scr);
  wipe(scr);
}

/** Raw Poly1305 (§2.5) for known-answer tests: the tag of p[0..n) under the 32-byte key goes to out. */
export function poly1305(key: usize, p: usize, n: u32, out: usize, scr: usize): void {
  polyInit(scr, key);
  const full = n >> 4;
  polyFull(scr, p, full);
  const rest = n & 15;
  if (rest > 0) {
    // the final partial block carries a 0x01 byte after the message and no 2^128 bit
    const b = scr + SCRATCH_BLOCK;
    v128.store(b, i64x2.splat(0));
    memory.copy(b, p + (full << 4), rest);
    store<u8>(b + rest, 1);
    polyBlocks(scr, b, 1, 0);
  }
  polyFinish(scr, out);
  wipe(scr);
}

// @ts-nocheck — AssemblyScript source (v128, u32, load<T> …), a part of chacha20poly1305.wasm: asc
// compiles it from ../chacha20poly1305.ts, the entry file, which imports it; not part of the
// TypeScript program.
//
// ChaCha20 (RFC 8439 §2.3, §2.4) with 128-bit SIMD, for the AEAD in ../chacha20poly1305.ts.
//
// - Four blocks at a time: sixteen v128 state words, lane j holding block counter + j, so one
//   i32x4 add/xor/rotate is one step of four quarter-rounds in four blocks. The rotations by 16
//   and 8 are one pshufb each (i8x16.relaxed_swizzle, exact for in-range indices) whose mask is
//   loaded from memory at each use, sixteen copies at scr + SCRATCH_ROT, one per use site, so that
//   neither binaryen nor V8 merges them into one long-lived register: x64 gives V8 fifteen xmm
//   registers for sixteen state words, so a mask held in a register spills state (measured 25%
//   slower), and a constant mask is materialized per use (5 instructions; i8x16.shuffle's rotation
//   by 16 is pshuflw + pshufhw). The load goes to a load port and the rotate is one shuffle-port op
//   instead of two shifts and an or, the ports that bound this loop: ~8% faster. By 12 and 7: two
//   shifts and an or. The four keystream blocks are transposed back to byte order with unpack
//   shuffles and xored 16 bytes at a time.
// - chacha4 also carries the stitched seal's and open's Poly1305 (radix 2^32, see poly1305.ts): it
//   absorbs up to 20 blocks between its rounds, two per double round, in scalar code that runs on
//   the integer ports while the rounds keep the vector ports busy. Why and how: "Seal stitches" at
//   the top of ../chacha20poly1305.ts.

import { SCRATCH_Q, SCRATCH_QR, SCRATCH_ROT, SCRATCH_TAIL } from './layout';
import { M32 } from './poly1305';

const ROT16 = i8x16(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
const ROT8 = i8x16(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);

/** Writes the rotation masks chacha4 loads: slots 0–3 and 8–11 rotate by 16, 4–7 and 12–15 by 8. */
export function rotMasks(scr: usize): void {
  for (let k: usize = 0; k < 16; k++) v128.store(scr + SCRATCH_ROT + (k << 4), (k & 4) != 0 ? ROT8 : ROT16);
}

/** x rotated left by 16 or 8 in each 32-bit lane, by the mask at m (a slot of rotMasks). */
// @inline
function rotBytes(x: v128, m: usize): v128 {
  return i8x16.relaxed_swizzle(x, v128.load(m));
}

/**
 * Four ChaCha20 blocks (counters ctr .. ctr+3, nonce words n0 n1 n2, key at `key`). If `xor`,
 * the 256 bytes at `p` are xored with them in place; otherwise the keystream is stored at `p`.
 * `scr` is the call's scratch, with the rotation masks written (rotMasks). Meanwhile it absorbs
 * `nb` (even, ≤ 20) full Poly1305 blocks at `pp` into the radix-2^32 accumulator at
 * scr + SCRATCH_Q (q32Init), two per double round: see "Seal stitches" at the top of
 * ../chacha20poly1305.ts.
 */
export function chacha4(key: usize, ctr: u32, n0: u32, n1: u32, n2: u32, p: usize, xor: bool, scr: usize, pp: usize, nb: u32): void {
  const m = scr + SCRATCH_ROT;
  let h0: u64 = 0, h1: u64 = 0, h2: u64 = 0, h3: u64 = 0, h4: u64 = 0;
  if (nb > 0) {
    h0 = load<u64>(scr + SCRATCH_Q, 0); h1 = load<u64>(scr + SCRATCH_Q, 8); h2 = load<u64>(scr + SCRATCH_Q, 16);
    h3 = load<u64>(scr + SCRATCH_Q, 24); h4 = load<u64>(scr + SCRATCH_Q, 32);
  }
  const pend = pp + (<usize>nb << 4);
  // Only the sixteen state words stay live through the rounds (x64 has sixteen xmm registers);
  // the input words are loaded again for the final addition.
  let x0 = i32x4.splat(0x61707865); // "expand 32-byte k"
  let x1 = i32x4.splat(0x3320646e);
  let x2 = i32x4.splat(0x79622d32);
  let x3 = i32x4.splat(0x6b206574);
  let x4 = v128.load32_splat(key, 0), x5 = v128.load32_splat(key, 4);
  let x6 = v128.load32_splat(key, 8), x7 = v128.load32_splat(key, 12);
  let x8 = v128.load32_splat(key, 16), x9 = v128.load32_splat(key, 20);
  let x10 = v128.load32_splat(key, 24), x11 = v128.load32_splat(key, 28);
  let x12 = i32x4.add(i32x4.splat(ctr), i32x4(0, 1, 2, 3));
  let x13 = i32x4.splat(n0), x14 = i32x4.splat(n1), x15 = i32x4.splat(n2);
  for (let i = 0; i < 10; i++) {
    // column round: QR(0,4,8,12) QR(1,5,9,13) QR(2,6,10,14) QR(3,7,11,15), interleaved
    x0 = i32x4.add(x0, x4); x1 = i32x4.add(x1, x5); x2 = i32x4.add(x2, x6); x3 = i32x4.add(x3, x7);
    x12 = rotBytes(v128.xor(x12, x0), m + 0); x13 = rotBytes(v128.xor(x13, x1), m + 16); x14 = rotBytes(v128.xor(x14, x2), m + 32); x15 = rotBytes(v128.xor(x15, x3), m + 48);
    x8 = i32x4.add(x8, x12); x9 = i32x4.add(x9, x13); x10 = i32x4.add(x10, x14); x11 = i32x4.add(x11, x15);
    x4 = v128.xor(x4, x8); x5 = v128.xor(x5, x9); x6 = v128.xor(x6, x10); x7 = v128.xor(x7, x11);
    x4 = v128.or(i32x4.shl(x4, 12), i32x4.shr_u(x4, 20)); x5 = v128.or(i32x4.shl(x5, 12), i32x4.shr_u(x5, 20));
    x6 = v128.or(i32x4.shl(x6, 12), i32x4.shr_u(x6, 20)); x7 = v128.or(i32x4.shl(x7, 12), i32x4.shr_u(x7, 20));
    x0 = i32x4.add(x0, x4); x1 = i32x4.add(x1, x5); x2 = i32x4.add(x2, x6); x3 = i32x4.add(x3, x7);
    x12 = rotBytes(v128.xor(x12, x0), m + 64); x13 = rotBytes(v128.xor(x13, x1), m + 80); x14 = rotBytes(v128.xor(x14, x2), m + 96); x15 = rotBytes(v128.xor(x15, x3), m + 112);
    x8 = i32x4.add(x8, x12); x9 = i32x4.add(x9, x13); x10 = i32x4.add(x10, x14); x11 = i32x4.add(x11, x15);
    x4 = v128.xor(x4, x8); x5 = v128.xor(x5, x9); x6 = v128.xor(x6, x10); x7 = v128.xor(x7, x11);
    x4 = v128.or(i32x4.shl(x4, 7), i32x4.shr_u(x4, 25)); x5 = v128.or(i32x4.shl(x5, 7), i32x4.shr_u(x5, 25));
    x6 = v128.or(i32x4.shl(x6, 7), i32x4.shr_u(x6, 25)); x7 = v128.or(i32x4.shl(x7, 7), i32x4.shr_u(x7, 25));
    // one Poly1305 block (radix 2^32) between the column and the diagonal round, one after the
    // diagonal round (the same code twice: it updates this function's h0..h4 in registers); in
    // pairs (nb is even), one check per double round (a second check costs ~5% at 8192 B)
    const more = pp < pend;
    if (more) {
      const q = scr + SCRATCH_QR;
      // h += m, with the 2^128 bit; carried so that h0..h3 < 2^32 (and h4 ≤ 6)
      let t = h0 + <u64>load<u32>(pp, 0); h0 = t & M32;
      t = h1 + <u64>load<u32>(pp, 4) + (t >> 32); h1 = t & M32;
      t = h2 + <u64>load<u32>(pp, 8) + (t >> 32); h2 = t & M32;
      t = h3 + <u64>load<u32>(pp, 12) + (t >> 32); h3 = t & M32;
      h4 += (t >> 32) + 1;
      const r0 = <u64>load<u32>(q, 0), r1 = <u64>load<u32>(q, 4), r2 = <u64>load<u32>(q, 8), r3 = <u64>load<u32>(q, 12);
      const s1 = <u64>load<u32>(q, 16), s2 = <u64>load<u32>(q, 20), s3 = <u64>load<u32>(q, 24);
      // h *= r: products of limbs i + j ≥ 4 wrap to limb i + j - 4 times s (2^128 = 5/4 mod p);
      // each is below 2^60.4 and each sum below 2^63
      const d0 = h0 * r0 + h1 * s3 + h2 * s2 + h3 * s1;
      let d1 = h0 * r1 + h1 * r0 + h2 * s3 + h3 * s2 + h4 * s1;
      let d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s3 + h4 * s2;
      let d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s3;
      const d4 = h4 * r0;
      // carry d0..d3 into 32-bit limbs; bits from 2^130 up fold back × 5 (c = (h4 >> 2) · 5)
      d1 += d0 >> 32;
      d2 += d1 >> 32;
      d3 += d2 >> 32;
      h4 = d4 + (d3 >> 32);
      const c = (h4 >> 2) + (h4 & ~3);
      h4 &= 3;
      t = (d0 & M32) + c; h0 = t & M32;
      h1 = (d1 & M32) + (t >> 32); // ≤ 2^32 + 1: the next block's addition carries it
      h2 = d2 & M32;
      h3 = d3 & M32;
      pp += 16;
    }
    // diagonal round: QR(0,5,10,15) QR(1,6,11,12) QR(2,7,8,13) QR(3,4,9,14)
    x0 = i32x4.add(x0, x5); x1 = i32x4.add(x1, x6); x2 = i32x4.add(x2, x7); x3 = i32x4.add(x3, x4);
    x15 = rotBytes(v128.xor(x15, x0), m + 128); x12 = rotBytes(v128.xor(x12, x1), m + 144); x13 = rotBytes(v128.xor(x13, x2), m + 160); x14 = rotBytes(v128.xor(x14, x3), m + 176);
    x10 = i32x4.add(x10, x15); x11 = i32x4.add(x11, x12); x8 = i32x4.add(x8, x13); x9 = i32x4.add(x9, x14);
    x5 = v128.xor(x5, x10); x6 = v128.xor(x6, x11); x7 = v128.xor(x7, x8); x4 = v128.xor(x4, x9);
    x5 = v128.or(i32x4.shl(x5, 12), i32x4.shr_u(x5, 20)); x6 = v128.or(i32x4.shl(x6, 12), i32x4.shr_u(x6, 20));
    x7 = v128.or(i32x4.shl(x7, 12), i32x4.shr_u(x7, 20)); x4 = v128.or(i32x4.shl(x4, 12), i32x4.shr_u(x4, 20));
    x0 = i32x4.add(x0, x5); x1 = i32x4.add(x1, x6); x2 = i32x4.add(x2, x7); x3 = i32x4.add(x3, x4);
    x15 = rotBytes(v128.xor(x15, x0), m + 192); x12 = rotBytes(v128.xor(x12, x1), m + 208); x13 = rotBytes(v128.xor(x13, x2), m + 224); x14 = rotBytes(v128.xor(x14, x3), m + 240);
    x10 = i32x4.add(x10, x15); x11 = i32x4.add(x11, x12); x8 = i32x4.add(x8, x13); x9 = i32x4.add(x9, x14);
    x5 = v128.xor(x5, x10); x6 = v128.xor(x6, x11); x7 = v128.xor(x7, x8); x4 = v128.xor(x4, x9);
    x5 = v128.or(i32x4.shl(x5, 7), i32x4.shr_u(x5, 25)); x6 = v128.or(i32x4.shl(x6, 7), i32x4.shr_u(x6, 25));
    x7 = v128.or(i32x4.shl(x7, 7), i32x4.shr_u(x7, 25)); x4 = v128.or(i32x4.shl(x4, 7), i32x4.shr_u(x4, 25));
    if (more) {
      const q = scr + SCRATCH_QR;
      let t = h0 + <u64>load<u32>(pp, 0); h0 = t & M32;
      t = h1 + <u64>load<u32>(pp, 4) + (t >> 32); h1 = t & M32;
      t = h2 + <u64>load<u32>(pp, 8) + (t >> 32); h2 = t & M32;
      t = h3 + <u64>load<u32>(pp, 12) + (t >> 32); h3 = t & M32;
      h4 += (t >> 32) + 1;
      const r0 = <u64>load<u32>(q, 0), r1 = <u64>load<u32>(q, 4), r2 = <u64>load<u32>(q, 8), r3 = <u64>load<u32>(q, 12);
      const s1 = <u64>load<u32>(q, 16), s2 = <u64>load<u32>(q, 20), s3 = <u64>load<u32>(q, 24);
      const d0 = h0 * r0 + h1 * s3 + h2 * s2 + h3 * s1;
      let d1 = h0 * r1 + h1 * r0 + h2 * s3 + h3 * s2 + h4 * s1;
      let d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s3 + h4 * s2;
      let d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s3;
      const d4 = h4 * r0;
      d1 += d0 >> 32;
      d2 += d1 >> 32;
      d3 += d2 >> 32;
      h4 = d4 + (d3 >> 32);
      const c = (h4 >> 2) + (h4 & ~3);
      h4 &= 3;
      t = (d0 & M32) + c; h0 = t & M32;
      h1 = (d1 & M32) + (t >> 32);
      h2 = d2 & M32;
      h3 = d3 & M32;
      pp += 16;
    }
  }
  if (nb > 0) {
    store<u64>(scr + SCRATCH_Q, h0, 0); store<u64>(scr + SCRATCH_Q, h1, 8); store<u64>(scr + SCRATCH_Q, h2, 16);
    store<u64>(scr + SCRATCH_Q, h3, 24); store<u64>(scr + SCRATCH_Q, h4, 32);
  }
  // add the input state (§2.3 step "add the original input words")
  x0 = i32x4.add(x0, i32x4.splat(0x61707865));
  x1 = i32x4.add(x1, i32x4.splat(0x3320646e));
  x2 = i32x4.add(x2, i32x4.splat(0x79622d32));
  x3 = i32x4.add(x3, i32x4.splat(0x6b206574));
  x4 = i32x4.add(x4, v128.load32_splat(key, 0)); x5 = i32x4.add(x5, v128.load32_splat(key, 4));
  x6 = i32x4.add(x6, v128.load32_splat(key, 8)); x7 = i32x4.add(x7, v128.load32_splat(key, 12));
  x8 = i32x4.add(x8, v128.load32_splat(key, 16)); x9 = i32x4.add(x9, v128.load32_splat(key, 20));
  x10 = i32x4.add(x10, v128.load32_splat(key, 24)); x11 = i32x4.add(x11, v128.load32_splat(key, 28));
  x12 = i32x4.add(x12, i32x4.add(i32x4.splat(ctr), i32x4(0, 1, 2, 3)));
  x13 = i32x4.add(x13, i32x4.splat(n0)); x14 = i32x4.add(x14, i32x4.splat(n1)); x15 = i32x4.add(x15, i32x4.splat(n2));
  // transpose: group g (words 4g..4g+3) of block j goes to p + 64j + 16g
  emit4(x0, x1, x2, x3, p, xor);
  emit4(x4, x5, x6, x7, p + 16, xor);
  emit4(x8, x9, x10, x11, p + 32, xor);
  emit4(x12, x13, x14, x15, p + 48, xor);
}

// Transposes four word vectors (a = word 0 of blocks 0..3, …) into four 16-byte rows and
// stores (or xors) row j at p + 64j.
// @inline
function emit4(a: v128, b: v128, c: v128, d: v128, p: usize, xor: bool): void {
  const ab0 = i8x16.shuffle(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23); // a0 b0 a1 b1
  const cd0 = i8x16.shuffle(c, d, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23); // c0 d0 c1 d1
  const ab1 = i8x16.shuffle(a, b, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31); // a2 b2 a3 b3
  const cd1 = i8x16.shuffle(c, d, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31); // c2 d2 c3 d3
  const r0 = i8x16.shuffle(ab0, cd0, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const r1 = i8x16.shuffle(ab0, cd0, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const r2 = i8x16.shuffle(ab1, cd1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const r3 = i8x16.shuffle(ab1, cd1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  if (xor) {
    v128.store(p, v128.xor(v128.load(p, 0), r0), 0);
    v128.store(p, v128.xor(v128.load(p, 64), r1), 64);
    v128.store(p, v128.xor(v128.load(p, 128), r2), 128);
    v128.store(p, v128.xor(v128.load(p, 192), r3), 192);
  } else {
    v128.store(p, r0, 0);
    v128.store(p, r1, 64);
    v128.store(p, r2, 128);
    v128.store(p, r3, 192);
  }
}

/** p[0..n) ^= ks[0..n), n ≤ 256. */
export function xorBytes(p: usize, ks: usize, n: u32): void {
  let i: u32 = 0;
  for (; i + 16 <= n; i += 16) v128.store(p + i, v128.xor(v128.load(p + i), v128.load(ks + i)));
  for (; i < n; i++) store<u8>(p + i, load<u8>(p + i) ^ load<u8>(ks + i));
}

/**
 * Xors p[0..n) with the ChaCha20 keystream from block counter `ctr`; `scr` is scratch for a
 * partial last group of four blocks.
 */
export function chachaXor(key: usize, ctr: u32, n0: u32, n1: u32, n2: u32, p: usize, n: u32, scr: usize): void {
  let pos: u32 = 0;
  for (; pos + 256 <= n; pos += 256) {
    chacha4(key, ctr, n0, n1, n2, p + pos, true, scr, 0, 0);
    ctr += 4;
  }
  if (pos < n) {
    chacha4(key, ctr, n0, n1, n2, scr + SCRATCH_TAIL, false, scr, 0, 0);
    xorBytes(p + pos, scr + SCRATCH_TAIL, n - pos);
  }
}

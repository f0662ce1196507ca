// @ts-nocheck — AssemblyScript source (v128, u64, load<T> …), a part of chacha20poly1305.wasm: asc
// compiles it from ../chacha20poly1305.ts, the entry file, which imports it; not part of the
// TypeScript program.
//
// Poly1305 (RFC 8439 §2.5), for the AEAD in ../chacha20poly1305.ts.
//
// - On five 26-bit limbs with 64-bit products (s = 5·r precomputed). Wasm has no 64×64→128
//   multiply, so 44-bit limbs would need four multiplies per product; 26-bit limbs leave the
//   vector lanes headroom for lazy carries (the stitched code below uses radix 2^32 instead). Runs
//   of ≥ 4 blocks go two at a time through the i64x2 lanes (lane A the even blocks, lane B the odd
//   ones, both times r² per pair; r and r² in the last pair), with i64x2.extmul_low_i32x4_u doing
//   two 32×32→64 products (pmuludq) per instruction: 1.1 → 1.4 GB/s here against the scalar loop
//   (25 i64.mul per block), which remains for short runs, the odd last block and the lengths
//   block.
// - The stitched seal and open (../chacha20poly1305.ts) absorb most blocks inside ChaCha20's
//   rounds (chacha4 in chacha20.ts) in radix 2^32: four 32-bit limbs and a small fifth; r's
//   clamping makes r1..r3 multiples of 4, so the 2^128 wrap is × s = r + r/4, exact, and the 20
//   products of a block fit in u64 sums: 20 multiplies per block instead of 25. The q32 functions
//   at the end set that state up, absorb an odd block outside ChaCha20, and carry the accumulator
//   into the 26-bit limbs, which finish the tag.

import { SCRATCH_BLOCK, SCRATCH_H, SCRATCH_PAD, SCRATCH_Q, SCRATCH_QR, SCRATCH_R, SCRATCH_R2 } from './layout';

const M26: u64 = 0x3ffffff;
/** The radix-2^32 limb mask (also chacha4's stitched blocks). */
export const M32: u64 = 0xffffffff;

// ---- 26-bit limbs ----

/** Sets up the state at scr from the 32-byte one-time key at k (r clamped per §2.5.1). */
export function polyInit(scr: usize, k: usize): void {
  const t0 = <u64>load<u32>(k, 0);
  const t1 = <u64>load<u32>(k, 4);
  const t2 = <u64>load<u32>(k, 8);
  const t3 = <u64>load<u32>(k, 12);
  // r &= 0x0ffffffc0ffffffc0ffffffc0fffffff, split in 26-bit limbs
  store<u32>(scr + SCRATCH_R, <u32>(t0 & 0x3ffffff), 0);
  store<u32>(scr + SCRATCH_R, <u32>(((t0 >> 26) | (t1 << 6)) & 0x3ffff03), 4);
  store<u32>(scr + SCRATCH_R, <u32>(((t1 >> 20) | (t2 << 12)) & 0x3ffc0ff), 8);
  store<u32>(scr + SCRATCH_R, <u32>(((t2 >> 14) | (t3 << 18)) & 0x3f03fff), 12);
  store<u32>(scr + SCRATCH_R, <u32>((t3 >> 8) & 0x00fffff), 16);
  v128.store(scr + SCRATCH_PAD, v128.load(k, 16));
  // r² mod 2^130 - 5, carried to 26-bit limbs
  const r0 = <u64>load<u32>(scr + SCRATCH_R, 0);
  const r1 = <u64>load<u32>(scr + SCRATCH_R, 4);
  const r2 = <u64>load<u32>(scr + SCRATCH_R, 8);
  const r3 = <u64>load<u32>(scr + SCRATCH_R, 12);
  const r4 = <u64>load<u32>(scr + SCRATCH_R, 16);
  const s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  const d0 = r0 * r0 + r1 * s4 + r2 * s3 + r3 * s2 + r4 * s1;
  let d1 = r0 * r1 + r1 * r0 + r2 * s4 + r3 * s3 + r4 * s2;
  let d2 = r0 * r2 + r1 * r1 + r2 * r0 + r3 * s4 + r4 * s3;
  let d3 = r0 * r3 + r1 * r2 + r2 * r1 + r3 * r0 + r4 * s4;
  let d4 = r0 * r4 + r1 * r3 + r2 * r2 + r3 * r1 + r4 * r0;
  d1 += d0 >> 26; let u0 = d0 & M26;
  d2 += d1 >> 26; let u1 = d1 & M26;
  d3 += d2 >> 26; const u2 = d2 & M26;
  d4 += d3 >> 26; const u3 = d3 & M26;
  u0 += (d4 >> 26) * 5; const u4 = d4 & M26;
  u1 += u0 >> 26; u0 &= M26;
  store<u32>(scr + SCRATCH_R2, <u32>u0, 0);
  store<u32>(scr + SCRATCH_R2, <u32>u1, 4);
  store<u32>(scr + SCRATCH_R2, <u32>u2, 8);
  store<u32>(scr + SCRATCH_R2, <u32>u3, 12);
  store<u32>(scr + SCRATCH_R2, <u32>u4, 16);
  v128.store(scr + SCRATCH_H, i64x2.splat(0));
  v128.store(scr + SCRATCH_H, i64x2.splat(0), 16);
  store<u64>(scr + SCRATCH_H, 0, 32);
}

/**
 * Absorbs `blocks` 16-byte blocks at p; hibit is 1 << 24 for full blocks, 0 for the final
 * partial block of raw Poly1305 (which carries its own 0x01 byte).
 */
export function polyBlocks(scr: usize, p: usize, blocks: u32, hibit: u64): void {
  const r0 = <u64>load<u32>(scr + SCRATCH_R, 0);
  const r1 = <u64>load<u32>(scr + SCRATCH_R, 4);
  const r2 = <u64>load<u32>(scr + SCRATCH_R, 8);
  const r3 = <u64>load<u32>(scr + SCRATCH_R, 12);
  const r4 = <u64>load<u32>(scr + SCRATCH_R, 16);
  const s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  let h0 = load<u64>(scr + SCRATCH_H, 0);
  let h1 = load<u64>(scr + SCRATCH_H, 8);
  let h2 = load<u64>(scr + SCRATCH_H, 16);
  let h3 = load<u64>(scr + SCRATCH_H, 24);
  let h4 = load<u64>(scr + SCRATCH_H, 32);
  const end = p + (<usize>blocks << 4);
  while (p < end) {
    const lo = load<u64>(p, 0);
    const hi = load<u64>(p, 8);
    // h += m (with the 2^128 bit for full blocks)
    h0 += lo & M26;
    h1 += (lo >> 26) & M26;
    h2 += ((lo >> 52) | (hi << 12)) & M26;
    h3 += (hi >> 14) & M26;
    h4 += (hi >> 40) | hibit;
    // h *= r (mod 2^130 - 5): limbs past 2^130 fold back times 5
    const d0 = h0 * r0 + h1 * s4 + h2 * s3 + h3 * s2 + h4 * s1;
    let d1 = h0 * r1 + h1 * r0 + h2 * s4 + h3 * s3 + h4 * s2;
    let d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s4 + h4 * s3;
    let d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s4;
    let d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0;
    // partial carry: limbs stay below 2^27, enough headroom for the next block's products
    d1 += d0 >> 26; h0 = d0 & M26;
    d2 += d1 >> 26; h1 = d1 & M26;
    d3 += d2 >> 26; h2 = d2 & M26;
    d4 += d3 >> 26; h3 = d3 & M26;
    h0 += (d4 >> 26) * 5; h4 = d4 & M26;
    h1 += h0 >> 26; h0 &= M26;
    p += 16;
  }
  store<u64>(scr + SCRATCH_H, h0, 0);
  store<u64>(scr + SCRATCH_H, h1, 8);
  store<u64>(scr + SCRATCH_H, h2, 16);
  store<u64>(scr + SCRATCH_H, h3, 24);
  store<u64>(scr + SCRATCH_H, h4, 32);
}

/**
 * Absorbs 2·pairs full blocks at p, two at a time in the two i64x2 lanes: lane A takes the even
 * blocks, lane B the odd ones, each multiplied by r² per pair; the last pair multiplies lane A by
 * r² and lane B by r, so A + B is the Horner sum (§2.5.1) of all blocks. Products are
 * i64x2.extmul_low_i32x4_u (pmuludq: two 32×32→64 products per instruction).
 */
function polyPairs(scr: usize, p: usize, pairs: u32): void {
  const uA0 = load<u32>(scr + SCRATCH_R2, 0), uA1 = load<u32>(scr + SCRATCH_R2, 4), uA2 = load<u32>(scr + SCRATCH_R2, 8);
  const uA3 = load<u32>(scr + SCRATCH_R2, 12), uA4 = load<u32>(scr + SCRATCH_R2, 16);
  let R0 = i32x4(uA0, uA0, 0, 0), R1 = i32x4(uA1, uA1, 0, 0), R2 = i32x4(uA2, uA2, 0, 0);
  let R3 = i32x4(uA3, uA3, 0, 0), R4 = i32x4(uA4, uA4, 0, 0);
  const five = i32x4.splat(5);
  let S1 = i32x4.mul(R1, five), S2 = i32x4.mul(R2, five), S3 = i32x4.mul(R3, five), S4 = i32x4.mul(R4, five);
  const mask = i64x2.splat(M26);
  const hibit = i64x2.splat(1 << 24);
  let H0 = i64x2(load<u64>(scr + SCRATCH_H, 0), 0);
  let H1 = i64x2(load<u64>(scr + SCRATCH_H, 8), 0);
  let H2 = i64x2(load<u64>(scr + SCRATCH_H, 16), 0);
  let H3 = i64x2(load<u64>(scr + SCRATCH_H, 24), 0);
  let H4 = i64x2(load<u64>(scr + SCRATCH_H, 32), 0);
  for (let k: u32 = 0; k < pairs; k++) {
    if (k == pairs - 1) {
      // the last pair: lane B is one block from the end, so it takes r instead of r²
      R0 = i32x4.replace_lane(R0, 1, load<u32>(scr + SCRATCH_R, 0));
      R1 = i32x4.replace_lane(R1, 1, load<u32>(scr + SCRATCH_R, 4));
      R2 = i32x4.replace_lane(R2, 1, load<u32>(scr + SCRATCH_R, 8));
      R3 = i32x4.replace_lane(R3, 1, load<u32>(scr + SCRATCH_R, 12));
      R4 = i32x4.replace_lane(R4, 1, load<u32>(scr + SCRATCH_R, 16));
      S1 = i32x4.mul(R1, five); S2 = i32x4.mul(R2, five); S3 = i32x4.mul(R3, five); S4 = i32x4.mul(R4, five);
    }
    const a = v128.load(p, 0);
    const b = v128.load(p, 16);
    const lo = i8x16.shuffle(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const hi = i8x16.shuffle(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    H0 = i64x2.add(H0, v128.and(lo, mask));
    H1 = i64x2.add(H1, v128.and(i64x2.shr_u(lo, 26), mask));
    H2 = i64x2.add(H2, v128.and(v128.or(i64x2.shr_u(lo, 52), i64x2.shl(hi, 12)), mask));
    H3 = i64x2.add(H3, v128.and(i64x2.shr_u(hi, 14), mask));
    H4 = i64x2.add(H4, v128.or(i64x2.shr_u(hi, 40), hibit));
    // the low 32 bits of both lanes side by side, as extmul_low wants them
    const P0 = i8x16.shuffle(H0, H0, 0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11);
    const P1 = i8x16.shuffle(H1, H1, 0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11);
    const P2 = i8x16.shuffle(H2, H2, 0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11);
    const P3 = i8x16.shuffle(H3, H3, 0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11);
    const P4 = i8x16.shuffle(H4, H4, 0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11);
    const d0 = i64x2.add(i64x2.add(i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(P0, R0), i64x2.extmul_low_i32x4_u(P1, S4)),
      i64x2.extmul_low_i32x4_u(P2, S3)), i64x2.extmul_low_i32x4_u(P3, S2)), i64x2.extmul_low_i32x4_u(P4, S1));
    let d1 = i64x2.add(i64x2.add(i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(P0, R1), i64x2.extmul_low_i32x4_u(P1, R0)),
      i64x2.extmul_low_i32x4_u(P2, S4)), i64x2.extmul_low_i32x4_u(P3, S3)), i64x2.extmul_low_i32x4_u(P4, S2));
    let d2 = i64x2.add(i64x2.add(i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(P0, R2), i64x2.extmul_low_i32x4_u(P1, R1)),
      i64x2.extmul_low_i32x4_u(P2, R0)), i64x2.extmul_low_i32x4_u(P3, S4)), i64x2.extmul_low_i32x4_u(P4, S3));
    let d3 = i64x2.add(i64x2.add(i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(P0, R3), i64x2.extmul_low_i32x4_u(P1, R2)),
      i64x2.extmul_low_i32x4_u(P2, R1)), i64x2.extmul_low_i32x4_u(P3, R0)), i64x2.extmul_low_i32x4_u(P4, S4));
    let d4 = i64x2.add(i64x2.add(i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(P0, R4), i64x2.extmul_low_i32x4_u(P1, R3)),
      i64x2.extmul_low_i32x4_u(P2, R2)), i64x2.extmul_low_i32x4_u(P3, R1)), i64x2.extmul_low_i32x4_u(P4, R0));
    d1 = i64x2.add(d1, i64x2.shr_u(d0, 26)); H0 = v128.and(d0, mask);
    d2 = i64x2.add(d2, i64x2.shr_u(d1, 26)); H1 = v128.and(d1, mask);
    d3 = i64x2.add(d3, i64x2.shr_u(d2, 26)); H2 = v128.and(d2, mask);
    d4 = i64x2.add(d4, i64x2.shr_u(d3, 26)); H3 = v128.and(d3, mask);
    const c = i64x2.shr_u(d4, 26); H4 = v128.and(d4, mask);
    H0 = i64x2.add(H0, i64x2.add(c, i64x2.shl(c, 2)));
    H1 = i64x2.add(H1, i64x2.shr_u(H0, 26)); H0 = v128.and(H0, mask);
    p += 32;
  }
  // A + B: limbs below 2^28, which polyBlocks and polyFinish take as they are
  store<u64>(scr + SCRATCH_H, i64x2.extract_lane(H0, 0) + i64x2.extract_lane(H0, 1), 0);
  store<u64>(scr + SCRATCH_H, i64x2.extract_lane(H1, 0) + i64x2.extract_lane(H1, 1), 8);
  store<u64>(scr + SCRATCH_H, i64x2.extract_lane(H2, 0) + i64x2.extract_lane(H2, 1), 16);
  store<u64>(scr + SCRATCH_H, i64x2.extract_lane(H3, 0) + i64x2.extract_lane(H3, 1), 24);
  store<u64>(scr + SCRATCH_H, i64x2.extract_lane(H4, 0) + i64x2.extract_lane(H4, 1), 32);
}

/** Full blocks: pairs in the two-lane loop, an odd one left over in the scalar one. */
export function polyFull(scr: usize, p: usize, blocks: u32): void {
  if (blocks >= 4) {
    polyPairs(scr, p, blocks >> 1);
    if (blocks & 1) polyBlocks(scr, p + (<usize>(blocks - 1) << 4), 1, 1 << 24);
  } else if (blocks > 0) {
    polyBlocks(scr, p, blocks, 1 << 24);
  }
}

/** Absorbs p[0..n) padded with zeros to a multiple of 16 (the AEAD's pad16). */
export function polyPadded(scr: usize, p: usize, n: u32): void {
  const full = n >> 4;
  polyFull(scr, p, full);
  const rest = n & 15;
  if (rest > 0) {
    const b = scr + SCRATCH_BLOCK;
    v128.store(b, i64x2.splat(0));
    memory.copy(b, p + (full << 4), rest);
    polyBlocks(scr, b, 1, 1 << 24);
  }
}

/** Final reduction mod 2^130 - 5, + s mod 2^128; the 16-byte tag goes to out. */
export function polyFinish(scr: usize, out: usize): void {
  let h0 = load<u64>(scr + SCRATCH_H, 0);
  let h1 = load<u64>(scr + SCRATCH_H, 8);
  let h2 = load<u64>(scr + SCRATCH_H, 16);
  let h3 = load<u64>(scr + SCRATCH_H, 24);
  let h4 = load<u64>(scr + SCRATCH_H, 32);
  // full carry (limbs may come in up to 2^28 from the two-lane loop): once around from h0,
  // then h1..h4 again, which leaves h0..h3 < 2^26 and h4 ≤ 2^26 (h4 = 2^26 means h ≥ p: g wins)
  h1 += h0 >> 26; h0 &= M26;
  h2 += h1 >> 26; h1 &= M26;
  h3 += h2 >> 26; h2 &= M26;
  h4 += h3 >> 26; h3 &= M26;
  h0 += (h4 >> 26) * 5; h4 &= M26;
  h1 += h0 >> 26; h0 &= M26;
  h2 += h1 >> 26; h1 &= M26;
  h3 += h2 >> 26; h2 &= M26;
  h4 += h3 >> 26; h3 &= M26;
  // g = h + 5 - 2^130; if it does not borrow, h >= p and the result is g
  let g0 = h0 + 5;
  let g1 = h1 + (g0 >> 26); g0 &= M26;
  let g2 = h2 + (g1 >> 26); g1 &= M26;
  let g3 = h3 + (g2 >> 26); g2 &= M26;
  let g4 = h4 + (g3 >> 26) - (1 << 26); g3 &= M26;
  // mask = all ones if g4 did not go negative (select g), else zero (keep h) — no branch
  const mask = (g4 >> 63) - 1;
  h0 = (h0 & ~mask) | (g0 & mask);
  h1 = (h1 & ~mask) | (g1 & mask);
  h2 = (h2 & ~mask) | (g2 & mask);
  h3 = (h3 & ~mask) | (g3 & mask);
  h4 = (h4 & ~mask) | (g4 & mask & M26);
  // h as 128 bits (two u64), then + s
  const lo = h0 | (h1 << 26) | (h2 << 52);
  const hi = (h2 >> 12) | (h3 << 14) | (h4 << 40);
  const s0 = load<u64>(scr + SCRATCH_PAD, 0);
  const s1 = load<u64>(scr + SCRATCH_PAD, 8);
  const t0 = lo + s0;
  const carry: u64 = t0 < lo ? 1 : 0; // a comparison, not a branch (i64.lt_u)
  store<u64>(out, t0, 0);
  store<u64>(out, hi + s1 + carry, 8);
}

// ---- radix 2^32: the stitched AEAD's accumulator ----

/** The radix-2^32 Poly1305 state of the stitched seal from the one-time key at k (r clamped, §2.5.1). */
export function q32Init(scr: usize, k: usize): void {
  const q = scr + SCRATCH_QR;
  store<u32>(q, load<u32>(k, 0) & 0x0fffffff, 0);
  const r1 = load<u32>(k, 4) & 0x0ffffffc, r2 = load<u32>(k, 8) & 0x0ffffffc, r3 = load<u32>(k, 12) & 0x0ffffffc;
  store<u32>(q, r1, 4); store<u32>(q, r2, 8); store<u32>(q, r3, 12);
  store<u32>(q, r1 + (r1 >> 2), 16); store<u32>(q, r2 + (r2 >> 2), 20); store<u32>(q, r3 + (r3 >> 2), 24);
  v128.store(scr + SCRATCH_PAD, v128.load(k, 16));
  v128.store(scr + SCRATCH_Q, i64x2.splat(0));
  v128.store(scr + SCRATCH_Q, i64x2.splat(0), 16);
  store<u64>(scr + SCRATCH_Q, 0, 32);
}

/**
 * One full block at m into the radix-2^32 accumulator, outside ChaCha20 (chacha4 absorbs in
 * pairs; this is the odd one): the same steps as chacha4's, on the state in scratch.
 */
export function q32Block(scr: usize, m: usize): void {
  const q = scr + SCRATCH_QR;
  let t = load<u64>(scr + SCRATCH_Q, 0) + <u64>load<u32>(m, 0); let h0 = t & M32;
  t = load<u64>(scr + SCRATCH_Q, 8) + <u64>load<u32>(m, 4) + (t >> 32); let h1 = t & M32;
  t = load<u64>(scr + SCRATCH_Q, 16) + <u64>load<u32>(m, 8) + (t >> 32); let h2 = t & M32;
  t = load<u64>(scr + SCRATCH_Q, 24) + <u64>load<u32>(m, 12) + (t >> 32); let h3 = t & M32;
  let h4 = load<u64>(scr + SCRATCH_Q, 32) + (t >> 32) + 1;
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
  t = (d0 & M32) + c;
  store<u64>(scr + SCRATCH_Q, t & M32, 0);
  store<u64>(scr + SCRATCH_Q, (d1 & M32) + (t >> 32), 8);
  store<u64>(scr + SCRATCH_Q, d2 & M32, 16);
  store<u64>(scr + SCRATCH_Q, d3 & M32, 24);
  store<u64>(scr + SCRATCH_Q, h4 & 3, 32);
}

/** The radix-2^32 accumulator carried into the 26-bit limbs at SCRATCH_H. */
export function q32ToLimbs(scr: usize): void {
  let t = load<u64>(scr + SCRATCH_Q, 8);
  const h1 = t & M32;
  t = load<u64>(scr + SCRATCH_Q, 16) + (t >> 32); const h2 = t & M32;
  t = load<u64>(scr + SCRATCH_Q, 24) + (t >> 32); const h3 = t & M32;
  const h4 = load<u64>(scr + SCRATCH_Q, 32) + (t >> 32);
  const lo = load<u64>(scr + SCRATCH_Q, 0) | (h1 << 32);
  const hi = h2 | (h3 << 32);
  store<u64>(scr + SCRATCH_H, lo & M26, 0);
  store<u64>(scr + SCRATCH_H, (lo >> 26) & M26, 8);
  store<u64>(scr + SCRATCH_H, ((lo >> 52) | (hi << 12)) & M26, 16);
  store<u64>(scr + SCRATCH_H, (hi >> 14) & M26, 24);
  store<u64>(scr + SCRATCH_H, (hi >> 40) | (h4 << 24), 32);
}

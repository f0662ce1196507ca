// @ts-nocheck — AssemblyScript source (v128, u32, load<T> …), compiled by `npm run build:wasm`
// into chacha20poly1305.wasm beside this file; not part of the TypeScript program.
//
// ChaCha20-Poly1305 (RFC 8439) with 128-bit SIMD, for sixpn's batch AEAD (../aead-batch.ts).
//
// - ChaCha20 (§2.3, §2.4) runs four blocks at a time: sixteen v128 state words, lane j holding
//   block counter + j, so one i32x4 add/xor/rotate is one step of four quarter-rounds in four
//   blocks. The rotations by 16 and 8 are one pshufb each (i8x16.relaxed_swizzle, exact for
//   in-range indices) whose mask is loaded from memory at each use, sixteen copies at
//   scr + SCRATCH_ROT, one per use site, so that neither binaryen nor V8 merges them into one
//   long-lived register: x64 gives V8 fifteen xmm registers for sixteen state words, so a mask
//   held in a register spills state (measured 25% slower), and a constant mask is materialized
//   per use (5 instructions; i8x16.shuffle's rotation by 16 is pshuflw + pshufhw). The load goes
//   to a load port and the rotate is one shuffle-port op instead of two shifts and an or, the
//   ports that bound this loop: ~8% faster. By 12 and 7: two shifts and an or. The four keystream
//   blocks are transposed back to byte order with unpack shuffles and xored 16 bytes at a time.
// - Seal stitches Poly1305 into the ChaCha20 rounds (as OpenSSL does): while chacha4 encrypts
//   the next 256 bytes on the vector ports, it absorbs the 12 or 16 blocks of ciphertext written
//   before with a scalar Poly1305, one block after each column and each diagonal round of the
//   first 8 double rounds. The scalar chain (i64.mul, integer ports) is latency-bound and the
//   vector rounds are bound by the shuffle/shift ports, so one hides the other: at 1420 B the
//   seal costs ChaCha20 plus about a third of Poly1305 instead of both (1.69 → 1.38 µs, 8192 B:
//   9.0 → 6.9 µs, CPU time). The stitched Poly1305 is in radix 2^32 (four 32-bit limbs and a
//   small fifth; r's clamping makes r1..r3 multiples of 4, so the 2^128 wrap is × s = r + r/4,
//   exact, and the 20 products of a block fit in u64 sums), 20 multiplies per block instead of
//   25. The blocks left at the end of a packet (its last 256 bytes or less, padded, and the
//   lengths block) are copied aside and absorbed by the next packet's first ChaCha20 call (the
//   one that yields its Poly1305 key and has nothing of its own to absorb): the tag is written
//   one packet late, still before that packet's bytes are touched, so records run as in
//   sequence. The last packet of a batch (or one sealed alone) finishes in the 26-bit code
//   below after the accumulator is carried into 26-bit limbs. 1420 B 1.38 → 1.32 µs, 64 B
//   0.28 → 0.26 µs (CPU time).
//   Open authenticates before it decrypts (see below), so it stitches Poly1305 over the
//   ciphertext into ChaCha20 calls that write the keystream to a 64 KiB scratch buffer instead,
//   and xors it in (zeroing the buffer as it goes) only once the tag matches: 1420 B 1.99 →
//   1.68 µs, 8192 B 9.7 → 7.6 µs (CPU time, with the bench's copy of the sealed batch).
// - Poly1305 (§2.5) on five 26-bit limbs with 64-bit products (s = 5·r precomputed). Wasm has
//   no 64×64→128 multiply, so 44-bit limbs would need four multiplies per product; 26-bit limbs
//   leave the vector lanes headroom for lazy carries (the stitched scalar code above uses radix
//   2^32 instead). Runs of ≥ 4 blocks go two at a time through the
//   i64x2 lanes (lane A the even blocks, lane B the odd ones, both times r² per pair; r and r²
//   in the last pair), with i64x2.extmul_low_i32x4_u doing two 32×32→64 products (pmuludq) per
//   instruction: 1.1 → 1.4 GB/s here against the scalar loop (25 i64.mul per block), which
//   remains for short runs, the odd last block and the lengths block.
// - The AEAD (§2.8): one-time Poly1305 key = first 32 bytes of block 0; blocks 1.. encrypt. The
//   first four-block call yields the Poly1305 key and the first 192 bytes of keystream at once.
//   The MAC input is aad ‖ pad16 ‖ ciphertext ‖ pad16 ‖ len(aad) u64le ‖ len(ct) u64le, so
//   every Poly1305 block of the AEAD is a full block (partial ones are zero-padded).
// - open authenticates first, compares tags in constant time, and decrypts only if they match:
//   a rejected packet's bytes are left exactly as they came in (ciphertext and tag), and the
//   stitched open's keystream buffer is zeroed either way.
//
// Memory: this module owns no layout. The caller passes every pointer: key slots (32 bytes
// each), records (RECORD_SIZE bytes each), the packet arena bounds and a SCRATCH_SIZE-byte
// scratch area, which holds key-derived bytes during a call and is zeroed before each call
// returns. The memory is imported (env.memory, shared) so that one memory can serve several
// threads, each with its own scratch, records and arena.

// ---- layout constants (mirrored in ../aead-batch.ts) ----
const SCRATCH_KS: usize = 0; // 256 B: blocks 0..3 (block 0 = Poly1305 key, 1..3 the first 192 B)
const SCRATCH_TAIL: usize = 256; // 256 B: keystream for a partial last group of blocks
const SCRATCH_H: usize = 512; // 5 × u64: accumulator limbs
const SCRATCH_R: usize = 552; // 5 × u32: clamped r limbs
const SCRATCH_PAD: usize = 576; // 16 B: s, added at the end
const SCRATCH_BLOCK: usize = 592; // 16 B: a zero-padded partial block
const SCRATCH_TAG: usize = 608; // 16 B: computed tag
const SCRATCH_R2: usize = 624; // 5 × u32: r² mod p, for the two-lane loop
const SCRATCH_Q: usize = 656; // 5 × u64: the radix-2^32 accumulator of the stitched AEAD (h1 ≤ 2^32 + 1, h0 h2 h3 < 2^32, h4 ≤ 3)
const SCRATCH_QR: usize = 696; // 7 × u32: r0..r3, s1..s3 (s = r + r/4) in radix 2^32
const SCRATCH_USED: i32 = 724; // key-derived bytes up to here, zeroed by wipe()
const SCRATCH_ROT: usize = 768; // 16 × 16 B: the byte-rotation masks (not secret)
const SCRATCH_KSBUF: usize = 1024; // 65536 B: open's keystream for bytes 192.., zeroed per packet (xorWipe)
const SCRATCH_PEND: usize = 1024 + 65536; // 17 × 16 B: a sealed packet's last Poly1305 blocks, for the next one's first call
const SCRATCH_PEND_SIZE: i32 = 512;
// SCRATCH_SIZE in ../aead-batch.ts is 1024 + 65536 + 512

// record (u32 words): 0 offset, 1 length, 2 key slot, 3 counter lo, 4 counter hi,
// 5 aad offset, 6 aad length, 7 result
const RECORD_SIZE: usize = 32;
const TAG_SIZE: u32 = 16;
const MAX_PLAINTEXT: u32 = 65535;

const M26: u64 = 0x3ffffff;
const M32: u64 = 0xffffffff;

// ---- ChaCha20 ----

const ROT16 = i8x16(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
const ROT8 = i8x16(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);

/** Writes the rotation masks chacha4 loads: slots 0–3 and 8–11 rotate by 16, 4–7 and 12–15 by 8. */
function rotMasks(scr: usize): void {
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
 * scr + SCRATCH_Q (q32Init), two per double round: see stitching in the notes at the top.
 */
function chacha4(key: usize, ctr: u32, n0: u32, n1: u32, n2: u32, p: usize, xor: bool, scr: usize, pp: usize, nb: u32): void {
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
function xorBytes(p: usize, ks: usize, n: u32): void {
  let i: u32 = 0;
  for (; i + 16 <= n; i += 16) v128.store(p + i, v128.xor(v128.load(p + i), v128.load(ks + i)));
  for (; i < n; i++) store<u8>(p + i, load<u8>(p + i) ^ load<u8>(ks + i));
}

/**
 * Xors p[0..n) with the ChaCha20 keystream from block counter `ctr`; `scr` is scratch for a
 * partial last group of four blocks.
 */
function chachaXor(key: usize, ctr: u32, n0: u32, n1: u32, n2: u32, p: usize, n: u32, scr: usize): void {
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

// ---- Poly1305 ----

/** Sets up the state at scr from the 32-byte one-time key at k (r clamped per §2.5.1). */
function polyInit(scr: usize, k: usize): void {
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
function polyBlocks(scr: usize, p: usize, blocks: u32, hibit: u64): void {
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
function polyFull(scr: usize, p: usize, blocks: u32): void {
  if (blocks >= 4) {
    polyPairs(scr, p, blocks >> 1);
    if (blocks & 1) polyBlocks(scr, p + (<usize>(blocks - 1) << 4), 1, 1 << 24);
  } else if (blocks > 0) {
    polyBlocks(scr, p, blocks, 1 << 24);
  }
}

/** Absorbs p[0..n) padded with zeros to a multiple of 16 (the AEAD's pad16). */
function polyPadded(scr: usize, p: usize, n: u32): void {
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
function polyFinish(scr: usize, out: usize): void {
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

/** The radix-2^32 Poly1305 state of the stitched seal from the one-time key at k (r clamped, §2.5.1). */
function q32Init(scr: usize, k: usize): void {
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
function q32Block(scr: usize, m: usize): void {
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
function q32ToLimbs(scr: usize): void {
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

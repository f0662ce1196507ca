// @ts-nocheck — AssemblyScript source (usize, u32 …), a part of chacha20poly1305.wasm: asc
// compiles it from ../chacha20poly1305.ts, the entry file, which imports it; not part of the
// TypeScript program.
//
// The memory layout shared with the caller, in one place: offsets in the per-call scratch area
// (scr), the record fields and the limits. All mirrored in ../../aead-batch.ts. The module owns no
// memory of its own: see "Memory" in ../chacha20poly1305.ts.

// ---- scratch (offsets from scr) ----
export const SCRATCH_KS: usize = 0; // 256 B: blocks 0..3 (block 0 = Poly1305 key, 1..3 the first 192 B)
export const SCRATCH_TAIL: usize = 256; // 256 B: keystream for a partial last group of blocks
export const SCRATCH_H: usize = 512; // 5 × u64: accumulator limbs
export const SCRATCH_R: usize = 552; // 5 × u32: clamped r limbs
export const SCRATCH_PAD: usize = 576; // 16 B: s, added at the end
export const SCRATCH_BLOCK: usize = 592; // 16 B: a zero-padded partial block
export const SCRATCH_TAG: usize = 608; // 16 B: computed tag
export const SCRATCH_R2: usize = 624; // 5 × u32: r² mod p, for the two-lane loop
export const SCRATCH_Q: usize = 656; // 5 × u64: the radix-2^32 accumulator of the stitched AEAD (h1 ≤ 2^32 + 1, h0 h2 h3 < 2^32, h4 ≤ 3)
export const SCRATCH_QR: usize = 696; // 7 × u32: r0..r3, s1..s3 (s = r + r/4) in radix 2^32
export const SCRATCH_USED: i32 = 724; // key-derived bytes up to here, zeroed by wipe()
export const SCRATCH_ROT: usize = 768; // 16 × 16 B: the byte-rotation masks (not secret)
export const SCRATCH_KSBUF: usize = 1024; // 65536 B: open's keystream for bytes 192.., zeroed per packet (xorWipe)
export const SCRATCH_PEND: usize = 1024 + 65536; // 17 × 16 B: a sealed packet's last Poly1305 blocks, for the next one's first call
export const SCRATCH_PEND_SIZE: i32 = 512;
// SCRATCH_SIZE in ../../aead-batch.ts is 1024 + 65536 + 512

// ---- records and limits ----
// record (u32 words): 0 offset, 1 length, 2 key slot, 3 counter lo, 4 counter hi,
// 5 aad offset, 6 aad length, 7 result
export const RECORD_SIZE: usize = 32;
export const TAG_SIZE: u32 = 16;
export const MAX_PLAINTEXT: u32 = 65535;

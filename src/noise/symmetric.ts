// HASH, MAC, HMAC and KDF1..3 of the whitepaper (§5.4), over a backend's BLAKE2s, and the Noise
// SymmetricState operations they are used through (mixHash, mixKey).
import type { CryptoBackend } from './crypto.ts';
import { CONSTRUCTION, IDENTIFIER, KEY_SIZE } from './constants.ts';
import { wipe } from './util.ts';

const BLOCK_SIZE = 64; // BLAKE2s block size, for HMAC (RFC 2104)

/** Scratch-buffer holder for one backend; not reentrant (one per thread, as JS is). */
export class Symmetric {
  readonly backend: CryptoBackend;
  private readonly ipad = new Uint8Array(BLOCK_SIZE);
  private readonly opad = new Uint8Array(BLOCK_SIZE);
  private readonly inner = new Uint8Array(KEY_SIZE);
  private readonly t0 = new Uint8Array(KEY_SIZE);
  private readonly t1 = new Uint8Array(KEY_SIZE + 1);
  private readonly one = new Uint8Array([1]);

  constructor(backend: CryptoBackend) {
    this.backend = backend;
  }

  /** out = HASH(a ‖ b) */
  hash(a: Uint8Array, b: Uint8Array | null, out: Uint8Array): void {
    this.backend.blake2s.hash(a, b, out);
  }

  /** out = HMAC-BLAKE2s(key, data) — RFC 2104 with two BLAKE2s passes (faster than createHmac). */
  hmac(key: Uint8Array, data: Uint8Array, out: Uint8Array): void {
    const { ipad, opad, inner } = this;
    ipad.fill(0x36);
    opad.fill(0x5c);
    for (let i = 0; i < key.length; i++) {
      ipad[i] ^= key[i];
      opad[i] ^= key[i];
    }
    this.backend.blake2s.hash(ipad, data, inner);
    this.backend.blake2s.hash(opad, inner, out);
    wipe(ipad);
    wipe(opad);
    wipe(inner);
  }

  /**
   * KDF_n(key, input) for n = number of non-null outputs (whitepaper §5.4):
   *   τ0 = HMAC(key, input); τ1 = HMAC(τ0, 0x1); τi = HMAC(τ0, τ(i-1) ‖ i)
   * `out1` may alias `key` (the chaining key is usually replaced by τ1).
   */
  kdf(key: Uint8Array, input: Uint8Array, out1: Uint8Array, out2: Uint8Array | null, out3: Uint8Array | null): void {
    const { t0, t1 } = this;
    this.hmac(key, input, t0);
    // τ1 = HMAC(τ0, 0x1)
    this.hmac(t0, this.one, t1.subarray(0, KEY_SIZE));
    if (out2 !== null) {
      // τ2 = HMAC(τ0, τ1 ‖ 0x2)
      t1[KEY_SIZE] = 2;
      this.hmac(t0, t1, out2);
      if (out3 !== null) {
        // τ3 = HMAC(τ0, τ2 ‖ 0x3)
        const t2 = new Uint8Array(KEY_SIZE + 1);
        t2.set(out2);
        t2[KEY_SIZE] = 3;
        this.hmac(t0, t2, out3);
        wipe(t2);
      }
    }
    out1.set(t1.subarray(0, KEY_SIZE));
    wipe(t0);
    wipe(t1);
  }

  /** out16 = MAC(key, data): keyed BLAKE2s-128. */
  mac(key: Uint8Array, data: Uint8Array, out: Uint8Array): void {
    this.backend.blake2s.mac(key, data, out);
  }
}

/** C0 = HASH(CONSTRUCTION), H0 = HASH(C0 ‖ IDENTIFIER) (whitepaper §5.4.2). */
export function initialChainingKeyAndHash(sym: Symmetric): { chainingKey: Uint8Array; hash: Uint8Array } {
  const enc = new TextEncoder();
  const chainingKey = new Uint8Array(KEY_SIZE);
  const hash = new Uint8Array(KEY_SIZE);
  sym.hash(enc.encode(CONSTRUCTION), null, chainingKey);
  sym.hash(chainingKey, enc.encode(IDENTIFIER), hash);
  return { chainingKey, hash };
}

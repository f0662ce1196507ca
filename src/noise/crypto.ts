// The primitives WireGuard needs, behind one small interface with three backends:
//   - `nodeBackend`: node:crypto (OpenSSL) for X25519, BLAKE2s-256 and ChaCha20-Poly1305;
//     node:crypto has no keyed BLAKE2s-128, so `mac` comes from @stablelib; XChaCha20-Poly1305 is
//     our HChaCha20 (below) in front of node:crypto's ChaCha20-Poly1305.
//   - `jsBackend`: pure JavaScript, @noble/curves for X25519 and @stablelib for the rest.
//   - `wasmBackend`: the js backend with our WebAssembly SIMD ChaCha20-Poly1305 (./aead-batch.ts)
//     for both AEADs; its keys live in wasm key slots, which batches (AeadBatch) also use.
// `chosenBackend` takes each primitive group from whichever backend measured fastest on this
// machine (`npm run bench:noise` prints the per-primitive table that justifies the choice).
// Tests cross-check every primitive of one backend against the other.
//
// Keys are held in backend-specific handles (an OpenSSL KeyObject in node:crypto, raw bytes in
// JS); a group's handles only go back into the same group.
import * as nodeCrypto from 'node:crypto';
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { BLAKE2s } from '@stablelib/blake2s';
import { ChaCha20Poly1305 } from '@stablelib/chacha20poly1305';
import { XChaCha20Poly1305 } from '@stablelib/xchacha20poly1305';
import { wasmAead, wasmAeadSupported } from './aead-batch.ts';
import { KEY_SIZE, MAC_SIZE, TAG_SIZE } from './constants.ts';
import { isZero, wipe } from './util.ts';

/** An X25519 private key; `publicKey` is its raw public key. */
export interface PrivateKey {
  readonly publicKey: Uint8Array;
  /** Drops the key material this handle owns (raw copies are zeroed). */
  zero(): void;
}
/** An X25519 public key ready for `dh`. */
export interface PublicKey {
  readonly raw: Uint8Array;
}
export interface X25519 {
  generate(): PrivateKey;
  importPrivate(raw: Uint8Array): PrivateKey;
  importPublic(raw: Uint8Array): PublicKey;
  /** out = X25519(priv, pub); false (and out zeroed) if the result is all zero (low-order point). */
  dh(priv: PrivateKey, pub: PublicKey, out: Uint8Array): boolean;
}

export interface Blake2s {
  /** out(32) = BLAKE2s-256(a ‖ b). */
  hash(a: Uint8Array, b: Uint8Array | null, out: Uint8Array): void;
  /** out(16) = keyed BLAKE2s-128(key, data) — MAC() of the whitepaper. */
  mac(key: Uint8Array, data: Uint8Array, out: Uint8Array): void;
}

/** An AEAD key handle (ChaCha20-Poly1305). */
export interface AeadKey {
  zero(): void;
}
export interface Aead {
  importKey(raw: Uint8Array): AeadKey;
  /**
   * Seals `plaintext` with nonce = 4 zero bytes ‖ counter (u64 little-endian, as two u32 halves)
   * and writes ciphertext ‖ tag at out[outOff..]. Returns the bytes written.
   */
  seal(key: AeadKey, counterLo: number, counterHi: number, plaintext: Uint8Array, aad: Uint8Array | null, out: Uint8Array, outOff: number): number;
  /** Opens ciphertext ‖ tag into out[outOff..]; returns the plaintext length, or -1 if it does not authenticate (out untouched). */
  open(key: AeadKey, counterLo: number, counterHi: number, sealed: Uint8Array, aad: Uint8Array | null, out: Uint8Array, outOff: number): number;
}

/** XChaCha20-Poly1305 with a raw 32-byte key (cookie replies only; not a hot path). */
export interface XAead {
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): void;
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): boolean;
}

export interface CryptoBackend {
  readonly name: string;
  readonly x25519: X25519;
  readonly blake2s: Blake2s;
  /** ChaCha20-Poly1305 for transport data (large messages, long-lived keys). */
  readonly aead: Aead;
  /** ChaCha20-Poly1305 for the handshake's short messages under one-use keys (per-call cost dominates). */
  readonly handshakeAead: Aead;
  readonly xaead: XAead;
}

// ---------------------------------------------------------------------------------------------
// node:crypto

// RFC 8410 DER prefixes would also work; Node 24 takes raw X25519 keys directly.
class NodePrivateKey implements PrivateKey {
  key: nodeCrypto.KeyObject | null;
  readonly publicKey: Uint8Array;
  constructor(key: nodeCrypto.KeyObject, publicKey: Uint8Array) {
    this.key = key;
    this.publicKey = publicKey;
  }
  // OpenSSL clears X25519 private key memory when the KeyObject is freed; we drop our reference.
  zero(): void {
    this.key = null;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'PrivateKey <redacted>';
  }
}
class NodePublicKey implements PublicKey {
  readonly key: nodeCrypto.KeyObject;
  readonly raw: Uint8Array;
  constructor(key: nodeCrypto.KeyObject, raw: Uint8Array) {
    this.key = key;
    this.raw = raw;
  }
}
class NodeAeadKey implements AeadKey {
  key: nodeCrypto.KeyObject | null;
  constructor(key: nodeCrypto.KeyObject) {
    this.key = key;
  }
  zero(): void {
    this.key = null;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'AeadKey <redacted>';
  }
}

const nodeNonce = Buffer.alloc(12);
function setNonce(nonce: Uint8Array, counterLo: number, counterHi: number): void {
  // 4 zero bytes, then the 64-bit little-endian counter (whitepaper §5.4.6)
  nonce[4] = counterLo;
  nonce[5] = counterLo >>> 8;
  nonce[6] = counterLo >>> 16;
  nonce[7] = counterLo >>> 24;
  nonce[8] = counterHi;
  nonce[9] = counterHi >>> 8;
  nonce[10] = counterHi >>> 16;
  nonce[11] = counterHi >>> 24;
}

const nodeX25519: X25519 = {
  generate(): PrivateKey {
    const pair = nodeCrypto.generateKeyPairSync('x25519');
    const pub = pair.publicKey.export({ format: 'raw-public' } as unknown as nodeCrypto.KeyExportOptions<'der'>);
    return new NodePrivateKey(pair.privateKey, new Uint8Array(pub));
  },
  importPrivate(raw: Uint8Array): PrivateKey {
    if (raw.length !== KEY_SIZE) throw new RangeError('X25519 private key must be 32 bytes');
    const key = nodeCrypto.createPrivateKey({ key: Buffer.from(raw), format: 'raw-private', asymmetricKeyType: 'x25519' } as unknown as nodeCrypto.PrivateKeyInput);
    const pub = nodeCrypto.createPublicKey(key).export({ format: 'raw-public' } as unknown as nodeCrypto.KeyExportOptions<'der'>);
    return new NodePrivateKey(key, new Uint8Array(pub));
  },
  importPublic(raw: Uint8Array): PublicKey {
    if (raw.length !== KEY_SIZE) throw new RangeError('X25519 public key must be 32 bytes');
    const key = nodeCrypto.createPublicKey({ key: Buffer.from(raw.buffer, raw.byteOffset, KEY_SIZE), format: 'raw-public', asymmetricKeyType: 'x25519' } as unknown as nodeCrypto.PublicKeyInput);
    return new NodePublicKey(key, raw);
  },
  dh(priv: PrivateKey, pub: PublicKey, out: Uint8Array): boolean {
    const k = (priv as NodePrivateKey).key;
    if (k === null) throw new Error('private key was zeroed');
    let shared: Buffer;
    try {
      shared = nodeCrypto.diffieHellman({ privateKey: k, publicKey: (pub as NodePublicKey).key });
    } catch {
      // OpenSSL refuses an all-zero shared secret (RFC 7748 §6.1).
      out.fill(0);
      return false;
    }
    out.set(shared);
    shared.fill(0);
    return !isZero(out, 0, KEY_SIZE);
  },
};

const nodeBlake2s: Blake2s = {
  hash(a: Uint8Array, b: Uint8Array | null, out: Uint8Array): void {
    const h = nodeCrypto.createHash('blake2s256').update(a);
    if (b !== null) h.update(b);
    const d = h.digest();
    out.set(d);
    d.fill(0);
  },
  mac: stablelibMac,
};

const nodeAead: Aead = {
  importKey(raw: Uint8Array): AeadKey {
    if (raw.length !== KEY_SIZE) throw new RangeError('AEAD key must be 32 bytes');
    return new NodeAeadKey(nodeCrypto.createSecretKey(raw));
  },
  seal(key, counterLo, counterHi, plaintext, aad, out, outOff): number {
    const k = (key as NodeAeadKey).key;
    if (k === null) throw new Error('AEAD key was zeroed');
    setNonce(nodeNonce, counterLo, counterHi);
    const c = nodeCrypto.createCipheriv('chacha20-poly1305', k, nodeNonce, { authTagLength: TAG_SIZE });
    if (aad !== null) c.setAAD(aad, { plaintextLength: plaintext.length });
    const ct = c.update(plaintext);
    c.final();
    out.set(ct, outOff);
    out.set(c.getAuthTag(), outOff + plaintext.length);
    return plaintext.length + TAG_SIZE;
  },
  open(key, counterLo, counterHi, sealed, aad, out, outOff): number {
    const k = (key as NodeAeadKey).key;
    if (k === null) throw new Error('AEAD key was zeroed');
    const n = sealed.length - TAG_SIZE;
    if (n < 0) return -1;
    setNonce(nodeNonce, counterLo, counterHi);
    const d = nodeCrypto.createDecipheriv('chacha20-poly1305', k, nodeNonce, { authTagLength: TAG_SIZE });
    d.setAuthTag(sealed.subarray(n));
    if (aad !== null) d.setAAD(aad, { plaintextLength: n });
    const pt = d.update(sealed.subarray(0, n));
    try {
      d.final();
    } catch {
      pt.fill(0);
      return -1;
    }
    out.set(pt, outOff);
    return n;
  },
};

// HChaCha20 (draft-irtf-cfrg-xchacha §2.2): the ChaCha20 block function without the final
// addition, keeping words 0..3 and 12..15. Derives the XChaCha20 subkey.
export function hchacha20(key: Uint8Array, nonce16: Uint8Array, out: Uint8Array): void {
  const s = new Uint32Array(16);
  s[0] = 0x61707865;
  s[1] = 0x3320646e;
  s[2] = 0x79622d32;
  s[3] = 0x6b206574;
  for (let i = 0; i < 8; i++) s[4 + i] = readU32(key, i * 4);
  for (let i = 0; i < 4; i++) s[12 + i] = readU32(nonce16, i * 4);
  for (let round = 0; round < 10; round++) {
    quarter(s, 0, 4, 8, 12);
    quarter(s, 1, 5, 9, 13);
    quarter(s, 2, 6, 10, 14);
    quarter(s, 3, 7, 11, 15);
    quarter(s, 0, 5, 10, 15);
    quarter(s, 1, 6, 11, 12);
    quarter(s, 2, 7, 8, 13);
    quarter(s, 3, 4, 9, 14);
  }
  for (let i = 0; i < 4; i++) writeU32(out, i * 4, s[i]);
  for (let i = 0; i < 4; i++) writeU32(out, 16 + i * 4, s[12 + i]);
  s.fill(0);
}
function quarter(s: Uint32Array, a: number, b: number, c: number, d: number): void {
  s[a] += s[b]; s[d] = rotl(s[d] ^ s[a], 16);
  s[c] += s[d]; s[b] = rotl(s[b] ^ s[c], 12);
  s[a] += s[b]; s[d] = rotl(s[d] ^ s[a], 8);
  s[c] += s[d]; s[b] = rotl(s[b] ^ s[c], 7);
}
function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}
function readU32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v; b[o + 1] = v >>> 8; b[o + 2] = v >>> 16; b[o + 3] = v >>> 24;
}

const nodeXAead: XAead = {
  seal(key, nonce, plaintext, aad, out): void {
    const sub = new Uint8Array(KEY_SIZE);
    hchacha20(key, nonce.subarray(0, 16), sub);
    const c = nodeCrypto.createCipheriv('chacha20-poly1305', sub, xNonce(nonce), { authTagLength: TAG_SIZE });
    c.setAAD(aad, { plaintextLength: plaintext.length });
    out.set(c.update(plaintext), 0);
    c.final();
    out.set(c.getAuthTag(), plaintext.length);
    wipe(sub);
  },
  open(key, nonce, sealed, aad, out): boolean {
    const n = sealed.length - TAG_SIZE;
    if (n < 0) return false;
    const sub = new Uint8Array(KEY_SIZE);
    hchacha20(key, nonce.subarray(0, 16), sub);
    const d = nodeCrypto.createDecipheriv('chacha20-poly1305', sub, xNonce(nonce), { authTagLength: TAG_SIZE });
    wipe(sub);
    d.setAuthTag(sealed.subarray(n));
    d.setAAD(aad, { plaintextLength: n });
    const pt = d.update(sealed.subarray(0, n));
    try {
      d.final();
    } catch {
      pt.fill(0);
      return false;
    }
    out.set(pt, 0);
    pt.fill(0);
    return true;
  },
};
function xNonce(nonce24: Uint8Array): Uint8Array {
  // XChaCha20 runs ChaCha20 with nonce = 4 zero bytes ‖ the last 8 bytes of the 24-byte nonce.
  const n = new Uint8Array(12);
  n.set(nonce24.subarray(16, 24), 4);
  return n;
}

export const nodeBackend: CryptoBackend = {
  name: 'node',
  x25519: nodeX25519,
  blake2s: nodeBlake2s,
  aead: nodeAead,
  handshakeAead: nodeAead,
  xaead: nodeXAead,
};

// ---------------------------------------------------------------------------------------------
// Pure JavaScript: @noble/curves (X25519), @stablelib (BLAKE2s, ChaCha20-Poly1305, XChaCha20-Poly1305)

class JsPrivateKey implements PrivateKey {
  readonly raw: Uint8Array;
  readonly publicKey: Uint8Array;
  constructor(raw: Uint8Array) {
    this.raw = raw;
    this.publicKey = nobleX25519.getPublicKey(raw);
  }
  zero(): void {
    wipe(this.raw);
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'PrivateKey <redacted>';
  }
}
const jsX25519: X25519 = {
  generate(): PrivateKey {
    return new JsPrivateKey(nodeCrypto.randomBytes(KEY_SIZE));
  },
  importPrivate(raw: Uint8Array): PrivateKey {
    if (raw.length !== KEY_SIZE) throw new RangeError('X25519 private key must be 32 bytes');
    return new JsPrivateKey(Uint8Array.from(raw));
  },
  importPublic(raw: Uint8Array): PublicKey {
    if (raw.length !== KEY_SIZE) throw new RangeError('X25519 public key must be 32 bytes');
    return { raw };
  },
  dh(priv: PrivateKey, pub: PublicKey, out: Uint8Array): boolean {
    let shared: Uint8Array;
    try {
      shared = nobleX25519.getSharedSecret((priv as JsPrivateKey).raw, pub.raw);
    } catch {
      out.fill(0); // noble refuses an all-zero shared secret
      return false;
    }
    out.set(shared);
    wipe(shared);
    return !isZero(out, 0, KEY_SIZE);
  },
};

const jsHasher = new BLAKE2s(32);
function stablelibMac(key: Uint8Array, data: Uint8Array, out: Uint8Array): void {
  const h = new BLAKE2s(MAC_SIZE, { key });
  h.update(data).finish(out);
  h.clean();
}
const jsBlake2s: Blake2s = {
  hash(a: Uint8Array, b: Uint8Array | null, out: Uint8Array): void {
    jsHasher.reset();
    jsHasher.update(a);
    if (b !== null) jsHasher.update(b);
    jsHasher.finish(out);
  },
  mac: stablelibMac,
};

class JsAeadKey implements AeadKey {
  cipher: ChaCha20Poly1305 | null;
  constructor(raw: Uint8Array) {
    this.cipher = new ChaCha20Poly1305(raw);
  }
  zero(): void {
    this.cipher?.clean();
    this.cipher = null;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'AeadKey <redacted>';
  }
}
const jsNonce = new Uint8Array(12);
const EMPTY = new Uint8Array(0);
const jsAead: Aead = {
  importKey(raw: Uint8Array): AeadKey {
    if (raw.length !== KEY_SIZE) throw new RangeError('AEAD key must be 32 bytes');
    return new JsAeadKey(raw);
  },
  seal(key, counterLo, counterHi, plaintext, aad, out, outOff): number {
    const c = (key as JsAeadKey).cipher;
    if (c === null) throw new Error('AEAD key was zeroed');
    setNonce(jsNonce, counterLo, counterHi);
    const n = plaintext.length + TAG_SIZE;
    c.seal(jsNonce, plaintext, aad ?? EMPTY, out.subarray(outOff, outOff + n));
    return n;
  },
  open(key, counterLo, counterHi, sealed, aad, out, outOff): number {
    const c = (key as JsAeadKey).cipher;
    if (c === null) throw new Error('AEAD key was zeroed');
    const n = sealed.length - TAG_SIZE;
    if (n < 0) return -1;
    setNonce(jsNonce, counterLo, counterHi);
    // stablelib authenticates before it decrypts, so `out` is untouched on failure.
    return c.open(jsNonce, sealed, aad ?? EMPTY, out.subarray(outOff, outOff + n)) === null ? -1 : n;
  },
};

const jsXAead: XAead = {
  seal(key, nonce, plaintext, aad, out): void {
    const c = new XChaCha20Poly1305(key);
    c.seal(nonce, plaintext, aad, out.subarray(0, plaintext.length + TAG_SIZE));
    c.clean();
  },
  open(key, nonce, sealed, aad, out): boolean {
    if (sealed.length < TAG_SIZE) return false;
    const c = new XChaCha20Poly1305(key);
    const ok = c.open(nonce, sealed, aad, out.subarray(0, sealed.length - TAG_SIZE)) !== null;
    c.clean();
    return ok;
  },
};

export const jsBackend: CryptoBackend = {
  name: 'js',
  x25519: jsX25519,
  blake2s: jsBlake2s,
  aead: jsAead,
  handshakeAead: jsAead,
  xaead: jsXAead,
};

// ---------------------------------------------------------------------------------------------
// WebAssembly SIMD ChaCha20-Poly1305 (./wasm/chacha20poly1305.ts); the rest as in js.

export const wasmBackend: CryptoBackend = {
  name: 'wasm',
  x25519: nodeX25519,
  blake2s: jsBlake2s,
  aead: wasmAead,
  handshakeAead: wasmAead,
  xaead: jsXAead,
};

// ---------------------------------------------------------------------------------------------
// The choice, per primitive group, from `npm run bench:noise` on the project's 2-core machine
// (Node 24; ops/s, medians; the bench prints the current table, all backends in one run):
//   X25519 shared secret    node 18–25 k    js 0.4–1.3 k                 -> node
//   BLAKE2s-256, 148 B      node 450 k      js 785 k                     -> js (no per-call object, writes into our buffer)
//   HMAC-BLAKE2s (2 hashes) node 113 k      js 456 k                     -> js (follows the hash)
//   ChaCha20-Poly1305 1420  node 42–82 k    js 28–38 k    wasm 150–250 k -> wasm (node:crypto pays ~10 µs per call;
//                           per CPU-second: node 69 k, wasm 270 k, AeadBatch 335 k)
//   ChaCha20-Poly1305 handshake (import key + 32 B) node 18–64 k  js 70–190 k  wasm 200–485 k -> wasm
//   keyed BLAKE2s-128       node has none; js only
//   XChaCha20-Poly1305 16 B node 28 k       js 188 k                     -> js (cookie replies only)
// The wasm AEAD needs WebAssembly SIMD; without it both AEADs fall back to node and js.
const WASM = wasmAeadSupported();
export const chosenBackend: CryptoBackend = {
  name: 'chosen',
  x25519: nodeX25519,
  blake2s: jsBlake2s,
  aead: WASM ? wasmAead : nodeAead,
  handshakeAead: WASM ? wasmAead : jsAead,
  xaead: jsXAead,
};

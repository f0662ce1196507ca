// Key encodings (wg(8) base64, UAPI hex) and the local static identity with its precomputed
// values. Keys print as <redacted>.
import { randomBytes } from 'node:crypto';
import type { CryptoBackend, PrivateKey } from './crypto.ts';
import { KEY_SIZE, LABEL_COOKIE, LABEL_MAC1 } from './constants.ts';
import { Symmetric, initialChainingKeyAndHash } from './symmetric.ts';
import { toHex, wipe } from './util.ts';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Parses a 32-byte key written as wg(8) base64; throws a clear error otherwise. */
export function parseKeyBase64(text: string): Uint8Array {
  const t = text.trim();
  if (!BASE64_KEY.test(t)) throw new Error('key is not 32 bytes of base64 (44 characters ending in "=")');
  return new Uint8Array(Buffer.from(t, 'base64'));
}

/** Parses a 32-byte key written as 64 hex digits (the UAPI form). */
export function parseKeyHex(text: string): Uint8Array {
  if (!HEX_KEY.test(text)) throw new Error('key is not 64 hexadecimal digits');
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function keyToBase64(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('base64');
}

export function keyToHex(key: Uint8Array): string {
  return toHex(key);
}

/** A fresh Curve25519 private key, clamped as wg genkey does (RFC 7748 §5). */
export function generatePrivateKeyBytes(): Uint8Array {
  const k = new Uint8Array(randomBytes(KEY_SIZE));
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}

/**
 * The local static key pair and what is derived from it once:
 * - the responder's initial hash HASH(H0 ‖ S_pub) (whitepaper §5.4.2),
 * - the mac1 key HASH(LABEL_MAC1 ‖ S_pub) and cookie key HASH(LABEL_COOKIE ‖ S_pub) that other
 *   peers use to reach us (§5.4.4, §5.4.7).
 */
export class StaticIdentity {
  readonly sym: Symmetric;
  readonly privateKey: PrivateKey;
  readonly publicKey: Uint8Array;
  readonly initialChainingKey: Uint8Array;
  readonly initialHash: Uint8Array;
  readonly mac1Key = new Uint8Array(KEY_SIZE);
  readonly cookieKey = new Uint8Array(KEY_SIZE);

  constructor(backend: CryptoBackend, privateKeyBytes: Uint8Array) {
    this.sym = new Symmetric(backend);
    this.privateKey = backend.x25519.importPrivate(privateKeyBytes);
    this.publicKey = this.privateKey.publicKey;
    const { chainingKey, hash } = initialChainingKeyAndHash(this.sym);
    this.initialChainingKey = chainingKey;
    // Hr = HASH(Hr ‖ Sr_pub): the responder's starting hash, the same for every initiator.
    this.initialHash = new Uint8Array(KEY_SIZE);
    this.sym.hash(hash, this.publicKey, this.initialHash);
    labelKey(this.sym, LABEL_MAC1, this.publicKey, this.mac1Key);
    labelKey(this.sym, LABEL_COOKIE, this.publicKey, this.cookieKey);
  }

  zero(): void {
    this.privateKey.zero();
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `StaticIdentity { publicKey: ${keyToBase64(this.publicKey)}, privateKey: <redacted> }`;
  }
  toJSON(): unknown {
    return { publicKey: keyToBase64(this.publicKey) };
  }
}

/** out = HASH(label ‖ publicKey) — the mac1 and cookie keys. */
export function labelKey(sym: Symmetric, label: string, publicKey: Uint8Array, out: Uint8Array): void {
  const l = new TextEncoder().encode(label);
  sym.hash(l, publicKey, out);
  wipe(l);
}

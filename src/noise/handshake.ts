// The Noise_IKpsk2 handshake of WireGuard (whitepaper §5.4.2–§5.4.5), in Create/Consume pairs.
// Sans-IO: messages are written into and read from caller buffers; the caller chooses session
// indices, passes the clocks in, and looks peers up. mac1/mac2 are added and checked by
// cookie.ts around these functions.
//
// Every Consume computes into temporaries and commits to the handshake only when the whole
// message verified, so a forged or corrupted message changes nothing.
import type { PrivateKey, PublicKey } from './crypto.ts';
import {
  HANDSHAKE_INITIATION_RATE_MS,
  INIT_OFF_EPHEMERAL,
  INIT_OFF_SENDER,
  INIT_OFF_STATIC,
  INIT_OFF_TIMESTAMP,
  KEY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  RESP_OFF_EMPTY,
  RESP_OFF_EPHEMERAL,
  RESP_OFF_RECEIVER,
  RESP_OFF_SENDER,
  TAG_SIZE,
  TIMESTAMP_SIZE,
} from './constants.ts';
import { CookieGenerator } from './cookie.ts';
import { StaticIdentity, keyToBase64 } from './keys.ts';
import type { Symmetric } from './symmetric.ts';
import { initialChainingKeyAndHash } from './symmetric.ts';
import { tai64nAfter, writeTai64n } from './tai64n.ts';
import { Keypair } from './transport.ts';
import { isZero, readType, readU32LE, wipe, writeHeader, writeU32LE } from './util.ts';

// Handshake states (wireguard-go handshakeState).
export const HANDSHAKE_ZEROED = 0;
export const HANDSHAKE_INITIATION_CREATED = 1;
export const HANDSHAKE_INITIATION_CONSUMED = 2;
export const HANDSHAKE_RESPONSE_CREATED = 3;
export const HANDSHAKE_RESPONSE_CONSUMED = 4;
export type HandshakeState = 0 | 1 | 2 | 3 | 4;

/** Why a handshake message was rejected (stable strings, usable as counter names). */
export type HandshakeError =
  | 'bad-size'
  | 'bad-type'
  | 'decrypt'
  | 'unknown-peer'
  | 'low-order-key'
  | 'replayed-timestamp'
  | 'flood'
  | 'wrong-state'
  | 'wrong-index';

export type ConsumeInitiationResult = { ok: true; handshake: Handshake } | { ok: false; error: HandshakeError };
export type ConsumeResponseResult = { ok: true } | { ok: false; error: HandshakeError };

const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array(KEY_SIZE);

/** The handshake state kept for one peer. */
export class Handshake {
  readonly identity: StaticIdentity;
  readonly sym: Symmetric;
  readonly remoteStatic: Uint8Array;
  readonly remoteStaticKey: PublicKey;
  readonly cookies: CookieGenerator;
  /** DH(S_local, S_remote), computed once; all zero when the peer's key is a low-order point. */
  readonly precomputedStaticStatic = new Uint8Array(KEY_SIZE);
  /** HASH(H0 ‖ S_remote): the initiator's starting hash toward this peer. */
  private readonly initiatorInitialHash = new Uint8Array(KEY_SIZE);
  private readonly presharedKey = new Uint8Array(KEY_SIZE);

  state: HandshakeState = HANDSHAKE_ZEROED;
  readonly hash = new Uint8Array(KEY_SIZE);
  readonly chainingKey = new Uint8Array(KEY_SIZE);
  private localEphemeral: PrivateKey | null = null;
  readonly remoteEphemeral = new Uint8Array(KEY_SIZE);
  /** The initiator's ephemeral as imported by consumeInitiation, reused by createResponse. */
  remoteEphemeralKey: PublicKey | null = null;
  localIndex = 0;
  remoteIndex = 0;
  /** The newest initiation timestamp accepted from this peer (replay protection). */
  readonly lastTimestamp = new Uint8Array(TIMESTAMP_SIZE);
  lastInitiationConsumedMs = -Infinity;

  constructor(identity: StaticIdentity, remoteStatic: Uint8Array, presharedKey: Uint8Array | null = null) {
    if (remoteStatic.length !== KEY_SIZE) throw new RangeError('peer public key must be 32 bytes');
    this.identity = identity;
    this.sym = identity.sym;
    this.remoteStatic = Uint8Array.from(remoteStatic);
    this.remoteStaticKey = this.sym.backend.x25519.importPublic(this.remoteStatic);
    this.cookies = new CookieGenerator(this.sym, this.remoteStatic);
    this.sym.backend.x25519.dh(identity.privateKey, this.remoteStaticKey, this.precomputedStaticStatic);
    const { hash } = initialChainingKeyAndHash(this.sym);
    this.sym.hash(hash, this.remoteStatic, this.initiatorInitialHash);
    this.setPresharedKey(presharedKey);
  }

  setPresharedKey(psk: Uint8Array | null): void {
    if (psk !== null && psk.length !== KEY_SIZE) throw new RangeError('preshared key must be 32 bytes');
    this.presharedKey.set(psk ?? ZERO_KEY);
  }

  hasPresharedKey(): boolean {
    return !isZero(this.presharedKey, 0, KEY_SIZE);
  }

  /** True when a handshake with this peer is possible (its key is not a low-order point). */
  usable(): boolean {
    return !isZero(this.precomputedStaticStatic, 0, KEY_SIZE);
  }

  /**
   * Writes a handshake initiation (148 bytes, macs zeroed: add them with `cookies.addMacs`).
   * `unixMs` is the wall clock for the TAI64N timestamp. Returns the length, or 0 if the peer's
   * key is unusable.
   */
  createInitiation(localIndex: number, unixMs: number, out: Uint8Array): number {
    if (!this.usable() || out.length < MESSAGE_INITIATION_SIZE) return 0;
    const sym = this.sym;
    const x = sym.backend.x25519;
    const ck = this.chainingKey;
    const h = this.hash;
    const key = new Uint8Array(KEY_SIZE);
    const dh = new Uint8Array(KEY_SIZE);

    // initiator.chaining_key = HASH(CONSTRUCTION); initiator.hash = HASH(HASH(ck ‖ IDENTIFIER) ‖ responder.static_public)
    ck.set(this.identity.initialChainingKey);
    h.set(this.initiatorInitialHash);
    // initiator.ephemeral_private = DH_GENERATE()
    this.dropEphemeral();
    const e = x.generate();
    this.localEphemeral = e;

    writeHeader(out, 0, MESSAGE_INITIATION);
    writeU32LE(out, INIT_OFF_SENDER, localIndex);
    // msg.unencrypted_ephemeral = DH_PUBKEY(initiator.ephemeral_private)
    out.set(e.publicKey, INIT_OFF_EPHEMERAL);
    // initiator.hash = HASH(initiator.hash ‖ msg.unencrypted_ephemeral)
    sym.hash(h, e.publicKey, h);
    // temp = HMAC(initiator.chaining_key, msg.unencrypted_ephemeral); initiator.chaining_key = HMAC(temp, 0x1)
    sym.kdf(ck, e.publicKey, ck, null, null);
    // temp = HMAC(ck, DH(e_priv, S_resp_pub)); ck = HMAC(temp, 0x1); key = HMAC(temp, ck ‖ 0x2)
    if (!x.dh(e, this.remoteStaticKey, dh)) return this.failCreate(key, dh);
    sym.kdf(ck, dh, ck, key, null);
    // msg.encrypted_static = AEAD(key, 0, initiator.static_public, initiator.hash)
    aeadSealRaw(sym, key, this.identity.publicKey, h, out, INIT_OFF_STATIC);
    // initiator.hash = HASH(initiator.hash ‖ msg.encrypted_static)
    sym.hash(h, out.subarray(INIT_OFF_STATIC, INIT_OFF_STATIC + KEY_SIZE + TAG_SIZE), h);
    // temp = HMAC(ck, DH(S_init_priv, S_resp_pub)); ck = HMAC(temp, 0x1); key = HMAC(temp, ck ‖ 0x2)
    sym.kdf(ck, this.precomputedStaticStatic, ck, key, null);
    // msg.encrypted_timestamp = AEAD(key, 0, TAI64N(), initiator.hash)
    const ts = new Uint8Array(TIMESTAMP_SIZE);
    writeTai64n(unixMs, ts, 0);
    aeadSealRaw(sym, key, ts, h, out, INIT_OFF_TIMESTAMP);
    // initiator.hash = HASH(initiator.hash ‖ msg.encrypted_timestamp)
    sym.hash(h, out.subarray(INIT_OFF_TIMESTAMP, INIT_OFF_TIMESTAMP + TIMESTAMP_SIZE + TAG_SIZE), h);

    out.fill(0, INIT_OFF_TIMESTAMP + TIMESTAMP_SIZE + TAG_SIZE, MESSAGE_INITIATION_SIZE); // mac1, mac2
    wipe(key);
    wipe(dh);
    this.localIndex = localIndex;
    this.state = HANDSHAKE_INITIATION_CREATED;
    return MESSAGE_INITIATION_SIZE;
  }

  /**
   * Writes the response (92 bytes, macs zeroed) to the initiation consumed last.
   * Returns the length, or 0 when no initiation was consumed.
   */
  createResponse(localIndex: number, out: Uint8Array): number {
    if (this.state !== HANDSHAKE_INITIATION_CONSUMED || out.length < MESSAGE_RESPONSE_SIZE) return 0;
    const sym = this.sym;
    const x = sym.backend.x25519;
    const ck = this.chainingKey;
    const h = this.hash;
    const dh = new Uint8Array(KEY_SIZE);
    const tau = new Uint8Array(KEY_SIZE);
    const key = new Uint8Array(KEY_SIZE);

    // responder.ephemeral_private = DH_GENERATE()
    this.dropEphemeral();
    const e = x.generate();
    this.localEphemeral = e;
    writeHeader(out, 0, MESSAGE_RESPONSE);
    writeU32LE(out, RESP_OFF_SENDER, localIndex);
    writeU32LE(out, RESP_OFF_RECEIVER, this.remoteIndex);
    // msg.unencrypted_ephemeral = DH_PUBKEY(responder.ephemeral_private)
    out.set(e.publicKey, RESP_OFF_EPHEMERAL);
    // responder.hash = HASH(responder.hash ‖ msg.unencrypted_ephemeral)
    sym.hash(h, e.publicKey, h);
    // ck = KDF1(ck, msg.unencrypted_ephemeral)
    sym.kdf(ck, e.publicKey, ck, null, null);
    // ck = KDF1(ck, DH(E_resp_priv, E_init_pub))
    const remoteEphemeral = this.remoteEphemeralKey ?? x.importPublic(this.remoteEphemeral);
    if (!x.dh(e, remoteEphemeral, dh)) return this.failCreate(key, dh);
    sym.kdf(ck, dh, ck, null, null);
    // ck = KDF1(ck, DH(E_resp_priv, S_init_pub))
    if (!x.dh(e, this.remoteStaticKey, dh)) return this.failCreate(key, dh);
    sym.kdf(ck, dh, ck, null, null);
    // (ck, τ, key) = KDF3(ck, Q); responder.hash = HASH(responder.hash ‖ τ)
    sym.kdf(ck, this.presharedKey, ck, tau, key);
    sym.hash(h, tau, h);
    // msg.encrypted_nothing = AEAD(key, 0, ε, responder.hash)
    aeadSealRaw(sym, key, EMPTY, h, out, RESP_OFF_EMPTY);
    // responder.hash = HASH(responder.hash ‖ msg.encrypted_nothing)
    sym.hash(h, out.subarray(RESP_OFF_EMPTY, RESP_OFF_EMPTY + TAG_SIZE), h);

    out.fill(0, RESP_OFF_EMPTY + TAG_SIZE, MESSAGE_RESPONSE_SIZE); // mac1, mac2
    wipe(dh);
    wipe(tau);
    wipe(key);
    this.dropEphemeral(); // the responder's ephemeral is not needed past this point
    this.localIndex = localIndex;
    this.state = HANDSHAKE_RESPONSE_CREATED;
    return MESSAGE_RESPONSE_SIZE;
  }

  /**
   * Consumes a response to our initiation. The caller found this handshake by the message's
   * receiver index (and checked mac1). On failure nothing changes.
   */
  consumeResponse(msg: Uint8Array, len: number): ConsumeResponseResult {
    if (len !== MESSAGE_RESPONSE_SIZE) return { ok: false, error: 'bad-size' };
    if (readType(msg, 0, len) !== MESSAGE_RESPONSE) return { ok: false, error: 'bad-type' };
    if (this.state !== HANDSHAKE_INITIATION_CREATED || this.localEphemeral === null) return { ok: false, error: 'wrong-state' };
    if (readU32LE(msg, RESP_OFF_RECEIVER) !== this.localIndex) return { ok: false, error: 'wrong-index' };
    const sym = this.sym;
    const x = sym.backend.x25519;
    const ck = Uint8Array.from(this.chainingKey);
    const h = Uint8Array.from(this.hash);
    const dh = new Uint8Array(KEY_SIZE);
    const tau = new Uint8Array(KEY_SIZE);
    const key = new Uint8Array(KEY_SIZE);
    const scrub = (): void => {
      wipe(ck); wipe(h); wipe(dh); wipe(tau); wipe(key);
    };
    const fail = (error: HandshakeError): ConsumeResponseResult => {
      scrub();
      return { ok: false, error };
    };

    const ephemeral = msg.subarray(RESP_OFF_EPHEMERAL, RESP_OFF_EPHEMERAL + KEY_SIZE);
    // initiator.hash = HASH(initiator.hash ‖ msg.unencrypted_ephemeral); ck = KDF1(ck, msg.unencrypted_ephemeral)
    sym.hash(h, ephemeral, h);
    sym.kdf(ck, ephemeral, ck, null, null);
    const remoteEphemeral = x.importPublic(Uint8Array.from(ephemeral));
    // ck = KDF1(ck, DH(E_init_priv, E_resp_pub))
    if (!x.dh(this.localEphemeral, remoteEphemeral, dh)) return fail('low-order-key');
    sym.kdf(ck, dh, ck, null, null);
    // ck = KDF1(ck, DH(S_init_priv, E_resp_pub))
    if (!x.dh(this.identity.privateKey, remoteEphemeral, dh)) return fail('low-order-key');
    sym.kdf(ck, dh, ck, null, null);
    // (ck, τ, key) = KDF3(ck, Q); initiator.hash = HASH(initiator.hash ‖ τ)
    sym.kdf(ck, this.presharedKey, ck, tau, key);
    sym.hash(h, tau, h);
    // ε = AEAD-OPEN(key, 0, msg.encrypted_nothing, initiator.hash)
    const sealed = msg.subarray(RESP_OFF_EMPTY, RESP_OFF_EMPTY + TAG_SIZE);
    if (!aeadOpenRaw(sym, key, sealed, h, EMPTY)) return fail('decrypt');
    // initiator.hash = HASH(initiator.hash ‖ msg.encrypted_nothing)
    sym.hash(h, sealed, h);

    // commit
    this.chainingKey.set(ck);
    this.hash.set(h);
    this.remoteIndex = readU32LE(msg, RESP_OFF_SENDER);
    this.state = HANDSHAKE_RESPONSE_CONSUMED;
    this.dropEphemeral();
    scrub();
    return { ok: true };
  }

  /**
   * Derives the transport keypair once the handshake completed (response created or consumed)
   * and clears the handshake state (whitepaper §5.4.5). Null in any other state.
   */
  deriveKeypair(nowMs: number): Keypair | null {
    const initiator = this.state === HANDSHAKE_RESPONSE_CONSUMED;
    if (!initiator && this.state !== HANDSHAKE_RESPONSE_CREATED) return null;
    const first = new Uint8Array(KEY_SIZE);
    const second = new Uint8Array(KEY_SIZE);
    // (T_send_i = T_recv_r, T_recv_i = T_send_r) = KDF2(ck, ε)
    this.sym.kdf(this.chainingKey, EMPTY, first, second, null);
    const aead = this.sym.backend.aead;
    const sendKey = aead.importKey(initiator ? first : second);
    const receiveKey = aead.importKey(initiator ? second : first);
    wipe(first);
    wipe(second);
    const kp = new Keypair(aead, sendKey, receiveKey, this.localIndex, this.remoteIndex, nowMs, initiator);
    this.clear();
    return kp;
  }

  /** Forgets the handshake in progress (keys zeroed); timestamps and peer identity remain. */
  clear(): void {
    wipe(this.hash);
    wipe(this.chainingKey);
    wipe(this.remoteEphemeral);
    this.remoteEphemeralKey = null;
    this.dropEphemeral();
    this.localIndex = 0;
    this.remoteIndex = 0;
    this.state = HANDSHAKE_ZEROED;
  }

  /** Drops everything secret this handshake holds, including the preshared key. */
  zero(): void {
    this.clear();
    wipe(this.presharedKey);
    wipe(this.precomputedStaticStatic);
  }

  private dropEphemeral(): void {
    if (this.localEphemeral !== null) {
      this.localEphemeral.zero();
      this.localEphemeral = null;
    }
  }

  private failCreate(key: Uint8Array, dh: Uint8Array): number {
    wipe(key);
    wipe(dh);
    this.clear();
    return 0;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Handshake { peer: ${keyToBase64(this.remoteStatic)}, state: ${this.state}, keys: <redacted> }`;
  }
  toJSON(): unknown {
    return { peer: keyToBase64(this.remoteStatic), state: this.state };
  }
}

/**
 * Consumes a handshake initiation addressed to `identity` (whose mac1 the caller checked).
 * Decrypts the initiator's static key, asks `lookup` for that peer's handshake, checks the
 * timestamp is newer than the last one accepted and the peer is not flooding, then commits.
 * `nowMs` is the monotonic clock used for the flood guard.
 */
export function consumeInitiation(
  identity: StaticIdentity,
  msg: Uint8Array,
  len: number,
  lookup: (peerPublicKey: Uint8Array) => Handshake | undefined,
  nowMs: number,
): ConsumeInitiationResult {
  if (len !== MESSAGE_INITIATION_SIZE) return { ok: false, error: 'bad-size' };
  if (readType(msg, 0, len) !== MESSAGE_INITIATION) return { ok: false, error: 'bad-type' };
  const sym = identity.sym;
  const x = sym.backend.x25519;
  const ck = Uint8Array.from(identity.initialChainingKey);
  const h = Uint8Array.from(identity.initialHash);
  const dh = new Uint8Array(KEY_SIZE);
  const key = new Uint8Array(KEY_SIZE);
  const peerStatic = new Uint8Array(KEY_SIZE);
  const timestamp = new Uint8Array(TIMESTAMP_SIZE);
  const done = (error: HandshakeError | null, handshake?: Handshake): ConsumeInitiationResult => {
    wipe(ck); wipe(h); wipe(dh); wipe(key); wipe(timestamp);
    return error === null ? { ok: true, handshake: handshake! } : { ok: false, error };
  };

  const ephemeral = Uint8Array.from(msg.subarray(INIT_OFF_EPHEMERAL, INIT_OFF_EPHEMERAL + KEY_SIZE));
  const ephemeralKey = x.importPublic(ephemeral);
  // responder.hash = HASH(responder.hash ‖ msg.unencrypted_ephemeral); ck = KDF1(ck, msg.unencrypted_ephemeral)
  sym.hash(h, ephemeral, h);
  sym.kdf(ck, ephemeral, ck, null, null);
  // (ck, key) = KDF2(ck, DH(S_resp_priv, E_init_pub))
  if (!x.dh(identity.privateKey, ephemeralKey, dh)) return done('low-order-key');
  sym.kdf(ck, dh, ck, key, null);
  // initiator.static_public = AEAD-OPEN(key, 0, msg.encrypted_static, responder.hash)
  const encStatic = msg.subarray(INIT_OFF_STATIC, INIT_OFF_STATIC + KEY_SIZE + TAG_SIZE);
  if (!aeadOpenRaw(sym, key, encStatic, h, peerStatic)) return done('decrypt');
  // responder.hash = HASH(responder.hash ‖ msg.encrypted_static)
  sym.hash(h, encStatic, h);

  const hs = lookup(peerStatic);
  if (hs === undefined) return done('unknown-peer');
  if (!hs.usable()) return done('low-order-key');
  // (ck, key) = KDF2(ck, DH(S_resp_priv, S_init_pub)) — precomputed per peer
  sym.kdf(ck, hs.precomputedStaticStatic, ck, key, null);
  // timestamp = AEAD-OPEN(key, 0, msg.encrypted_timestamp, responder.hash)
  const encTimestamp = msg.subarray(INIT_OFF_TIMESTAMP, INIT_OFF_TIMESTAMP + TIMESTAMP_SIZE + TAG_SIZE);
  if (!aeadOpenRaw(sym, key, encTimestamp, h, timestamp)) return done('decrypt');
  // responder.hash = HASH(responder.hash ‖ msg.encrypted_timestamp)
  sym.hash(h, encTimestamp, h);

  // replay and flood protection (whitepaper §5.1; wireguard-go ConsumeMessageInitiation)
  if (!tai64nAfter(timestamp, 0, hs.lastTimestamp, 0)) return done('replayed-timestamp');
  if (nowMs - hs.lastInitiationConsumedMs <= HANDSHAKE_INITIATION_RATE_MS) return done('flood');

  // commit
  hs.clear();
  hs.chainingKey.set(ck);
  hs.hash.set(h);
  hs.remoteEphemeral.set(ephemeral);
  hs.remoteEphemeralKey = ephemeralKey;
  hs.remoteIndex = readU32LE(msg, INIT_OFF_SENDER);
  hs.lastTimestamp.set(timestamp);
  hs.lastInitiationConsumedMs = nowMs;
  hs.state = HANDSHAKE_INITIATION_CONSUMED;
  return done(null, hs);
}

function aeadOpenRaw(sym: Symmetric, rawKey: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): boolean {
  const aead = sym.backend.handshakeAead;
  const k = aead.importKey(rawKey);
  const n = aead.open(k, 0, 0, sealed, aad, out, 0);
  k.zero();
  return n >= 0;
}

function aeadSealRaw(sym: Symmetric, rawKey: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array, outOff: number): void {
  const aead = sym.backend.handshakeAead;
  const k = aead.importKey(rawKey);
  aead.seal(k, 0, 0, plaintext, aad, out, outOff);
  k.zero();
}

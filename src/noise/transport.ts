// Transport data messages (whitepaper §5.4.6) and the keypair they are sealed with.
//
//   msg = type 4 ‖ receiver (u32 LE) ‖ counter (u64 LE) ‖ AEAD(T_send, counter, P ‖ padding, ε)
//
// Zero-copy layout (as wireguard-go): the caller reads the inner packet into its buffer at
// `off + 16` (MESSAGE_TRANSPORT_HEADER_SIZE), `seal` writes the header in front, pads with zeros
// and encrypts in place; `open` decrypts in place behind the header. A keepalive is an empty
// payload (a 32-byte message).
import type { Aead, AeadKey } from './crypto.ts';
import { WasmAeadKey } from './aead-batch.ts';
import {
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_HEADER_SIZE,
  MESSAGE_TRANSPORT_SIZE,
  PADDING_MULTIPLE,
  REJECT_AFTER_MESSAGES_HI,
  REJECT_AFTER_MESSAGES_LO,
  TAG_SIZE,
  TRANSPORT_OFF_COUNTER,
  TRANSPORT_OFF_DATA,
  TRANSPORT_OFF_RECEIVER,
} from './constants.ts';
import { ReplayWindow } from './replay.ts';
import { readType, readU32LE, writeHeader, writeU32LE } from './util.ts';

// `open` results below zero.
export const OPEN_ERR_SIZE = -1; // shorter than a keepalive
export const OPEN_ERR_TYPE = -2; // not a transport message
export const OPEN_ERR_INDEX = -3; // receiver index is not this keypair's
export const OPEN_ERR_AUTH = -4; // does not authenticate
export const OPEN_ERR_REPLAY = -5; // counter seen before, too old, or past REJECT_AFTER_MESSAGES
export const SEAL_ERR_EXHAUSTED = -1; // the send counter reached REJECT_AFTER_MESSAGES: rekey
export const SEAL_ERR_SPACE = -2; // the buffer cannot hold the padded, sealed message

const TWO32 = 2 ** 32;
// The sending counter is a JS number. Every integer up to 2^53 is exact, and 2^64 - 2^13 is the
// double nearest REJECT_AFTER_MESSAGES; a keypair lives at most REJECT_AFTER_TIME (180 s), far
// too short to count past 2^53, so this bound is never approximate in practice.
const SEND_LIMIT = REJECT_AFTER_MESSAGES_HI * TWO32 + REJECT_AFTER_MESSAGES_LO;

/** Padded plaintext length: a multiple of 16, but not past the MTU (whitepaper §5.4.6). */
export function paddedLength(len: number, mtu: number): number {
  const padded = (len + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
  if (mtu > 0 && padded > mtu) return len > mtu ? len : mtu;
  return padded;
}

export class Keypair {
  private readonly aead: Aead;
  private sendKey: AeadKey;
  private receiveKey: AeadKey;
  readonly localIndex: number;
  readonly remoteIndex: number;
  readonly createdMs: number;
  readonly isInitiator: boolean;
  /** Next counter to send with; also the number of messages sent. */
  sendCounter = 0;
  readonly replay = new ReplayWindow();
  /** Counter of the last message opened (hi * 2^32 + lo); for callers that track it. */
  lastCounterHi = 0;
  lastCounterLo = 0;
  /** Counter taken by the last prepareSeal / read by the last prepareOpen (batch path). */
  preparedCounterLo = 0;
  preparedCounterHi = 0;

  constructor(aead: Aead, sendKey: AeadKey, receiveKey: AeadKey, localIndex: number, remoteIndex: number, createdMs: number, isInitiator: boolean) {
    this.aead = aead;
    this.sendKey = sendKey;
    this.receiveKey = receiveKey;
    this.localIndex = localIndex;
    this.remoteIndex = remoteIndex;
    this.createdMs = createdMs;
    this.isInitiator = isInitiator;
  }

  /**
   * Seals the `len`-byte packet at buf[off + 16 ..] in place: pads it (see `paddedLength`),
   * encrypts it under the next counter and writes the header at buf[off ..]. Returns the
   * message length, or a SEAL_ERR_* code (nothing is consumed then).
   */
  seal(buf: Uint8Array, off: number, len: number, mtu: number): number {
    const padded = this.prepareSeal(buf, off, len, mtu);
    if (padded < 0) return padded;
    const data = off + TRANSPORT_OFF_DATA;
    return MESSAGE_TRANSPORT_HEADER_SIZE + this.aead.seal(this.sendKey, this.preparedCounterLo, this.preparedCounterHi, buf.subarray(data, data + padded), null, buf, data);
  }

  /**
   * `seal` without the AEAD, for batches (AeadBatch): pads the packet at buf[off + 16 ..], takes
   * the next counter (preparedCounterLo/Hi) and writes the header. The caller then seals
   * buf[off + 16 .. off + 16 + padded) in place under `sendSlot` with that counter; the message
   * is 16 + padded + 16 bytes. Returns `padded`, or a SEAL_ERR_* code (nothing consumed).
   */
  prepareSeal(buf: Uint8Array, off: number, len: number, mtu: number): number {
    const counter = this.sendCounter;
    if (counter >= SEND_LIMIT) return SEAL_ERR_EXHAUSTED;
    const padded = paddedLength(len, mtu);
    const data = off + TRANSPORT_OFF_DATA;
    if (data + padded + TAG_SIZE > buf.length) return SEAL_ERR_SPACE;
    this.sendCounter = counter + 1;
    buf.fill(0, data + len, data + padded);
    const lo = counter >>> 0;
    const hi = (counter - lo) / TWO32;
    this.preparedCounterLo = lo;
    this.preparedCounterHi = hi;
    writeHeader(buf, off, MESSAGE_TRANSPORT);
    writeU32LE(buf, off + TRANSPORT_OFF_RECEIVER, this.remoteIndex);
    writeU32LE(buf, off + TRANSPORT_OFF_COUNTER, lo);
    writeU32LE(buf, off + TRANSPORT_OFF_COUNTER + 4, hi);
    return padded;
  }

  /**
   * Opens the transport message buf[off .. off + len] in place: on success the padded
   * plaintext is at buf[off + 16 ..] and its length is returned; otherwise an OPEN_ERR_* code.
   * The replay window is only updated by messages that authenticate.
   */
  open(buf: Uint8Array, off: number, len: number): number {
    const sealed = this.prepareOpen(buf, off, len);
    if (sealed < 0) return sealed;
    const data = off + TRANSPORT_OFF_DATA;
    const lo = this.preparedCounterLo;
    const hi = this.preparedCounterHi;
    return this.completeOpen(lo, hi, this.aead.open(this.receiveKey, lo, hi, buf.subarray(data, off + len), null, buf, data));
  }

  /**
   * `open` up to the AEAD, for batches: checks size, type, receiver and the counter limit and
   * reads the counter (preparedCounterLo/Hi). The caller opens buf[off + 16 .. off + len) in
   * place under `receiveSlot` with that counter, then calls completeOpen. Returns the sealed
   * length (len - 16), or an OPEN_ERR_* code.
   */
  prepareOpen(buf: Uint8Array, off: number, len: number): number {
    if (len < MESSAGE_TRANSPORT_SIZE) return OPEN_ERR_SIZE;
    if (readType(buf, off, len) !== MESSAGE_TRANSPORT) return OPEN_ERR_TYPE;
    if (readU32LE(buf, off + TRANSPORT_OFF_RECEIVER) !== this.localIndex) return OPEN_ERR_INDEX;
    const lo = readU32LE(buf, off + TRANSPORT_OFF_COUNTER);
    const hi = readU32LE(buf, off + TRANSPORT_OFF_COUNTER + 4);
    if (hi === REJECT_AFTER_MESSAGES_HI && lo >= REJECT_AFTER_MESSAGES_LO) return OPEN_ERR_REPLAY;
    this.preparedCounterLo = lo;
    this.preparedCounterHi = hi;
    return len - TRANSPORT_OFF_DATA;
  }

  /**
   * After the AEAD opened a message with counter (lo, hi) and returned `opened` (the plaintext
   * length, or < 0): the replay window is updated only for messages that authenticate. Returns
   * the plaintext length, OPEN_ERR_AUTH or OPEN_ERR_REPLAY.
   */
  completeOpen(counterLo: number, counterHi: number, opened: number): number {
    if (opened < 0) return OPEN_ERR_AUTH;
    if (!this.replay.validate(counterHi, counterLo)) return OPEN_ERR_REPLAY;
    this.lastCounterHi = counterHi;
    this.lastCounterLo = counterLo;
    return opened;
  }

  /** AeadBatch key slot of the sending key (AeadBatch.default()), or -1 if the AEAD is not the wasm one. */
  get sendSlot(): number {
    return this.sendKey instanceof WasmAeadKey ? this.sendKey.slot : -1;
  }

  /** AeadBatch key slot of the receiving key, or -1. */
  get receiveSlot(): number {
    return this.receiveKey instanceof WasmAeadKey ? this.receiveKey.slot : -1;
  }

  /** Drops both keys; the keypair can no longer seal or open. */
  zero(): void {
    this.sendKey.zero();
    this.receiveKey.zero();
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Keypair { local: ${this.localIndex}, remote: ${this.remoteIndex}, initiator: ${this.isInitiator}, sent: ${this.sendCounter}, keys: <redacted> }`;
  }
  toJSON(): unknown {
    return { localIndex: this.localIndex, remoteIndex: this.remoteIndex, isInitiator: this.isInitiator, sendCounter: this.sendCounter };
  }
}

/** Receiver index of a transport message (for the caller's index-table lookup), or -1. */
export function transportReceiver(buf: Uint8Array, off: number, len: number): number {
  if (len < MESSAGE_TRANSPORT_SIZE || readType(buf, off, len) !== MESSAGE_TRANSPORT) return -1;
  return readU32LE(buf, off + TRANSPORT_OFF_RECEIVER);
}

// mac1, mac2 and cookie replies (whitepaper §5.3, §5.4.4, §5.4.7).
//
// Every handshake message ends in mac1 ‖ mac2:
//   mac1 = MAC(HASH(LABEL_MAC1 ‖ Sm_pub), msg[0 : off(mac1)])
//   mac2 = MAC(cookie, msg[0 : off(mac2)])   or zeros when there is no fresh cookie
// A responder under load answers an initiation whose mac2 is not valid with a cookie reply:
//   cookie = MAC(secret, source IP ‖ port)           (secret rotates every COOKIE_REFRESH_TIME)
//   reply  = XAEAD(HASH(LABEL_COOKIE ‖ Sm_pub), random 24-byte nonce, cookie, mac1 of the message)
// The initiator stores the cookie for COOKIE_REFRESH_TIME and puts it into mac2.
//
// `CookieChecker` is the receiving side (one per local identity), `CookieGenerator` the sending
// side (one per peer). Times are milliseconds from an injected monotonic clock.
import { randomFillSync } from 'node:crypto';
import {
  COOKIE_NONCE_SIZE,
  COOKIE_OFF_COOKIE,
  COOKIE_OFF_NONCE,
  COOKIE_OFF_RECEIVER,
  COOKIE_REFRESH_TIME_MS,
  KEY_SIZE,
  LABEL_COOKIE,
  LABEL_MAC1,
  MAC_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  TAG_SIZE,
} from './constants.ts';
import type { StaticIdentity } from './keys.ts';
import { labelKey } from './keys.ts';
import type { Symmetric } from './symmetric.ts';
import { equalConstantTime, readType, readU32LE, wipe, writeHeader, writeU32LE } from './util.ts';

/** Offset of mac1 in a handshake message of type 1 or 2 (mac2 follows it); -1 otherwise. */
export function mac1Offset(msg: Uint8Array, len: number): number {
  const type = readType(msg, 0, len);
  if (type === MESSAGE_INITIATION && len === MESSAGE_INITIATION_SIZE) return len - 2 * MAC_SIZE;
  if (type === MESSAGE_RESPONSE && len === MESSAGE_RESPONSE_SIZE) return len - 2 * MAC_SIZE;
  return -1;
}

/** What to do with an incoming handshake message, before the expensive Noise work. */
export const VERDICT_DROP = 0; // mac1 is wrong: not meant for us, or forged
export const VERDICT_ACCEPT = 1; // process it
export const VERDICT_ACCEPT_RATE_LIMITED = 2; // under load, mac2 valid: process it if the source's rate limit allows
export const VERDICT_SEND_COOKIE = 3; // under load without a valid mac2: answer with a cookie reply
export type Verdict = 0 | 1 | 2 | 3;

export class CookieChecker {
  private readonly sym: Symmetric;
  private readonly mac1Key: Uint8Array;
  private readonly encryptionKey: Uint8Array;
  private readonly secret = new Uint8Array(KEY_SIZE);
  private secretSetMs = -Infinity;
  private readonly scratch = new Uint8Array(MAC_SIZE);
  private readonly cookie = new Uint8Array(MAC_SIZE);
  private readonly nonce = new Uint8Array(COOKIE_NONCE_SIZE);

  constructor(identity: StaticIdentity) {
    this.sym = identity.sym;
    this.mac1Key = identity.mac1Key;
    this.encryptionKey = identity.cookieKey;
  }

  /** Checks mac1 of a handshake message addressed to us. */
  checkMac1(msg: Uint8Array, len: number): boolean {
    const off = mac1Offset(msg, len);
    if (off < 0) return false;
    this.sym.mac(this.mac1Key, msg.subarray(0, off), this.scratch);
    return equalConstantTime(this.scratch, 0, msg, off, MAC_SIZE);
  }

  /** Checks mac2 against the cookie the sender at `source` (IP ‖ port bytes) should hold. */
  checkMac2(msg: Uint8Array, len: number, source: Uint8Array, nowMs: number): boolean {
    const off = mac1Offset(msg, len);
    if (off < 0) return false;
    if (nowMs - this.secretSetMs > COOKIE_REFRESH_TIME_MS) return false; // no cookie handed out under this secret is still valid
    this.sym.mac(this.secret, source, this.cookie);
    this.sym.mac(this.cookie, msg.subarray(0, off + MAC_SIZE), this.scratch);
    wipe(this.cookie);
    return equalConstantTime(this.scratch, 0, msg, off + MAC_SIZE, MAC_SIZE);
  }

  /** The receive-path decision of wireguard-go's device/receive.go for handshake messages. */
  validate(msg: Uint8Array, len: number, source: Uint8Array, underLoad: boolean, nowMs: number): Verdict {
    if (!this.checkMac1(msg, len)) return VERDICT_DROP;
    if (!underLoad) return VERDICT_ACCEPT;
    if (this.checkMac2(msg, len, source, nowMs)) return VERDICT_ACCEPT_RATE_LIMITED;
    return VERDICT_SEND_COOKIE;
  }

  /**
   * Writes the 64-byte cookie reply to handshake message `msg` (whose mac1 verified) from
   * `source`, addressed to the message's sender index. Returns the reply's length, or 0.
   */
  createReply(msg: Uint8Array, len: number, source: Uint8Array, nowMs: number, out: Uint8Array): number {
    const off = mac1Offset(msg, len);
    if (off < 0 || out.length < MESSAGE_COOKIE_REPLY_SIZE) return 0;
    if (nowMs - this.secretSetMs > COOKIE_REFRESH_TIME_MS) {
      // rotate the secret: cookies handed out before are worthless from now on
      randomFillSync(this.secret);
      this.secretSetMs = nowMs;
    }
    this.sym.mac(this.secret, source, this.cookie);
    randomFillSync(this.nonce);
    writeHeader(out, 0, MESSAGE_COOKIE_REPLY);
    // the receiver of the reply is the sender of the message (sender index at offset 4 in types 1 and 2)
    writeU32LE(out, COOKIE_OFF_RECEIVER, readU32LE(msg, 4));
    out.set(this.nonce, COOKIE_OFF_NONCE);
    const sealed = new Uint8Array(MAC_SIZE + TAG_SIZE);
    this.sym.backend.xaead.seal(this.encryptionKey, this.nonce, this.cookie, msg.subarray(off, off + MAC_SIZE), sealed);
    out.set(sealed, COOKIE_OFF_COOKIE);
    wipe(this.cookie);
    return MESSAGE_COOKIE_REPLY_SIZE;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'CookieChecker <redacted>';
  }
}

export class CookieGenerator {
  private readonly sym: Symmetric;
  private readonly mac1Key = new Uint8Array(KEY_SIZE);
  private readonly encryptionKey = new Uint8Array(KEY_SIZE);
  private readonly cookie = new Uint8Array(MAC_SIZE);
  private cookieSetMs = -Infinity;
  private readonly lastMac1 = new Uint8Array(MAC_SIZE);
  private hasLastMac1 = false;

  /** For messages sent to the peer whose static public key is `peerPublicKey`. */
  constructor(sym: Symmetric, peerPublicKey: Uint8Array) {
    this.sym = sym;
    labelKey(sym, LABEL_MAC1, peerPublicKey, this.mac1Key);
    labelKey(sym, LABEL_COOKIE, peerPublicKey, this.encryptionKey);
  }

  /** Fills in mac1 and mac2 of a handshake message we are about to send. */
  addMacs(msg: Uint8Array, len: number, nowMs: number): void {
    const off = mac1Offset(msg, len);
    if (off < 0) throw new RangeError('not a handshake message');
    const mac1 = msg.subarray(off, off + MAC_SIZE);
    this.sym.mac(this.mac1Key, msg.subarray(0, off), mac1);
    this.lastMac1.set(mac1);
    this.hasLastMac1 = true;
    const mac2 = msg.subarray(off + MAC_SIZE, off + 2 * MAC_SIZE);
    if (nowMs - this.cookieSetMs < COOKIE_REFRESH_TIME_MS) this.sym.mac(this.cookie, msg.subarray(0, off + MAC_SIZE), mac2);
    else mac2.fill(0);
  }

  /**
   * Consumes a cookie reply answering our last handshake message. The caller has matched the
   * reply's receiver index to this peer. False (state unchanged) if it does not decrypt.
   */
  consumeReply(msg: Uint8Array, len: number, nowMs: number): boolean {
    if (len !== MESSAGE_COOKIE_REPLY_SIZE || readType(msg, 0, len) !== MESSAGE_COOKIE_REPLY) return false;
    if (!this.hasLastMac1) return false;
    const cookie = new Uint8Array(MAC_SIZE);
    const ok = this.sym.backend.xaead.open(
      this.encryptionKey,
      msg.subarray(COOKIE_OFF_NONCE, COOKIE_OFF_NONCE + COOKIE_NONCE_SIZE),
      msg.subarray(COOKIE_OFF_COOKIE, MESSAGE_COOKIE_REPLY_SIZE),
      this.lastMac1,
      cookie,
    );
    if (ok) {
      this.cookie.set(cookie);
      this.cookieSetMs = nowMs;
    }
    wipe(cookie);
    return ok;
  }

  /** True when a cookie received less than COOKIE_REFRESH_TIME ago is held. */
  hasCookie(nowMs: number): boolean {
    return nowMs - this.cookieSetMs < COOKIE_REFRESH_TIME_MS;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'CookieGenerator <redacted>';
  }
}

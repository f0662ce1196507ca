// The device's handshake messages (whitepaper §5.4.2–§5.4.7, §5.3 under load; wireguard-go
// send.go SendHandshakeInitiation, receive.go RoutineHandshake): initiations sent at most once per
// REKEY_TIMEOUT, initiations and responses received through the load gate (mac1, then under load
// mac2 with a cookie reply, then the per-source rate limit), cookie replies consumed, and the
// sessions they derive installed in the index table.
import {
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE_SIZE,
  REKEY_TIMEOUT_MS,
  VERDICT_ACCEPT,
  VERDICT_DROP,
  VERDICT_SEND_COOKIE,
  consumeInitiation,
  readU32LE,
} from '../noise/index.ts';
import type { Device, DeviceOptions } from './device.ts';
import type { Endpoint } from './endpoint.ts';
import type { Peer } from './peer.ts';
import { RateLimiter } from './ratelimiter.ts';
import {
  timersAnyAuthenticatedPacketReceived,
  timersAnyAuthenticatedPacketSent,
  timersAnyAuthenticatedPacketTraversal,
  timersHandshakeComplete,
  timersHandshakeInitiated,
  timersSessionDerived,
} from './timers.ts';

const UNDER_LOAD_DURATION_MS = 1000;

export class Handshakes {
  private readonly d: Device;
  private readonly rateLimiter = new RateLimiter();
  private readonly underLoadThreshold: number;
  private handshakeWindowStart = 0;
  private handshakesInWindow = 0;
  private underLoadUntil = -Infinity;
  private readonly onMessage: DeviceOptions['onHandshakeMessage'];
  /** when each peer's initiation last went again at once after a cookie reply */
  private readonly quickRetry = new WeakMap<Peer, number>();
  private readonly scratch = new Uint8Array(MESSAGE_INITIATION_SIZE);
  private readonly sourceScratch = new Uint8Array(18);

  constructor(device: Device, opts: DeviceOptions) {
    this.d = device;
    this.underLoadThreshold = opts.underLoadHandshakesPerSecond ?? 1000;
    this.onMessage = opts.onHandshakeMessage;
  }

  /** Starts (or retries) a handshake with `peer`; at most one initiation per REKEY_TIMEOUT. */
  sendInitiation(peer: Peer, isRetry: boolean): void {
    const d = this.d;
    if (!isRetry) peer.handshakeAttempts = 0;
    const hs = peer.handshake;
    if (hs === null || peer.endpoint === null) return;
    const now = d.clock.now();
    // At most one initiation per REKEY_TIMEOUT. Data-triggered ones also wait a random jitter,
    // so two peers whose initiations crossed do not cross again in lockstep on the next data.
    const holdoff = REKEY_TIMEOUT_MS + (isRetry ? 0 : peer.handshakeHoldoffJitterMs);
    if (now - peer.lastSentHandshakeMs < holdoff) return;
    peer.lastSentHandshakeMs = now;
    peer.handshakeHoldoffJitterMs = d.jitter();
    const index = d.index.newHandshakeIndex(peer);
    const msg = this.scratch;
    if (hs.createInitiation(index, d.clock.wallMs(), msg) === 0) {
      d.index.dropHandshakeIndex(peer);
      return;
    }
    this.onMessage?.(peer, msg);
    hs.cookies.addMacs(msg, MESSAGE_INITIATION_SIZE, now);
    timersAnyAuthenticatedPacketTraversal(peer, d.clock.now());
    timersAnyAuthenticatedPacketSent(peer);
    d.sendTo(peer, msg, 0, MESSAGE_INITIATION_SIZE);
    timersHandshakeInitiated(peer, now, d.jitter());
  }

  private underLoad(now: number): boolean {
    if (now - this.handshakeWindowStart >= 1000) {
      this.handshakeWindowStart = now;
      this.handshakesInWindow = 0;
    }
    if (++this.handshakesInWindow > this.underLoadThreshold) this.underLoadUntil = now + UNDER_LOAD_DURATION_MS;
    return now < this.underLoadUntil;
  }

  /** The load gate for handshake messages: true when the message may be processed. */
  private admit(msg: Uint8Array, from: Endpoint, now: number): boolean {
    const d = this.d;
    const source = from.sourceBytes(this.sourceScratch);
    const verdict = d.checker!.validate(msg, msg.length, source, this.underLoad(now), now);
    if (verdict === VERDICT_DROP) {
      d.counters.rxMac++;
      return false;
    }
    if (verdict === VERDICT_SEND_COOKIE) {
      const reply = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
      if (d.checker!.createReply(msg, msg.length, source, now, reply) > 0) {
        d.counters.rxCookieSent++;
        d.io.sendUdp(reply, 0, MESSAGE_COOKIE_REPLY_SIZE, from);
      }
      return false;
    }
    if (verdict !== VERDICT_ACCEPT && !this.rateLimiter.allow(source.subarray(0, source.length - 2), now)) {
      d.counters.rxRateLimited++;
      return false;
    }
    return true;
  }

  receiveInitiation(msg: Uint8Array, from: Endpoint): void {
    const d = this.d;
    const now = d.clock.now();
    if (!this.admit(msg, from, now)) return;
    const r = consumeInitiation(d.identity!, msg, msg.length, (pk) => d.peer(pk)?.handshake ?? undefined, now);
    if (!r.ok) return void d.counters.rxHandshakeRejected++;
    const peer = d.peer(r.handshake.remoteStatic)!;
    peer.rxBytes += msg.length;
    peer.updateEndpoint(from);
    // respond (a handshake of our own in progress is superseded)
    const hs = r.handshake;
    const index = d.index.newHandshakeIndex(peer);
    const resp = this.scratch;
    if (hs.createResponse(index, resp) === 0) {
      d.index.dropHandshakeIndex(peer);
      return;
    }
    this.onMessage?.(peer, resp);
    hs.cookies.addMacs(resp, MESSAGE_RESPONSE_SIZE, now);
    const kp = hs.deriveKeypair(now)!;
    d.index.install(peer, kp);
    timersSessionDerived(peer, now);
    timersAnyAuthenticatedPacketTraversal(peer, d.clock.now());
    timersAnyAuthenticatedPacketSent(peer);
    d.sendTo(peer, resp, 0, MESSAGE_RESPONSE_SIZE);
  }

  receiveResponse(msg: Uint8Array, from: Endpoint): void {
    const d = this.d;
    const now = d.clock.now();
    if (!this.admit(msg, from, now)) return;
    const entry = d.index.get(readU32LE(msg, 8));
    if (entry === undefined || entry.keypair !== null || entry.peer.handshake === null) return void d.counters.rxHandshakeRejected++;
    const peer = entry.peer;
    if (peer.handshakeIndex !== readU32LE(msg, 8)) return void d.counters.rxHandshakeRejected++;
    const hs = peer.handshake!;
    if (!hs.consumeResponse(msg, msg.length).ok) return void d.counters.rxHandshakeRejected++;
    peer.rxBytes += msg.length;
    peer.updateEndpoint(from);
    const kp = hs.deriveKeypair(now)!;
    d.index.install(peer, kp);
    timersSessionDerived(peer, now);
    timersHandshakeComplete(peer, d.clock.wallMs());
    timersAnyAuthenticatedPacketTraversal(peer, d.clock.now());
    timersAnyAuthenticatedPacketReceived(peer);
    d.sendKeepalive(peer);
  }

  receiveCookieReply(msg: Uint8Array): void {
    const d = this.d;
    const index = readU32LE(msg, 4);
    const entry = d.index.get(index);
    if (entry === undefined || entry.peer.handshake === null) return void d.counters.rxHandshakeRejected++;
    const now = d.clock.now();
    if (!entry.peer.handshake.cookies.consumeReply(msg, msg.length, now)) return void d.counters.rxHandshakeRejected++;
    // The responder is under load and wants its cookie in mac2: our initiation goes again at once
    // (wireguard-go waits for the retransmit, REKEY_TIMEOUT), so a flood at the responder costs a
    // legitimate initiator one round trip, not 5 s (bench:flood). At most once per REKEY_TIMEOUT.
    const peer = entry.peer;
    if (entry.keypair === null && peer.handshakeIndex === index && now - (this.quickRetry.get(peer) ?? -Infinity) >= REKEY_TIMEOUT_MS) {
      this.quickRetry.set(peer, now);
      peer.lastSentHandshakeMs = -Infinity;
      this.sendInitiation(peer, true);
    }
  }

  /** Forgets rate-limiter entries that have been quiet (the device's tick). */
  sweep(now: number): void {
    this.rateLimiter.sweep(now);
  }
}

// The WireGuard device (whitepaper §2–§6; wireguard-go device/): peers, the index table,
// cryptokey routing, the send and receive paths, the timer state machine and under-load
// handling. No sockets and no TUN here: datagrams and packets come in through methods and go
// out through `DeviceIO`; time comes from an injectable clock; `tick()` runs the timers.
//
// Outbound (a packet read from the TUN, at buf[off..], with 16 bytes of headroom before it):
//   1. the destination address picks the peer (allowed IPs, longest prefix);
//   2. the packet is staged on the peer (copied only if it must wait);
//   3. with a usable current keypair it is padded and sealed in place, then sent;
//   4. otherwise a handshake is started and the packet waits (bounded queue);
//   5. timers: data sent arms "new handshake"; an old keypair triggers a rekey.
// Inbound (a datagram from the listen socket):
//   1. type and size; handshake messages go through mac1 (and mac2 under load);
//   2. transport messages find their keypair by receiver index and open in place;
//   3. the endpoint follows the source of every authenticated datagram (roaming);
//   4. the inner packet's source must be an allowed IP of that peer, then it goes to the TUN.
import { randomInt } from 'node:crypto';
import {
  CookieChecker,
  KEEPALIVE_TIMEOUT_MS,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_HEADER_SIZE,
  MESSAGE_TRANSPORT_SIZE,
  OPEN_ERR_REPLAY,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME_MS,
  REKEY_TIMEOUT_JITTER_MAX_MS,
  REKEY_TIMEOUT_MS,
  SEAL_ERR_EXHAUSTED,
  StaticIdentity,
  TAG_SIZE,
  VERDICT_ACCEPT,
  VERDICT_DROP,
  VERDICT_SEND_COOKIE,
  chosenBackend,
  consumeInitiation,
  readType,
  readU32LE,
  wasmAead,
  type CryptoBackend,
  type Keypair,
} from '../noise/index.ts';
import { AllowedIps } from './allowedips.ts';
import { Endpoint } from './endpoint.ts';
import { MAX_STAGED_PACKETS, Peer } from './peer.ts';
import { RateLimiter } from './ratelimiter.ts';
import { NOT_QUEUED, SealQueue } from './seal-queue.ts';
import { OpenQueue } from './open-queue.ts';
import {
  tickPeer,
  timersAnyAuthenticatedPacketReceived,
  timersAnyAuthenticatedPacketSent,
  timersAnyAuthenticatedPacketTraversal,
  timersDataReceived,
  timersDataSent,
  timersHandshakeComplete,
  timersHandshakeInitiated,
  timersSessionDerived,
} from './timers.ts';

export interface DeviceIO {
  /** Sends buf[off..off+len] to `to` (from `to.local` when set). Valid only during the call. */
  sendUdp(buf: Uint8Array, off: number, len: number, to: Endpoint): void;
  /** Delivers a decrypted IP packet (from `peer`) to the TUN. Valid only during the call. */
  writeTun(buf: Uint8Array, off: number, len: number, peer: Peer): void;
}

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall clock, Unix milliseconds (TAI64N timestamps, `latest handshake`). */
  wallMs(): number;
}

export const systemClock: Clock = { now: () => performance.now(), wallMs: () => Date.now() };

export interface DeviceOptions {
  clock?: Clock;
  backend?: CryptoBackend;
  /** TUN MTU: transport plaintext is padded up to it, never past it. */
  mtu?: number;
  /** Handshake messages per second above which the device is "under load" for a second. */
  underLoadHandshakesPerSecond?: number;
  /** Jitter source for REKEY_TIMEOUT (tests make it deterministic). */
  jitterMs?: () => number;
  /**
   * Seal transport data in batches (src/wg/seal-queue.ts): the owner must call flushSeals()
   * before it sends what a round produced (DeviceSockets does). Off by default.
   */
  batchSeal?: boolean;
  /**
   * Open transport data in batches (src/wg/open-queue.ts): the owner must call flushOpens() after
   * each batch of receiveDatagram calls (DeviceSockets does, per read batch). Off by default.
   */
  batchOpen?: boolean;
  /** After an initiation or response to `peer` is built: `msg` holds our ephemeral public key (the opt-in key log, src/keylog.ts). */
  onHandshakeMessage?: (peer: Peer, msg: Uint8Array) => void;
}

/** Why datagrams or packets were dropped; readable by `sixpn-wg` status and the tests. */
export interface DeviceCounters {
  rxDatagrams: number;
  rxInvalid: number; // wrong type or size
  rxMac: number; // mac1 failed
  rxHandshakeRejected: number; // Noise rejected it (decrypt, replay, flood, unknown peer)
  rxCookieSent: number;
  rxRateLimited: number;
  rxNoKeypair: number; // unknown receiver index, or keypair too old
  rxAuthFailed: number;
  rxReplay: number;
  rxBadInner: number; // not an IPv4/IPv6 packet, or truncated
  rxSourceNotAllowed: number; // cryptokey routing: the peer may not use that source
  txNoPeer: number; // no allowed IP matches the destination
  txNoEndpoint: number;
  txStagedDropped: number;
}

type IndexEntry = { peer: Peer; keypair: Keypair | null };

const UNDER_LOAD_DURATION_MS = 1000;
/** The interface MTU when none is given (wireguard-go's and wg-quick's default). */
export const DEFAULT_MTU = 1420;
const HEADROOM = MESSAGE_TRANSPORT_HEADER_SIZE;

export class Device {
  readonly clock: Clock;
  readonly backend: CryptoBackend;
  readonly io: DeviceIO;
  identity: StaticIdentity | null = null;
  checker: CookieChecker | null = null;
  listenPort = 0;
  fwmark = 0;
  mtu: number;
  readonly peers = new Map<string, Peer>();
  readonly allowedIps = new AllowedIps<Peer>();
  readonly counters: DeviceCounters = {
    rxDatagrams: 0, rxInvalid: 0, rxMac: 0, rxHandshakeRejected: 0, rxCookieSent: 0, rxRateLimited: 0,
    rxNoKeypair: 0, rxAuthFailed: 0, rxReplay: 0, rxBadInner: 0, rxSourceNotAllowed: 0,
    txNoPeer: 0, txNoEndpoint: 0, txStagedDropped: 0,
  };

  private readonly indices = new Map<number, IndexEntry>();
  private readonly rateLimiter = new RateLimiter();
  private readonly underLoadThreshold: number;
  private handshakeWindowStart = 0;
  private handshakesInWindow = 0;
  private underLoadUntil = -Infinity;
  private readonly jitter: () => number;
  private readonly onHandshakeMessage: DeviceOptions['onHandshakeMessage'];
  private readonly scratch = new Uint8Array(MESSAGE_INITIATION_SIZE);
  private readonly sourceScratch = new Uint8Array(18);
  private readonly keepaliveBuf = new Uint8Array(MESSAGE_TRANSPORT_SIZE);
  private readonly seals: SealQueue | null;
  private opens: OpenQueue | null;

  constructor(io: DeviceIO, opts: DeviceOptions = {}) {
    this.io = io;
    this.clock = opts.clock ?? systemClock;
    this.backend = opts.backend ?? chosenBackend;
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    this.underLoadThreshold = opts.underLoadHandshakesPerSecond ?? 1000;
    this.jitter = opts.jitterMs ?? (() => randomInt(REKEY_TIMEOUT_JITTER_MAX_MS + 1));
    this.onHandshakeMessage = opts.onHandshakeMessage;
    this.seals = opts.batchSeal === true && this.backend.aead === wasmAead ? SealQueue.forThread() : null;
    this.opens = opts.batchOpen === true && this.backend.aead === wasmAead ? new OpenQueue(this) : null;
  }

  /** Opens and delivers the transport messages queued since the last call (batchOpen; no-op otherwise). */
  flushOpens(): void {
    this.opens?.flush();
  }

  /** Transport messages opened in batches and the batches they took (batchOpen). */
  get batchOpens(): { opened: number; batches: number } {
    return { opened: this.opens?.opened ?? 0, batches: this.opens?.batches ?? 0 };
  }

  /** Delivers what is queued and gives back the open queue's arena (the owner is closing). */
  releaseBatches(): void {
    this.opens?.release();
    this.opens = null;
    this.seals?.flush();
  }

  /** Seals and sends the data packets queued by this round (batchSeal; no-op otherwise). */
  flushSeals(): void {
    this.seals?.flush();
  }

  /** A message sealed by the batch queue: on its way to the peer (SealedSink). */
  sendSealed(peer: Peer, buf: Uint8Array, off: number, len: number): void {
    this.sendTo(peer, buf, off, len);
  }

  // ------------------------------------------------------------------------------------------
  // Configuration

  setPrivateKey(key: Uint8Array | null): void {
    this.identity?.zero();
    this.identity = key === null ? null : new StaticIdentity(this.backend, key);
    this.checker = this.identity === null ? null : new CookieChecker(this.identity);
    for (const peer of [...this.peers.values()]) {
      // a peer with our own public key cannot be talked to (wireguard-go removes it)
      if (this.identity !== null && Buffer.compare(peer.publicKey, this.identity.publicKey) === 0) {
        this.removePeer(peer);
        continue;
      }
      this.expireSessions(peer);
      peer.bind(this.identity);
    }
  }

  addPeer(publicKey: Uint8Array): Peer {
    const hex = Buffer.from(publicKey).toString('hex');
    const existing = this.peers.get(hex);
    if (existing) return existing;
    const peer = new Peer(publicKey);
    peer.bind(this.identity);
    this.peers.set(hex, peer);
    return peer;
  }

  peer(publicKey: Uint8Array): Peer | undefined {
    return this.peers.get(Buffer.from(publicKey).toString('hex'));
  }

  removePeer(peer: Peer): void {
    this.expireSessions(peer);
    peer.handshake?.zero();
    this.allowedIps.removeValue(peer);
    this.peers.delete(peer.publicKeyHex);
  }

  setPersistentKeepalive(peer: Peer, seconds: number): void {
    const was = peer.persistentKeepaliveS;
    peer.persistentKeepaliveS = seconds;
    // enabling it sends a keepalive at once (wireguard-go, so a peer behind NAT is reachable)
    if (seconds > 0 && was === 0 && peer.endpoint !== null && this.identity !== null) this.sendKeepalive(peer);
  }

  /** Drops every keypair and the handshake in progress (keys zeroed, indices freed). */
  expireSessions(peer: Peer): void {
    for (const kp of [peer.previous, peer.current, peer.next]) if (kp) this.deleteKeypair(kp);
    peer.previous = peer.current = peer.next = null;
    this.dropHandshakeIndex(peer);
    peer.handshake?.clear();
    peer.retransmitHandshakeAt = Infinity;
    peer.handshakeAttempts = 0;
  }

  // ------------------------------------------------------------------------------------------
  // Outbound: packets from the TUN

  /**
   * Sends the IP packet at buf[off..off+len]. The caller leaves 16 bytes of headroom before
   * `off` and room for padding and the tag after it (see `packetRoom`); the packet is sealed
   * in place.
   */
  sendPacket(buf: Uint8Array, off: number, len: number): void {
    const peer = this.routeOf(buf, off, len);
    if (peer === null) {
      this.counters.txNoPeer++;
      return;
    }
    if (peer.endpoint === null) {
      this.counters.txNoEndpoint++;
      return;
    }
    const kp = this.sendableKeypair(peer);
    if (kp !== null && peer.staged.length === 0) {
      this.sealAndSend(peer, kp, buf, off - HEADROOM, len);
      timersDataSent(peer, this.clock.now(), this.jitter());
      this.keepKeyFreshSending(peer, kp);
      return;
    }
    this.stage(peer, buf, off, len);
    this.sendStaged(peer);
  }

  /** Bytes a caller must have from `off` for a `len`-byte packet: padding plus the tag. */
  packetRoom(len: number): number {
    return Math.max(len, ((len + 15) & ~15)) + TAG_SIZE;
  }

  private routeOf(buf: Uint8Array, off: number, len: number): Peer | null {
    if (len < 1) return null;
    const version = buf[off] >> 4;
    if (version === 6 && len >= 40) return this.allowedIps.lookup(6, buf, off + 24);
    if (version === 4 && len >= 20) return this.allowedIps.lookup(4, buf, off + 16);
    return null;
  }

  private stage(peer: Peer, buf: Uint8Array, off: number, len: number): void {
    if (peer.staged.length >= MAX_STAGED_PACKETS) {
      peer.staged.shift();
      this.counters.txStagedDropped++;
    }
    const copy = new Uint8Array(HEADROOM + this.packetRoom(len));
    copy.set(buf.subarray(off, off + len), HEADROOM);
    peer.staged.push({ buf: copy, len });
  }

  /** A keypair that may send now, or null (then a handshake is needed). */
  private sendableKeypair(peer: Peer): Keypair | null {
    const kp = peer.current;
    if (kp === null) return null;
    if (this.clock.now() - kp.createdMs >= REJECT_AFTER_TIME_MS) return null;
    return kp;
  }

  private sendStaged(peer: Peer): void {
    if (peer.staged.length === 0) return;
    const kp = this.sendableKeypair(peer);
    if (kp === null) {
      this.sendInitiation(peer, false);
      return;
    }
    for (const p of peer.staged.splice(0)) {
      this.sealAndSend(peer, kp, p.buf, 0, p.len);
      timersDataSent(peer, this.clock.now(), this.jitter());
    }
    this.keepKeyFreshSending(peer, kp);
  }

  private sealAndSend(peer: Peer, kp: Keypair, buf: Uint8Array, msgOff: number, len: number): void {
    const n = this.seals === null ? NOT_QUEUED : this.seals.add(this, peer, kp, buf, msgOff, len, this.mtu);
    if (n === 0) {
      timersAnyAuthenticatedPacketTraversal(peer, this.clock.now());
      timersAnyAuthenticatedPacketSent(peer);
      return;
    }
    if (n === NOT_QUEUED) this.sealOne(peer, kp, buf, msgOff, len);
    else if (n === SEAL_ERR_EXHAUSTED) this.sendInitiation(peer, false);
  }

  private sealOne(peer: Peer, kp: Keypair, buf: Uint8Array, msgOff: number, len: number): void {
    const n = kp.seal(buf, msgOff, len, this.mtu);
    if (n < 0) {
      if (n === SEAL_ERR_EXHAUSTED) this.sendInitiation(peer, false); // REJECT_AFTER_MESSAGES: a new session
      return;
    }
    this.sendTo(peer, buf, msgOff, n);
    timersAnyAuthenticatedPacketTraversal(peer, this.clock.now());
    timersAnyAuthenticatedPacketSent(peer);
  }

  private sendTo(peer: Peer, buf: Uint8Array, off: number, len: number): void {
    if (peer.endpoint === null) return;
    peer.txBytes += len;
    this.io.sendUdp(buf, off, len, peer.endpoint);
  }

  /** Sends staged packets, or a keepalive if nothing is staged (wireguard-go SendKeepalive). */
  sendKeepalive(peer: Peer): void {
    if (peer.staged.length === 0) {
      const kp = this.sendableKeypair(peer);
      if (kp === null) {
        this.sendInitiation(peer, false);
        return;
      }
      this.sealAndSend(peer, kp, this.keepaliveBuf, 0, 0);
      return;
    }
    this.sendStaged(peer);
  }

  private keepKeyFreshSending(peer: Peer, kp: Keypair): void {
    if (kp.sendCounter > REKEY_AFTER_MESSAGES || (kp.isInitiator && this.clock.now() - kp.createdMs > REKEY_AFTER_TIME_MS)) {
      this.sendInitiation(peer, false);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Handshakes

  /** Starts (or retries) a handshake with `peer`; at most one initiation per REKEY_TIMEOUT. */
  sendInitiation(peer: Peer, isRetry: boolean): void {
    if (!isRetry) peer.handshakeAttempts = 0;
    const hs = peer.handshake;
    if (hs === null || peer.endpoint === null) return;
    const now = this.clock.now();
    // At most one initiation per REKEY_TIMEOUT. Data-triggered ones also wait a random jitter,
    // so two peers whose initiations crossed do not cross again in lockstep on the next data.
    const holdoff = REKEY_TIMEOUT_MS + (isRetry ? 0 : peer.handshakeHoldoffJitterMs);
    if (now - peer.lastSentHandshakeMs < holdoff) return;
    peer.lastSentHandshakeMs = now;
    peer.handshakeHoldoffJitterMs = this.jitter();
    this.dropHandshakeIndex(peer);
    const index = (peer.handshakeIndex = this.newIndex({ peer, keypair: null }));
    const msg = this.scratch;
    if (hs.createInitiation(index, this.clock.wallMs(), msg) === 0) {
      this.dropHandshakeIndex(peer);
      return;
    }
    this.onHandshakeMessage?.(peer, msg);
    hs.cookies.addMacs(msg, MESSAGE_INITIATION_SIZE, now);
    timersAnyAuthenticatedPacketTraversal(peer, this.clock.now());
    timersAnyAuthenticatedPacketSent(peer);
    this.sendTo(peer, msg, 0, MESSAGE_INITIATION_SIZE);
    timersHandshakeInitiated(peer, now, this.jitter());
  }

  private newIndex(entry: IndexEntry): number {
    for (;;) {
      const i = randomInt(1, 2 ** 32 - 1) >>> 0;
      if (!this.indices.has(i)) {
        this.indices.set(i, entry);
        return i;
      }
    }
  }

  private dropHandshakeIndex(peer: Peer): void {
    if (peer.handshakeIndex !== 0) {
      const e = this.indices.get(peer.handshakeIndex);
      if (e !== undefined && e.keypair === null) this.indices.delete(peer.handshakeIndex);
      peer.handshakeIndex = 0;
    }
  }

  private deleteKeypair(kp: Keypair): void {
    // messages sealed or waiting to be opened with its key must not outlive it
    this.seals?.flush();
    this.opens?.flush();
    const e = this.indices.get(kp.localIndex);
    if (e !== undefined && e.keypair === kp) this.indices.delete(kp.localIndex);
    kp.zero();
  }

  /** Installs a new keypair (wireguard-go BeginSymmetricSession's rotation). */
  private installKeypair(peer: Peer, kp: Keypair): void {
    this.indices.set(kp.localIndex, { peer, keypair: kp }); // the handshake's slot becomes the keypair's
    peer.handshakeIndex = 0;
    if (kp.isInitiator) {
      if (peer.next !== null) {
        if (peer.previous) this.deleteKeypair(peer.previous);
        peer.previous = peer.next;
        peer.next = null;
        if (peer.current) this.deleteKeypair(peer.current);
      } else {
        if (peer.previous) this.deleteKeypair(peer.previous);
        peer.previous = peer.current;
      }
      peer.current = kp;
    } else {
      if (peer.next) this.deleteKeypair(peer.next);
      peer.next = kp;
      if (peer.previous) this.deleteKeypair(peer.previous);
      peer.previous = null;
    }
  }

  /** The responder's `next` keypair becomes current once the initiator has sent on it. */
  private receivedWithKeypair(peer: Peer, kp: Keypair): boolean {
    if (peer.next !== kp) return false;
    if (peer.previous) this.deleteKeypair(peer.previous);
    peer.previous = peer.current;
    peer.current = kp;
    peer.next = null;
    return true;
  }

  private underLoad(now: number): boolean {
    if (now - this.handshakeWindowStart >= 1000) {
      this.handshakeWindowStart = now;
      this.handshakesInWindow = 0;
    }
    if (++this.handshakesInWindow > this.underLoadThreshold) this.underLoadUntil = now + UNDER_LOAD_DURATION_MS;
    return now < this.underLoadUntil;
  }

  // ------------------------------------------------------------------------------------------
  // Inbound: datagrams from the listen socket

  /**
   * Processes one datagram buf[off..off+len] from `from` (the caller may reuse `from` after the
   * call: the device copies what it keeps). Transport data is decrypted in place.
   */
  receiveDatagram(buf: Uint8Array, off: number, len: number, from: Endpoint): void {
    this.counters.rxDatagrams++;
    const type = readType(buf, off, len);
    if (type === MESSAGE_TRANSPORT && len >= MESSAGE_TRANSPORT_SIZE) return this.receiveTransport(buf, off, len, from);
    this.opens?.flush(); // the transport messages before it are handled before it
    if (this.identity === null || this.checker === null) return void this.counters.rxInvalid++;
    if (type === MESSAGE_INITIATION && len === MESSAGE_INITIATION_SIZE) return this.receiveInitiation(buf.subarray(off, off + len), from);
    if (type === MESSAGE_RESPONSE && len === MESSAGE_RESPONSE_SIZE) return this.receiveResponse(buf.subarray(off, off + len), from);
    if (type === MESSAGE_COOKIE_REPLY && len === MESSAGE_COOKIE_REPLY_SIZE) return this.receiveCookieReply(buf.subarray(off, off + len));
    this.counters.rxInvalid++;
  }

  /** The load gate for handshake messages: true when the message may be processed. */
  private admit(msg: Uint8Array, from: Endpoint, now: number): boolean {
    const source = from.sourceBytes(this.sourceScratch);
    const verdict = this.checker!.validate(msg, msg.length, source, this.underLoad(now), now);
    if (verdict === VERDICT_DROP) {
      this.counters.rxMac++;
      return false;
    }
    if (verdict === VERDICT_SEND_COOKIE) {
      const reply = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
      if (this.checker!.createReply(msg, msg.length, source, now, reply) > 0) {
        this.counters.rxCookieSent++;
        this.io.sendUdp(reply, 0, MESSAGE_COOKIE_REPLY_SIZE, from);
      }
      return false;
    }
    if (verdict !== VERDICT_ACCEPT && !this.rateLimiter.allow(source.subarray(0, source.length - 2), now)) {
      this.counters.rxRateLimited++;
      return false;
    }
    return true;
  }

  private receiveInitiation(msg: Uint8Array, from: Endpoint): void {
    const now = this.clock.now();
    if (!this.admit(msg, from, now)) return;
    const r = consumeInitiation(this.identity!, msg, msg.length, (pk) => this.peer(pk)?.handshake ?? undefined, now);
    if (!r.ok) return void this.counters.rxHandshakeRejected++;
    const peer = this.peer(r.handshake.remoteStatic)!;
    peer.rxBytes += msg.length;
    this.updateEndpoint(peer, from);
    // respond (a handshake of our own in progress is superseded)
    const hs = r.handshake;
    this.dropHandshakeIndex(peer);
    const index = (peer.handshakeIndex = this.newIndex({ peer, keypair: null }));
    const resp = this.scratch;
    if (hs.createResponse(index, resp) === 0) {
      this.dropHandshakeIndex(peer);
      return;
    }
    this.onHandshakeMessage?.(peer, resp);
    hs.cookies.addMacs(resp, MESSAGE_RESPONSE_SIZE, now);
    const kp = hs.deriveKeypair(now)!;
    this.installKeypair(peer, kp);
    timersSessionDerived(peer, now);
    timersAnyAuthenticatedPacketTraversal(peer, this.clock.now());
    timersAnyAuthenticatedPacketSent(peer);
    this.sendTo(peer, resp, 0, MESSAGE_RESPONSE_SIZE);
  }

  private receiveResponse(msg: Uint8Array, from: Endpoint): void {
    const now = this.clock.now();
    if (!this.admit(msg, from, now)) return;
    const entry = this.indices.get(readU32LE(msg, 8));
    if (entry === undefined || entry.keypair !== null || entry.peer.handshake === null) return void this.counters.rxHandshakeRejected++;
    const peer = entry.peer;
    if (peer.handshakeIndex !== readU32LE(msg, 8)) return void this.counters.rxHandshakeRejected++;
    const hs = peer.handshake!;
    if (!hs.consumeResponse(msg, msg.length).ok) return void this.counters.rxHandshakeRejected++;
    peer.rxBytes += msg.length;
    this.updateEndpoint(peer, from);
    const kp = hs.deriveKeypair(now)!;
    this.installKeypair(peer, kp);
    timersSessionDerived(peer, now);
    timersHandshakeComplete(peer, this.clock.wallMs());
    timersAnyAuthenticatedPacketTraversal(peer, this.clock.now());
    timersAnyAuthenticatedPacketReceived(peer);
    this.sendKeepalive(peer);
  }

  private receiveCookieReply(msg: Uint8Array): void {
    const entry = this.indices.get(readU32LE(msg, 4));
    if (entry === undefined || entry.peer.handshake === null) return void this.counters.rxHandshakeRejected++;
    if (!entry.peer.handshake.cookies.consumeReply(msg, msg.length, this.clock.now())) this.counters.rxHandshakeRejected++;
  }

  private receiveTransport(buf: Uint8Array, off: number, len: number, from: Endpoint): void {
    const entry = this.indices.get(readU32LE(buf, off + 4));
    const kp = entry?.keypair ?? null;
    const now = this.clock.now();
    if (kp === null || now - kp.createdMs >= REJECT_AFTER_TIME_MS) return void this.counters.rxNoKeypair++;
    const peer = entry!.peer;
    if (this.opens !== null) {
      const queued = this.opens.add(peer, kp, buf, off, len, from);
      if (queued === 0) return; // transportOpened follows at flushOpens
      if (queued !== NOT_QUEUED) return this.opened(peer, kp, buf, off, len, queued, from);
    }
    this.opened(peer, kp, buf, off, len, kp.open(buf, off, len), from);
  }

  /** A message opened by the batch queue (OpenedSink): its counter is checked now, in arrival order. */
  transportOpened(peer: Peer, kp: Keypair, buf: Uint8Array, off: number, len: number, opened: number, from: Endpoint): void {
    // a message before it in the batch may have rotated this keypair out (as one by one: no keypair)
    const e = this.indices.get(kp.localIndex);
    if (e === undefined || e.keypair !== kp) return void this.counters.rxNoKeypair++;
    this.opened(peer, kp, buf, off, len, kp.completeOpen(readU32LE(buf, off + 8), readU32LE(buf, off + 12), opened), from);
  }

  /** After the AEAD: n is the plaintext length, or an OPEN_ERR_* code. */
  private opened(peer: Peer, kp: Keypair, buf: Uint8Array, off: number, len: number, n: number, from: Endpoint): void {
    if (n < 0) {
      if (n === OPEN_ERR_REPLAY) this.counters.rxReplay++;
      else this.counters.rxAuthFailed++;
      return;
    }
    const now = this.clock.now();
    peer.rxBytes += len;
    this.updateEndpoint(peer, from);
    if (this.receivedWithKeypair(peer, kp)) {
      timersHandshakeComplete(peer, this.clock.wallMs());
      this.sendStaged(peer);
    }
    this.keepKeyFreshReceiving(peer, now);
    timersAnyAuthenticatedPacketTraversal(peer, this.clock.now());
    timersAnyAuthenticatedPacketReceived(peer);
    if (n === 0) return; // keepalive
    timersDataReceived(peer, now);

    // the inner packet: a well-formed IP header whose source this peer may use
    const p = off + MESSAGE_TRANSPORT_HEADER_SIZE;
    const version = buf[p] >> 4;
    let innerLen: number;
    let family: 4 | 6;
    let srcOff: number;
    if (version === 4 && n >= 20) {
      innerLen = (buf[p + 2] << 8) | buf[p + 3];
      family = 4;
      srcOff = p + 12;
    } else if (version === 6 && n >= 40) {
      innerLen = 40 + ((buf[p + 4] << 8) | buf[p + 5]);
      family = 6;
      srcOff = p + 8;
    } else return void this.counters.rxBadInner++;
    if (innerLen > n || innerLen < (family === 4 ? 20 : 40)) return void this.counters.rxBadInner++;
    if (this.allowedIps.lookup(family, buf, srcOff) !== peer) return void this.counters.rxSourceNotAllowed++;
    this.io.writeTun(buf, p, innerLen, peer);
  }

  private updateEndpoint(peer: Peer, from: Endpoint): void {
    if (peer.endpoint === null) peer.endpoint = new Endpoint();
    else if (peer.endpoint.sameRemote(from) && peer.endpoint.sameLocal(from)) return;
    peer.endpoint.copyFrom(from);
  }

  private keepKeyFreshReceiving(peer: Peer, now: number): void {
    if (peer.sentLastMinuteHandshake) return;
    const kp = peer.current;
    if (kp !== null && kp.isInitiator && now - kp.createdMs > REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS) {
      peer.sentLastMinuteHandshake = true;
      this.sendInitiation(peer, false);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Timers (timers.ts)

  /** Runs every timer that is due. Call often (every 100 ms or so) and after moving the clock. */
  tick(): void {
    const now = this.clock.now();
    for (const peer of this.peers.values()) tickPeer(this, peer, now);
    this.rateLimiter.sweep(now);
  }
}

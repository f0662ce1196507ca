// The WireGuard device (whitepaper §2–§6; wireguard-go device/): peers and their configuration,
// cryptokey routing, the send path, and the dispatch of received datagrams. No sockets and no TUN
// here: datagrams and packets come in through methods and go out through `DeviceIO`; time comes
// from an injectable clock; `tick()` runs the timers. One concern per file, as wireguard-go's:
//   device.ts      configuration, the outbound path (send.go), dispatch, the tick
//   handshakes.ts  handshake messages: initiations, responses, cookie replies, the load gate
//   receive.ts     inbound transport: open (one by one or batched), replay, rotation, inner packet
//   keypairs.ts    the index table and each peer's keypair rotation
//   timers.ts      the timer state machine, over the narrow TimerTarget interface
//   seal-queue.ts, open-queue.ts   batched AEAD (batchSeal, batchOpen)
//
// Outbound (a packet read from the TUN, at buf[off..], with 16 bytes of headroom before it):
//   1. the destination address picks the peer (allowed IPs, longest prefix);
//   2. the packet is staged on the peer (copied only if it must wait);
//   3. with a usable current keypair it is padded and sealed in place (or queued for the batch
//      seal), then sent;
//   4. otherwise a handshake is started and the packet waits (bounded queue);
//   5. timers: data sent arms "new handshake"; an old keypair triggers a rekey.
// Inbound (a datagram from the listen socket): type and size pick handshakes.ts or receive.ts;
// with batchOpen, the transport messages queued so far are delivered before a handshake message.
import { randomInt } from 'node:crypto';
import {
  CookieChecker,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_HEADER_SIZE,
  MESSAGE_TRANSPORT_SIZE,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME_MS,
  REKEY_TIMEOUT_JITTER_MAX_MS,
  SEAL_ERR_EXHAUSTED,
  StaticIdentity,
  TAG_SIZE,
  chosenBackend,
  readType,
  wasmAead,
  type CryptoBackend,
  type Keypair,
} from '../noise/index.ts';
import { AllowedIps } from './allowedips.ts';
import type { Endpoint } from './endpoint.ts';
import { Handshakes } from './handshakes.ts';
import { IndexTable } from './keypairs.ts';
import { MAX_STAGED_PACKETS, Peer } from './peer.ts';
import { Receiver } from './receive.ts';
import { NOT_QUEUED, SealQueue } from './seal-queue.ts';
import { tickPeer, timersAnyAuthenticatedPacketSent, timersAnyAuthenticatedPacketTraversal, timersDataSent } from './timers.ts';

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
  /** The index table (keypairs.ts); for this device's files. */
  readonly index: IndexTable;
  /** Jitter source for REKEY_TIMEOUT; for this device's files. */
  readonly jitter: () => number;

  private readonly handshakes: Handshakes;
  private readonly rx: Receiver;
  private readonly keepaliveBuf = new Uint8Array(MESSAGE_TRANSPORT_SIZE);
  private readonly seals: SealQueue | null;

  constructor(io: DeviceIO, opts: DeviceOptions = {}) {
    this.io = io;
    this.clock = opts.clock ?? systemClock;
    this.backend = opts.backend ?? chosenBackend;
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    this.jitter = opts.jitterMs ?? (() => randomInt(REKEY_TIMEOUT_JITTER_MAX_MS + 1));
    const wasm = this.backend.aead === wasmAead;
    this.seals = opts.batchSeal === true && wasm ? SealQueue.forThread() : null;
    this.rx = new Receiver(this, opts.batchOpen === true && wasm);
    this.handshakes = new Handshakes(this, opts);
    this.index = new IndexTable(() => {
      this.seals?.settle();
      this.rx.opens?.settle();
    });
  }

  /** Seals and sends the data packets queued by this round (batchSeal; no-op otherwise). */
  flushSeals(): void {
    this.seals?.flush();
  }

  /** Opens and delivers the transport messages queued since the last call (batchOpen; no-op otherwise). */
  flushOpens(): void {
    this.rx.opens?.flush();
  }

  /** Delivers everything queued, also what a worker pool still has in flight (synchronous). */
  settleBatches(): void {
    this.rx.opens?.settle();
    this.seals?.settle();
  }

  /** Transport messages opened in batches and the batches they took (batchOpen). */
  get batchOpens(): { opened: number; batches: number } {
    return { opened: this.rx.opens?.opened ?? 0, batches: this.rx.opens?.batches ?? 0 };
  }

  /** Delivers what is queued and gives back the open queue's arena (the owner is closing). */
  releaseBatches(): void {
    this.rx.opens?.release();
    this.rx.opens = null;
    this.seals?.settle();
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
    this.index.expire(peer);
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
      timersDataSent(peer, this.clock.now(), this.jitter);
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

  /** Sends what waited for a session (receive.ts calls it when a responder's keypair goes live). */
  sendStaged(peer: Peer): void {
    if (peer.staged.length === 0) return;
    const kp = this.sendableKeypair(peer);
    if (kp === null) {
      this.sendInitiation(peer, false);
      return;
    }
    for (const p of peer.staged.splice(0)) {
      this.sealAndSend(peer, kp, p.buf, 0, p.len);
      timersDataSent(peer, this.clock.now(), this.jitter);
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

  /** Sends a message to the peer's endpoint, counted (for this device's files). */
  sendTo(peer: Peer, buf: Uint8Array, off: number, len: number): void {
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
  // Handshakes (handshakes.ts)

  /** Starts (or retries) a handshake with `peer`; at most one initiation per REKEY_TIMEOUT. */
  sendInitiation(peer: Peer, isRetry: boolean): void {
    this.handshakes.sendInitiation(peer, isRetry);
  }

  // ------------------------------------------------------------------------------------------
  // Inbound: datagrams from the listen socket

  /**
   * Processes one datagram buf[off..off+len] from `from` (the caller may reuse `from` after the
   * call: the device copies what it keeps). Transport data is decrypted in place (one by one) or
   * copied into the open queue's arena (batchOpen: delivered at flushOpens).
   */
  receiveDatagram(buf: Uint8Array, off: number, len: number, from: Endpoint): void {
    this.counters.rxDatagrams++;
    const type = readType(buf, off, len);
    if (type === MESSAGE_TRANSPORT && len >= MESSAGE_TRANSPORT_SIZE) return this.rx.receiveTransport(buf, off, len, from);
    this.rx.opens?.settle(); // the transport messages before it are handled before it
    if (this.identity === null || this.checker === null) return void this.counters.rxInvalid++;
    const hs = this.handshakes;
    if (type === MESSAGE_INITIATION && len === MESSAGE_INITIATION_SIZE) return hs.receiveInitiation(buf.subarray(off, off + len), from);
    if (type === MESSAGE_RESPONSE && len === MESSAGE_RESPONSE_SIZE) return hs.receiveResponse(buf.subarray(off, off + len), from);
    if (type === MESSAGE_COOKIE_REPLY && len === MESSAGE_COOKIE_REPLY_SIZE) return hs.receiveCookieReply(buf.subarray(off, off + len));
    this.counters.rxInvalid++;
  }

  // ------------------------------------------------------------------------------------------
  // Timers (timers.ts)

  /** Runs every timer that is due. Call often (every 100 ms or so) and after moving the clock. */
  tick(): void {
    const now = this.clock.now();
    for (const peer of this.peers.values()) tickPeer(this, peer, now);
    this.handshakes.sweep(now);
  }
}

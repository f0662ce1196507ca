// The device's inbound transport path (whitepaper §5.4.6, §6; wireguard-go receive.go
// RoutineDecryption and RoutineSequentialReceiver): a transport message finds its keypair by
// receiver index and is opened in place — one by one, or with batchOpen queued and opened with
// the rest of its read batch (./open-queue.ts) — then, in arrival order: the replay window (only
// after the message authenticated), the responder's keypair rotation on first data, the
// endpoint (roaming), the timers, and the inner packet, which must be a well-formed IP packet
// whose source is an allowed IP of that peer before it goes to the TUN.
import {
  KEEPALIVE_TIMEOUT_MS,
  MESSAGE_TRANSPORT_HEADER_SIZE,
  OPEN_ERR_REPLAY,
  REJECT_AFTER_TIME_MS,
  REKEY_TIMEOUT_MS,
  readU32LE,
  type Keypair,
} from '../noise/index.ts';
import type { Device } from './device.ts';
import type { Endpoint } from './endpoint.ts';
import { NOT_QUEUED, OpenQueue, type OpenedSink } from './open-queue.ts';
import type { Peer } from './peer.ts';
import {
  timersAnyAuthenticatedPacketReceived,
  timersAnyAuthenticatedPacketTraversal,
  timersDataReceived,
  timersHandshakeComplete,
} from './timers.ts';

export class Receiver implements OpenedSink {
  private readonly d: Device;
  /** The batch queue (batchOpen), or null: one by one. */
  opens: OpenQueue | null;

  constructor(device: Device, batchOpen: boolean) {
    this.d = device;
    this.opens = batchOpen ? new OpenQueue(this) : null;
  }

  receiveTransport(buf: Uint8Array, off: number, len: number, from: Endpoint): void {
    const d = this.d;
    const entry = d.index.get(readU32LE(buf, off + 4));
    const kp = entry?.keypair ?? null;
    if (kp === null || d.clock.now() - kp.createdMs >= REJECT_AFTER_TIME_MS) return void d.counters.rxNoKeypair++;
    const peer = entry!.peer;
    if (this.opens !== null) {
      const queued = this.opens.add(peer, kp, buf, off, len, from);
      if (queued === 0) return; // transportOpened follows at the flush
      if (queued !== NOT_QUEUED) return this.opened(peer, kp, buf, off, len, queued, from);
    }
    this.opened(peer, kp, buf, off, len, kp.open(buf, off, len), from);
  }

  /** A message opened by the batch queue: its counter is checked now, in arrival order. */
  transportOpened(peer: Peer, kp: Keypair, buf: Uint8Array, off: number, len: number, opened: number, from: Endpoint): void {
    // a message before it in the batch may have rotated this keypair out (as one by one: no keypair)
    if (!this.d.index.live(kp)) return void this.d.counters.rxNoKeypair++;
    this.opened(peer, kp, buf, off, len, kp.completeOpen(readU32LE(buf, off + 8), readU32LE(buf, off + 12), opened), from);
  }

  /** After the AEAD: n is the plaintext length, or an OPEN_ERR_* code. */
  private opened(peer: Peer, kp: Keypair, buf: Uint8Array, off: number, len: number, n: number, from: Endpoint): void {
    const d = this.d;
    if (n < 0) {
      if (n === OPEN_ERR_REPLAY) d.counters.rxReplay++;
      else d.counters.rxAuthFailed++;
      return;
    }
    const now = d.clock.now();
    peer.rxBytes += len;
    peer.updateEndpoint(from);
    if (d.index.receivedWith(peer, kp)) {
      timersHandshakeComplete(peer, d.clock.wallMs());
      d.sendStaged(peer);
    }
    this.keepKeyFresh(peer, now);
    timersAnyAuthenticatedPacketTraversal(peer, d.clock.now());
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
    } else return void d.counters.rxBadInner++;
    if (innerLen > n || innerLen < (family === 4 ? 20 : 40)) return void d.counters.rxBadInner++;
    if (d.allowedIps.lookup(family, buf, srcOff) !== peer) return void d.counters.rxSourceNotAllowed++;
    d.io.writeTun(buf, p, innerLen, peer);
  }

  /** An initiator's session near REJECT_AFTER_TIME: one last handshake (wireguard-go keepKeyFreshReceiving). */
  private keepKeyFresh(peer: Peer, now: number): void {
    if (peer.sentLastMinuteHandshake) return;
    const kp = peer.current;
    if (kp !== null && kp.isInitiator && now - kp.createdMs > REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS) {
      peer.sentLastMinuteHandshake = true;
      this.d.sendInitiation(peer, false);
    }
  }
}

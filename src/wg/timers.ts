// The timer state machine of whitepaper §6 (wireguard-go timers.go), as deadlines on the peer
// polled by the device's tick — no OS timer per peer. Events arm and disarm deadlines; `tickPeer`
// runs the ones that are due:
//   retransmitHandshake  REKEY_TIMEOUT + jitter after an initiation; up to 18 tries (90 s), then
//                        give up, drop staged packets, zero keys in 3 × REJECT_AFTER_TIME
//   sendKeepalive        KEEPALIVE_TIMEOUT after data was received and nothing sent back
//   newHandshake         KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after data was sent with no
//                        authenticated reply
//   zeroKeyMaterial      3 × REJECT_AFTER_TIME after the last session was derived
//   persistentKeepalive  every N seconds of no authenticated traffic, when configured
import { KEEPALIVE_TIMEOUT_MS, MAX_HANDSHAKE_ATTEMPTS, REJECT_AFTER_TIME_MS, REKEY_TIMEOUT_MS } from '../noise/index.ts';
import type { Peer } from './peer.ts';

const ZERO_KEY_MATERIAL_AFTER_MS = REJECT_AFTER_TIME_MS * 3;

/** What the timers may do to the device (wireguard-go timers.go calls no more than this). */
export interface TimerTarget {
  sendKeepalive(peer: Peer): void;
  sendInitiation(peer: Peer, isRetry: boolean): void;
  expireSessions(peer: Peer): void;
  readonly counters: { txStagedDropped: number };
}

/** Runs every timer of `peer` that is due at `now`. */
export function tickPeer(device: TimerTarget, peer: Peer, now: number): void {
  if (now >= peer.retransmitHandshakeAt) {
    peer.retransmitHandshakeAt = Infinity;
    expiredRetransmitHandshake(device, peer, now);
  }
  if (now >= peer.sendKeepaliveAt) {
    peer.sendKeepaliveAt = Infinity;
    device.sendKeepalive(peer);
    if (peer.needAnotherKeepalive) {
      peer.needAnotherKeepalive = false;
      peer.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT_MS;
    }
  }
  if (now >= peer.newHandshakeAt) {
    // data was sent and nothing came back for KEEPALIVE + REKEY_TIMEOUT: new handshake
    peer.newHandshakeAt = Infinity;
    peer.endpoint?.clearLocal();
    device.sendInitiation(peer, false);
  }
  if (now >= peer.zeroKeyMaterialAt) {
    peer.zeroKeyMaterialAt = Infinity;
    device.expireSessions(peer);
  }
  if (now >= peer.persistentKeepaliveAt) {
    peer.persistentKeepaliveAt = Infinity;
    if (peer.persistentKeepaliveS > 0) device.sendKeepalive(peer);
  }
}

function expiredRetransmitHandshake(device: TimerTarget, peer: Peer, now: number): void {
  if (peer.handshakeAttempts >= MAX_HANDSHAKE_ATTEMPTS) {
    // give up: drop what waited, stop keepalives, and forget the keys in 3 × REJECT_AFTER_TIME
    peer.sendKeepaliveAt = Infinity;
    device.counters.txStagedDropped += peer.staged.length;
    peer.staged.length = 0;
    if (peer.zeroKeyMaterialAt === Infinity) peer.zeroKeyMaterialAt = now + ZERO_KEY_MATERIAL_AFTER_MS;
    return;
  }
  peer.handshakeAttempts++;
  peer.endpoint?.clearLocal();
  device.sendInitiation(peer, true);
}

export function timersHandshakeInitiated(peer: Peer, now: number, jitterMs: number): void {
  peer.retransmitHandshakeAt = now + REKEY_TIMEOUT_MS + jitterMs;
}

/** `jitterMs` is asked only when the timer is armed (not per packet: it draws a random number). */
export function timersDataSent(peer: Peer, now: number, jitterMs: () => number): void {
  if (peer.newHandshakeAt === Infinity) peer.newHandshakeAt = now + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS + jitterMs();
}

export function timersDataReceived(peer: Peer, now: number): void {
  if (peer.sendKeepaliveAt === Infinity) peer.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT_MS;
  else peer.needAnotherKeepalive = true;
}

export function timersAnyAuthenticatedPacketSent(peer: Peer): void {
  peer.sendKeepaliveAt = Infinity;
}

export function timersAnyAuthenticatedPacketReceived(peer: Peer): void {
  peer.newHandshakeAt = Infinity;
}

export function timersHandshakeComplete(peer: Peer, wallMs: number): void {
  peer.retransmitHandshakeAt = Infinity;
  peer.handshakeAttempts = 0;
  peer.sentLastMinuteHandshake = false;
  peer.lastHandshakeUnixMs = wallMs;
}

export function timersSessionDerived(peer: Peer, now: number): void {
  peer.zeroKeyMaterialAt = now + ZERO_KEY_MATERIAL_AFTER_MS;
}

export function timersAnyAuthenticatedPacketTraversal(peer: Peer, now: number): void {
  if (peer.persistentKeepaliveS > 0) peer.persistentKeepaliveAt = now + peer.persistentKeepaliveS * 1000;
}

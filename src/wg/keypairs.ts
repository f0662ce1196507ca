// The device's index table and each peer's keypair rotation (wireguard-go indextable.go and
// keypair.go, noise-protocol.go's BeginSymmetricSession and ReceivedWithKeypair). A receiver index
// names either a handshake in progress (keypair null) or a keypair; an index is random, unique
// in the table, and freed with what it names.
import { randomInt } from 'node:crypto';
import type { Keypair } from '../noise/index.ts';
import type { Peer } from './peer.ts';

export type IndexEntry = { peer: Peer; keypair: Keypair | null };

export class IndexTable {
  private readonly entries = new Map<number, IndexEntry>();
  /** Called before a keypair's keys are zeroed (the batch queues deliver what used them). */
  private readonly beforeDelete: () => void;

  constructor(beforeDelete: () => void) {
    this.beforeDelete = beforeDelete;
  }

  get(index: number): IndexEntry | undefined {
    return this.entries.get(index);
  }

  /** The keypair still has its index (it was not rotated out or expired). */
  live(kp: Keypair): boolean {
    return this.entries.get(kp.localIndex)?.keypair === kp;
  }

  /** A fresh index for the handshake `peer` starts or answers (the previous one is dropped). */
  newHandshakeIndex(peer: Peer): number {
    this.dropHandshakeIndex(peer);
    const entry: IndexEntry = { peer, keypair: null };
    for (;;) {
      const i = randomInt(1, 2 ** 32 - 1) >>> 0;
      if (!this.entries.has(i)) {
        this.entries.set(i, entry);
        return (peer.handshakeIndex = i);
      }
    }
  }

  dropHandshakeIndex(peer: Peer): void {
    if (peer.handshakeIndex !== 0) {
      const e = this.entries.get(peer.handshakeIndex);
      if (e !== undefined && e.keypair === null) this.entries.delete(peer.handshakeIndex);
      peer.handshakeIndex = 0;
    }
  }

  deleteKeypair(kp: Keypair): void {
    this.beforeDelete(); // messages sealed or waiting to be opened with its key must not outlive it
    const e = this.entries.get(kp.localIndex);
    if (e !== undefined && e.keypair === kp) this.entries.delete(kp.localIndex);
    kp.zero();
  }

  /** Drops every keypair of `peer` and its handshake index. */
  expire(peer: Peer): void {
    for (const kp of [peer.previous, peer.current, peer.next]) if (kp) this.deleteKeypair(kp);
    peer.previous = peer.current = peer.next = null;
    this.dropHandshakeIndex(peer);
  }

  /** Installs a new keypair (wireguard-go BeginSymmetricSession's rotation). */
  install(peer: Peer, kp: Keypair): void {
    this.entries.set(kp.localIndex, { peer, keypair: kp }); // the handshake's slot becomes the keypair's
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
  receivedWith(peer: Peer, kp: Keypair): boolean {
    if (peer.next !== kp) return false;
    if (peer.previous) this.deleteKeypair(peer.previous);
    peer.previous = peer.current;
    peer.current = kp;
    peer.next = null;
    return true;
  }
}

// Transport messages sealed in batches: one JS→wasm call per round instead of one per packet
// (src/noise/aead-batch.ts). A device with `batchSeal` queues each data packet here — copied once
// into the wasm arena behind its header, padded, numbered by its keypair (prepareSeal) — and the
// I/O side calls flush() before it sends what a round produced: every queued message is sealed in
// one sealBatch and handed to its device's sendUdp in the order queued, so a peer's messages leave
// in the order their counters were taken. One queue per thread (the key slots are the thread's
// AeadBatch.default()), shared by every device of the thread (the mesh and gateway of sixpn up).
//
// A keypair's key must not be freed while messages sealed with it wait: Device flushes before
// deleting a keypair.
import { AeadBatch, paddedLength, type Keypair } from '../noise/index.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE, TAG_SIZE } from '../noise/constants.ts';
import type { Peer } from './peer.ts';

/** What add() returns when the message was not queued (no wasm key): seal it one by one. */
export const NOT_QUEUED = 1;

/** Where a sealed message goes (the Device). */
export interface SealedSink {
  sendSealed(peer: Peer, buf: Uint8Array, off: number, len: number): void;
}

let shared: SealQueue | null = null;

export class SealQueue {
  private readonly b: AeadBatch;
  private readonly sinks: Array<SealedSink | null>;
  private readonly peers: Array<Peer | null>;
  private readonly starts: Int32Array;
  private readonly arenaEnd: number;
  private n = 0;
  private cursor: number;
  /** messages sealed in batches (for the stats) */
  sealed = 0;
  batches = 0;

  /** The queue of this thread. */
  static forThread(): SealQueue {
    shared ??= new SealQueue(AeadBatch.default());
    return shared;
  }

  constructor(b: AeadBatch) {
    this.b = b;
    this.sinks = new Array<SealedSink | null>(b.maxRecords).fill(null);
    this.peers = new Array<Peer | null>(b.maxRecords).fill(null);
    this.starts = new Int32Array(b.maxRecords);
    this.cursor = b.arenaOffset;
    this.arenaEnd = b.arenaOffset + b.arenaBytes;
  }

  /** Messages waiting for flush(). */
  get pending(): number {
    return this.n;
  }

  /**
   * Queues the `len`-byte packet at buf[msgOff + 16 ..] for `peer` under `kp`. Returns 0 when
   * queued, NOT_QUEUED when the keypair has no wasm key, or a SEAL_ERR_* code (nothing taken).
   */
  add(sink: SealedSink, peer: Peer, kp: Keypair, buf: Uint8Array, msgOff: number, len: number, mtu: number): number {
    const slot = kp.sendSlot;
    if (slot < 0) return NOT_QUEUED;
    const need = MESSAGE_TRANSPORT_HEADER_SIZE + paddedLength(len, mtu) + TAG_SIZE;
    if (this.n === this.b.maxRecords || this.cursor + need > this.arenaEnd) this.flush();
    const at = this.cursor;
    const u8 = this.b.u8;
    const data = msgOff + MESSAGE_TRANSPORT_HEADER_SIZE;
    u8.set(buf.subarray(data, data + len), at + MESSAGE_TRANSPORT_HEADER_SIZE);
    const padded = kp.prepareSeal(u8, at, len, mtu);
    if (padded < 0) return padded;
    const i = this.n++;
    this.b.setRecord(i, at + MESSAGE_TRANSPORT_HEADER_SIZE, padded, slot, kp.preparedCounterLo, kp.preparedCounterHi);
    this.sinks[i] = sink;
    this.peers[i] = peer;
    this.starts[i] = at;
    this.cursor = (at + MESSAGE_TRANSPORT_HEADER_SIZE + padded + TAG_SIZE + 15) & ~15;
    return 0;
  }

  /** Seals everything queued in one call and hands each message to its device, in order. */
  flush(): void {
    const k = this.n;
    if (k === 0) return;
    this.n = 0;
    const b = this.b;
    b.sealBatch(k);
    this.batches++;
    for (let i = 0; i < k; i++) {
      const sealed = b.result(i);
      const sink = this.sinks[i]!;
      const peer = this.peers[i]!;
      this.sinks[i] = null;
      this.peers[i] = null;
      if (sealed < 0) continue; // cannot happen for records add() made; nothing is sent then
      this.sealed++;
      sink.sendSealed(peer, b.u8, this.starts[i], MESSAGE_TRANSPORT_HEADER_SIZE + sealed);
    }
    this.cursor = b.arenaOffset;
  }
}

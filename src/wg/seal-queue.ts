// Transport messages sealed in batches: one JS→wasm call per round instead of one per packet
// (src/noise/aead-batch.ts). A device with `batchSeal` queues each data packet here — copied once
// into the wasm arena behind its header, padded, numbered by its keypair (prepareSeal) — and the
// I/O side calls flush() before it sends what a round produced: every queued message is sealed in
// one sealBatch and handed to its device's sendUdp in the order queued, so a peer's messages leave
// in the order their counters were taken. One queue per thread (the key slots are the thread's
// AeadBatch.default()), shared by every device of the thread (the mesh and gateway of sixpn up).
//
// With a worker pool (src/noise/aead-pool.ts, `workers`), flush() hands the region's records to a
// worker and goes on filling another region; the messages are handed on when the pool delivers the
// job (in submission order), and the pool's onDelivered makes the I/O side send them. settle()
// waits for every job in flight: a keypair's key must not be freed while messages sealed with it
// wait, so Device settles before deleting a keypair.
import { AeadBatch, AeadPool, OP_SEAL, paddedLength, type Keypair } from '../noise/index.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE, TAG_SIZE } from '../noise/constants.ts';
import type { Peer } from './peer.ts';

/** What add() returns when the message was not queued (no wasm key): seal it one by one. */
export const NOT_QUEUED = 1;

/** Where a sealed message goes (the Device). */
export interface SealedSink {
  sendSealed(peer: Peer, buf: Uint8Array, off: number, len: number): void;
}

/** Records and arena of the regions a pool adds (the first is AeadBatch.default()'s). */
const REGION_RECORDS = 1024;
const REGION_ARENA = 1 << 20;

/** One record table and arena: filled by the main thread, sealed on it or on a worker. */
class Region {
  readonly b: AeadBatch;
  readonly sinks: Array<SealedSink | null>;
  readonly peers: Array<Peer | null>;
  readonly starts: Int32Array;
  readonly arenaEnd: number;
  n = 0;
  cursor: number;
  busy = false;

  constructor(b: AeadBatch) {
    this.b = b;
    this.sinks = new Array<SealedSink | null>(b.maxRecords).fill(null);
    this.peers = new Array<Peer | null>(b.maxRecords).fill(null);
    this.starts = new Int32Array(b.maxRecords);
    this.cursor = b.arenaOffset;
    this.arenaEnd = b.arenaOffset + b.arenaBytes;
  }
}

let shared: SealQueue | null = null;

export class SealQueue {
  private readonly regions: Region[];
  private cur: Region;
  /** messages sealed in batches (for the stats) */
  sealed = 0;
  batches = 0;

  /** The queue of this thread. */
  static forThread(): SealQueue {
    shared ??= new SealQueue(AeadBatch.default());
    return shared;
  }

  constructor(b: AeadBatch) {
    this.cur = new Region(b);
    this.regions = [this.cur];
  }

  /** Messages waiting for flush(). */
  get pending(): number {
    return this.cur.n;
  }

  /**
   * Queues the `len`-byte packet at buf[msgOff + 16 ..] for `peer` under `kp`. Returns 0 when
   * queued, NOT_QUEUED when the keypair has no wasm key, or a SEAL_ERR_* code (nothing taken).
   */
  add(sink: SealedSink, peer: Peer, kp: Keypair, buf: Uint8Array, msgOff: number, len: number, mtu: number): number {
    const slot = kp.sendSlot;
    if (slot < 0) return NOT_QUEUED;
    const need = MESSAGE_TRANSPORT_HEADER_SIZE + paddedLength(len, mtu) + TAG_SIZE;
    let r = this.cur;
    if (r.n === r.b.maxRecords || r.cursor + need > r.arenaEnd) {
      this.flush();
      r = this.cur;
      if (r.cursor + need > r.arenaEnd) return NOT_QUEUED; // larger than a whole arena
    }
    const at = r.cursor;
    const u8 = r.b.u8;
    const data = msgOff + MESSAGE_TRANSPORT_HEADER_SIZE;
    u8.set(buf.subarray(data, data + len), at + MESSAGE_TRANSPORT_HEADER_SIZE);
    const padded = kp.prepareSeal(u8, at, len, mtu);
    if (padded < 0) return padded;
    const i = r.n++;
    r.b.setRecord(i, at + MESSAGE_TRANSPORT_HEADER_SIZE, padded, slot, kp.preparedCounterLo, kp.preparedCounterHi);
    r.sinks[i] = sink;
    r.peers[i] = peer;
    r.starts[i] = at;
    r.cursor = (at + MESSAGE_TRANSPORT_HEADER_SIZE + padded + TAG_SIZE + 15) & ~15;
    return 0;
  }

  /**
   * Seals everything queued in one call and hands each message to its device, in order — at
   * once, or with a worker pool when the pool delivers the job.
   */
  flush(): void {
    const r = this.cur;
    const k = r.n;
    if (k === 0) return;
    r.n = 0;
    this.batches++;
    if (AeadPool.runHere(OP_SEAL, r.b, k)) return this.deliver(r, k);
    const pool = AeadPool.current()!;
    r.busy = true;
    pool.submit(OP_SEAL, r.b, k, () => this.deliver(r, k));
    this.cur = pool.freeRegion(this.regions, () => new Region(AeadBatch.companion({ maxRecords: REGION_RECORDS, arenaBytes: REGION_ARENA })));
  }

  /** flush(), then waits for every job in flight and delivers it. */
  settle(): void {
    this.flush();
    AeadPool.current()?.settle();
  }

  private deliver(r: Region, k: number): void {
    const b = r.b;
    for (let i = 0; i < k; i++) {
      const sealed = b.result(i);
      const sink = r.sinks[i]!;
      const peer = r.peers[i]!;
      r.sinks[i] = null;
      r.peers[i] = null;
      if (sealed < 0) continue; // cannot happen for records add() made; nothing is sent then
      this.sealed++;
      sink.sendSealed(peer, b.u8, r.starts[i], MESSAGE_TRANSPORT_HEADER_SIZE + sealed);
    }
    r.cursor = b.arenaOffset;
    r.busy = false;
  }
}

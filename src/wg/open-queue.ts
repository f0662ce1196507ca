// Transport messages opened in batches: one JS→wasm call per read batch instead of one per packet
// (src/noise/aead-batch.ts). A device with `batchOpen` checks each transport datagram as it comes
// (receiver index, keypair age, counter limit: Keypair.prepareOpen), copies it once into the
// arena of its own AeadBatch companion (the key slots are the thread's, so the keypairs' wasm
// keys serve as they are) and records it; flush() authenticates and decrypts every record in
// place in one openBatch, then hands each to the device in the order received. The device does
// the rest as for a single packet — the replay window (a counter is taken only after its message
// authenticated), the keypair rotation, the endpoint, the timers, the inner packet — so a peer's
// packets reach the TUN in the order they arrived, as in wireguard-go's per-peer inbound queue.
//
// The device settles before anything that must see the messages before it: a handshake or
// cookie message, and the deletion of a keypair (its key slot is zeroed and may be reused).
// A datagram arriving while the queue hands packets out (re-entrant) is not queued: NOT_QUEUED,
// the device opens it on its own. With a worker pool (src/noise/aead-pool.ts) flush() hands the
// region to a worker and the next datagrams go to another region; the pool delivers jobs in
// submission order, and its onDelivered makes the I/O side write what they produced.
import { AeadBatch, AeadPool, OP_OPEN, type Keypair } from '../noise/index.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../noise/constants.ts';
import { Endpoint } from './endpoint.ts';
import { NOT_QUEUED } from './seal-queue.ts';
import type { Peer } from './peer.ts';

export { NOT_QUEUED };

/** Where opened messages go (the Device). */
export interface OpenedSink {
  /**
   * Record of `peer` under `kp`: the message is buf[off, off + len) as received, opened in place;
   * `opened` is the plaintext length (at off + 16) or < 0 if it did not authenticate. `from` is the
   * datagram's source, valid during the call.
   */
  transportOpened(peer: Peer, kp: Keypair, buf: Uint8Array, off: number, len: number, opened: number, from: Endpoint): void;
}

/** Records per batch and arena bytes: a read batch (64 datagrams, more with UDP_GRO) fits. */
const MAX_RECORDS = 256;
const ARENA_BYTES = 1 << 20;
/** Bytes kept behind each message: a handler may seal the inner packet again in place (padding, tag). */
const SLACK = 64;

class Region {
  readonly b: AeadBatch;
  readonly kps: Array<Keypair | null>;
  readonly peers: Array<Peer | null>;
  readonly froms: Endpoint[] = [];
  readonly starts: Int32Array;
  readonly lens: Int32Array;
  readonly arenaEnd: number;
  n = 0;
  cursor: number;
  busy = false;

  constructor() {
    const b = (this.b = AeadBatch.companion({ maxRecords: MAX_RECORDS, arenaBytes: ARENA_BYTES }));
    this.kps = new Array<Keypair | null>(b.maxRecords).fill(null);
    this.peers = new Array<Peer | null>(b.maxRecords).fill(null);
    this.starts = new Int32Array(b.maxRecords);
    this.lens = new Int32Array(b.maxRecords);
    this.cursor = b.arenaOffset;
    this.arenaEnd = b.arenaOffset + b.arenaBytes;
  }
}

export class OpenQueue {
  private readonly sink: OpenedSink;
  private readonly regions: Region[] = [];
  private cur: Region | null;
  private delivering = false;
  /** messages opened in batches, and batches (for the stats and the tests) */
  opened = 0;
  batches = 0;

  constructor(sink: OpenedSink) {
    this.sink = sink;
    this.cur = new Region();
    this.regions.push(this.cur);
  }

  /** Messages waiting for flush(). */
  get pending(): number {
    return this.cur?.n ?? 0;
  }

  /**
   * Queues the transport message buf[off, off + len) from `from` for `peer` under `kp`. Returns 0
   * when queued, NOT_QUEUED when it cannot be (no wasm key, a delivery under way, released), or
   * an OPEN_ERR_* code of Keypair.prepareOpen (nothing queued).
   */
  add(peer: Peer, kp: Keypair, buf: Uint8Array, off: number, len: number, from: Endpoint): number {
    let r = this.cur;
    const slot = kp.receiveSlot;
    if (r === null || slot < 0 || this.delivering) return NOT_QUEUED;
    const need = (len + SLACK + 15) & ~15;
    if (need > r.b.arenaBytes) return NOT_QUEUED;
    if (r.n === r.b.maxRecords || r.cursor + need > r.arenaEnd) {
      this.flush();
      r = this.cur!;
    }
    const at = r.cursor;
    const u8 = r.b.u8;
    u8.set(buf.subarray(off, off + len), at);
    const sealed = kp.prepareOpen(u8, at, len);
    if (sealed < 0) return sealed;
    const i = r.n++;
    r.b.setRecord(i, at + MESSAGE_TRANSPORT_HEADER_SIZE, sealed, slot, kp.preparedCounterLo, kp.preparedCounterHi);
    r.kps[i] = kp;
    r.peers[i] = peer;
    r.starts[i] = at;
    r.lens[i] = len;
    if (i === r.froms.length) r.froms.push(new Endpoint());
    r.froms[i].copyFrom(from);
    r.cursor = at + need;
    return 0;
  }

  /** Opens everything queued in one call and hands each message to the device, in order (with a pool: when it is done). */
  flush(): void {
    const r = this.cur;
    if (r === null || r.n === 0) return;
    const k = r.n;
    r.n = 0;
    this.batches++;
    this.opened += k;
    if (AeadPool.runHere(OP_OPEN, r.b, k)) return this.deliver(r, k);
    const pool = AeadPool.current()!;
    r.busy = true;
    pool.submit(OP_OPEN, r.b, k, () => this.deliver(r, k));
    this.cur = pool.freeRegion(this.regions, () => new Region());
  }

  /** flush(), then waits for every job in flight and delivers it. */
  settle(): void {
    this.flush();
    AeadPool.current()?.settle();
  }

  private deliver(r: Region, k: number): void {
    const b = r.b;
    const was = this.delivering;
    this.delivering = true;
    try {
      for (let i = 0; i < k; i++) {
        const kp = r.kps[i]!;
        const peer = r.peers[i]!;
        r.kps[i] = null;
        r.peers[i] = null;
        this.sink.transportOpened(peer, kp, b.u8, r.starts[i], r.lens[i], b.result(i), r.froms[i]);
      }
    } finally {
      this.delivering = was;
      r.cursor = b.arenaOffset;
      r.busy = false;
    }
  }

  /** Delivers what is queued and gives the arenas back (the device is closing); later datagrams are opened one by one. */
  release(): void {
    this.settle();
    for (const r of this.regions) AeadBatch.releaseCompanion(r.b);
    this.regions.length = 0;
    this.cur = null;
  }
}

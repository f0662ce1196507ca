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
// The device flushes before anything that must see the messages before it: a handshake or
// cookie message, and the deletion of a keypair (its key slot is zeroed and may be reused).
// A datagram arriving while a flush hands packets out (re-entrant) is not queued: NOT_QUEUED,
// the device opens it on its own.
import { AeadBatch, type Keypair } from '../noise/index.ts';
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

export class OpenQueue {
  private readonly sink: OpenedSink;
  private b: AeadBatch | null;
  private readonly kps: Array<Keypair | null>;
  private readonly peers: Array<Peer | null>;
  private readonly froms: Endpoint[] = [];
  private readonly starts: Int32Array;
  private readonly lens: Int32Array;
  private readonly arenaEnd: number;
  private n = 0;
  private cursor: number;
  private flushing = false;
  /** messages opened in batches, and batches (for the stats and the tests) */
  opened = 0;
  batches = 0;

  constructor(sink: OpenedSink) {
    this.sink = sink;
    const b = (this.b = AeadBatch.companion({ maxRecords: MAX_RECORDS, arenaBytes: ARENA_BYTES }));
    this.kps = new Array<Keypair | null>(b.maxRecords).fill(null);
    this.peers = new Array<Peer | null>(b.maxRecords).fill(null);
    this.starts = new Int32Array(b.maxRecords);
    this.lens = new Int32Array(b.maxRecords);
    this.cursor = b.arenaOffset;
    this.arenaEnd = b.arenaOffset + b.arenaBytes;
  }

  /** Messages waiting for flush(). */
  get pending(): number {
    return this.n;
  }

  /**
   * Queues the transport message buf[off, off + len) from `from` for `peer` under `kp`. Returns 0
   * when queued, NOT_QUEUED when it cannot be (no wasm key, a flush under way, released), or an
   * OPEN_ERR_* code of Keypair.prepareOpen (nothing queued).
   */
  add(peer: Peer, kp: Keypair, buf: Uint8Array, off: number, len: number, from: Endpoint): number {
    const b = this.b;
    const slot = kp.receiveSlot;
    if (b === null || slot < 0 || this.flushing) return NOT_QUEUED;
    const need = (len + SLACK + 15) & ~15;
    if (need > b.arenaBytes) return NOT_QUEUED;
    if (this.n === b.maxRecords || this.cursor + need > this.arenaEnd) this.flush();
    const at = this.cursor;
    const u8 = b.u8;
    u8.set(buf.subarray(off, off + len), at);
    const sealed = kp.prepareOpen(u8, at, len);
    if (sealed < 0) return sealed;
    const i = this.n++;
    b.setRecord(i, at + MESSAGE_TRANSPORT_HEADER_SIZE, sealed, slot, kp.preparedCounterLo, kp.preparedCounterHi);
    this.kps[i] = kp;
    this.peers[i] = peer;
    this.starts[i] = at;
    this.lens[i] = len;
    if (i === this.froms.length) this.froms.push(new Endpoint());
    this.froms[i].copyFrom(from);
    this.cursor = at + need;
    return 0;
  }

  /** Opens everything queued in one call and hands each message to the device, in order. */
  flush(): void {
    const k = this.n;
    const b = this.b;
    if (k === 0 || b === null || this.flushing) return;
    this.n = 0;
    this.flushing = true;
    try {
      b.openBatch(k);
      this.batches++;
      this.opened += k;
      for (let i = 0; i < k; i++) {
        const kp = this.kps[i]!;
        const peer = this.peers[i]!;
        this.kps[i] = null;
        this.peers[i] = null;
        this.sink.transportOpened(peer, kp, b.u8, this.starts[i], this.lens[i], b.result(i), this.froms[i]);
      }
    } finally {
      this.flushing = false;
      this.cursor = b.arenaOffset;
    }
  }

  /** Gives the arena back (the device is closing); later datagrams are opened one by one. */
  release(): void {
    this.flush();
    if (this.b !== null) AeadBatch.releaseCompanion(this.b);
    this.b = null;
  }
}

// The packet pump of one TUN queue: readiness (libuv tells when the fd is readable, fdWatch),
// batched non-blocking reads, the virtio_net_hdr of a vnetHdr queue, a write queue that
// coalesces segments into super-packets (src/offload) and is written once per round, and
// counters for everything not delivered. sixpn-wg's TUN and every machine TUN of `sixpn up` use
// it, and so do the egress TUN (src/host/egress.ts, which translates in the pump's write slots:
// rawSlot/commitRaw) and the DNS service's TUN; the main thread never waits on the fd (a full
// queue is counted, not waited for).
//
// Reading, per mode:
//   plain queue            onPacket(buf, off, len): an IP packet, `headroom` bytes free before it
//   vnetHdr, cut: true     the same: super-packets are cut into segments (src/offload/segment.ts)
//                          and partial checksums completed here, so the consumer sees ordinary
//                          packets only (sixpn-wg: each goes to the WireGuard device)
//   vnetHdr, cut: false    onPacket(buf, off, len) with buf[off] the virtio_net_hdr and len
//                          counting it, `headroom` bytes free before the header (sixpn up's
//                          machines: a super-packet may go whole to the egress or a machine)
import { Coalescer, SEGMENT_INVALID, Segmenter, VNET_GSO_NONE, VNET_HDR_LEN, completeChecksum, vnetGsoType } from '../offload/index.ts';
import { TunBatch } from './batch.ts';
import {
  TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6, errnoName, fdUnwatch, fdWatch, type FdWatch,
} from './native.ts';

const OFFLOAD_FLAG_NAMES: Array<[number, string]> = [
  [TUN_F_CSUM, 'tun-csum'], [TUN_F_TSO4, 'tso4'], [TUN_F_TSO6, 'tso6'], [TUN_F_USO4, 'uso4'], [TUN_F_USO6, 'uso6'],
];

/** The TUN offloads in TUNSETOFFLOAD flags, as --stats, status and metrics name them ("tun-csum tso4 tso6"; "" for none). */
export function offloadFlagNames(flags: number): string {
  return OFFLOAD_FLAG_NAMES.filter(([f]) => (flags & f) !== 0).map(([, name]) => name).join(' ');
}

/** What a TUN pump did not deliver, and what its offloads did. */
export class TunCounters {
  /** TUN_F_* flags the kernel accepted (0: a plain TUN) */
  offloadFlags = 0;
  /** reads the kernel failed (per record): skipped */
  rxErrors = 0;
  /** packets read whose virtio_net_hdr could not be honoured (bad GSO or checksum fields): dropped */
  rxBadOffload = 0;
  /** super-packets read and cut into segments */
  rxSuperPackets = 0;
  /** packets written as part of a super-packet (beyond the first of each) */
  txCoalesced = 0;
  /** records not written: the TUN queue was full */
  txQueueFull = 0;
  /** records the kernel refused, by errno name (EINVAL, EIO, …) */
  txErrors: Record<string, number> = {};
  /** packets longer than a write slot: dropped */
  txTooLong = 0;
}

export interface TunPumpOptions {
  /** IFF_VNET_HDR queue */
  readonly vnet: boolean;
  /** cut super-packets before onPacket (vnetHdr queues; see the top) */
  readonly cut: boolean;
  /** bytes free before each packet handed to onPacket (before its header when not cut) */
  readonly headroom: number;
  readonly readBatch: number;
  readonly readSlot: number;
  readonly writeBatch: number;
  readonly writeSlot: number;
  /** read batches per readiness callback before yielding to the event loop */
  readonly readRounds?: number;
  /**
   * Write what is queued at the end of the current task (a microtask), for owners whose writes
   * do not come from a readiness callback of their own (the egress, the DNS TUN). Default:
   * the owner calls flush().
   */
  readonly autoFlush?: boolean;
  /**
   * A read batch shared by several pumps of one thread (many machine TUNs: one 64 KB-slot batch
   * for all, not one each); made by TunPump.readBatch with the same options. Reads never overlap:
   * each callback drains into it and hands its packets on before returning.
   */
  readonly sharedRead?: TunBatch;
  onPacket(buf: Uint8Array, off: number, len: number): void;
  /** after the packets of one readiness callback (flush what they caused) */
  afterRead(): void;
  /** the fd failed (interface deleted): the pump has stopped watching it */
  onFail(err: Error): void;
}

export class TunPump {
  readonly counters = new TunCounters();
  readonly vnet: boolean;
  private fd: number;
  private watch: FdWatch | null;
  private readonly opts: TunPumpOptions;
  private readonly cut: boolean;
  private readonly rounds: number;
  private readonly tunIn: TunBatch;
  private readonly tunOut: TunBatch;
  private readonly queue: Coalescer;
  private readonly segmenter = new Segmenter();
  private readonly scratch: Uint8Array | null;
  private readonly autoFlush: boolean;
  private flushQueued = false;
  private readonly flushTask = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  constructor(fd: number, opts: TunPumpOptions) {
    this.fd = fd;
    this.opts = opts;
    this.vnet = opts.vnet;
    this.cut = opts.vnet && opts.cut;
    this.rounds = opts.readRounds ?? 4;
    this.autoFlush = opts.autoFlush === true;
    if (this.cut && opts.headroom < VNET_HDR_LEN) throw new RangeError('a cutting pump needs headroom for the virtio_net_hdr');
    // cut mode: the header sits in the headroom of the packet behind it
    this.tunIn = opts.sharedRead ?? TunPump.readBatch(opts);
    this.tunOut = new TunBatch(opts.writeBatch, opts.writeSlot);
    this.queue = new Coalescer(this.tunOut, opts.vnet);
    this.scratch = this.cut ? new Uint8Array(opts.readSlot + opts.headroom) : null;
    this.watch = fdWatch(fd, () => this.onReadable());
  }

  /** The read batch a pump with these options uses (to share one among pumps: sharedRead). */
  static readBatch(opts: Pick<TunPumpOptions, 'vnet' | 'cut' | 'headroom' | 'readBatch' | 'readSlot'>): TunBatch {
    const cut = opts.vnet && opts.cut;
    return new TunBatch(opts.readBatch, opts.readSlot, { headroom: cut ? opts.headroom - VNET_HDR_LEN : opts.headroom });
  }

  /** Records waiting to be written. */
  get queued(): number {
    return this.queue.count;
  }

  /** The write batch's memory (rawSlot's offsets are into it). */
  get slab(): Uint8Array {
    return this.tunOut.slab;
  }

  private onReadable(): void {
    if (this.fd < 0) return;
    const b = this.tunIn;
    const on = this.opts.onPacket;
    for (let round = 0; round < this.rounds; round++) {
      let n: number;
      try {
        n = b.read(this.fd, 0);
      } catch (err) {
        this.stop();
        this.opts.onFail(err as Error);
        return;
      }
      for (let i = 0; i < n; i++) {
        if (b.error(i) !== 0) {
          this.counters.rxErrors++;
          continue;
        }
        if (this.cut) this.cutAndDeliver(b.slab, b.offset(i), b.length(i));
        else on(b.slab, b.offset(i), b.length(i));
      }
      if (n < b.size) break;
    }
    this.opts.afterRead();
  }

  private cutAndDeliver(buf: Uint8Array, h: number, total: number): void {
    const off = h + VNET_HDR_LEN;
    const len = total - VNET_HDR_LEN;
    if (len <= 0) return;
    if (vnetGsoType(buf, h) === VNET_GSO_NONE) {
      if (completeChecksum(buf, h, off, len)) this.opts.onPacket(buf, off, len);
      else this.counters.rxBadOffload++;
      return;
    }
    const seg = this.segmenter;
    const scratch = this.scratch!;
    const at = this.opts.headroom;
    const count = seg.begin(buf, h, off, len);
    if (count === SEGMENT_INVALID || at + seg.maxLength > scratch.length) {
      this.counters.rxBadOffload++;
      return;
    }
    this.counters.rxSuperPackets++;
    for (let k = 0; k < count; k++) {
      const n = seg.write(k, scratch, at);
      if (n > 0) this.opts.onPacket(scratch, at, n);
    }
  }

  /** Queues an IP packet (no header of its own); on a vnetHdr queue it may join a super-packet. */
  write(buf: Uint8Array, off: number, len: number): void {
    const q = this.queue;
    if (this.autoFlush) this.flushLater();
    if (q.add(buf, off, len)) return;
    if (q.full) {
      this.flush();
      if (q.add(buf, off, len)) return;
    }
    this.counters.txTooLong++;
  }

  /** Queues a record as it is: on a vnetHdr queue, buf[off] is its virtio_net_hdr (len counts it). */
  writeRaw(buf: Uint8Array, off: number, len: number): void {
    const q = this.queue;
    if (this.autoFlush) this.flushLater();
    if (q.addRaw(buf, off, len)) return;
    if (q.full) {
      this.flush();
      if (q.addRaw(buf, off, len)) return;
    }
    this.counters.txTooLong++;
  }

  /**
   * A write slot for a record of len bytes (as writeRaw's), to be built in place in `slab` at
   * the offset returned and then queued with commitRaw(len) — or left, and the slot stays
   * free. -1 (counted as txTooLong) when longer than a slot. Writes the queue first if full.
   */
  rawSlot(len: number): number {
    const q = this.queue;
    let at = q.rawOffset(len);
    if (at < 0 && q.full) {
      this.flush();
      at = q.rawOffset(len);
    }
    if (at < 0) this.counters.txTooLong++;
    return at;
  }

  /** Queues the record built at rawSlot(len). */
  commitRaw(len: number): void {
    if (this.autoFlush) this.flushLater();
    this.queue.commitRaw(len);
  }

  private flushLater(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flushTask);
  }

  /**
   * Writes what is queued (never waits: records the queue cannot take now are counted).
   * Returns how many records the kernel took.
   */
  flush(): number {
    const q = this.queue;
    if (q.count === 0) return 0;
    const n = q.finish();
    this.counters.txCoalesced += q.merged;
    q.merged = 0;
    q.reset();
    if (this.fd < 0) return 0;
    let written: number;
    try {
      written = this.tunOut.write(this.fd, n, 0);
    } catch (err) {
      this.stop();
      this.opts.onFail(err as Error);
      return 0;
    }
    this.counters.txQueueFull += n - written;
    let taken = written;
    for (let i = 0; i < written; i++) {
      const e = this.tunOut.error(i);
      if (e === 0) continue;
      taken--;
      const name = errnoName(e);
      this.counters.txErrors[name] = (this.counters.txErrors[name] ?? 0) + 1;
    }
    return taken;
  }

  /** Stops watching the fd (the owner closes it). Idempotent. */
  stop(): void {
    if (this.watch !== null) fdUnwatch(this.watch);
    this.watch = null;
    this.fd = -1;
  }
}

/**
 * Packet batches: one slab and one meta Int32Array, allocated once and reused for every call.
 *
 * Record i owns the fixed slot slab[i × slotSize, (i + 1) × slotSize); its packet starts
 * `headroom` bytes in (room to prepend a header in place, e.g. the 16-byte WireGuard transport
 * header in front of a TUN packet). Code on the hot path reads `offset(i)`/`length(i)` and works
 * on (slab, offset) — no per-packet views or objects. With `shared: true` the slab and meta are
 * backed by SharedArrayBuffers and can be handed to a worker as they are.
 */
import { bytesToIp, ipToBytes } from './addr.ts';
import {
  META_CAP, META_ERR, META_LEN, META_OFF, TUN_RECORD_WORDS, UDP_META_ADDR, UDP_META_FAMILY,
  UDP_META_GSO, UDP_META_IFINDEX, UDP_META_LOCAL, UDP_META_PORT, UDP_RECORD_WORDS, tunRead, tunWrite, udpRecv,
  udpSend,
} from './native.ts';

export interface BatchOptions {
  /** bytes kept free in front of each packet (default 0) */
  headroom?: number;
  /** back slab and meta with SharedArrayBuffers (default false) */
  shared?: boolean;
}

class PacketBatch {
  /** number of records */
  readonly size: number;
  readonly slotSize: number;
  readonly headroom: number;
  readonly slab: Uint8Array;
  readonly meta: Int32Array;
  protected readonly words: number;

  constructor(words: number, size: number, slotSize: number, opts: BatchOptions) {
    const headroom = opts.headroom ?? 0;
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`batch size must be a positive integer: ${size}`);
    if (!Number.isInteger(headroom) || headroom < 0 || headroom >= slotSize) {
      throw new RangeError(`headroom ${headroom} must be in [0, slotSize ${slotSize})`);
    }
    const Buf = opts.shared === true ? SharedArrayBuffer : ArrayBuffer;
    this.words = words;
    this.size = size;
    this.slotSize = slotSize;
    this.headroom = headroom;
    this.slab = new Uint8Array(new Buf(size * slotSize));
    this.meta = new Int32Array(new Buf(size * words * 4));
    for (let i = 0; i < size; i++) {
      this.meta[i * words + META_OFF] = i * slotSize + headroom;
      this.meta[i * words + META_CAP] = slotSize - headroom;
    }
  }

  /** slab offset of packet i */
  offset(i: number): number {
    return this.meta[i * this.words + META_OFF];
  }

  /** length of packet i (after a read/recv, or as set for a write/send) */
  length(i: number): number {
    return this.meta[i * this.words + META_LEN];
  }

  /** sets the length of packet i for a write/send */
  setLength(i: number, len: number): void {
    this.meta[i * this.words + META_LEN] = len;
  }

  /** 0 or the errno of packet i after the last call */
  error(i: number): number {
    return this.meta[i * this.words + META_ERR];
  }

  /** a view of packet i (allocates: for tests and slow paths, not per packet) */
  packet(i: number): Uint8Array {
    const off = this.offset(i);
    return this.slab.subarray(off, off + this.length(i));
  }
}

/** A batch for TUN queues: records of OFF, CAP, LEN, ERR. */
export class TunBatch extends PacketBatch {
  constructor(size: number, slotSize: number, opts: BatchOptions = {}) {
    super(TUN_RECORD_WORDS, size, slotSize, opts);
  }

  /** tunRead into records [0, max); returns the count. */
  read(fd: number, timeoutMs = 0, max = this.size): number {
    return tunRead(fd, this.slab, this.meta, max, timeoutMs);
  }

  /** tunWrite records [0, count); returns records processed. */
  write(fd: number, count: number, timeoutMs = 0): number {
    return tunWrite(fd, this.slab, this.meta, count, timeoutMs);
  }
}

/**
 * A batch for UDP sockets: records also carry the peer (FAMILY, PORT, ADDR) and our side
 * (LOCAL, IFINDEX). After `recv`, a record addresses the reply: rewrite the payload, set the
 * length, and `send` answers from the address and interface the datagram arrived on.
 */
export class UdpBatch extends PacketBatch {
  /** the meta records as bytes, for the 16-byte address fields */
  readonly metaBytes: Uint8Array;

  constructor(size: number, slotSize: number, opts: BatchOptions = {}) {
    super(UDP_RECORD_WORDS, size, slotSize, opts);
    this.metaBytes = new Uint8Array(this.meta.buffer, this.meta.byteOffset, this.meta.byteLength);
  }

  /** udpRecv into records [0, max); returns the count. */
  recv(fd: number, timeoutMs = 0, max = this.size): number {
    return udpRecv(fd, this.slab, this.meta, max, timeoutMs);
  }

  /** udpSend records [0, count); returns records processed. */
  send(fd: number, count: number, timeoutMs = 0): number {
    return udpSend(fd, this.slab, this.meta, count, timeoutMs);
  }

  family(i: number): number {
    return this.meta[i * UDP_RECORD_WORDS + UDP_META_FAMILY];
  }

  port(i: number): number {
    return this.meta[i * UDP_RECORD_WORDS + UDP_META_PORT];
  }

  ifindex(i: number): number {
    return this.meta[i * UDP_RECORD_WORDS + UDP_META_IFINDEX];
  }

  /** segment size of record i (UDP_META_GSO): 0 = one datagram */
  gso(i: number): number {
    return this.meta[i * UDP_RECORD_WORDS + UDP_META_GSO];
  }

  setGso(i: number, size: number): void {
    this.meta[i * UDP_RECORD_WORDS + UDP_META_GSO] = size;
  }

  /** byte offset in `metaBytes` of the peer address of record i (16 bytes) */
  addrOffset(i: number): number {
    return (i * UDP_RECORD_WORDS + UDP_META_ADDR) * 4;
  }

  /** byte offset in `metaBytes` of the local address of record i (16 bytes) */
  localOffset(i: number): number {
    return (i * UDP_RECORD_WORDS + UDP_META_LOCAL) * 4;
  }

  /** the peer address of record i as text (allocates) */
  peerAddress(i: number): string {
    return bytesToIp(this.metaBytes, this.addrOffset(i));
  }

  /** the local address of record i as text (allocates) */
  localAddress(i: number): string {
    return bytesToIp(this.metaBytes, this.localOffset(i));
  }

  /**
   * Addresses record i to `address`:`port`, sent from `source` (default: the kernel chooses)
   * through interface `ifindex` (default 0: routing decides). Parses text: not for the hot path.
   */
  setPeer(i: number, address: string, port: number, source?: string, ifindex = 0): void {
    const base = i * UDP_RECORD_WORDS;
    this.meta[base + UDP_META_FAMILY] = ipToBytes(address, this.metaBytes, this.addrOffset(i));
    this.meta[base + UDP_META_PORT] = port;
    if (source === undefined) this.metaBytes.fill(0, this.localOffset(i), this.localOffset(i) + 16);
    else ipToBytes(source, this.metaBytes, this.localOffset(i));
    this.meta[base + UDP_META_IFINDEX] = ifindex;
  }
}

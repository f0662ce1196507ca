// A WireGuard device on real UDP sockets (IPv6 and IPv4 on one port), driven by this thread's
// event loop: libuv says when a socket is readable (fdWatch), we drain it in batches with
// non-blocking recvmmsg, and datagrams the device emits are gathered into per-family batches
// sent with one sendmmsg at the end of each round (`flush`). Decrypted packets go to the
// owner's `onPacket` — a TUN for sixpn-wg, the 6PN router for the mesh.
//
// UDP offloads: consecutive datagrams of one size to one endpoint share a send record with
// UDP_SEGMENT (GSO, ≤ 64 datagrams, the last may be shorter); with UDP_GRO a received record may
// hold several datagrams of one sender, split here by the segment size the kernel reports. The
// main thread never waits for the socket: what does not fit is counted (txBufferFull).
import {
  UdpBatch, close as closeFd, errnoName, fdUnwatch, fdWatch, isErrno, udpOpen, udpSetGro, udpSetMark,
  META_CAP, META_OFF, UDP_META_ADDR, UDP_META_FAMILY, UDP_META_GSO, UDP_META_IFINDEX, UDP_META_LOCAL, UDP_META_PORT,
  UDP_RECORD_WORDS, type FdWatch,
} from './index.ts';
import { AeadPool } from '../noise/aead-pool.ts';
import { Device, type DeviceOptions } from '../wg/device.ts';
import { Endpoint } from '../wg/endpoint.ts';
import type { Peer } from '../wg/peer.ts';
import { DeviceUapi } from '../wg/uapi-adapter.ts';
import type { Logger } from '../log.ts';

export const BATCH = 64;
export const SLOT = 65_536 + 64; // the largest IP packet, plus the transport header, padding and tag
const SOCKET_BUFFER = 4 << 20;
/** UDP_SEGMENT: at most this many datagrams, and this many bytes, in one send record */
const GSO_MAX_SEGMENTS = 64;
const GSO_MAX_BYTES = 65_000;
const EIO = 5;
const EINVAL = 22;
/**
 * Send errors that mean the source a peer's datagrams are pinned to (Endpoint.local/ifindex, the
 * address it last wrote to) no longer works: the address was removed (EINVAL, EADDRNOTAVAIL), its
 * interface is down or gone (ENETDOWN, ENODEV, ENXIO), or no route leaves from it (ENETUNREACH,
 * EHOSTUNREACH). The pin is dropped and the datagram sent again from a source routing picks.
 */
const STALE_SOURCE = new Set([6, 19, 22, 99, 100, 101, 113]);

export type { Logger } from '../log.ts';

/** UDP offloads of a port; each is probed when the sockets open and turned off if refused. */
export interface PortOffloads {
  /** UDP_SEGMENT: consecutive equal-size datagrams to one endpoint in one send record */
  gso?: boolean;
  /** UDP_GRO: the kernel hands over several datagrams of one sender in one receive */
  gro?: boolean;
  /** seal the data packets of a round in one wasm call (src/wg/seal-queue.ts); default on */
  batchSeal?: boolean;
  /** open the transport messages of each read batch in one wasm call (src/wg/open-queue.ts); default on */
  batchOpen?: boolean;
}

/** What a port did not send or receive, and why; with its offload state. */
export interface PortCounters {
  /** datagrams the kernel refused, by errno name or number */
  txErrors: Record<string, number>;
  /** datagrams not sent because the socket buffer was full (the main thread does not wait) */
  txBufferFull: number;
  /** send records that carried several datagrams (UDP_SEGMENT) */
  txGsoRecords: number;
  /** UDP_SEGMENT sends refused by the kernel (EIO/EINVAL): GSO turned off, datagrams sent one by one */
  txGsoFallback: number;
  /** receives that held several datagrams (UDP_GRO) */
  rxGroRecords: number;
  /** received datagrams cut short (larger than a slot) */
  rxTruncated: number;
  /** pinned sources that stopped working (address removed, interface down): unpinned and resent */
  txSourceCleared: number;
  /** datagrams to an address family the port has no socket for (an IPv4 endpoint, IPv6 only): dropped */
  txNoSocket: number;
}

interface Sock {
  family: 4 | 6;
  fd: number;
  watch: FdWatch | null;
}

/** The ports of this thread that are not closed (see flush). */
const livePorts = new Set<DeviceSockets>();

/** A worker pool delivered batches on its own (src/noise/aead-pool.ts): write and send what they made. */
function afterPoolDelivery(): void {
  for (const p of livePorts) p.afterRound();
  for (const p of livePorts) p.flushQueues();
}

/** Datagrams waiting for one sendmmsg, for one family; the last record may still grow (GSO). */
class SendQueue {
  readonly batch = new UdpBatch(BATCH, SLOT);
  /** the endpoint each record was queued for (a peer's own Endpoint object) */
  readonly dest: Array<Endpoint | null> = new Array<Endpoint | null>(BATCH).fill(null);
  count = 0;
  /** record still taking datagrams of `seg` bytes, or -1 */
  open = -1;
  seg = 0;
  segs = 0;
  bytes = 0;
}

/**
 * A WireGuard device with its UDP sockets (IPv6 and IPv4 on one port): sixpn-wg's device and the
 * 6PN router's mesh and gateway. UDP offloads per PortOffloads; what is dropped is counted.
 */
export class DeviceSockets {
  readonly device: Device;
  readonly uapi: DeviceUapi;
  readonly counters: PortCounters = {
    txErrors: {}, txBufferFull: 0, txGsoRecords: 0, txGsoFallback: 0, rxGroRecords: 0, rxTruncated: 0, txSourceCleared: 0, txNoSocket: 0,
  };
  /** offloads in use now (after probing) */
  gso: boolean;
  gro: boolean;
  private readonly wantGro: boolean;
  private readonly log: Logger;
  private socks: Sock[] = [];
  private readonly udpIn = new UdpBatch(BATCH, SLOT);
  private readonly out4 = new SendQueue();
  private readonly out6 = new SendQueue();
  private readonly single = new UdpBatch(1, SLOT);
  private readonly from = new Endpoint();
  /** The owner's counters for `stats=1` (sixpn-wg: the TUN side and the offloads in use). */
  extraStats: () => Record<string, number | string> = () => ({ offloads: this.offloadNames() });
  /** Called after each round of received datagrams, so the owner can flush its own output. */
  afterRound: () => void = () => {};
  closed = false;

  constructor(
    log: Logger, onPacket: (buf: Uint8Array, off: number, len: number, peer: Peer) => void, opts: DeviceOptions = {},
    offloads: PortOffloads = {},
  ) {
    this.log = log;
    this.gso = offloads.gso !== false;
    this.wantGro = offloads.gro !== false;
    this.gro = this.wantGro;
    this.device = new Device({ sendUdp: (buf, off, len, to) => this.queueUdp(buf, off, len, to), writeTun: onPacket }, {
      batchSeal: offloads.batchSeal !== false,
      batchOpen: offloads.batchOpen !== false,
      ...opts,
    });
    livePorts.add(this);
    const pool = AeadPool.current();
    if (pool !== null) pool.onDelivered = afterPoolDelivery;
    this.uapi = new DeviceUapi(this.device, {
      bindPort: (port) => this.bind(port),
      stats: () => ({ ...flatCounters(this.counters), ...this.extraStats() }),
      setFwmark: (mark) => {
        for (const s of this.socks) udpSetMark(s.fd, mark);
      },
    });
  }

  /**
   * (Re)binds the listen port on IPv6 and IPv4 (0 = pick a free port usable on both). New
   * sockets are opened before the old ones close, so a failure leaves the old ones in place.
   */
  bind(port: number): number {
    for (let attempt = 0; ; attempt++) {
      const opened: Sock[] = [];
      try {
        let bound = port;
        try {
          const s = udpOpen(6, '::', port, { v6only: true, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER });
          opened.push({ family: 6, fd: s.fd, watch: null });
          bound = s.port;
        } catch (err) {
          if (!isErrno(err, 'EAFNOSUPPORT')) throw err; // IPv6 disabled: IPv4 only
        }
        const v4 = udpOpen(4, '0.0.0.0', bound, { rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER });
        opened.push({ family: 4, fd: v4.fd, watch: null });
        bound = v4.port;
        for (const s of opened) {
          if (this.device.fwmark !== 0) udpSetMark(s.fd, this.device.fwmark);
          this.probeGro(s);
          s.watch = fdWatch(s.fd, () => this.onReadable(s));
        }
        for (const s of this.socks) this.closeSock(s);
        this.socks = opened;
        this.device.listenPort = bound;
        this.log.debug(`listening on UDP port ${bound} (gso ${this.gso ? 'on' : 'off'}, gro ${this.gro ? 'on' : 'off'})`);
        return bound;
      } catch (err) {
        for (const s of opened) this.closeSock(s);
        // port 0: the port the kernel gave on IPv6 may be taken on IPv4; try another
        if (port === 0 && isErrno(err, 'EADDRINUSE') && attempt < 8) continue;
        throw err;
      }
    }
  }

  /** The UDP offloads in use: "udp-gso udp-gro", one of them, or "". */
  offloadNames(): string {
    return [this.gso ? 'udp-gso' : '', this.gro ? 'udp-gro' : ''].filter(Boolean).join(' ');
  }

  private probeGro(s: Sock): void {
    if (!this.wantGro) return;
    try {
      udpSetGro(s.fd, true);
    } catch (err) {
      this.gro = false;
      this.log.info(`UDP_GRO refused (${(err as Error).message}): receiving datagrams one by one`);
    }
  }

  private closeSock(s: Sock): void {
    if (s.watch) fdUnwatch(s.watch);
    closeFd(s.fd);
  }

  private onReadable(s: Sock): void {
    if (this.closed) return;
    const b = this.udpIn;
    const from = this.from;
    const meta = b.meta;
    const mb = b.metaBytes;
    const device = this.device;
    for (let round = 0; round < 4; round++) {
      const n = b.recv(s.fd, 0);
      for (let i = 0; i < n; i++) {
        if (b.error(i) !== 0) {
          this.counters.rxTruncated++; // cut short: not a datagram we can use
          continue;
        }
        const r = i * UDP_RECORD_WORDS;
        const a = (r + UDP_META_ADDR) * 4;
        const l = (r + UDP_META_LOCAL) * 4;
        if (meta[r + UDP_META_FAMILY] === 4) {
          // IPv4 arrives as ::ffff:a.b.c.d
          from.set(4, mb, a + 12, meta[r + UDP_META_PORT]);
          from.local.fill(0);
          for (let k = 0; k < 4; k++) from.local[k] = mb[l + k + 12];
        } else {
          from.set(6, mb, a, meta[r + UDP_META_PORT]);
          for (let k = 0; k < 16; k++) from.local[k] = mb[l + k];
        }
        from.ifindex = meta[r + UDP_META_IFINDEX];
        const off = b.offset(i);
        const len = b.length(i);
        const seg = meta[r + UDP_META_GSO];
        if (seg === 0) {
          device.receiveDatagram(b.slab, off, len, from);
          continue;
        }
        this.counters.rxGroRecords++;
        for (let p = 0; p < len; p += seg) device.receiveDatagram(b.slab, off + p, Math.min(seg, len - p), from);
      }
      device.flushOpens(); // the read batch's transport messages, in one wasm call (batchOpen)
      if (n < b.size) break;
    }
    this.afterRound();
    this.flush();
  }

  private queueUdp(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    const q = to.family === 4 ? this.out4 : this.out6;
    const b = q.batch;
    if (q.open >= 0 && len <= q.seg && q.segs < GSO_MAX_SEGMENTS && q.bytes + len <= GSO_MAX_BYTES && sameDest(b, q.open, to)) {
      b.slab.set(buf.subarray(off, off + len), b.offset(q.open) + q.bytes);
      q.bytes += len;
      q.segs++;
      b.setLength(q.open, q.bytes);
      if (len < q.seg) q.open = -1; // a shorter datagram ends the record
      return;
    }
    if (q.count === b.size) this.flushQueue(q);
    const i = q.count++;
    b.slab.set(buf.subarray(off, off + len), b.offset(i));
    b.setLength(i, len);
    b.setGso(i, len);
    q.dest[i] = to;
    q.open = this.gso ? i : -1;
    q.seg = len;
    q.segs = 1;
    q.bytes = len;
    const r = i * UDP_RECORD_WORDS;
    const meta = b.meta;
    const mb = b.metaBytes;
    meta[r + UDP_META_FAMILY] = to.family;
    meta[r + UDP_META_PORT] = to.port;
    meta[r + UDP_META_IFINDEX] = to.ifindex;
    const a = (r + UDP_META_ADDR) * 4;
    const l = (r + UDP_META_LOCAL) * 4;
    if (to.family === 4) {
      mappedV4(mb, a, to.addr);
      if (to.local[0] | to.local[1] | to.local[2] | to.local[3]) mappedV4(mb, l, to.local);
      else mb.fill(0, l, l + 16);
    } else {
      for (let k = 0; k < 16; k++) mb[a + k] = to.addr[k];
      for (let k = 0; k < 16; k++) mb[l + k] = to.local[k];
    }
  }

  /**
   * Seals the round's data packets (batchSeal) and sends every queued datagram. The seal queue
   * is the thread's (src/wg/seal-queue.ts), so it may have handed messages to the other ports of
   * this thread too (sixpn up: the mesh and the gateway): theirs are sent as well.
   */
  flush(): void {
    this.device.flushSeals();
    for (const p of livePorts) p.flushQueues();
  }

  /** Sends what is queued now (the seals already made). */
  flushQueues(): void {
    this.flushQueue(this.out4);
    this.flushQueue(this.out6);
  }

  private flushQueue(q: SendQueue): void {
    const count = q.count;
    if (count === 0) return;
    q.count = 0;
    q.open = -1;
    const family = q === this.out4 ? 4 : 6;
    const s = this.socks.find((x) => x.family === family);
    const b = q.batch;
    if (s === undefined) {
      for (let i = 0; i < count; i++) this.counters.txNoSocket += this.segmentsOf(b, i);
      q.dest.fill(null, 0, count);
      return;
    }
    const sent = b.send(s.fd, count, 0);
    for (let i = 0; i < sent; i++) {
      const segs = this.segmentsOf(b, i);
      if (segs > 1) this.counters.txGsoRecords++;
      const err = b.error(i);
      if (err === 0) continue;
      if (STALE_SOURCE.has(err) && this.unpin(q, i)) {
        this.resend(s, b, i, false, true);
        continue;
      }
      if (segs > 1 && (err === EIO || err === EINVAL)) {
        this.gsoRefused(s, b, i, err);
        continue;
      }
      this.countTxError(err, segs, b, i);
    }
    q.dest.fill(null, 0, count);
    for (let i = sent; i < count; i++) this.counters.txBufferFull += this.segmentsOf(b, i);
  }

  private segmentsOf(b: UdpBatch, i: number): number {
    const seg = b.gso(i);
    const len = b.length(i);
    return seg > 0 && seg < len ? Math.ceil(len / seg) : 1;
  }

  /**
   * Record i was sent from a pinned source (LOCAL/IFINDEX) that failed: drop the pin from the
   * peer's endpoint (if it still holds that pin) so what follows leaves from a working source.
   * False when the record had no pin (the error is about something else).
   */
  private unpin(q: SendQueue, i: number): boolean {
    const b = q.batch;
    const r = i * UDP_RECORD_WORDS;
    const l = (r + UDP_META_LOCAL) * 4;
    const mb = b.metaBytes;
    let pinned = b.meta[r + UDP_META_IFINDEX] !== 0;
    for (let k = 0; k < 16 && !pinned; k++) pinned = mb[l + k] !== 0;
    if (!pinned) return false;
    const ep = q.dest[i];
    if (ep !== null && sameDest(b, i, ep)) {
      ep.local.fill(0);
      ep.ifindex = 0;
    }
    this.counters.txSourceCleared++;
    this.log.debug(`udp send from a source that no longer works (errno ${b.error(i)}): sending from another`);
    return true;
  }

  /** The kernel refused UDP_SEGMENT (a device without checksum offload: EIO): send one by one. */
  private gsoRefused(s: Sock, b: UdpBatch, i: number, err: number): void {
    if (this.gso) {
      this.gso = false;
      this.log.info(`UDP_SEGMENT refused (errno ${err}): sending datagrams one by one`);
    }
    this.counters.txGsoFallback++;
    this.resend(s, b, i, true, false);
  }

  /**
   * Sends record i of b again through `single`: split into single datagrams (`split`), and/or
   * with no source pinned (`anySource`: routing picks the address and interface).
   */
  private resend(s: Sock, b: UdpBatch, i: number, split: boolean, anySource: boolean): void {
    const one = this.single;
    const r = i * UDP_RECORD_WORDS;
    one.metaBytes.set(b.metaBytes.subarray(r * 4, (r + UDP_RECORD_WORDS) * 4));
    one.meta[META_OFF] = 0; // the copied record pointed into b's slab
    one.meta[META_CAP] = one.slab.length;
    if (anySource) {
      one.metaBytes.fill(0, UDP_META_LOCAL * 4, UDP_META_LOCAL * 4 + 16);
      one.meta[UDP_META_IFINDEX] = 0;
    }
    const off = b.offset(i);
    const len = b.length(i);
    const seg = b.gso(i);
    const step = split && seg > 0 ? seg : len;
    one.setGso(0, split ? 0 : seg);
    for (let p = 0; p < len; p += step) {
      const n = Math.min(step, len - p);
      one.slab.set(b.slab.subarray(off + p, off + p + n), 0);
      one.setLength(0, n);
      const datagrams = this.segmentsOf(one, 0);
      if (one.send(s.fd, 1, 0) === 0) this.counters.txBufferFull += datagrams;
      else if (one.error(0) !== 0) this.countTxError(one.error(0), datagrams, one, 0);
    }
  }

  /** Counts a refused send record (record i of b), and logs it with the endpoint it was for. */
  private countTxError(err: number, datagrams: number, b: UdpBatch, i: number): void {
    const name = errnoName(err);
    this.counters.txErrors[name] = (this.counters.txErrors[name] ?? 0) + datagrams;
    const a = b.peerAddress(i);
    const endpoint = a.includes(':') ? `[${a}]:${b.port(i)}` : `${a}:${b.port(i)}`;
    this.log.debug(`udp send to ${endpoint}: ${name}`, { endpoint });
  }

  close(): void {
    if (this.closed) return;
    this.device.releaseBatches();
    this.flushQueues();
    this.closed = true;
    livePorts.delete(this);
    for (const s of this.socks) this.closeSock(s);
    this.socks = [];
    for (const p of [...this.device.peers.values()]) this.device.removePeer(p);
    this.device.setPrivateKey(null);
  }
}

/** Counters as flat key=value pairs: txErrors.EMSGSIZE → txErrors_EMSGSIZE. */
export function flatCounters(c: object, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(c)) {
    const key = prefix === '' ? k : `${prefix}${k[0].toUpperCase()}${k.slice(1)}`;
    if (typeof v === 'number') out[key] = v;
    else if (typeof v === 'object' && v !== null) for (const [e, n] of Object.entries(v)) out[`${key}_${e}`] = n as number;
  }
  return out;
}

/** Record i of b is addressed to `to` (peer and the local side it is sent from). */
function sameDest(b: UdpBatch, i: number, to: Endpoint): boolean {
  const r = i * UDP_RECORD_WORDS;
  const meta = b.meta;
  if (meta[r + UDP_META_PORT] !== to.port || meta[r + UDP_META_IFINDEX] !== to.ifindex) return false;
  const mb = b.metaBytes;
  const a = (r + UDP_META_ADDR) * 4;
  const l = (r + UDP_META_LOCAL) * 4;
  if (to.family === 4) {
    for (let k = 0; k < 4; k++) if (mb[a + 12 + k] !== to.addr[k] || mb[l + 12 + k] !== to.local[k]) return false;
    return true;
  }
  for (let k = 0; k < 16; k++) if (mb[a + k] !== to.addr[k] || mb[l + k] !== to.local[k]) return false;
  return true;
}


function mappedV4(mb: Uint8Array, off: number, addr: Uint8Array): void {
  mb.fill(0, off, off + 10);
  mb[off + 10] = 0xff;
  mb[off + 11] = 0xff;
  for (let k = 0; k < 4; k++) mb[off + 12 + k] = addr[k];
}

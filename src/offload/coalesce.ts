// Coalescing packets bound for a vnetHdr TUN into super-packets (what the kernel's GRO does for a
// NIC), so the kernel takes one 64 KB TCP segment in one write() instead of 45 packets.
//
// Packets are added one by one into the slots of an output batch; a TCP segment joins an earlier
// one of the same batch when the kernel's GRO rules (tcp_gro_receive, inet_gro_receive,
// ipv6_gro_receive) would merge them:
//   - same flow: IP version, addresses, ports;
//   - same header fields: IPv4 TOS, TTL, DF and no options, Identification one more than the
//     last; IPv6 traffic class, flow label and hop limit, no extension headers; TCP header
//     length, acknowledgment number, window and options byte for byte;
//   - flags ACK, or ACK|PSH (SYN, FIN, RST, URG, CWR, ECE never merge);
//   - the next sequence number, and a payload of the first one's size (gso_size), except that
//     a shorter one may end the super-packet; a segment with PSH ends it too;
//   - at most 65535 bytes of IP packet.
// A flow has at most one open super-packet: a segment of the flow that cannot join it closes it
// (as the kernel flushes a held flow), so no later segment can join it and overtake the one in
// between; order within a flow is kept.
// A finished super-packet gets a virtio_net_hdr: NEEDS_CSUM with the pseudo-header sum in the
// TCP checksum field (the payload's checksum was checked by the peer's sender and the AEAD
// protects it in flight), gso_type TCPV4/TCPV6, gso_size, hdr_len; IPv4 Total Length and header
// checksum, or IPv6 Payload Length, rewritten. Everything else goes through as it came, behind a
// zero header.
//
// Pure: it only writes into the slots it is given (a TunBatch fits `Slots`); nothing allocated.
import { writeU16LE } from '../bytes.ts';
import { IPPROTO_TCP, fold, readU16, readU32, writeU16 } from '../ipv6/index.ts';
import { L4Info, parseL4, pseudoSum, writeIpv4HeaderChecksum } from './packet.ts';
import {
  VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_HDR_LEN, VNET_OFF_CSUM_OFFSET, VNET_OFF_CSUM_START,
  VNET_OFF_GSO_SIZE, VNET_OFF_GSO_TYPE, VNET_OFF_HDR_LEN, clearVnetHdr,
} from './vnet.ts';

/** Output records: slot i starts at offset(i) and holds slotSize - headroom bytes. */
export interface Slots {
  readonly size: number;
  readonly slab: Uint8Array;
  readonly slotSize: number;
  readonly headroom: number;
  offset(i: number): number;
  setLength(i: number, len: number): void;
}

const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
const MAX_IP_PACKET = 65535;

export class Coalescer {
  readonly out: Slots;
  /** vnetHdr queue: headers in front, coalescing on. Otherwise packets are only copied. */
  readonly vnet: boolean;
  /** records filled */
  count = 0;
  /** packets merged into an earlier one (not counting the first of each super-packet) */
  merged = 0;
  private readonly cap: number;
  private readonly info = new L4Info();
  // per slot
  private readonly total: Int32Array; // IP packet bytes so far
  private readonly segs: Int32Array; // segments in the record (0: not a TCP data segment)
  private readonly gso: Int32Array;
  private readonly ipLen: Int32Array;
  private readonly thLen: Int32Array;
  private readonly nextSeq: Float64Array;
  private readonly lastId: Int32Array;
  private readonly open: Int32Array; // records still taking segments, oldest first (at most one per record)
  private openCount = 0;

  constructor(out: Slots, vnet: boolean) {
    this.out = out;
    this.vnet = vnet;
    this.cap = out.slotSize - out.headroom - (vnet ? VNET_HDR_LEN : 0);
    const n = out.size;
    this.total = new Int32Array(n);
    this.segs = new Int32Array(n);
    this.gso = new Int32Array(n);
    this.ipLen = new Int32Array(n);
    this.thLen = new Int32Array(n);
    this.nextSeq = new Float64Array(n);
    this.lastId = new Int32Array(n);
    this.open = new Int32Array(n);
  }

  /** True when no more records are free: finish and write, then add again. */
  get full(): boolean {
    return this.count === this.out.size;
  }

  /**
   * Adds the IP packet buf[off, off + len). Returns false when it cannot be taken now (the
   * batch is full: finish, write and reset first) or never (longer than a slot).
   */
  add(buf: Uint8Array, off: number, len: number): boolean {
    if (len > this.cap) return false;
    const info = this.info;
    const parsed = this.vnet && parseL4(buf, off, len, info);
    if (parsed && this.openCount > 0 && info.protocol === IPPROTO_TCP && this.merge(buf, off, info)) {
      this.merged++;
      return true;
    }
    if (this.count === this.out.size) return false;
    const i = this.count++;
    const out = this.out;
    let p = out.offset(i);
    if (this.vnet) {
      clearVnetHdr(out.slab, p);
      p += VNET_HDR_LEN;
    }
    out.slab.set(buf.subarray(off, off + len), p);
    this.total[i] = len;
    this.segs[i] = 0;
    if (parsed && this.startable(buf, off, len, info)) {
      const payload = info.packetLen - info.ipLen - info.thLen;
      this.segs[i] = 1;
      this.gso[i] = payload;
      this.ipLen[i] = info.ipLen;
      this.thLen[i] = info.thLen;
      this.nextSeq[i] = (readU32(buf, info.l4Off + 4) + payload) >>> 0;
      this.lastId[i] = info.version === 4 ? readU16(buf, off + 4) : 0;
      this.open[this.openCount++] = i;
    }
    return true;
  }

  /**
   * Adds a record as it is (in vnet mode buf[off] is its own virtio_net_hdr, len counts it):
   * a super-packet from a TUN read, passed on whole. Nothing joins it. False as for add().
   */
  addRaw(buf: Uint8Array, off: number, len: number): boolean {
    const at = this.rawOffset(len);
    if (at < 0) return false;
    this.out.slab.set(buf.subarray(off, off + len), at);
    this.commitRaw(len);
    return true;
  }

  /**
   * Where a raw record of len bytes would go in out.slab, to be built there in place and then
   * taken with commitRaw(len) (or left, and the slot stays free); -1 as addRaw's false.
   */
  rawOffset(len: number): number {
    const head = this.vnet ? VNET_HDR_LEN : 0;
    if (len - head > this.cap || len < head || this.count === this.out.size) return -1;
    return this.out.offset(this.count);
  }

  /** Takes the record built at rawOffset(len). */
  commitRaw(len: number): void {
    const i = this.count++;
    this.total[i] = len - (this.vnet ? VNET_HDR_LEN : 0);
    this.segs[i] = 0;
  }

  /** A TCP data segment that later ones may join. */
  private startable(buf: Uint8Array, off: number, len: number, info: L4Info): boolean {
    if (info.protocol !== IPPROTO_TCP || info.packetLen !== len) return false;
    if (info.version === 4 ? info.ipLen !== 20 : info.ipLen !== 40) return false; // options, extensions
    if (buf[info.l4Off + 13] !== TCP_ACK) return false; // PSH ends, other flags never merge
    return info.packetLen - info.ipLen - info.thLen > 0;
  }

  private closeOpen(at: number): void {
    this.open.copyWithin(at, at + 1, this.openCount);
    this.openCount--;
  }

  /**
   * Merges the TCP packet into its flow's open super-packet if the rules allow; if they do not,
   * that super-packet is closed, so nothing of the flow later in the batch can join it and
   * overtake this packet (at most one open super-packet per flow; order within a flow is kept).
   */
  private merge(buf: Uint8Array, off: number, info: L4Info): boolean {
    const slab = this.out.slab;
    for (let o = this.openCount - 1; o >= 0; o--) {
      const i = this.open[o];
      const q = this.out.offset(i) + VNET_HDR_LEN; // the super-packet's IP header
      if (!sameFlow(slab, q, this.ipLen[i], buf, off, info)) continue;
      if (!this.fits(slab, q, i, buf, off, info)) {
        this.closeOpen(o);
        return false;
      }
      const flags = buf[info.l4Off + 13];
      const payload = info.packetLen - info.ipLen - info.thLen;
      const from = off + info.ipLen + info.thLen;
      slab.set(buf.subarray(from, from + payload), q + this.total[i]);
      this.total[i] += payload;
      this.segs[i]++;
      this.nextSeq[i] = (this.nextSeq[i] + payload) >>> 0;
      if (info.version === 4) this.lastId[i] = readU16(buf, off + 4);
      if (flags & TCP_PSH) slab[q + info.ipLen + 13] |= TCP_PSH;
      if (flags & TCP_PSH || payload < this.gso[i]) this.closeOpen(o);
      return true;
    }
    return false;
  }

  /** The packet continues open record i: headers, flags, sequence, size, IPv4 id, room. */
  private fits(slab: Uint8Array, q: number, i: number, buf: Uint8Array, off: number, info: L4Info): boolean {
    if (this.ipLen[i] !== info.ipLen || this.thLen[i] !== info.thLen) return false;
    const flags = buf[info.l4Off + 13];
    if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) return false;
    const payload = info.packetLen - info.ipLen - info.thLen;
    if (payload <= 0 || payload > this.gso[i] || this.total[i] + payload > MAX_IP_PACKET) return false;
    if (readU32(buf, info.l4Off + 4) !== this.nextSeq[i]) return false;
    if (info.version === 4 && readU16(buf, off + 4) !== ((this.lastId[i] + 1) & 0xffff)) return false;
    return sameHeaders(slab, q, buf, off, info);
  }

  /**
   * Finishes every record (headers of the super-packets, lengths) so records [0, count) can be
   * written. Call reset() after writing.
   */
  finish(): number {
    const out = this.out;
    for (let i = 0; i < this.count; i++) {
      if (!this.vnet) {
        out.setLength(i, this.total[i]);
        continue;
      }
      out.setLength(i, VNET_HDR_LEN + this.total[i]);
      if (this.segs[i] >= 2) this.writeSuper(out.slab, out.offset(i), i);
    }
    return this.count;
  }

  private writeSuper(slab: Uint8Array, h: number, i: number): void {
    const q = h + VNET_HDR_LEN;
    const ipLen = this.ipLen[i];
    const total = this.total[i];
    const v4 = slab[q] >> 4 === 4;
    if (v4) {
      writeU16(slab, q + 2, total);
      writeIpv4HeaderChecksum(slab, q, ipLen);
    } else {
      writeU16(slab, q + 4, total - 40);
    }
    const l4Len = total - ipLen;
    writeU16(slab, q + ipLen + 16, fold(pseudoSum(slab, q, v4 ? 4 : 6, IPPROTO_TCP, l4Len)));
    slab[h] = VNET_F_NEEDS_CSUM;
    slab[h + VNET_OFF_GSO_TYPE] = v4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6;
    writeU16LE(slab, h + VNET_OFF_HDR_LEN, ipLen + this.thLen[i]);
    writeU16LE(slab, h + VNET_OFF_GSO_SIZE, this.gso[i]);
    writeU16LE(slab, h + VNET_OFF_CSUM_START, ipLen);
    writeU16LE(slab, h + VNET_OFF_CSUM_OFFSET, 16);
  }

  /** Empties the batch (after its records were written). */
  reset(): void {
    this.count = 0;
    this.openCount = 0;
  }
}

/** Same flow: IP version, addresses and ports (a at p: a record's IP header; b at q: the packet). */
function sameFlow(a: Uint8Array, p: number, ipLenA: number, b: Uint8Array, q: number, info: L4Info): boolean {
  if (a[p] >> 4 !== info.version) return false;
  const ports = equal(a, p + ipLenA, b, q + info.ipLen, 4);
  return ports && (info.version === 4 ? equal(a, p + 12, b, q + 12, 8) : equal(a, p + 8, b, q + 8, 32));
}

/** The header fields GRO requires equal (the IP and TCP header lengths are already equal). */
function sameHeaders(a: Uint8Array, p: number, b: Uint8Array, q: number, info: L4Info): boolean {
  if (a[p] !== b[q]) return false; // version and IHL, or traffic class high bits
  if (info.version === 4) {
    if (a[p + 1] !== b[q + 1] || a[p + 8] !== b[q + 8] || (a[p + 6] & 0x40) !== (b[q + 6] & 0x40)) return false;
  } else if (!equal(a, p + 1, b, q + 1, 3) || a[p + 7] !== b[q + 7]) {
    return false;
  }
  const ta = p + info.ipLen;
  const tb = q + info.ipLen;
  // acknowledgment number and data offset; window; options
  return equal(a, ta + 8, b, tb + 8, 5) && equal(a, ta + 14, b, tb + 14, 2) && equal(a, ta + 20, b, tb + 20, info.thLen - 20);
}

function equal(a: Uint8Array, p: number, b: Uint8Array, q: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[p + k] !== b[q + k]) return false;
  return true;
}

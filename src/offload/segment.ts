// Cutting a super-packet read from a vnetHdr TUN into ordinary packets, once, for everyone
// (sixpn-wg, the 6PN router): what the kernel's tcp_gso_segment / udp4_ufo_fragment would have
// done on a device without offloads.
//
//   TCP (TCPV4, TCPV6): each segment carries the IP header (IPv4 options, IPv6 extension headers)
//     and TCP header (options) of the super-packet and gso_size bytes of payload (the last one
//     fewer); sequence numbers advance by the payload before it; FIN and PSH only on the last
//     segment, CWR only on the first; IPv4 Identification advances by one per segment, Total
//     Length and the header checksum are rewritten; IPv6 Payload Length likewise.
//   UDP (UDP_L4, "USO"): each segment is one datagram of gso_size bytes (the last fewer), with
//     the IP and UDP headers copied, lengths fixed.
//   Every segment gets a full transport checksum. A packet without GSO but with NEEDS_CSUM gets
//     its checksum completed in place (completeChecksum).
//
// Usage, with no allocation:  const n = seg.begin(buf, h, off, len);  for k < n: seg.write(k, out, o)
import { readU16LE } from '../bytes.ts';
import { IPPROTO_TCP, IPPROTO_UDP, fold, readU16, readU32, sumWords, writeU16, writeU32 } from '../ipv6/index.ts';
import { L4Info, parseL4, writeIpv4HeaderChecksum, writeL4Checksum } from './packet.ts';
import {
  VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_GSO_UDP_L4, VNET_OFF_CSUM_OFFSET,
  VNET_OFF_CSUM_START, vnetGsoSize, vnetGsoType,
} from './vnet.ts';

/** Segmenting failed: not a packet of the kind the header says, or headers that do not fit. */
export const SEGMENT_INVALID = -1;

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * Completes a partial checksum (NEEDS_CSUM) of the packet buf[off, off + len) whose header is at
 * buf[h], in place, and clears the flag. Returns false when csum_start/csum_offset point outside
 * the packet (nothing written). A packet without NEEDS_CSUM is left alone (true).
 */
export function completeChecksum(buf: Uint8Array, h: number, off: number, len: number): boolean {
  if ((buf[h] & VNET_F_NEEDS_CSUM) === 0) return true;
  const start = readU16LE(buf, h + VNET_OFF_CSUM_START);
  const field = readU16LE(buf, h + VNET_OFF_CSUM_OFFSET);
  const l4 = off + start;
  const end = off + len;
  if (start < 20 || l4 + field + 2 > end) return false;
  // the field holds the pseudo-header sum: summing from csum_start over it gives the whole sum
  let c = ~fold(sumWords(buf, l4, end - l4, 0)) & 0xffff;
  if (c === 0) c = 0xffff; // the same in ones' complement; 0 would mean "no checksum" to UDP
  writeU16(buf, l4 + field, c);
  buf[h] &= ~VNET_F_NEEDS_CSUM;
  return true;
}

export class Segmenter {
  private readonly info = new L4Info();
  private buf: Uint8Array = new Uint8Array(0);
  private off = 0;
  private headers = 0; // IP + transport header bytes copied into every segment
  private payload = 0; // payload bytes in all
  private size = 0; // gso_size
  private count = 0;
  private seq = 0;
  private ipId = 0;

  /**
   * Starts on the GSO packet buf[off, off + len) whose header is at buf[h]. Returns how many
   * segments it gives (≥ 1), or SEGMENT_INVALID. A packet whose payload fits one segment gives
   * one (itself, checksum completed).
   */
  begin(buf: Uint8Array, h: number, off: number, len: number): number {
    const type = vnetGsoType(buf, h);
    const size = vnetGsoSize(buf, h);
    const info = this.info;
    if (type === VNET_GSO_NONE || size === 0 || !parseL4(buf, off, len, info)) return SEGMENT_INVALID;
    if (type === VNET_GSO_UDP_L4) {
      if (info.protocol !== IPPROTO_UDP) return SEGMENT_INVALID;
    } else if (type === VNET_GSO_TCPV4 || type === VNET_GSO_TCPV6) {
      if (info.protocol !== IPPROTO_TCP || info.version !== (type === VNET_GSO_TCPV4 ? 4 : 6)) return SEGMENT_INVALID;
    } else {
      return SEGMENT_INVALID;
    }
    this.buf = buf;
    this.off = off;
    this.headers = info.ipLen + info.thLen;
    this.payload = info.packetLen - this.headers;
    this.size = size;
    this.count = this.payload === 0 ? 1 : Math.ceil(this.payload / size);
    this.seq = info.protocol === IPPROTO_TCP ? readU32(buf, info.l4Off + 4) : 0;
    this.ipId = info.version === 4 ? readU16(buf, off + 4) : 0;
    return this.count;
  }

  /** The largest segment: headers plus gso_size. */
  get maxLength(): number {
    return this.headers + this.size;
  }

  /** Writes segment k (0 ≤ k < begin's count) to out[outOff, …); returns its length. */
  write(k: number, out: Uint8Array, outOff: number): number {
    const { buf, off, headers, size, info } = this;
    const from = k * size;
    const payload = Math.min(size, this.payload - from);
    const n = headers + payload;
    if (k < 0 || k >= this.count || outOff + n > out.length) return SEGMENT_INVALID;
    out.set(buf.subarray(off, off + headers), outOff);
    const src = off + headers + from;
    out.set(buf.subarray(src, src + payload), outOff + headers);
    const l4 = outOff + info.ipLen;
    if (info.version === 4) {
      writeU16(out, outOff + 2, n);
      writeU16(out, outOff + 4, (this.ipId + k) & 0xffff);
      writeIpv4HeaderChecksum(out, outOff, info.ipLen);
    } else {
      writeU16(out, outOff + 4, n - 40);
    }
    if (info.protocol === IPPROTO_TCP) {
      writeU32(out, l4 + 4, (this.seq + from) >>> 0);
      let flags = buf[info.l4Off + 13];
      if (k !== this.count - 1) flags &= ~(TCP_FIN | TCP_PSH);
      if (k !== 0) flags &= ~TCP_CWR;
      out[l4 + 13] = flags;
    } else {
      writeU16(out, l4 + 4, n - info.ipLen);
    }
    writeL4Checksum(out, outOff, info.version, info.protocol, l4, n - info.ipLen);
    return n;
  }
}

const one = new Segmenter();

/**
 * Segment `k` of the GSO packet (one call per segment, for tests and slow paths; the packet path
 * uses a Segmenter): its length, 0 past the last segment, or SEGMENT_INVALID.
 */
export function gsoSegment(buf: Uint8Array, h: number, off: number, len: number, k: number, out: Uint8Array, outOff: number): number {
  const n = one.begin(buf, h, off, len);
  if (n === SEGMENT_INVALID) return SEGMENT_INVALID;
  return k >= n ? 0 : one.write(k, out, outOff);
}

/** How many segments the GSO packet gives (0 when it is not one that can be cut). */
export function gsoSegmentCount(buf: Uint8Array, h: number, off: number, len: number): number {
  return Math.max(0, one.begin(buf, h, off, len));
}

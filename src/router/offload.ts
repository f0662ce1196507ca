// Offloads on the machines' TUNs (host config "offload": true, issue 5). A machine TUN opened
// with IFF_VNET_HDR and TUNSETOFFLOAD (CSUM | TSO4 | TSO6 | TSO_ECN) hands the router each packet
// behind a 10-byte virtio_net_hdr, and may hand it
//   - a TCP segment of up to 64 KB (gso_type TCPV6, gso_size = MSS): the kernel left the cutting
//     into MSS-sized packets to the "device";
//   - a packet whose checksum is partial (flags NEEDS_CSUM): the field at csum_start +
//     csum_offset holds the pseudo-header sum, not complemented; the device sums the rest.
// Such a packet goes whole, header and all, to the egress (SNAT66 handles both, src/nat66) and to
// another machine of this host (its TUN takes them). Everywhere else — the mesh, the gateway, DNS,
// ICMPv6 errors quoting it — it is first made ordinary here: cut into MSS-sized IPv6 packets
// with full checksums (what the kernel's tcp_gso_segment does), or its checksum completed.
//
//   struct virtio_net_hdr { u8 flags; u8 gso_type; u16 hdr_len, gso_size, csum_start, csum_offset; }
// little-endian (a TUN without TUNSETVNETBE uses the host's order, little-endian here).
// Pure functions over (buf, offsets); nothing is allocated per packet.

import {
  IPPROTO_TCP,
  IPV6_HEADER_LEN,
  Ipv6Info,
  PARSE_OK,
  fold,
  parsePacket,
  readU32,
  sumWords,
  writeChecksum,
  writeU16,
  writeU32,
} from '../ipv6/index.ts';

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
export const VNET_GSO_ECN = 0x80;

const OFF_GSO_TYPE = 1;
const OFF_HDR_LEN = 2;
const OFF_GSO_SIZE = 4;
const OFF_CSUM_START = 6;
const OFF_CSUM_OFFSET = 8;

const TCP_OFF_SEQ = 4;
const TCP_OFF_FLAGS = 13;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/** Segmenting failed: not an IPv6 TCP packet, or a header that does not fit the packet. */
export const SEGMENT_INVALID = -1;

const u16le = (buf: Uint8Array, off: number): number => buf[off] | (buf[off + 1] << 8);
const setU16le = (buf: Uint8Array, off: number, v: number): void => {
  buf[off] = v & 0xff;
  buf[off + 1] = (v >>> 8) & 0xff;
};

/** True when the packet behind the header at buf[h] needs work: GSO, or a partial checksum. */
export function vnetOffloaded(buf: Uint8Array, h: number): boolean {
  return (buf[h] & VNET_F_NEEDS_CSUM) !== 0 || buf[h + OFF_GSO_TYPE] !== VNET_GSO_NONE;
}

/** gso_type without the ECN bit. */
export function vnetGsoType(buf: Uint8Array, h: number): number {
  return buf[h + OFF_GSO_TYPE] & ~VNET_GSO_ECN;
}

export function vnetGsoSize(buf: Uint8Array, h: number): number {
  return u16le(buf, h + OFF_GSO_SIZE);
}

/** Writes a virtio_net_hdr (for tests and tools; a zero header is "nothing to do"). */
export function writeVnetHdr(
  buf: Uint8Array, h: number,
  v: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number },
): void {
  buf[h] = v.flags ?? 0;
  buf[h + OFF_GSO_TYPE] = v.gsoType ?? 0;
  setU16le(buf, h + OFF_HDR_LEN, v.hdrLen ?? 0);
  setU16le(buf, h + OFF_GSO_SIZE, v.gsoSize ?? 0);
  setU16le(buf, h + OFF_CSUM_START, v.csumStart ?? 0);
  setU16le(buf, h + OFF_CSUM_OFFSET, v.csumOffset ?? 0);
}

/**
 * Completes a partial checksum (NEEDS_CSUM) of the packet buf[off, off + len) whose header is at
 * buf[h], in place, and clears the flag. Returns false when csum_start/csum_offset point outside
 * the packet (nothing written). A packet without NEEDS_CSUM is left alone (true).
 */
export function completeChecksum(buf: Uint8Array, h: number, off: number, len: number): boolean {
  if ((buf[h] & VNET_F_NEEDS_CSUM) === 0) return true;
  const start = u16le(buf, h + OFF_CSUM_START);
  const field = u16le(buf, h + OFF_CSUM_OFFSET);
  const l4 = off + start;
  const end = off + len;
  if (start < IPV6_HEADER_LEN || l4 + field + 2 > end) return false;
  // the field holds the pseudo-header sum: summing from csum_start over it gives the whole sum
  let c = ~fold(sumWords(buf, l4, end - l4, 0)) & 0xffff;
  if (c === 0) c = 0xffff; // the same in ones' complement; 0 would mean "no checksum" to UDP
  writeU16(buf, l4 + field, c);
  buf[h] &= ~VNET_F_NEEDS_CSUM;
  return true;
}

const info = new Ipv6Info();

/**
 * Segment `k` (from 0) of the GSO TCP packet buf[off, off + len) whose virtio_net_hdr is at
 * buf[h]: written to out[outOff, …) as an ordinary IPv6 packet — the IPv6 header and extension
 * headers and the TCP header copied, Payload Length set, sequence number advanced by k × MSS,
 * FIN and PSH only on the last segment, CWR only on the first, the TCP checksum computed in
 * full. Returns its length, 0 when there is no segment k, or SEGMENT_INVALID. `out` needs
 * room for the headers plus gso_size bytes. A packet whose payload fits one MSS gives one
 * segment (itself, checksum completed).
 */
export function gsoSegment(buf: Uint8Array, h: number, off: number, len: number, k: number, out: Uint8Array, outOff: number): number {
  const type = vnetGsoType(buf, h);
  const mss = vnetGsoSize(buf, h);
  if (type !== VNET_GSO_TCPV6 || mss === 0) return SEGMENT_INVALID;
  if (parsePacket(buf, off, len, info) !== PARSE_OK || info.protocol !== IPPROTO_TCP || info.fragment) return SEGMENT_INVALID;
  const l4 = info.l4Off;
  const end = off + info.packetLen;
  if (info.l4Len < 20) return SEGMENT_INVALID;
  const thl = (buf[l4 + 12] >>> 4) * 4;
  if (thl < 20 || l4 + thl > end) return SEGMENT_INVALID;
  const headers = l4 + thl - off; // IPv6 + extension headers + TCP header
  const total = end - (l4 + thl); // payload bytes in all
  const count = total === 0 ? 1 : Math.ceil(total / mss);
  if (k >= count) return 0;
  const from = k * mss;
  const payload = Math.min(mss, total - from);
  const n = headers + payload;
  if (outOff + n > out.length) return SEGMENT_INVALID;
  out.set(buf.subarray(off, off + headers), outOff);
  out.set(buf.subarray(l4 + thl + from, l4 + thl + from + payload), outOff + headers);
  writeU16(out, outOff + 4, n - IPV6_HEADER_LEN);
  const tcp = outOff + (l4 - off);
  writeU32(out, tcp + TCP_OFF_SEQ, (readU32(buf, l4 + TCP_OFF_SEQ) + from) >>> 0);
  let flags = buf[l4 + TCP_OFF_FLAGS];
  if (k !== count - 1) flags &= ~(TCP_FIN | TCP_PSH);
  if (k !== 0) flags &= ~TCP_CWR;
  out[tcp + TCP_OFF_FLAGS] = flags;
  writeChecksum(out, outOff, tcp, n - (l4 - off), IPPROTO_TCP);
  return n;
}

/** How many segments gsoSegment gives for this packet (0 when it is not one it can cut). */
export function gsoSegmentCount(buf: Uint8Array, h: number, off: number, len: number): number {
  const mss = vnetGsoSize(buf, h);
  if (vnetGsoType(buf, h) !== VNET_GSO_TCPV6 || mss === 0) return 0;
  if (parsePacket(buf, off, len, info) !== PARSE_OK || info.protocol !== IPPROTO_TCP || info.l4Len < 20) return 0;
  const thl = (buf[info.l4Off + 12] >>> 4) * 4;
  if (thl < 20 || thl > info.l4Len) return 0;
  const total = info.l4Len - thl;
  return total === 0 ? 1 : Math.ceil(total / mss);
}


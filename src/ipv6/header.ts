// IPv6 header validation and the extension-header walk (RFC 8200 §3, §4).
//
// `parsePacket(buf, off, len, info)` checks one packet held in buf[off, off + len) and writes what
// the router, NAT66 and DNS need into `info`, an `Ipv6Info` the caller allocates once and reuses:
// no exception and no object per packet. It returns PARSE_OK or a PARSE_* failure code.
//
// The buffer may hold more than the packet: WireGuard pads its plaintext to 16 bytes, so the
// Payload Length field, not the buffer length, says where the packet ends (`info.packetLen`).
// A Payload Length that runs past the buffer is an error. Jumbograms (RFC 2675) are not supported:
// their Payload Length is 0 and the walk reports the Hop-by-Hop header as truncated.

import { readU16, readU32, copyBytes } from '../bytes.ts';
import {
  AH_LEN_UNIT,
  EXT_LEN_UNIT,
  EXT_OFF_LEN,
  EXT_OFF_NEXT_HEADER,
  FRAG_HEADER_LEN,
  FRAG_MORE_FLAG,
  FRAG_OFF_ID,
  FRAG_OFF_OFFSET,
  FRAG_OFFSET_MASK,
  ICMPV6_HEADER_LEN,
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMPV6,
  IPPROTO_ROUTING,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_ADDR_LEN,
  IPV6_HEADER_LEN,
  IPV6_MAX_PAYLOAD_LEN,
  IPV6_OFF_DST,
  IPV6_OFF_HOP_LIMIT,
  IPV6_OFF_NEXT_HEADER,
  IPV6_OFF_PAYLOAD_LEN,
  IPV6_OFF_SRC,
  IPV6_OFF_VERSION,
  IPV6_VERSION,
  MAX_EXT_HEADERS,
  TCP_MIN_HEADER_LEN,
  UDP_HEADER_LEN,
} from './constants.ts';

// ---- Result codes of parsePacket ----

export const PARSE_OK = 0; // valid; info describes the packet
export const PARSE_TOO_SHORT = 1; // fewer than 40 bytes
export const PARSE_BAD_VERSION = 2; // version field is not 6
export const PARSE_BAD_PAYLOAD_LEN = 3; // Payload Length runs past the buffer
export const PARSE_TRUNCATED_EXT = 4; // an extension header runs past the end of the packet
export const PARSE_TOO_MANY_EXT = 5; // more than MAX_EXT_HEADERS extension headers
export const PARSE_BAD_EXT_ORDER = 6; // Hop-by-Hop not first (RFC 8200 §4.3), or a second Fragment header
export const PARSE_BAD_FRAGMENT = 7; // fragment length not a multiple of 8, or past 65535 (§4.5)
export const PARSE_TRUNCATED_UPPER = 8; // upper-layer header missing or short (RFC 7112 §5 for fragments)

// What parsePacket learned. Allocate one per worker and pass it to every call.
export class Ipv6Info {
  packetLen = 0; // 40 + Payload Length: the packet's own bytes from `off`
  protocol = -1; // upper-layer protocol: the Next Header value that ended the walk
  l4Off = 0; // absolute offset in buf of the upper-layer header (or of fragment data)
  l4Len = 0; // bytes from l4Off to the end of the packet
  extHeaders = 0; // number of extension headers walked
  fragment = false; // a Fragment header is present (atomic fragments, RFC 6946, included)
  nonFirstFragment = false; // fragment offset ≠ 0: no upper-layer header in this packet
  moreFragments = false; // M flag of the Fragment header
  fragOffset = 0; // fragment offset in bytes
  fragId = 0; // identification of the Fragment header
  hasRouting = false; // a Routing header is present
  errorPointer = 0; // on failure: offset from the packet start of the offending field (RFC 4443 §3.4)
}

// Validates the packet in buf[off, off + len) and walks its extension headers (RFC 8200 §4).
export function parsePacket(buf: Uint8Array, off: number, len: number, info: Ipv6Info): number {
  info.packetLen = 0;
  info.protocol = -1;
  info.l4Off = 0;
  info.l4Len = 0;
  info.extHeaders = 0;
  info.fragment = false;
  info.nonFirstFragment = false;
  info.moreFragments = false;
  info.fragOffset = 0;
  info.fragId = 0;
  info.hasRouting = false;
  info.errorPointer = 0;

  if (len < IPV6_HEADER_LEN || off + len > buf.length) return PARSE_TOO_SHORT;
  if (buf[off + IPV6_OFF_VERSION] >>> 4 !== IPV6_VERSION) return PARSE_BAD_VERSION;
  const payloadLen = readU16(buf, off + IPV6_OFF_PAYLOAD_LEN);
  if (payloadLen > len - IPV6_HEADER_LEN) {
    info.errorPointer = IPV6_OFF_PAYLOAD_LEN;
    return PARSE_BAD_PAYLOAD_LEN;
  }
  const end = off + IPV6_HEADER_LEN + payloadLen;
  info.packetLen = IPV6_HEADER_LEN + payloadLen;

  let nh = buf[off + IPV6_OFF_NEXT_HEADER];
  let nhField = off + IPV6_OFF_NEXT_HEADER; // where nh was read: the Parameter Problem pointer
  let p = off + IPV6_HEADER_LEN;
  let n = 0;

  // §4.1: headers are accepted in any order and number, except that Hop-by-Hop comes first
  // (§4.3). Two bounds of this implementation: at most MAX_EXT_HEADERS headers, and one Fragment
  // header (nested fragmentation is never produced and only serves to evade filters).
  for (;;) {
    if (nh === IPPROTO_HOPOPTS) {
      if (n !== 0) return fail(info, PARSE_BAD_EXT_ORDER, nhField - off);
    } else if (nh === IPPROTO_FRAGMENT) {
      if (info.fragment) return fail(info, PARSE_BAD_EXT_ORDER, nhField - off);
    } else if (nh !== IPPROTO_ROUTING && nh !== IPPROTO_DSTOPTS && nh !== IPPROTO_AH) {
      break; // upper layer, No Next Header (§4.7), ESP or unknown: the walk ends here
    }
    if (n === MAX_EXT_HEADERS) return fail(info, PARSE_TOO_MANY_EXT, nhField - off);
    n++;
    info.extHeaders = n;

    // Every extension header starts with Next Header and a length (§4.2–§4.6).
    if (p + 2 > end) return fail(info, PARSE_TRUNCATED_EXT, IPV6_OFF_PAYLOAD_LEN);
    let hlen: number;
    if (nh === IPPROTO_FRAGMENT) hlen = FRAG_HEADER_LEN;
    else if (nh === IPPROTO_AH) hlen = (buf[p + EXT_OFF_LEN] + 2) * AH_LEN_UNIT; // RFC 4302 §2.2
    else hlen = (buf[p + EXT_OFF_LEN] + 1) * EXT_LEN_UNIT;
    if (p + hlen > end) return fail(info, PARSE_TRUNCATED_EXT, p + EXT_OFF_LEN - off);

    if (nh === IPPROTO_ROUTING) info.hasRouting = true;
    if (nh === IPPROTO_FRAGMENT) {
      // §4.5: offset in 8-octet units, M flag; the fragmentable part follows this header.
      const fo = readU16(buf, p + FRAG_OFF_OFFSET);
      const fragOffset = fo & FRAG_OFFSET_MASK;
      const more = (fo & FRAG_MORE_FLAG) !== 0;
      const dataLen = end - (p + FRAG_HEADER_LEN);
      info.fragment = true;
      info.fragOffset = fragOffset;
      info.moreFragments = more;
      info.fragId = readU32(buf, p + FRAG_OFF_ID);
      // "If the length of a fragment ... is not a multiple of 8 octets and the M flag of that
      // fragment is 1, then that fragment must be discarded" (pointer: Payload Length).
      if (more && (dataLen === 0 || (dataLen & 7) !== 0)) {
        return fail(info, PARSE_BAD_FRAGMENT, IPV6_OFF_PAYLOAD_LEN);
      }
      // "... fragment offset plus length > 65535" (pointer: Fragment Offset field).
      if (fragOffset + dataLen > IPV6_MAX_PAYLOAD_LEN) {
        return fail(info, PARSE_BAD_FRAGMENT, p + FRAG_OFF_OFFSET - off);
      }
      if (fragOffset !== 0) {
        // Fragment data, not headers, follows: stop with the fragment's Next Header.
        info.nonFirstFragment = true;
        info.protocol = buf[p + EXT_OFF_NEXT_HEADER];
        info.l4Off = p + FRAG_HEADER_LEN;
        info.l4Len = dataLen;
        return PARSE_OK;
      }
    }
    nhField = p + EXT_OFF_NEXT_HEADER;
    nh = buf[nhField];
    p += hlen;
  }

  info.protocol = nh;
  info.l4Off = p;
  info.l4Len = end - p;
  // RFC 7112 §5: a first fragment (and so any packet) must carry the upper-layer header.
  const need = upperHeaderMin(nh);
  if (end - p < need) return fail(info, PARSE_TRUNCATED_UPPER, IPV6_OFF_PAYLOAD_LEN);
  return PARSE_OK;
}

function fail(info: Ipv6Info, code: number, pointer: number): number {
  info.errorPointer = pointer;
  return code;
}

// Least bytes of an upper-layer header a valid packet carries (0: not checked).
export function upperHeaderMin(protocol: number): number {
  if (protocol === IPPROTO_TCP) return TCP_MIN_HEADER_LEN;
  if (protocol === IPPROTO_UDP) return UDP_HEADER_LEN;
  if (protocol === IPPROTO_ICMPV6) return ICMPV6_HEADER_LEN;
  return 0;
}

// ---- Accessors over the fixed header (RFC 8200 §3) ----

export function version(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_OFF_VERSION] >>> 4;
}

export function trafficClass(buf: Uint8Array, off: number): number {
  return ((buf[off] & 0x0f) << 4) | (buf[off + 1] >>> 4);
}

export function flowLabel(buf: Uint8Array, off: number): number {
  return ((buf[off + 1] & 0x0f) << 16) | (buf[off + 2] << 8) | buf[off + 3];
}

export function payloadLength(buf: Uint8Array, off: number): number {
  return readU16(buf, off + IPV6_OFF_PAYLOAD_LEN);
}

export function nextHeader(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_OFF_NEXT_HEADER];
}

export function hopLimit(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_OFF_HOP_LIMIT];
}

export function setHopLimit(buf: Uint8Array, off: number, v: number): void {
  buf[off + IPV6_OFF_HOP_LIMIT] = v;
}

// Forwarding step: returns the decremented hop limit, or 0 when the packet must be dropped with
// Time Exceeded (received with 0 or 1, RFC 4443 §3.3); then the header is left as it came, to be
// quoted in the error. The IPv6 header has no checksum, so nothing else changes.
export function decrementHopLimit(buf: Uint8Array, off: number): number {
  const h = buf[off + IPV6_OFF_HOP_LIMIT];
  if (h <= 1) return 0;
  buf[off + IPV6_OFF_HOP_LIMIT] = h - 1;
  return h - 1;
}

// Offsets of the addresses, for functions that take (addrBuf, addrOff).
export function srcOffset(off: number): number {
  return off + IPV6_OFF_SRC;
}

export function dstOffset(off: number): number {
  return off + IPV6_OFF_DST;
}

export function copySrc(buf: Uint8Array, off: number, out: Uint8Array, outOff: number): void {
  copyBytes(buf, off + IPV6_OFF_SRC, out, outOff, IPV6_ADDR_LEN);
}

export function copyDst(buf: Uint8Array, off: number, out: Uint8Array, outOff: number): void {
  copyBytes(buf, off + IPV6_OFF_DST, out, outOff, IPV6_ADDR_LEN);
}

// Writes a fixed header (traffic class and flow label 0). The addresses are copied from
// (src, srcOff) and (dst, dstOff), which must not overlap the header being written.
export function writeHeader(
  buf: Uint8Array,
  off: number,
  payloadLen: number,
  nextHdr: number,
  hops: number,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
): void {
  buf[off] = IPV6_VERSION << 4;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + IPV6_OFF_PAYLOAD_LEN] = payloadLen >>> 8;
  buf[off + IPV6_OFF_PAYLOAD_LEN + 1] = payloadLen;
  buf[off + IPV6_OFF_NEXT_HEADER] = nextHdr;
  buf[off + IPV6_OFF_HOP_LIMIT] = hops;
  copyBytes(src, srcOff, buf, off + IPV6_OFF_SRC, IPV6_ADDR_LEN);
  copyBytes(dst, dstOff, buf, off + IPV6_OFF_DST, IPV6_ADDR_LEN);
}

// ICMPv6 (RFC 4443): error messages built into a caller's buffer, and echo helpers.
//
// An error message is an IPv6 header, 8 bytes of ICMPv6 header (type, code, checksum, and an
// unused/MTU/pointer field) and as much of the invoking packet as keeps the whole message within
// the minimum MTU, 1280 bytes (§2.4 (c)). Builders return the length written, or a negative
// ICMPV6_SUPPRESS_* code when RFC 4443 §2.4 (e) forbids the error:
//   (e.1) the invoking packet is an ICMPv6 error or a Redirect,
//   (e.2) its destination is multicast. §2.4 (e.2) excepts Packet Too Big and one Parameter
//         Problem; 6PN forwards no multicast, so this module sends no error to multicast at all,
//   (e.5) its source does not name a single node (unspecified or multicast),
// and, as this router cannot see whole datagrams, when it is a non-first fragment.
// Rate limiting (§2.4 (f)) belongs to the caller.

import { readU16, writeU16, writeU32 } from '../bytes.ts';
import { isMulticast, isUnspecified } from './address.ts';
import { updateChecksumWord, writeChecksum } from './checksum.ts';
import {
  ICMPV6_DST_UNREACH,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_ERROR_MAX_LEN,
  ICMPV6_HEADER_LEN,
  ICMPV6_INFO_MIN,
  ICMPV6_OFF_CHECKSUM,
  ICMPV6_OFF_CODE,
  ICMPV6_OFF_ECHO_ID,
  ICMPV6_OFF_ECHO_SEQ,
  ICMPV6_OFF_TYPE,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_REDIRECT,
  ICMPV6_TIME_EXCEEDED,
  IPPROTO_ICMPV6,
  IPV6_ADDR_LEN,
  IPV6_DEFAULT_HOP_LIMIT,
  IPV6_HEADER_LEN,
  IPV6_OFF_DST,
  IPV6_OFF_HOP_LIMIT,
  IPV6_OFF_NEXT_HEADER,
  IPV6_OFF_SRC,
  IPV6_VERSION,
} from './constants.ts';
import { Ipv6Info, parsePacket, payloadLength, writeHeader } from './header.ts';

export const ICMPV6_SUPPRESS_INVALID = -1; // the invoking packet is not IPv6 (short, bad version)
export const ICMPV6_SUPPRESS_ERROR = -2; // it is an ICMPv6 error or a Redirect, §2.4 (e.1)
export const ICMPV6_SUPPRESS_FRAGMENT = -3; // it is a non-first fragment
export const ICMPV6_SUPPRESS_MULTICAST = -4; // its destination is multicast, §2.4 (e.2)
export const ICMPV6_SUPPRESS_SOURCE = -5; // its source is unspecified or multicast, §2.4 (e.5)
export const ICMPV6_NO_ROOM = -6; // the output buffer cannot hold even an empty error

const ERROR_OVERHEAD = IPV6_HEADER_LEN + ICMPV6_HEADER_LEN; // 48 bytes before the quote
const scratch = new Ipv6Info(); // one walk per error; errors are rare and rate limited

// 0 when an error may be sent about the packet in pkt[off, off + len), else the ICMPV6_SUPPRESS_*
// reason. The packet may be malformed (that is what Parameter Problem reports).
export function icmpv6ErrorAllowed(pkt: Uint8Array, off: number, len: number): number {
  if (len < IPV6_HEADER_LEN || off + len > pkt.length) return ICMPV6_SUPPRESS_INVALID;
  if (pkt[off] >>> 4 !== IPV6_VERSION) return ICMPV6_SUPPRESS_INVALID;
  if (isMulticast(pkt, off + IPV6_OFF_DST)) return ICMPV6_SUPPRESS_MULTICAST;
  const src = off + IPV6_OFF_SRC;
  if (isMulticast(pkt, src) || isUnspecified(pkt, src)) return ICMPV6_SUPPRESS_SOURCE;
  parsePacket(pkt, off, len, scratch);
  if (scratch.nonFirstFragment) return ICMPV6_SUPPRESS_FRAGMENT;
  let proto = scratch.protocol;
  let l4 = scratch.l4Off;
  let end = off + (scratch.packetLen > 0 ? scratch.packetLen : len);
  if (proto < 0 && scratch.extHeaders === 0) {
    // The walk stopped before the first Next Header (bad Payload Length): read it directly.
    proto = pkt[off + IPV6_OFF_NEXT_HEADER];
    l4 = off + IPV6_HEADER_LEN;
    end = off + len;
  }
  if (proto === IPPROTO_ICMPV6 && l4 < end) {
    const type = pkt[l4 + ICMPV6_OFF_TYPE];
    if (type < ICMPV6_INFO_MIN || type === ICMPV6_REDIRECT) return ICMPV6_SUPPRESS_ERROR;
  }
  return 0;
}

// Writes the error (type, code, 32-bit `param`) about the packet in pkt[pktOff, pktOff + pktLen)
// to out[outOff…], from (src, srcOff), to the invoking packet's source, hop limit 64. The quote
// is the invoking packet (by its Payload Length, or what the buffer holds if that is less),
// truncated to keep the message within 1280 bytes and within `out`. `out` may be the very buffer
// of the invoking packet (the quote is moved like memmove); src must not lie in what is written.
export function buildError(
  out: Uint8Array,
  outOff: number,
  type: number,
  code: number,
  param: number,
  src: Uint8Array,
  srcOff: number,
  pkt: Uint8Array,
  pktOff: number,
  pktLen: number,
): number {
  const why = icmpv6ErrorAllowed(pkt, pktOff, pktLen);
  if (why < 0) return why;
  const room = out.length - outOff;
  if (room < ERROR_OVERHEAD + IPV6_HEADER_LEN) return ICMPV6_NO_ROOM;
  let quoted = Math.min(pktLen, IPV6_HEADER_LEN + payloadLength(pkt, pktOff));
  quoted = Math.min(quoted, ICMPV6_ERROR_MAX_LEN - ERROR_OVERHEAD, room - ERROR_OVERHEAD);

  // §3.1–§3.4: "As much of invoking packet as possible without the ICMPv6 packet exceeding the
  // minimum IPv6 MTU". Copy first: if out overlaps pkt, the header would overwrite it.
  const l4 = outOff + IPV6_HEADER_LEN;
  const q = l4 + ICMPV6_HEADER_LEN;
  moveBytes(pkt, pktOff, out, q, quoted);

  // The destination is the invoking packet's source, read from the quote (always ≥ 40 bytes).
  writeHeader(out, outOff, ICMPV6_HEADER_LEN + quoted, IPPROTO_ICMPV6, IPV6_DEFAULT_HOP_LIMIT,
    src, srcOff, out, q + IPV6_OFF_SRC);
  out[l4 + ICMPV6_OFF_TYPE] = type;
  out[l4 + ICMPV6_OFF_CODE] = code;
  writeU16(out, l4 + ICMPV6_OFF_CHECKSUM, 0);
  writeU32(out, l4 + ICMPV6_OFF_CHECKSUM + 2, param);
  writeChecksum(out, outOff, l4, ICMPV6_HEADER_LEN + quoted, IPPROTO_ICMPV6); // §2.3
  return ERROR_OVERHEAD + quoted;
}

// memmove: copies n bytes, safe when both ranges lie in one ArrayBuffer and overlap.
function moveBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): void {
  const backward =
    src.buffer === dst.buffer && dst.byteOffset + dstOff > src.byteOffset + srcOff;
  if (backward) for (let i = n - 1; i >= 0; i--) dst[dstOff + i] = src[srcOff + i];
  else for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i];
}

// Destination Unreachable, §3.1 (code: ICMPV6_UNREACH_*; the 32-bit field is unused).
export function buildDestUnreachable(
  out: Uint8Array, outOff: number, src: Uint8Array, srcOff: number,
  pkt: Uint8Array, pktOff: number, pktLen: number, code: number,
): number {
  return buildError(out, outOff, ICMPV6_DST_UNREACH, code, 0, src, srcOff, pkt, pktOff, pktLen);
}

// Packet Too Big, §3.2: code 0, the MTU of the next-hop link.
export function buildPacketTooBig(
  out: Uint8Array, outOff: number, src: Uint8Array, srcOff: number,
  pkt: Uint8Array, pktOff: number, pktLen: number, mtu: number,
): number {
  return buildError(out, outOff, ICMPV6_PACKET_TOO_BIG, 0, mtu, src, srcOff, pkt, pktOff, pktLen);
}

// Time Exceeded, §3.3 (code: ICMPV6_TIME_EXCEEDED_HOP_LIMIT or _REASSEMBLY).
export function buildTimeExceeded(
  out: Uint8Array, outOff: number, src: Uint8Array, srcOff: number,
  pkt: Uint8Array, pktOff: number, pktLen: number, code: number,
): number {
  return buildError(out, outOff, ICMPV6_TIME_EXCEEDED, code, 0, src, srcOff, pkt, pktOff, pktLen);
}

// Parameter Problem, §3.4: code ICMPV6_PARAM_*, pointer = offset of the offending byte from the
// start of the invoking packet (Ipv6Info.errorPointer).
export function buildParamProblem(
  out: Uint8Array, outOff: number, src: Uint8Array, srcOff: number,
  pkt: Uint8Array, pktOff: number, pktLen: number, code: number, pointer: number,
): number {
  return buildError(out, outOff, ICMPV6_PARAM_PROBLEM, code, pointer, src, srcOff, pkt, pktOff, pktLen);
}

// ---- Message fields (l4Off: the ICMPv6 header, as in Ipv6Info.l4Off) ----

export function icmpv6Type(buf: Uint8Array, l4Off: number): number {
  return buf[l4Off + ICMPV6_OFF_TYPE];
}

export function icmpv6Code(buf: Uint8Array, l4Off: number): number {
  return buf[l4Off + ICMPV6_OFF_CODE];
}

// §2.1: types 0–127 are errors.
export function isErrorType(type: number): boolean {
  return type < ICMPV6_INFO_MIN;
}

// ---- Echo Request and Echo Reply, §4.1 and §4.2 ----

export function isEchoRequest(buf: Uint8Array, l4Off: number): boolean {
  return buf[l4Off + ICMPV6_OFF_TYPE] === ICMPV6_ECHO_REQUEST && buf[l4Off + ICMPV6_OFF_CODE] === 0;
}

export function isEchoReply(buf: Uint8Array, l4Off: number): boolean {
  return buf[l4Off + ICMPV6_OFF_TYPE] === ICMPV6_ECHO_REPLY && buf[l4Off + ICMPV6_OFF_CODE] === 0;
}

export function echoIdentifier(buf: Uint8Array, l4Off: number): number {
  return readU16(buf, l4Off + ICMPV6_OFF_ECHO_ID);
}

export function echoSequence(buf: Uint8Array, l4Off: number): number {
  return readU16(buf, l4Off + ICMPV6_OFF_ECHO_SEQ);
}

// Sets the echo identifier and updates the checksum (RFC 1624): NAT66 uses the identifier as
// the port of an echo "connection".
export function setEchoIdentifier(buf: Uint8Array, l4Off: number, id: number): void {
  const old = readU16(buf, l4Off + ICMPV6_OFF_ECHO_ID);
  writeU16(buf, l4Off + ICMPV6_OFF_ECHO_ID, id);
  updateChecksumWord(buf, l4Off + ICMPV6_OFF_CHECKSUM, old, id & 0xffff, false);
}

// Turns the Echo Request at buf[off] (ICMPv6 header at l4Off) into its Echo Reply in place
// (§4.2: same identifier, sequence and data): addresses exchanged, hop limit 64, type 129.
// Exchanging the addresses leaves the pseudo-header sum as it was; the type changes one word.
export function makeEchoReply(buf: Uint8Array, off: number, l4Off: number): void {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) {
    const t = buf[off + IPV6_OFF_SRC + i];
    buf[off + IPV6_OFF_SRC + i] = buf[off + IPV6_OFF_DST + i];
    buf[off + IPV6_OFF_DST + i] = t;
  }
  buf[off + IPV6_OFF_HOP_LIMIT] = IPV6_DEFAULT_HOP_LIMIT;
  const old = readU16(buf, l4Off + ICMPV6_OFF_TYPE);
  buf[l4Off + ICMPV6_OFF_TYPE] = ICMPV6_ECHO_REPLY;
  buf[l4Off + ICMPV6_OFF_CODE] = 0;
  updateChecksumWord(buf, l4Off + ICMPV6_OFF_CHECKSUM, old, ICMPV6_ECHO_REPLY << 8, false);
}

// Writes an Echo Request or Reply (`type`) with `dataLen` bytes of data from (data, dataOff);
// returns the packet length. For probes and tests.
export function buildEcho(
  out: Uint8Array, outOff: number, type: number,
  src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number,
  id: number, seq: number, data: Uint8Array, dataOff: number, dataLen: number,
): number {
  const l4 = outOff + IPV6_HEADER_LEN;
  const len = ICMPV6_HEADER_LEN + dataLen;
  writeHeader(out, outOff, len, IPPROTO_ICMPV6, IPV6_DEFAULT_HOP_LIMIT, src, srcOff, dst, dstOff);
  out[l4 + ICMPV6_OFF_TYPE] = type;
  out[l4 + ICMPV6_OFF_CODE] = 0;
  writeU16(out, l4 + ICMPV6_OFF_ECHO_ID, id);
  writeU16(out, l4 + ICMPV6_OFF_ECHO_SEQ, seq);
  for (let i = 0; i < dataLen; i++) out[l4 + ICMPV6_HEADER_LEN + i] = data[dataOff + i];
  writeChecksum(out, outOff, l4, len, IPPROTO_ICMPV6);
  return IPV6_HEADER_LEN + len;
}

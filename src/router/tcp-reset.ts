// A TCP reset answering a segment (RFC 9293 §3.10.7.1, "If the state is CLOSED"): from the
// segment's destination to its source, ports swapped. If the segment has ACK, the reset is
// <SEQ=SEG.ACK><CTL=RST>; otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, where SYN and FIN
// each count one. A reset is never answered with a reset. Sans-IO: bytes in, bytes out.

import {
  IPPROTO_TCP,
  IPV6_DEFAULT_HOP_LIMIT,
  IPV6_HEADER_LEN,
  IPV6_OFF_SRC,
  TCP_MIN_HEADER_LEN,
  TCP_OFF_ACK,
  TCP_OFF_DATA_OFFSET,
  TCP_OFF_FLAGS,
  TCP_OFF_SEQ,
  readU16,
  readU32,
  writeChecksum,
  writeHeader,
  writeU16,
  writeU32,
} from '../ipv6/index.ts';

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

/**
 * Writes the reset answering the TCP segment at pkt[l4Off, l4Off + l4Len) (IPv6 header at pktOff)
 * to out[outOff…], from `src` (16 bytes at srcOff; the segment's destination, or the address the
 * sender thinks it talked to). Returns its length, or 0 when none is due (a reset, or too short).
 */
export function buildTcpReset(
  out: Uint8Array, outOff: number, src: Uint8Array, srcOff: number,
  pkt: Uint8Array, pktOff: number, l4Off: number, l4Len: number,
): number {
  if (l4Len < TCP_MIN_HEADER_LEN || out.length - outOff < IPV6_HEADER_LEN + TCP_MIN_HEADER_LEN) return 0;
  const flags = pkt[l4Off + TCP_OFF_FLAGS];
  if ((flags & RST) !== 0) return 0;
  const dataOff = (pkt[l4Off + TCP_OFF_DATA_OFFSET] >> 4) * 4;
  const segLen = Math.max(0, l4Len - dataOff) + ((flags & SYN) !== 0 ? 1 : 0) + ((flags & FIN) !== 0 ? 1 : 0);
  const sport = readU16(pkt, l4Off);
  const dport = readU16(pkt, l4Off + 2);
  const seq = readU32(pkt, l4Off + TCP_OFF_SEQ);
  const ack = readU32(pkt, l4Off + TCP_OFF_ACK);
  const t = outOff + IPV6_HEADER_LEN;
  // the header first: its destination is the segment's source (pkt is not out)
  writeHeader(out, outOff, TCP_MIN_HEADER_LEN, IPPROTO_TCP, IPV6_DEFAULT_HOP_LIMIT, src, srcOff, pkt, pktOff + IPV6_OFF_SRC);
  out.fill(0, t, t + TCP_MIN_HEADER_LEN);
  writeU16(out, t, dport);
  writeU16(out, t + 2, sport);
  if ((flags & ACK) !== 0) {
    writeU32(out, t + TCP_OFF_SEQ, ack);
    out[t + TCP_OFF_FLAGS] = RST;
  } else {
    writeU32(out, t + TCP_OFF_ACK, (seq + segLen) >>> 0);
    out[t + TCP_OFF_FLAGS] = RST | ACK;
  }
  out[t + TCP_OFF_DATA_OFFSET] = (TCP_MIN_HEADER_LEN / 4) << 4;
  writeChecksum(out, outOff, t, TCP_MIN_HEADER_LEN, IPPROTO_TCP);
  return IPV6_HEADER_LEN + TCP_MIN_HEADER_LEN;
}


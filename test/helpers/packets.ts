// UDP and TCP packet builders for tests and benchmarks (src/ipv6 builds ICMPv6 echo and errors
// but has no transport builders; the packet path never builds these). Each writes a whole IPv6 packet with a correct
// checksum at out[off] and returns its length. Not for the packet path.

import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_DEFAULT_HOP_LIMIT,
  IPV6_HEADER_LEN,
  TCP_MIN_HEADER_LEN,
  UDP_HEADER_LEN,
  writeChecksum,
  writeHeader,
  writeU16,
  writeU32,
} from '../../src/ipv6/index.ts';

// UDP (RFC 768) from (src, sport) to (dst, dport) carrying data[dataOff, dataOff + dataLen).
export function buildUdp(
  out: Uint8Array, off: number,
  src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number,
  sport: number, dport: number, data: Uint8Array, dataOff: number, dataLen: number,
): number {
  const l4 = off + IPV6_HEADER_LEN;
  const len = UDP_HEADER_LEN + dataLen;
  writeHeader(out, off, len, IPPROTO_UDP, IPV6_DEFAULT_HOP_LIMIT, src, srcOff, dst, dstOff);
  writeU16(out, l4, sport);
  writeU16(out, l4 + 2, dport);
  writeU16(out, l4 + 4, len);
  writeU16(out, l4 + 6, 0);
  for (let i = 0; i < dataLen; i++) out[l4 + UDP_HEADER_LEN + i] = data[dataOff + i];
  writeChecksum(out, off, l4, len, IPPROTO_UDP);
  return IPV6_HEADER_LEN + len;
}

// A TCP segment (RFC 9293 §3.1) without options: flags is the byte of TCP_FIN, TCP_SYN, …
export function buildTcp(
  out: Uint8Array, off: number,
  src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number,
  sport: number, dport: number, seq: number, ack: number, flags: number,
  data: Uint8Array, dataOff: number, dataLen: number,
): number {
  const l4 = off + IPV6_HEADER_LEN;
  const len = TCP_MIN_HEADER_LEN + dataLen;
  writeHeader(out, off, len, IPPROTO_TCP, IPV6_DEFAULT_HOP_LIMIT, src, srcOff, dst, dstOff);
  writeU16(out, l4, sport);
  writeU16(out, l4 + 2, dport);
  writeU32(out, l4 + 4, seq);
  writeU32(out, l4 + 8, ack);
  out[l4 + 12] = (TCP_MIN_HEADER_LEN / 4) << 4;
  out[l4 + 13] = flags;
  writeU16(out, l4 + 14, 65535); // window
  writeU32(out, l4 + 16, 0); // checksum, urgent pointer
  for (let i = 0; i < dataLen; i++) out[l4 + TCP_MIN_HEADER_LEN + i] = data[dataOff + i];
  writeChecksum(out, off, l4, len, IPPROTO_TCP);
  return IPV6_HEADER_LEN + len;
}

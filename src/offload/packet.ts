// Where the layers of an IPv4 or IPv6 packet are, for segmenting and coalescing: one parse, into a
// reused object. IPv6 extension headers are walked by src/ipv6's parser; IPv4 is read here.
import { IPPROTO_TCP, IPPROTO_UDP, Ipv6Info, PARSE_OK, fold, parsePacket, readU16, sumWords, writeU16 } from '../ipv6/index.ts';

export class L4Info {
  version = 0;
  /** bytes of IP header before the transport header (IPv4 options, IPv6 extensions included) */
  ipLen = 0;
  protocol = 0;
  /** transport header offset in the buffer */
  l4Off = 0;
  /** transport header plus payload */
  l4Len = 0;
  /** TCP header length (data offset × 4), 8 for UDP */
  thLen = 0;
  /** the whole packet as its header says (≤ the buffer's len) */
  packetLen = 0;
}

const v6 = new Ipv6Info();

/**
 * Parses the IP and TCP/UDP headers of buf[off, off + len). Returns false for anything else:
 * not TCP or UDP, a fragment, a transport header that does not fit.
 */
export function parseL4(buf: Uint8Array, off: number, len: number, out: L4Info): boolean {
  if (len < 20) return false;
  const version = buf[off] >> 4;
  if (version === 4) {
    const ihl = (buf[off] & 0x0f) * 4;
    const total = readU16(buf, off + 2);
    if (ihl < 20 || total < ihl || total > len) return false;
    if ((readU16(buf, off + 6) & 0x3fff) !== 0) return false; // MF or a fragment offset
    out.ipLen = ihl;
    out.protocol = buf[off + 9];
    out.packetLen = total;
  } else if (version === 6) {
    if (parsePacket(buf, off, len, v6) !== PARSE_OK || v6.fragment) return false;
    out.ipLen = v6.l4Off - off;
    out.protocol = v6.protocol;
    out.packetLen = v6.packetLen;
  } else {
    return false;
  }
  out.version = version;
  out.l4Off = off + out.ipLen;
  out.l4Len = out.packetLen - out.ipLen;
  if (out.protocol === IPPROTO_TCP) {
    if (out.l4Len < 20) return false;
    out.thLen = (buf[out.l4Off + 12] >>> 4) * 4;
    if (out.thLen < 20 || out.thLen > out.l4Len) return false;
  } else if (out.protocol === IPPROTO_UDP) {
    if (out.l4Len < 8) return false;
    out.thLen = 8;
  } else {
    return false;
  }
  return true;
}

/** The unfolded sum of the pseudo-header (RFC 768/793 for IPv4, RFC 8200 §8.1 for IPv6). */
export function pseudoSum(buf: Uint8Array, off: number, version: number, protocol: number, l4Len: number): number {
  return version === 4 ? sumWords(buf, off + 12, 8, protocol + l4Len) : sumWords(buf, off + 8, 32, protocol + l4Len);
}

/** Writes the full TCP/UDP checksum of the transport segment buf[l4, l4 + l4Len). */
export function writeL4Checksum(buf: Uint8Array, off: number, version: number, protocol: number, l4: number, l4Len: number): void {
  const field = l4 + (protocol === IPPROTO_TCP ? 16 : 6);
  writeU16(buf, field, 0);
  let c = ~fold(sumWords(buf, l4, l4Len, pseudoSum(buf, off, version, protocol, l4Len))) & 0xffff;
  if (c === 0 && protocol === IPPROTO_UDP) c = 0xffff; // 0 means "no checksum" to UDP
  writeU16(buf, field, c);
}

/** Writes the IPv4 header checksum of the header at buf[off, off + ihl). */
export function writeIpv4HeaderChecksum(buf: Uint8Array, off: number, ihl: number): void {
  writeU16(buf, off + 10, 0);
  writeU16(buf, off + 10, ~fold(sumWords(buf, off, ihl, 0)) & 0xffff);
}

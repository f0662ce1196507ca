/**
 * The UDP reply packet the DNS service sends back to a machine or peer, built sans-IO around a
 * message already written in place: the IPv6 and UDP headers go in front of it, addresses and
 * ports swapped from the query; a message too big for the path is cut to its question with TC.
 */
import { IPPROTO_UDP, IPV6_HEADER_LEN, IPV6_OFF_DST, IPV6_OFF_SRC, UDP_HEADER_LEN, writeChecksum } from '../ipv6/index.ts';
import { readU16, writeU16 } from '../bytes.ts';
import { DNS_HEADER_LEN, DNS_PORT, FLAG_TC, HDR_OFF_ANCOUNT, HDR_OFF_ARCOUNT, HDR_OFF_NSCOUNT, HDR_OFF_QDCOUNT, readName } from './wire.ts';

/** IPv6 header and UDP header: where a reply's message starts after the packet's first byte. */
export const IP_UDP_LEN = IPV6_HEADER_LEN + UDP_HEADER_LEN;

const REPLY_HOP_LIMIT = 64;

/**
 * Writes the IPv6 and UDP headers at out[p] for the `n`-byte message already at
 * out[p + IP_UDP_LEN]: from `server`:53 to `asker`:`port`, checksum computed. Returns the
 * packet's length.
 */
export function writeUdpReply(out: Uint8Array, p: number, server: Uint8Array, asker: Uint8Array, port: number, n: number): number {
  const plen = UDP_HEADER_LEN + n;
  out[p] = 0x60; out[p + 1] = 0; out[p + 2] = 0; out[p + 3] = 0;
  writeU16(out, p + 4, plen);
  out[p + 6] = IPPROTO_UDP;
  out[p + 7] = REPLY_HOP_LIMIT;
  out.set(server, p + IPV6_OFF_SRC);
  out.set(asker, p + IPV6_OFF_DST);
  const u = p + IPV6_HEADER_LEN;
  writeU16(out, u, DNS_PORT);
  writeU16(out, u + 2, port);
  writeU16(out, u + 4, plen);
  writeU16(out, u + 6, 0);
  writeChecksum(out, p, u, plen, IPPROTO_UDP);
  return IPV6_HEADER_LEN + plen;
}

/** Cuts a reply to its header and question with TC set (RFC 2181 §9); 0 if it has no question. */
export function truncateToQuestion(msg: Uint8Array): number {
  if (readU16(msg, HDR_OFF_QDCOUNT) !== 1) return 0;
  const end = readName(msg, DNS_HEADER_LEN, msg.length);
  if (end < 0 || end + 4 > msg.length) return 0;
  msg[2] |= FLAG_TC >>> 8;
  writeU16(msg, HDR_OFF_ANCOUNT, 0);
  writeU16(msg, HDR_OFF_NSCOUNT, 0);
  writeU16(msg, HDR_OFF_ARCOUNT, 0);
  return end + 4;
}

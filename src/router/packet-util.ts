// Small packet helpers of the router: flow keys and address classes.
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../ipv6/index.ts';
import type { Ipv6Info } from '../ipv6/index.ts';

/** Ports of a TCP/UDP segment, or the echo identifier of ICMPv6 echo, for the migration flow key. */
export function flowPorts(buf: Uint8Array, info: Ipv6Info): number {
  if (info.protocol === IPPROTO_TCP || info.protocol === IPPROTO_UDP) {
    return ((buf[info.l4Off] << 24) | (buf[info.l4Off + 1] << 16) | (buf[info.l4Off + 2] << 8) | buf[info.l4Off + 3]) >>> 0;
  }
  if (info.protocol === IPPROTO_ICMPV6) return (buf[info.l4Off + 4] << 8) | buf[info.l4Off + 5];
  return 0;
}

export function isUnspecifiedOrLoopback(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 15; i++) if (buf[off + i] !== 0) return false;
  return buf[off + 15] <= 1;
}

/** The 16 bytes at off as 32 hex digits (a map key). */
export function hex16(buf: Uint8Array, off: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + off, 16).toString('hex');
}

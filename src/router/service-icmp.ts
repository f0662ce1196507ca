// ICMPv6 errors about service flows, for the service table (services.ts): an error a machine (or
// a router on the way) sends about a packet of a flow goes to the client-source address that
// packet came from; the client must see it about what it sent. The quote is rewritten back —
// source: the client, destination: the service address (the quoted transport checksum updated
// when the quote holds it) —, the error comes from the service address to the client, and its
// checksum is computed again. An error whose quote matches no flow is left alone (undefined).

import {
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_HEADER_LEN,
  IPV6_OFF_DST,
  IPV6_OFF_NEXT_HEADER,
  IPV6_OFF_SRC,
  TCP_OFF_CHECKSUM,
  UDP_OFF_CHECKSUM,
  readU16,
  rewriteAddress,
  writeChecksum,
} from '../ipv6/index.ts';
import type { Ipv6Info } from '../ipv6/index.ts';

/** What the error needs of a flow. */
export interface ErrorFlow {
  readonly client: Uint8Array;
  readonly service: { readonly address: Uint8Array };
}

const ICMPV6_INFO_MIN = 128; // types below are errors (RFC 4443 §2.1)
const ICMPV6_HEADER_LEN = 8;

/**
 * The ICMPv6 error at buf[off] (parsed into `info`) for a client-source address: `find(proto,
 * quote's dst, quote's src, its dst port, its src port)` is the reverse-key lookup of the flow.
 */
export function restoreError<F extends ErrorFlow>(
  buf: Uint8Array, off: number, info: Ipv6Info,
  find: (proto: number, a: number, b: number, p1: number, p2: number) => F | undefined,
): F | undefined {
  if (info.protocol !== IPPROTO_ICMPV6 || info.fragment || buf[info.l4Off] >= ICMPV6_INFO_MIN) return undefined;
  const q = info.l4Off + ICMPV6_HEADER_LEN; // the quoted packet
  const end = info.l4Off + info.l4Len;
  const proto = buf[q + IPV6_OFF_NEXT_HEADER];
  if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || q + IPV6_HEADER_LEN + 4 > end) return undefined;
  const l4 = q + IPV6_HEADER_LEN;
  const f = find(proto, q + IPV6_OFF_DST, q + IPV6_OFF_SRC, readU16(buf, l4 + 2), readU16(buf, l4));
  if (f === undefined) return undefined;
  const rel = proto === IPPROTO_TCP ? TCP_OFF_CHECKSUM : UDP_OFF_CHECKSUM;
  const csum = l4 + rel + 2 <= end ? l4 + rel : -1;
  rewriteAddress(buf, q + IPV6_OFF_SRC, f.client, 0, csum, proto);
  rewriteAddress(buf, q + IPV6_OFF_DST, f.service.address, 0, csum, proto);
  buf.set(f.service.address, off + IPV6_OFF_SRC);
  buf.set(f.client, off + IPV6_OFF_DST);
  writeChecksum(buf, off, info.l4Off, info.l4Len, IPPROTO_ICMPV6);
  return f;
}

// Fragmented datagrams of service flows, for the service table (services.ts). The first fragment
// carries the ports: it finds (or opens) the flow like any packet, and its transport checksum —
// which covers the whole datagram — is updated for the new addresses. Later fragments carry no
// ports: they follow the first one's flow, remembered here by (source, destination, fragment
// identification) for the reassembly time (RFC 8200 §4.5: 60 s), bounded. A later fragment with
// no first one seen is dropped (counted): its datagram could not be reassembled anyway.

import { IPPROTO_TCP, IPV6_OFF_DST, IPV6_OFF_SRC, TCP_OFF_CHECKSUM, UDP_OFF_CHECKSUM, rewriteAddress } from '../ipv6/index.ts';
import type { Ipv6Info } from '../ipv6/index.ts';

export const FRAGMENT_TTL_MS = 60_000;
export const FRAGMENT_DATAGRAMS_MAX = 1024;

const w16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];

/** The key of a fragmented datagram as this packet (at buf[off], parsed into info) names it. */
function key(buf: Uint8Array, off: number, info: Ipv6Info): string {
  const codes: number[] = [];
  for (let i = 0; i < 32; i += 2) codes.push(w16(buf, off + IPV6_OFF_SRC + i));
  codes.push(info.fragId >>> 16, info.fragId & 0xffff);
  return String.fromCharCode(...codes);
}

export class FragmentFlows<F> {
  private readonly m = new Map<string, { flow: F; expires: number }>();

  get size(): number {
    return this.m.size;
  }

  /** A first fragment of a datagram with more to come, about to be sent on for `flow`. */
  remember(buf: Uint8Array, off: number, info: Ipv6Info, flow: F, now: number): void {
    if (!info.moreFragments) return; // an atomic fragment: nothing follows
    if (this.m.size >= FRAGMENT_DATAGRAMS_MAX) for (const k of this.m.keys()) { this.m.delete(k); break; }
    this.m.set(key(buf, off, info), { flow, expires: now + FRAGMENT_TTL_MS });
  }

  /** The flow of a later fragment's datagram, if its first fragment went by. */
  find(buf: Uint8Array, off: number, info: Ipv6Info, now: number): F | undefined {
    const e = this.m.get(key(buf, off, info));
    return e === undefined || e.expires < now ? undefined : e.flow;
  }

  expire(now: number): void {
    for (const [k, e] of this.m) {
      if (e.expires >= now) break; // in order of arrival: the rest are younger
      this.m.delete(k);
    }
  }
}

/**
 * Rewrites both addresses of a fragment: with the transport checksum of a first fragment (the
 * router's rewrite leaves fragments' checksums alone), without for a later one.
 */
export function rewriteFragment(buf: Uint8Array, off: number, info: Ipv6Info, src: Uint8Array, dst: Uint8Array): void {
  const pos = info.nonFirstFragment ? -1 : info.l4Off + (info.protocol === IPPROTO_TCP ? TCP_OFF_CHECKSUM : UDP_OFF_CHECKSUM);
  rewriteAddress(buf, off + IPV6_OFF_SRC, src, 0, pos, info.protocol);
  rewriteAddress(buf, off + IPV6_OFF_DST, dst, 0, pos, info.protocol);
}

// The host/net swap of the host-to-host mesh (DESIGN.md "Addresses").
//
// On the mesh a 6PN address travels with its network and host fields traded:
//   fdaa | network | host | instance | free   ⇄   fdaa | host | network | instance | free
//   fdaa:0:863:a7b:bea:0:a:2                  ⇄   fdaa:a7b:bea:0:863:0:a:2
// so a host's machines, whatever their org, all sit in fdaa:HOST:HOST::/48, and one allowed-IPs
// entry per host does WireGuard's cryptokey routing. The swap is its own inverse.
//
// Why checksums survive: both fields are 32 bits wide and start at even offsets (2 and 6), so the
// swap only reorders 16-bit words of the address. The TCP, UDP and ICMPv6 checksums cover the
// addresses through the pseudo-header (RFC 8200 §8.1) as a one's complement sum of 16-bit words
// (RFC 1071 §2 (B): the sum is commutative and associative), so the sum, and the checksum, are
// unchanged. test/ipv6-swap.test.ts checks this on real packets instead of trusting it.

import { IPV6_OFF_DST, IPV6_OFF_SRC, SIXPN_OFF_HOST, SIXPN_OFF_NETWORK } from './constants.ts';
import { encodeSixpn, isSixpn } from './address.ts';

export const SWAP_SRC = 1; // swapPacket: the source address
export const SWAP_DST = 2; // swapPacket: the destination address
export const SWAP_BOTH = 3; // swapPacket: both

// Trades the network and host fields of the address at buf[off] in place, whatever the address.
export function swapAddress(buf: Uint8Array, off: number): void {
  const a = off + SIXPN_OFF_NETWORK;
  const b = off + SIXPN_OFF_HOST;
  for (let i = 0; i < 4; i++) {
    const t = buf[a + i];
    buf[a + i] = buf[b + i];
    buf[b + i] = t;
  }
}

// Writes the swapped form of the address at src[srcOff] to out[outOff] (no overlap).
export function swapAddressTo(src: Uint8Array, srcOff: number, out: Uint8Array, outOff: number): void {
  out[outOff] = src[srcOff];
  out[outOff + 1] = src[srcOff + 1];
  for (let i = 0; i < 4; i++) {
    out[outOff + SIXPN_OFF_NETWORK + i] = src[srcOff + SIXPN_OFF_HOST + i];
    out[outOff + SIXPN_OFF_HOST + i] = src[srcOff + SIXPN_OFF_NETWORK + i];
  }
  for (let i = 10; i < 16; i++) out[outOff + i] = src[srcOff + i];
}

// Swaps, in place, the source and/or destination (`which`: SWAP_SRC | SWAP_DST) of the IPv6
// packet at buf[off], each only if it is a 6PN address (fdaa::/16, which the swap preserves, so
// this too is an involution). Returns the SWAP_* bits of the addresses it swapped. Checksums
// need no update (see the top of this file).
export function swapPacket(buf: Uint8Array, off: number, which: number): number {
  let done = 0;
  if ((which & SWAP_SRC) !== 0 && isSixpn(buf, off + IPV6_OFF_SRC)) {
    swapAddress(buf, off + IPV6_OFF_SRC);
    done |= SWAP_SRC;
  }
  if ((which & SWAP_DST) !== 0 && isSixpn(buf, off + IPV6_OFF_DST)) {
    swapAddress(buf, off + IPV6_OFF_DST);
    done |= SWAP_DST;
  }
  return done;
}

// The mesh allowed-IPs prefix of a host: fdaa:HOST:HOST::/48 (length SIXPN_ORG_PREFIX_LEN), the
// swapped form of every address of every machine on that host.
export function meshHostPrefix(out: Uint8Array, off: number, host: number): void {
  encodeSixpn(out, off, host, 0, 0, 0);
}

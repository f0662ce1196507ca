// The Internet checksum (RFC 1071) with the IPv6 pseudo-header (RFC 8200 §8.1), as used by TCP,
// UDP and ICMPv6 (RFC 4443 §2.3), and its incremental update (RFC 1624).
//
// Sums are kept unfolded in a JS number while adding: a packet is at most 65,575 bytes, so the
// sum of its 16-bit words stays below 2^32 and far below 2^53; folding happens once at the end.
// Every function takes (buf, offsets) and allocates nothing.

import { readU16, writeU16 } from '../bytes.ts';
import {
  ICMPV6_OFF_CHECKSUM,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_OFF_SRC,
  TCP_OFF_CHECKSUM,
  UDP_OFF_CHECKSUM,
} from './constants.ts';

// ---- RFC 1071 ----

// Adds the bytes buf[off, off + len) to `acc` as big-endian 16-bit words (RFC 1071 §4.1); an odd
// last byte is padded with a zero byte. Returns the unfolded sum.
export function sumWords(buf: Uint8Array, off: number, len: number, acc: number): number {
  let s = acc;
  let i = off;
  const even = off + (len & ~1);
  // Eight bytes per turn (RFC 1071 §2 (C): "deferred carries", "unwinding loops").
  for (const end8 = even - 7; i < end8; i += 8) {
    s +=
      ((buf[i] << 8) | buf[i + 1]) +
      ((buf[i + 2] << 8) | buf[i + 3]) +
      ((buf[i + 4] << 8) | buf[i + 5]) +
      ((buf[i + 6] << 8) | buf[i + 7]);
  }
  for (; i < even; i += 2) s += (buf[i] << 8) | buf[i + 1];
  if ((len & 1) !== 0) s += buf[even] << 8;
  return s;
}

// Folds the carries back in (end-around carry) until 16 bits remain: the one's complement sum.
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) {
    const lo = s & 0xffff; // ToInt32 keeps the low 16 bits exact for any safe integer
    s = lo + (s - lo) / 0x10000;
  }
  return s;
}

// The plain RFC 1071 checksum of buf[off, off + len) (no pseudo-header).
export function internetChecksum(buf: Uint8Array, off: number, len: number): number {
  return ~fold(sumWords(buf, off, len, 0)) & 0xffff;
}

// ---- IPv6 pseudo-header, RFC 8200 §8.1 ----

// Unfolded sum of the pseudo-header: source and destination addresses (read from the IPv6
// header at ipOff, where they sit side by side), the 32-bit upper-layer packet length and the
// Next Header value in the low byte of a zero-filled 32-bit word.
export function pseudoHeaderSum(
  buf: Uint8Array,
  ipOff: number,
  upperLen: number,
  protocol: number,
): number {
  return sumWords(buf, ipOff + IPV6_OFF_SRC, 32, 0) + (upperLen >>> 16) + (upperLen & 0xffff) + protocol;
}

// Offset of the checksum field inside the upper-layer header, or -1 for other protocols.
export function checksumOffset(protocol: number): number {
  if (protocol === IPPROTO_TCP) return TCP_OFF_CHECKSUM;
  if (protocol === IPPROTO_UDP) return UDP_OFF_CHECKSUM;
  if (protocol === IPPROTO_ICMPV6) return ICMPV6_OFF_CHECKSUM;
  return -1;
}

// The checksum that belongs in the TCP, UDP or ICMPv6 header at l4Off (l4Len bytes of upper-layer
// packet), computed as if the checksum field were zero; -1 for other protocols. For UDP a
// computed 0 is returned as 0xffff: over IPv6, 0 would mean "no checksum" (RFC 8200 §8.1).
// The caller makes sure l4Len covers the checksum field (parsePacket does).
export function computeChecksum(
  buf: Uint8Array,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  protocol: number,
): number {
  const field = checksumOffset(protocol);
  if (field < 0) return -1;
  let s = sumWords(buf, l4Off, l4Len, pseudoHeaderSum(buf, ipOff, l4Len, protocol));
  s -= readU16(buf, l4Off + field); // the field counts as zero
  const c = ~fold(s) & 0xffff;
  return c === 0 && protocol === IPPROTO_UDP ? 0xffff : c;
}

// Computes and writes the checksum; returns it, or -1 (nothing written) for other protocols.
export function writeChecksum(
  buf: Uint8Array,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  protocol: number,
): number {
  const c = computeChecksum(buf, ipOff, l4Off, l4Len, protocol);
  if (c >= 0) writeU16(buf, l4Off + checksumOffset(protocol), c);
  return c;
}

// True when the checksum in the header verifies: the one's complement sum of the pseudo-header
// and the whole upper-layer packet, checksum included, is 0xffff (RFC 1071 §1 (3)). A UDP
// checksum of 0 never verifies: IPv6 receivers discard such packets (RFC 8200 §8.1).
// Other protocols give false. Only whole packets verify: the checksum of a fragmented datagram
// covers all its fragments (Ipv6Info.fragment tells).
export function verifyChecksum(
  buf: Uint8Array,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  protocol: number,
): boolean {
  const field = checksumOffset(protocol);
  if (field < 0 || l4Len < field + 2) return false;
  if (protocol === IPPROTO_UDP && readU16(buf, l4Off + field) === 0) return false;
  return fold(sumWords(buf, l4Off, l4Len, pseudoHeaderSum(buf, ipOff, l4Len, protocol))) === 0xffff;
}

// ---- Incremental update, RFC 1624 ----

// RFC 1624 §3, eqn. 3: HC' = ~(~HC + ~m + m'), where m and m' are the one's complement sums of
// the old and new contents of the changed words: one word, or a whole address (the sum of the
// complements is the complement of the sum). Eqn. 3 avoids the -0 that eqn. 2 can produce
// (RFC 1624 §3's example); the result equals a full recomputation for any checksum a sender
// computed. The update functions below also apply RFC 8200 §8.1: a UDP result of 0 is 0xffff.
export function adjustChecksum(hc: number, oldSum: number, newSum: number): number {
  return ~fold((~hc & 0xffff) + (~oldSum & 0xffff) + newSum) & 0xffff;
}

// Updates the checksum field at buf[csumOff] for one 16-bit word changing from oldWord to
// newWord (a port, an echo identifier, the ICMPv6 type and code). A UDP header carrying no
// checksum (0) is left alone.
export function updateChecksumWord(
  buf: Uint8Array,
  csumOff: number,
  oldWord: number,
  newWord: number,
  udp: boolean,
): void {
  const hc = readU16(buf, csumOff);
  if (udp && hc === 0) return;
  const c = adjustChecksum(hc, oldWord, newWord);
  writeU16(buf, csumOff, udp && c === 0 ? 0xffff : c);
}

// One's complement sum of the 8 words of the address at buf[off].
export function addressSum(buf: Uint8Array, off: number): number {
  return fold(sumWords(buf, off, 16, 0));
}

// Updates the checksum field at buf[csumOff] for a 16-byte address of the pseudo-header
// changing from (oldAddr, oldOff) to (newAddr, newOff). Does not copy the address.
export function updateChecksumAddress(
  buf: Uint8Array,
  csumOff: number,
  oldAddr: Uint8Array,
  oldOff: number,
  newAddr: Uint8Array,
  newOff: number,
  udp: boolean,
): void {
  const hc = readU16(buf, csumOff);
  if (udp && hc === 0) return;
  const c = adjustChecksum(hc, addressSum(oldAddr, oldOff), addressSum(newAddr, newOff));
  writeU16(buf, csumOff, udp && c === 0 ? 0xffff : c);
}

// Replaces the address at buf[addrOff] (the source or destination of an IPv6 header) with
// (newAddr, newOff) and updates the upper-layer checksum at buf[csumOff]; csumOff < 0 when the
// packet has no checksum this node can reach (other protocols, non-first fragments). NAT66 and
// the migration rewrite use it. newAddr must not overlap the address being replaced.
export function rewriteAddress(
  buf: Uint8Array,
  addrOff: number,
  newAddr: Uint8Array,
  newOff: number,
  csumOff: number,
  protocol: number,
): void {
  if (csumOff >= 0) {
    updateChecksumAddress(buf, csumOff, buf, addrOff, newAddr, newOff, protocol === IPPROTO_UDP);
  }
  for (let i = 0; i < 16; i++) buf[addrOff + i] = newAddr[newOff + i];
}

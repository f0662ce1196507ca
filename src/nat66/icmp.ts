// ICMPv6 error translation (RFC 5508 §4 for NAT44, carried over to SNAT66: errors about a
// flow must reach the endpoint behind the NAT, their payload translated).
//
// An error (Destination Unreachable, Packet Too Big, Time Exceeded, Parameter Problem, RFC 4443
// §3) quotes the invoking packet. Inbound, that is a packet we sent: its source is our egress
// address and external port. The error is sent to the internal endpoint with
//   outer destination     egress address  → internal address
//   quoted source         egress address  → internal address
//   quoted port / echo id external        → internal
//   quoted checksum       fixed for both (RFC 1624, pseudo-header included)
//   outer ICMPv6 checksum fixed for all of the above (RFC 4443 §2.3: it covers the quote)
// Packet Too Big keeps its MTU, so Path MTU Discovery (RFC 8201) works through the NAT;
// Parameter Problem keeps its pointer (no length changes). Outbound, a machine's error about a
// packet it received (e.g. port unreachable for a UDP datagram let in) is mirrored: outer source,
// quoted destination and port go back to the external endpoint.
// Errors look sessions up but never create, refresh or delete one (REFERENCE.md "NAT66
// numbers"): a forged error can at worst reach the machine it names.
//
// Nat66 hands an `IcmpErrors` what it needs and nothing more: its connection table (looked up,
// never changed), its egress addresses, its filtering mode and the error counters. The machine a
// delivered error goes to is this object's `machine`, which Nat66 reports as its own.

import {
  ICMPV6_DST_UNREACH,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HEADER_LEN,
  ICMPV6_OFF_CHECKSUM,
  ICMPV6_OFF_ECHO_ID,
  ICMPV6_PARAM_PROBLEM,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_HEADER_LEN,
  IPV6_OFF_DST,
  IPV6_OFF_PAYLOAD_LEN,
  IPV6_OFF_SRC,
  PARSE_OK,
  addressEquals,
  checksumOffset,
  parsePacket,
  readU16,
  rewriteAddress,
  updateChecksumAddress,
  updateChecksumWord,
  writeU16,
  Ipv6Info,
} from '../ipv6/index.ts';
import { FILTER_ADDRESS_AND_PORT, NAT66_DELIVER, NAT66_DROP, NAT66_FORWARD, PI_ICMP, PI_TCP, PI_UDP } from './constants.ts';
import type { EgressSet } from './egress-set.ts';
import type { ConnTable } from './table.ts';

/** The counters error translation adds to. */
export interface ErrorCounters {
  errorsIn: number;
  errorsOut: number;
  errorsDropped: number;
}

// Walks the packet quoted at buf[q, q + qLen) with src/ipv6's parsePacket. A quote is usually
// cut short (RFC 4443 §2.4 (c)), so its Payload Length promises more than is there; for the walk
// only, it is lowered to what was quoted, then restored. (src/ipv6 has no walk for truncated
// packets; this keeps one walker.) True when the quote holds the upper-layer header.
export function parseQuoted(buf: Uint8Array, q: number, qLen: number, inner: Ipv6Info): boolean {
  if (qLen < IPV6_HEADER_LEN) return false;
  const p = q + IPV6_OFF_PAYLOAD_LEN;
  const hi = buf[p];
  const lo = buf[p + 1];
  if (readU16(buf, p) > qLen - IPV6_HEADER_LEN) writeU16(buf, p, qLen - IPV6_HEADER_LEN);
  const r = parsePacket(buf, q, qLen, inner);
  buf[p] = hi;
  buf[p + 1] = lo;
  return r === PARSE_OK && !inner.nonFirstFragment && !inner.hasRouting;
}

// The protocol index of a quoted packet we can map, or -1: TCP, UDP, or an Echo Request.
function quotedPi(buf: Uint8Array, inner: Ipv6Info): number {
  const p = inner.protocol;
  if (p === IPPROTO_TCP) return PI_TCP;
  if (p === IPPROTO_UDP) return PI_UDP;
  if (p === IPPROTO_ICMPV6 && buf[inner.l4Off] === ICMPV6_ECHO_REQUEST) return PI_ICMP;
  return -1;
}

// Replaces the quoted address at buf[addrOff] and the quoted port (or echo identifier) at
// buf[portOff], fixing the quoted checksum at buf[qCsum] and the outer one at buf[oCsum].
function rewriteQuoted(
  buf: Uint8Array, oCsum: number, qCsum: number, qUdp: boolean,
  addrOff: number, addr: Uint8Array, addrAt: number, portOff: number, port: number,
): void {
  const qOld = readU16(buf, qCsum);
  updateChecksumAddress(buf, qCsum, buf, addrOff, addr, addrAt, qUdp); // quoted pseudo-header
  updateChecksumAddress(buf, oCsum, buf, addrOff, addr, addrAt, false); // outer: quoted bytes
  for (let i = 0; i < 16; i++) buf[addrOff + i] = addr[addrAt + i];
  const oldPort = readU16(buf, portOff);
  writeU16(buf, portOff, port);
  updateChecksumWord(buf, qCsum, oldPort, port, qUdp);
  updateChecksumWord(buf, oCsum, oldPort, port, false);
  updateChecksumWord(buf, oCsum, qOld, readU16(buf, qCsum), false); // the quoted checksum is data too
}

function isTranslatedError(type: number): boolean {
  return type >= ICMPV6_DST_UNREACH && type <= ICMPV6_PARAM_PROBLEM;
}

export class IcmpErrors {
  /** After NAT66_DELIVER from `inbound`: the machine the error goes to. */
  machine = -1;
  private readonly table: ConnTable;
  private readonly egresses: EgressSet;
  private readonly filtering: number;
  private readonly counters: ErrorCounters;
  private readonly inner = new Ipv6Info(); // the packet quoted in an error

  constructor(table: ConnTable, egresses: EgressSet, filtering: number, counters: ErrorCounters) {
    this.table = table;
    this.egresses = egresses;
    this.filtering = filtering;
    this.counters = counters;
  }

  // An error from the internet to egress address `egress`, about a packet we sent.
  inbound(buf: Uint8Array, off: number, info: Ipv6Info, egress: number, nowMs: number): number {
    const c = this.counters;
    const t = this.table;
    const e = this.egresses;
    const inner = this.inner;
    this.machine = -1;
    const l4 = info.l4Off;
    const q = l4 + ICMPV6_HEADER_LEN;
    if (
      info.fragment || !isTranslatedError(buf[l4]) ||
      !parseQuoted(buf, q, off + info.packetLen - q, inner) ||
      !addressEquals(buf, q + IPV6_OFF_SRC, e.addr, 16 * egress)
    ) {
      c.errorsDropped++;
      return NAT66_DROP;
    }
    const pi = quotedPi(buf, inner);
    if (pi < 0) {
      c.errorsDropped++;
      return NAT66_DROP;
    }
    const ql4 = inner.l4Off;
    const portOff = pi === PI_ICMP ? ql4 + ICMPV6_OFF_ECHO_ID : ql4; // quoted source port
    const ext = readU16(buf, portOff);
    const rport = pi === PI_ICMP ? 0 : readU16(buf, ql4 + 2);
    const m = t.ownerOf(egress, pi, ext);
    if (m < 0 || !this.allowed(m, buf, q + IPV6_OFF_DST, rport, nowMs)) {
      c.errorsDropped++;
      return NAT66_DROP;
    }
    const oCsum = l4 + ICMPV6_OFF_CHECKSUM;
    rewriteQuoted(
      buf, oCsum, ql4 + checksumOffset(inner.protocol), inner.protocol === IPPROTO_UDP,
      q + IPV6_OFF_SRC, t.mAddr, 16 * m, portOff, t.mPort[m],
    );
    rewriteAddress(buf, off + IPV6_OFF_DST, t.mAddr, 16 * m, oCsum, IPPROTO_ICMPV6); // outer pseudo-header
    this.machine = t.mMachine[m];
    c.errorsIn++;
    return NAT66_DELIVER;
  }

  // An error from a machine about a packet it received through the NAT (quoted: remote → internal).
  outbound(buf: Uint8Array, off: number, info: Ipv6Info, machine: number, egress: number, nowMs: number): number {
    const c = this.counters;
    const t = this.table;
    const e = this.egresses;
    const inner = this.inner;
    const l4 = info.l4Off;
    const q = l4 + ICMPV6_HEADER_LEN;
    if (
      info.fragment || !isTranslatedError(buf[l4]) ||
      !parseQuoted(buf, q, off + info.packetLen - q, inner) ||
      e.find(buf, off + IPV6_OFF_DST) >= 0 // about a hairpinned packet: not translated
    ) {
      c.errorsDropped++;
      return NAT66_DROP;
    }
    const pi = quotedPi(buf, inner);
    if (pi !== PI_TCP && pi !== PI_UDP) {
      c.errorsDropped++; // no inbound echo request ever reaches a machine
      return NAT66_DROP;
    }
    const ql4 = inner.l4Off;
    const m = t.findMapping(egress, pi, buf, q + IPV6_OFF_DST, readU16(buf, ql4 + 2));
    if (m < 0 || t.mMachine[m] !== machine || !this.allowed(m, buf, q + IPV6_OFF_SRC, readU16(buf, ql4), nowMs)) {
      c.errorsDropped++;
      return NAT66_DROP;
    }
    const oCsum = l4 + ICMPV6_OFF_CHECKSUM;
    rewriteQuoted(
      buf, oCsum, ql4 + checksumOffset(inner.protocol), pi === PI_UDP,
      q + IPV6_OFF_DST, e.addr, 16 * egress, ql4 + 2, t.mExt[m],
    );
    rewriteAddress(buf, off + IPV6_OFF_SRC, e.addr, 16 * egress, oCsum, IPPROTO_ICMPV6);
    c.errorsOut++;
    return NAT66_FORWARD;
  }

  // Would a packet between mapping m and the remote (address at buf[remoteOff], rport) pass the
  // filter now? Looks only; the session's timer and state stay as they are.
  private allowed(m: number, buf: Uint8Array, remoteOff: number, rport: number, nowMs: number): boolean {
    const t = this.table;
    const s = t.findSession(m, buf, remoteOff, rport);
    if (s >= 0 && t.sExpire[s] > nowMs) return true;
    return this.filtering !== FILTER_ADDRESS_AND_PORT && t.mExpire[m] > nowMs;
  }
}

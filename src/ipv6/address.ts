// IPv6 addresses: the 6PN codec, prefix matching, text parsing (RFC 4291 §2.2) and canonical
// text (RFC 5952).
//
// 6PN layout (DESIGN.md "Addresses"), 128 bits:
//   fdaa (16) | network (32) | host (32) | instance (32) | free (16)
// e.g. fdaa:0:18:a7b:7d:f066:b83b:2 is network 0x18, host 0x0a7b007d, instance 0xf066b83b,
// free 2. An org owns fdaa:NNNN:NNNN::/48, a machine the /112 ending in its instance and answers
// on ::2 in it. Network 0 is no org's: fdaa::3, the machines' DNS address, lives there.
//
// Binary functions take (buf, off) and allocate nothing; the text functions build strings and
// belong to configuration and logging paths, not the packet path.

import { readU16, readU32, writeU16, writeU32 } from '../bytes.ts';
import {
  IPV6_ADDR_LEN,
  SIXPN_DNS_SUFFIX,
  SIXPN_MACHINE_PREFIX_LEN,
  SIXPN_MACHINE_SUFFIX,
  SIXPN_OFF_FREE,
  SIXPN_OFF_HOST,
  SIXPN_OFF_INSTANCE,
  SIXPN_OFF_NETWORK,
  SIXPN_ORG_PREFIX_LEN,
  SIXPN_PREFIX,
} from './constants.ts';

// ---- 6PN fields ----

export function isSixpn(buf: Uint8Array, off: number): boolean {
  return buf[off] === SIXPN_PREFIX >>> 8 && buf[off + 1] === (SIXPN_PREFIX & 0xff);
}

export function getNetwork(buf: Uint8Array, off: number): number {
  return readU32(buf, off + SIXPN_OFF_NETWORK);
}

export function getHost(buf: Uint8Array, off: number): number {
  return readU32(buf, off + SIXPN_OFF_HOST);
}

export function getInstance(buf: Uint8Array, off: number): number {
  return readU32(buf, off + SIXPN_OFF_INSTANCE);
}

export function getFree(buf: Uint8Array, off: number): number {
  return readU16(buf, off + SIXPN_OFF_FREE);
}

export function setNetwork(buf: Uint8Array, off: number, network: number): void {
  writeU32(buf, off + SIXPN_OFF_NETWORK, network);
}

export function setHost(buf: Uint8Array, off: number, host: number): void {
  writeU32(buf, off + SIXPN_OFF_HOST, host);
}

export function setInstance(buf: Uint8Array, off: number, instance: number): void {
  writeU32(buf, off + SIXPN_OFF_INSTANCE, instance);
}

export function setFree(buf: Uint8Array, off: number, free: number): void {
  writeU16(buf, off + SIXPN_OFF_FREE, free);
}

// Writes fdaa | network | host | instance | free at out[off].
export function encodeSixpn(
  out: Uint8Array,
  off: number,
  network: number,
  host: number,
  instance: number,
  free: number,
): void {
  writeU16(out, off, SIXPN_PREFIX);
  writeU32(out, off + SIXPN_OFF_NETWORK, network);
  writeU32(out, off + SIXPN_OFF_HOST, host);
  writeU32(out, off + SIXPN_OFF_INSTANCE, instance);
  writeU16(out, off + SIXPN_OFF_FREE, free);
}

// A machine's address: ::2 in its /112.
export function machineAddress(
  out: Uint8Array,
  off: number,
  network: number,
  host: number,
  instance: number,
): void {
  encodeSixpn(out, off, network, host, instance, SIXPN_MACHINE_SUFFIX);
}

// A machine's /112 (free bits zero); its length is SIXPN_MACHINE_PREFIX_LEN.
export function machinePrefix(
  out: Uint8Array,
  off: number,
  network: number,
  host: number,
  instance: number,
): void {
  encodeSixpn(out, off, network, host, instance, 0);
}

// The address of an external WireGuard peer: ::2 in the /120 number `block` (0–255) of the /112
// (network, host, instance) on its gateway host: fdaa:0:18:a7b:d6b:0:a:2 is block 0,
// fdaa:0:4:a7b:ab6:0:a:102 block 1. The /120 is the address with its low byte cleared.
export function peerAddress(
  out: Uint8Array,
  off: number,
  network: number,
  host: number,
  instance: number,
  block: number,
): void {
  encodeSixpn(out, off, network, host, instance, ((block & 0xff) << 8) | SIXPN_MACHINE_SUFFIX);
}

// The org's /48, fdaa:NNNN:NNNN:: (length SIXPN_ORG_PREFIX_LEN).
export function orgPrefix(out: Uint8Array, off: number, network: number): void {
  encodeSixpn(out, off, network, 0, 0, 0);
}

// The org's DNS address for WireGuard peers: <org /48>::3.
export function orgDnsAddress(out: Uint8Array, off: number, network: number): void {
  encodeSixpn(out, off, network, 0, 0, SIXPN_DNS_SUFFIX);
}

// The DNS address of every machine: fdaa::3.
export function globalDnsAddress(out: Uint8Array, off: number): void {
  encodeSixpn(out, off, 0, 0, 0, SIXPN_DNS_SUFFIX);
}

export function isGlobalDns(buf: Uint8Array, off: number): boolean {
  return isOrgDns(buf, off) && getNetwork(buf, off) === 0;
}

// fdaa:NNNN:NNNN::3 for any network (fdaa::3 included).
export function isOrgDns(buf: Uint8Array, off: number): boolean {
  if (!isSixpn(buf, off)) return false;
  for (let i = SIXPN_OFF_HOST; i < SIXPN_OFF_FREE; i++) if (buf[off + i] !== 0) return false;
  return readU16(buf, off + SIXPN_OFF_FREE) === SIXPN_DNS_SUFFIX;
}

// The network (org) of a 6PN address, or -1 for any other address.
export function orgOf(buf: Uint8Array, off: number): number {
  return isSixpn(buf, off) ? readU32(buf, off + SIXPN_OFF_NETWORK) : -1;
}

// In the /48 of org `network`.
export function isInOrg(buf: Uint8Array, off: number, network: number): boolean {
  return isSixpn(buf, off) && readU32(buf, off + SIXPN_OFF_NETWORK) === network >>> 0;
}

// Both 6PN and in the same org: the "don't cross the streams" test.
export function sameOrg(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  return isSixpn(a, aOff) && prefixMatch(a, aOff, b, bOff, SIXPN_ORG_PREFIX_LEN);
}

// In the same /112: the source check of a packet from a machine's TUN.
export function sameMachine(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  return prefixMatch(a, aOff, b, bOff, SIXPN_MACHINE_PREFIX_LEN);
}

// ---- General IPv6 address tests (RFC 4291 §2.4) ----

export function addressEquals(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

export function isMulticast(buf: Uint8Array, off: number): boolean {
  return buf[off] === 0xff; // ff00::/8, RFC 4291 §2.7
}

export function isUnspecified(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) if (buf[off + i] !== 0) return false;
  return true; // ::, RFC 4291 §2.5.2
}

export function isLoopback(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN - 1; i++) if (buf[off + i] !== 0) return false;
  return buf[off + IPV6_ADDR_LEN - 1] === 1; // ::1, RFC 4291 §2.5.3
}

export function isLinkLocal(buf: Uint8Array, off: number): boolean {
  return buf[off] === 0xfe && (buf[off + 1] & 0xc0) === 0x80; // fe80::/10, RFC 4291 §2.5.6
}

export function isUniqueLocal(buf: Uint8Array, off: number): boolean {
  return (buf[off] & 0xfe) === 0xfc; // fc00::/7, RFC 4193 §3.1
}

// ---- Prefixes ----

// True when the first prefixLen bits (0–128) of the address equal those of the prefix.
export function prefixMatch(
  addr: Uint8Array,
  addrOff: number,
  prefix: Uint8Array,
  prefixOff: number,
  prefixLen: number,
): boolean {
  const whole = prefixLen >>> 3;
  for (let i = 0; i < whole; i++) if (addr[addrOff + i] !== prefix[prefixOff + i]) return false;
  const rest = prefixLen & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >>> rest) & 0xff;
  return ((addr[addrOff + whole] ^ prefix[prefixOff + whole]) & mask) === 0;
}

// Clears the bits after the first prefixLen (0–128): the network address of a CIDR.
export function maskPrefix(buf: Uint8Array, off: number, prefixLen: number): void {
  const whole = prefixLen >>> 3;
  const rest = prefixLen & 7;
  let i = whole;
  if (rest !== 0) {
    buf[off + i] &= (0xff00 >>> rest) & 0xff;
    i++;
  }
  for (; i < IPV6_ADDR_LEN; i++) buf[off + i] = 0;
}

// ---- Text (RFC 4291 §2.2 in, RFC 5952 out) ----

const words = new Array<number>(8).fill(0); // scratch for parsing and formatting

// Parses `text` (any RFC 4291 §2.2 form: full, "::"-compressed, trailing dotted IPv4; no zone
// index) into out[off, off + 16). Returns false, leaving out untouched, when it is not one.
export function parseAddress(text: string, out: Uint8Array, off: number): boolean {
  if (text.length < 2 || text.length > 45) return false;
  const gap = text.indexOf('::');
  if (gap < 0) {
    if (parseGroups(text, 0, text.length, 0, true) !== 8) return false;
  } else {
    if (text.indexOf('::', gap + 1) >= 0) return false; // one "::" at most
    const head = parseGroups(text, 0, gap, 0, false);
    if (head < 0) return false;
    const tail = parseGroups(text, gap + 2, text.length, head, true);
    if (tail < 0 || head + tail > 7) return false; // "::" stands for at least one group
    // Move the tail groups to the end and zero the gap.
    for (let i = tail - 1; i >= 0; i--) words[8 - tail + i] = words[head + i];
    for (let i = head; i < 8 - tail; i++) words[i] = 0;
  }
  for (let i = 0; i < 8; i++) writeU16(out, off + 2 * i, words[i]);
  return true;
}

// Parses ":"-separated groups of text[start, end) into words[at…]; returns how many 16-bit
// words they make (a dotted IPv4 quad, allowed last when v4 is set, makes two), or -1.
// An empty range makes 0 words.
function parseGroups(text: string, start: number, end: number, at: number, v4: boolean): number {
  if (start === end) return 0;
  let n = 0;
  let i = start;
  for (;;) {
    let j = i;
    let w = 0;
    while (j < end && j - i < 5) {
      const d = hexDigit(text.charCodeAt(j));
      if (d < 0) break;
      w = (w << 4) | d;
      j++;
    }
    if (j < end && text.charCodeAt(j) === 0x2e /* . */) {
      if (!v4 || at + n > 6) return -1;
      const q = parseDottedQuad(text, i, end);
      if (q < 0) return -1;
      words[at + n] = q >>> 16;
      words[at + n + 1] = q & 0xffff;
      return n + 2;
    }
    if (j === i || j - i > 4 || at + n > 7) return -1;
    words[at + n] = w;
    n++;
    if (j === end) return n;
    if (text.charCodeAt(j) !== 0x3a /* : */ || j + 1 === end) return -1;
    i = j + 1;
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20; // ASCII lowercase
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

// "a.b.c.d" → u32, or -1. Decimal parts without leading zeros (RFC 4291 §2.2 (3), and as
// inet_pton reads them).
function parseDottedQuad(text: string, start: number, end: number): number {
  let v = 0;
  let i = start;
  for (let part = 0; part < 4; part++) {
    const s = i;
    let b = 0;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      b = b * 10 + (c - 0x30);
      i++;
    }
    if (i === s || i - s > 3 || b > 255 || (i - s > 1 && text.charCodeAt(s) === 0x30)) return -1;
    v = v * 256 + b;
    if (part < 3) {
      if (i >= end || text.charCodeAt(i) !== 0x2e) return -1;
      i++;
    }
  }
  return i === end ? v : -1;
}

const familyScratch = new Uint8Array(16);

// The family of address text: 4 for dotted decimal ("192.0.2.1"), 6 for an IPv6 address as
// parseAddress reads it, 0 for anything else (as node:net's isIP, without loading node:net).
export function ipFamily(text: string): 4 | 6 | 0 {
  if (parseDottedQuad(text, 0, text.length) >= 0) return 4;
  return parseAddress(text, familyScratch, 0) ? 6 : 0;
}

// RFC 5952 text of the address at buf[off]: lowercase hex (§4.3) without leading zeros (§4.1),
// the longest run of two or more zero groups as "::", the first such run on a tie (§4.2);
// IPv4-mapped addresses end in dotted decimal (§5).
export function formatAddress(buf: Uint8Array, off: number): string {
  for (let i = 0; i < 8; i++) words[i] = readU16(buf, off + 2 * i);
  if (
    words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 &&
    words[4] === 0 && words[5] === 0xffff
  ) {
    return `::ffff:${buf[off + 12]}.${buf[off + 13]}.${buf[off + 14]}.${buf[off + 15]}`;
  }
  let best = -1;
  let bestLen = 1; // §4.2.2: a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      s += '::';
      i += bestLen - 1;
      continue;
    }
    if (s.length > 0 && !s.endsWith(':')) s += ':';
    s += words[i].toString(16);
  }
  return s;
}

// Parses "address/length" into out[off, off + 16) and returns the length (0–128), or -1.
// Bits past the length are kept as written (an interface address such as
// fdaa:0:18:a7b:d6b:0:a:2/120 needs them); maskPrefix clears them.
export function parseCidr(text: string, out: Uint8Array, off: number): number {
  const slash = text.indexOf('/');
  if (slash < 0) return -1;
  const lenText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return -1;
  const len = Number(lenText);
  if (len > 128) return -1;
  return parseAddress(text.slice(0, slash), out, off) ? len : -1;
}

export function formatCidr(buf: Uint8Array, off: number, prefixLen: number): string {
  return `${formatAddress(buf, off)}/${prefixLen}`;
}

// Convenience for configuration and tests: a new 16-byte array, or a TypeError.
export function addressBytes(text: string): Uint8Array {
  const out = new Uint8Array(IPV6_ADDR_LEN);
  if (!parseAddress(text, out, 0)) throw new TypeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  return out;
}

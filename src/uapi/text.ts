// Text forms of UAPI values, read as wireguard-go reads them (Go's strconv, encoding/hex and
// net/netip): each parser returns null (or -1) for anything wireguard-go would refuse.
import { formatAddress, parseAddress } from '../ipv6/index.ts';
import type { Cidr, UapiEndpoint } from './types.ts';
import { KEY_HEX_LEN, KEY_LEN } from './constants.ts';

/** strconv.ParseUint(text, 10, bits): decimal digits only (leading zeros allowed), ≤ max. */
export function parseUint(text: string, max: number): number {
  const n = text.length;
  if (n === 0) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
    if (v > max) return -1;
  }
  return v;
}

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** A 32-byte key as 64 hex digits of either case (Go's hex.DecodeString), or null. */
export function parseHexKey(text: string): Uint8Array | null {
  if (text.length !== KEY_HEX_LEN) return null;
  const key = new Uint8Array(KEY_LEN);
  for (let i = 0; i < KEY_LEN; i++) {
    const hi = hexNibble(text.charCodeAt(2 * i));
    const lo = hexNibble(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) {
      key.fill(0);
      return null;
    }
    key[i] = (hi << 4) | lo;
  }
  return key;
}

/**
 * Dotted-quad IPv4 as netip.ParseAddr reads it: exactly four decimal fields 0–255 without
 * leading zeros. Writes out[off, off + 4); returns false when it is not one.
 */
export function parseIpv4(text: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  let i = start;
  for (let part = 0; part < 4; part++) {
    const s = i;
    let b = 0;
    while (i < end) {
      const d = text.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      b = b * 10 + d;
      i++;
    }
    if (i === s || i - s > 3 || b > 255 || (i - s > 1 && text.charCodeAt(s) === 0x30)) return false;
    out[off + part] = b;
    if (part < 3) {
      if (i >= end || text.charCodeAt(i) !== 0x2e /* . */) return false;
      i++;
    }
  }
  return i === end;
}

// The address text[start, end) as IPv4 (no ":") or IPv6 (RFC 4291 text, no zone).
function parseIp(text: string, start: number, end: number): { family: 4 | 6; addr: Uint8Array } | null {
  const colon = text.indexOf(':', start);
  if (colon >= 0 && colon < end) {
    const addr = new Uint8Array(16);
    return parseAddress(text.slice(start, end), addr, 0) ? { family: 6, addr } : null;
  }
  const addr = new Uint8Array(4);
  return parseIpv4(text, start, end, addr, 0) ? { family: 4, addr } : null;
}

/**
 * "addr/len" as netip.ParsePrefix reads it (no zone, length in decimal without leading zeros,
 * ≤ 32 or ≤ 128), with the host bits cleared as wireguard-go's allowed-IPs trie clears them.
 * `start` skips a leading "-" of `allowed_ip=-cidr`.
 */
export function parseCidr(text: string, start: number): Cidr | null {
  const slash = text.indexOf('/', start);
  if (slash < 0) return null;
  const lenText = slash + 1;
  const n = text.length - lenText;
  if (n === 0 || n > 3 || (n > 1 && text.charCodeAt(lenText) === 0x30)) return null;
  let prefixLen = 0;
  for (let i = lenText; i < text.length; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return null;
    prefixLen = prefixLen * 10 + d;
  }
  const ip = parseIp(text, start, slash);
  if (ip === null || prefixLen > ip.addr.length * 8) return null;
  maskBits(ip.addr, prefixLen);
  return { family: ip.family, addr: ip.addr, prefixLen };
}

/** Clears every bit after the first prefixLen. */
export function maskBits(addr: Uint8Array, prefixLen: number): void {
  let i = prefixLen >>> 3;
  const rest = prefixLen & 7;
  if (rest !== 0) addr[i++] &= (0xff00 >>> rest) & 0xff;
  for (; i < addr.length; i++) addr[i] = 0;
}

/**
 * "a.b.c.d:port" or "[v6]:port" as netip.ParseAddrPort reads it (brackets for IPv6 only, port
 * 0–65535 in decimal). A zone ("[fe80::1%eth0]:51820") is refused: the device's endpoints carry
 * none, and silently dropping it would send to the wrong link.
 */
export function parseEndpoint(text: string): UapiEndpoint | null {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return null;
  const port = parseUint(text.slice(colon + 1), 0xffff);
  if (port < 0) return null;
  if (text.charCodeAt(0) === 0x5b /* [ */) {
    if (colon < 2 || text.charCodeAt(colon - 1) !== 0x5d /* ] */) return null;
    if (text.indexOf('%') >= 0) return null;
    const addr = new Uint8Array(16);
    if (!parseAddress(text.slice(1, colon - 1), addr, 0)) return null;
    return { family: 6, addr, port };
  }
  const addr = new Uint8Array(4);
  if (!parseIpv4(text, 0, colon, addr, 0)) return null;
  return { family: 4, addr, port };
}

/** "10.0.0.0/8", "fd00::/8": inet_ntop and netip.Prefix.String agree on these. */
export function formatCidr(c: Cidr): string {
  const a = c.addr;
  if (c.family === 4) return `${a[0]}.${a[1]}.${a[2]}.${a[3]}/${c.prefixLen}`;
  return `${formatAddress(a, 0)}/${c.prefixLen}`;
}

/** "1.2.3.4:51820" or "[fd00::1]:51820". */
export function formatEndpoint(e: UapiEndpoint): string {
  const a = e.addr;
  if (e.family === 4) return `${a[0]}.${a[1]}.${a[2]}.${a[3]}:${e.port}`;
  return `[${formatAddress(a, 0)}]:${e.port}`;
}

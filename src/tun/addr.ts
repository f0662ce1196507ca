/**
 * IP address text ⇄ the 16-byte form used in UDP meta records (IPv4 as ::ffff:a.b.c.d).
 * For setup, tests and logs — not the packet path, which keeps addresses as bytes. IPv6 text
 * is src/ipv6's parser and RFC 5952 formatter.
 */
import { isIPv4 } from 'node:net';
import { formatAddress, parseAddress } from '../ipv6/index.ts';

/**
 * Writes `text` ("192.0.2.1", "fd00::1", "::ffff:192.0.2.1") as 16 bytes at out[off] and
 * returns its family: 4 for IPv4 and v4-mapped IPv6, else 6. Throws TypeError otherwise.
 */
export function ipToBytes(text: string, out: Uint8Array = new Uint8Array(16), off = 0): 4 | 6 {
  if (isIPv4(text)) {
    out.fill(0, off, off + 10);
    out[off + 10] = 0xff;
    out[off + 11] = 0xff;
    const parts = text.split('.');
    for (let i = 0; i < 4; i++) out[off + 12 + i] = Number(parts[i]);
    return 4;
  }
  if (!parseAddress(text, out, off)) throw new TypeError(`not an IP address: ${text}`);
  return isV4Mapped(out, off) ? 4 : 6;
}

/** True if the 16 bytes at buf[off] are ::ffff:a.b.c.d. */
export function isV4Mapped(buf: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (buf[off + i] !== 0) return false;
  return buf[off + 10] === 0xff && buf[off + 11] === 0xff;
}

/** The 16 bytes at buf[off] as text: dotted quad for v4-mapped, else RFC 5952 IPv6. */
export function bytesToIp(buf: Uint8Array, off = 0): string {
  if (isV4Mapped(buf, off)) return `${buf[off + 12]}.${buf[off + 13]}.${buf[off + 14]}.${buf[off + 15]}`;
  return formatAddress(buf, off);
}

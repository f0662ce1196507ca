/**
 * IP address text ⇄ the 16-byte form used in UDP meta records (IPv4 as ::ffff:a.b.c.d).
 * For setup, tests and logs — not the packet path, which keeps addresses as bytes.
 */
import { isIPv4, isIPv6 } from 'node:net';

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
  if (!isIPv6(text) || text.includes('%')) throw new TypeError(`not an IP address: ${text}`);
  let s = text;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    // embedded IPv4 in the last 32 bits
    const v4 = s.slice(lastColon + 1).split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const gap = s.indexOf('::');
  const head = gap === -1 ? s.split(':') : s.slice(0, gap).split(':').filter((w) => w !== '');
  const tail = gap === -1 ? [] : s.slice(gap + 2).split(':').filter((w) => w !== '');
  const words = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  for (let i = 0; i < 8; i++) {
    const w = parseInt(words[i], 16);
    out[off + 2 * i] = w >> 8;
    out[off + 2 * i + 1] = w & 0xff;
  }
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
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((buf[off + 2 * i] << 8) | buf[off + 2 * i + 1]);
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero words, the first one on a tie
  let best = -1;
  let bestLen = 1;
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
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (best === -1) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

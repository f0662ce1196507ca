/**
 * Private IPv6 text helpers for the DNS server (TXT values of `_instances.internal`, resolver
 * addresses in resolv.conf). The shared IPv6 codecs live in src/ipv6; this is only the text
 * form, kept here so src/dns has no dependency on a module that is being written concurrently.
 */

/** RFC 5952 §4: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`
 * (the first one on a tie), a single zero group never shortened. */
export function formatIp6(addr: Uint8Array, off = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((addr[off + 2 * i] << 8) | addr[off + 2 * i + 1]);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart < 0) return groups.map((g) => g.toString(16)).join(':');
  const head = groups.slice(0, bestStart).map((g) => g.toString(16)).join(':');
  const tail = groups.slice(bestStart + bestLen).map((g) => g.toString(16)).join(':');
  return `${head}::${tail}`;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Parses RFC 4291 §2.2 text forms 1 and 2 (no embedded IPv4, no zone). Undefined if invalid. */
export function parseIp6(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0].split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = halves.length === 1 ? head : [...head, ...new Array<string>(missing).fill('0'), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!HEX_GROUP.test(all[i])) return undefined;
    const g = parseInt(all[i], 16);
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  }
  return out;
}

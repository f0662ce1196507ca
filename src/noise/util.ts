// Small byte helpers shared by the protocol code. Comparisons of secrets are constant-time.

/** Overwrites a secret with zeros. */
export function wipe(b: Uint8Array | null | undefined): void {
  if (b) b.fill(0);
}

/** Constant-time equality of a[aOff..aOff+n] and b[bOff..bOff+n]. */
export function equalConstantTime(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, n: number): boolean {
  let diff = 0;
  for (let i = 0; i < n; i++) diff |= a[aOff + i] ^ b[bOff + i];
  return diff === 0;
}

/** Constant-time test that b[off..off+n] is all zero. */
export function isZero(b: Uint8Array, off: number, n: number): boolean {
  let acc = 0;
  for (let i = 0; i < n; i++) acc |= b[off + i];
  return acc === 0;
}

export { readU32LE, writeU32LE } from '../bytes.ts';

/** Writes the 4-byte message header: type, then three zero bytes. */
export function writeHeader(b: Uint8Array, off: number, type: number): void {
  b[off] = type;
  b[off + 1] = 0;
  b[off + 2] = 0;
  b[off + 3] = 0;
}

/** Reads a message type; -1 when the three reserved bytes are not zero. */
export function readType(b: Uint8Array, off: number, len: number): number {
  if (len < 4) return -1;
  if (b[off + 1] !== 0 || b[off + 2] !== 0 || b[off + 3] !== 0) return -1;
  return b[off];
}

const HEX = '0123456789abcdef';
export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}

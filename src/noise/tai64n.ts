// TAI64N timestamps (whitepaper §5.4.2; http://cr.yp.to/libtai/tai64.html):
// 8 bytes big-endian seconds (2^62 + 10 + Unix seconds), then 4 bytes big-endian nanoseconds.
import { TAI64N_WHITENER_MASK, TIMESTAMP_SIZE } from './constants.ts';

const TAI64_BASE_HI = 0x40000000; // 2^62 as the high 32 bits of the 64-bit label
const TAI64_OFFSET_S = 10; // TAI - UTC at the 1970 epoch as TAI64 counts it

/** Writes the TAI64N of `unixMs` (wall clock) at out[off..off+12], nanoseconds whitened. */
export function writeTai64n(unixMs: number, out: Uint8Array, off: number): void {
  const seconds = Math.floor(unixMs / 1000) + TAI64_OFFSET_S;
  const nanos = (((unixMs - Math.floor(unixMs / 1000) * 1000) * 1e6) & ~TAI64N_WHITENER_MASK) >>> 0;
  const hi = TAI64_BASE_HI + Math.floor(seconds / 2 ** 32);
  const lo = seconds >>> 0;
  const v = new DataView(out.buffer, out.byteOffset + off, TIMESTAMP_SIZE);
  v.setUint32(0, hi);
  v.setUint32(4, lo);
  v.setUint32(8, nanos);
}

/** Unix milliseconds of a TAI64N value (for logs and tests). */
export function readTai64nMs(b: Uint8Array, off: number): number {
  const v = new DataView(b.buffer, b.byteOffset + off, TIMESTAMP_SIZE);
  const seconds = (v.getUint32(0) - TAI64_BASE_HI) * 2 ** 32 + v.getUint32(4) - TAI64_OFFSET_S;
  return seconds * 1000 + Math.floor(v.getUint32(8) / 1e6);
}

/** True when timestamp a is strictly after b (big-endian byte order is time order). */
export function tai64nAfter(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < TIMESTAMP_SIZE; i++) {
    if (a[aOff + i] !== b[bOff + i]) return a[aOff + i] > b[bOff + i];
  }
  return false;
}

// The NAT's egress addresses (the host's, then apps' static ones), by id: the addresses in one
// array (16 bytes per id) and an open-addressing table to find an id from an address. Every
// outbound packet asks (hairpinning), so the table is keyed by the last 32 bits and kept at most
// half full: one probe or two.
import { addressEquals } from '../ipv6/index.ts';

export class EgressSet {
  /** 16 bytes per egress id. */
  readonly addr: Uint8Array;
  count = 0;
  private readonly slots: Int32Array; // egress ids by hash of the address; -1: empty

  constructor(max: number) {
    this.addr = new Uint8Array(16 * max);
    let slots = 4;
    while (slots < 2 * max) slots *= 2;
    this.slots = new Int32Array(slots).fill(-1); // at most half full: probes end
  }

  // Adds the address at addr[off] and returns its new id; the caller has checked it is not known.
  add(addr: Uint8Array, off: number): number {
    if (this.count * 16 >= this.addr.length) throw new RangeError('nat66: too many egress addresses');
    const id = this.count++;
    for (let i = 0; i < 16; i++) this.addr[16 * id + i] = addr[off + i];
    const mask = this.slots.length - 1;
    let i = hash(addr, off);
    while (this.slots[i & mask] >= 0) i++;
    this.slots[i & mask] = id;
    return id;
  }

  // The egress id of the address at buf[off], or -1.
  find(buf: Uint8Array, off: number): number {
    const mask = this.slots.length - 1;
    for (let i = hash(buf, off); ; i++) {
      const e = this.slots[i & mask];
      if (e < 0) return -1;
      if (addressEquals(buf, off, this.addr, 16 * e)) return e;
    }
  }

  byteLength(): number {
    return this.addr.byteLength + this.slots.byteLength;
  }
}

function hash(buf: Uint8Array, off: number): number {
  const k = buf[off + 12] | (buf[off + 13] << 8) | (buf[off + 14] << 16) | (buf[off + 15] << 24);
  return Math.imul(k, 0x9e3779b1) >>> 16;
}

// Inbound fragments (RFC 8200 §4.5). Only the first fragment carries the ports, so only it can
// find its session; the others carry just (source, destination, identification). When a first
// fragment is translated, this cache remembers, under (remote address, identification, egress),
// the internal address it went to; later fragments of that datagram get the same destination.
// They hold no checksum to fix: the transport checksum sits in the first fragment and was
// updated there for the whole datagram (RFC 1624 works on the sum, not on the bytes).
//
// Direct mapped, fixed size, no per-fragment allocation: a collision overwrites the older
// datagram, whose remaining fragments are then dropped. Fragments that arrive before their first
// fragment are dropped too (no reassembly, no queueing). Outbound fragments need no state: the
// source becomes the egress address whatever the ports (Nat66.outbound).

import { mix } from './table.ts';

export class FragmentCache {
  private readonly remote: Uint8Array;
  private readonly remote32: Int32Array;
  private readonly id: Uint32Array;
  private readonly egress: Int32Array; // egress + 1; 0: empty
  private readonly internal: Uint8Array;
  private readonly machine: Uint32Array;
  private readonly expire: Float64Array;
  private readonly seed: number;

  constructor(slots: number, seed: number) {
    let n = 1;
    while (n < slots) n *= 2;
    this.remote = new Uint8Array(16 * n);
    this.remote32 = new Int32Array(this.remote.buffer);
    this.id = new Uint32Array(n);
    this.egress = new Int32Array(n);
    this.internal = new Uint8Array(16 * n);
    this.machine = new Uint32Array(n);
    this.expire = new Float64Array(n);
    this.seed = seed;
  }

  byteLength(): number {
    return this.remote.byteLength + this.id.byteLength + this.egress.byteLength +
      this.internal.byteLength + this.machine.byteLength + this.expire.byteLength;
  }

  private slot(buf: Uint8Array, addrOff: number, fragId: number, egress: number): number {
    let h = mix(this.seed, fragId | 0);
    for (let i = 0; i < 16; i += 4) {
      h = mix(h, buf[addrOff + i] | (buf[addrOff + i + 1] << 8) | (buf[addrOff + i + 2] << 16) | (buf[addrOff + i + 3] << 24));
    }
    h = mix(h, egress);
    h ^= h >>> 15;
    return h & (this.id.length - 1);
  }

  // Remembers that the datagram (remote address at buf[remoteOff], fragId) to `egress` belongs
  // to the internal address at addr[addrOff] of `machine`, until expireMs.
  remember(
    buf: Uint8Array, remoteOff: number, fragId: number, egress: number,
    addr: Uint8Array, addrOff: number, machine: number, expireMs: number,
  ): void {
    const i = this.slot(buf, remoteOff, fragId, egress);
    for (let k = 0; k < 16; k++) {
      this.remote[16 * i + k] = buf[remoteOff + k];
      this.internal[16 * i + k] = addr[addrOff + k];
    }
    this.id[i] = fragId >>> 0;
    this.egress[i] = egress + 1;
    this.machine[i] = machine;
    this.expire[i] = expireMs;
  }

  // The slot remembered for this datagram, or -1.
  find(buf: Uint8Array, remoteOff: number, fragId: number, egress: number, nowMs: number): number {
    const i = this.slot(buf, remoteOff, fragId, egress);
    if (this.egress[i] !== egress + 1 || this.id[i] !== fragId >>> 0 || this.expire[i] <= nowMs) return -1;
    const r = this.remote32;
    for (let k = 0; k < 4; k++) {
      const o = remoteOff + 4 * k;
      const w = buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16) | (buf[o + 3] << 24);
      if (r[4 * i + k] !== w) return -1;
    }
    return i;
  }

  // Writes the internal address of slot i at out[outOff].
  copyInternal(i: number, out: Uint8Array, outOff: number): void {
    for (let k = 0; k < 16; k++) out[outOff + k] = this.internal[16 * i + k];
  }

  machineOf(i: number): number {
    return this.machine[i];
  }

  // Forgets every datagram going to `machine` (it stopped).
  forgetMachine(machine: number): void {
    for (let i = 0; i < this.id.length; i++) if (this.machine[i] === machine) this.egress[i] = 0;
  }
}

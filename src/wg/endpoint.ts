// A peer's UDP endpoint, and the local address we last received from it on (so replies leave
// from the address the peer wrote to — "sticky sockets").
import { formatAddress, parseAddress } from '../ipv6/index.ts';

export class Endpoint {
  family: 4 | 6 = 6;
  /** 4 bytes for IPv4, 16 for IPv6 (in a 16-byte array; IPv4 uses the first 4). */
  readonly addr = new Uint8Array(16);
  port = 0;
  /** Our address the peer last wrote to (same family), or all zero: let routing choose. */
  readonly local = new Uint8Array(16);
  /** Interface that packet arrived on, or 0. */
  ifindex = 0;

  static parse(text: string): Endpoint {
    const ep = new Endpoint();
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
    if (m === null) throw new Error(`endpoint "${text}" is not ip:port or [ipv6]:port`);
    const port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`endpoint "${text}": bad port`);
    const host = m[1];
    const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
    if (v4 !== null) {
      const parts = v4.slice(1).map(Number);
      if (parts.some((p) => p > 255)) throw new Error(`endpoint "${text}": bad IPv4 address`);
      ep.family = 4;
      ep.addr.set(parts);
    } else {
      if (!parseAddress(host, ep.addr, 0)) throw new Error(`endpoint "${text}": bad IPv6 address`);
      ep.family = 6;
    }
    ep.port = port;
    return ep;
  }

  /** Sets this endpoint to family/address/port (the address has 4 or 16 significant bytes). */
  set(family: 4 | 6, addr: Uint8Array, addrOff: number, port: number): void {
    this.family = family;
    const n = family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) this.addr[i] = addr[addrOff + i];
    if (n === 4) this.addr.fill(0, 4);
    this.port = port;
  }

  copyFrom(o: Endpoint): void {
    this.family = o.family;
    this.addr.set(o.addr);
    this.port = o.port;
    this.local.set(o.local);
    this.ifindex = o.ifindex;
  }

  /** Same remote address and port (the local side is not compared). */
  sameRemote(o: Endpoint): boolean {
    if (this.family !== o.family || this.port !== o.port) return false;
    const n = this.family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) if (this.addr[i] !== o.addr[i]) return false;
    return true;
  }

  sameLocal(o: Endpoint): boolean {
    for (let i = 0; i < 16; i++) if (this.local[i] !== o.local[i]) return false;
    return this.ifindex === o.ifindex;
  }

  clearLocal(): void {
    this.local.fill(0);
    this.ifindex = 0;
  }

  /** IP ‖ port bytes: what a cookie is bound to. */
  sourceBytes(out: Uint8Array): Uint8Array {
    const n = this.family === 4 ? 4 : 16;
    out.set(this.addr.subarray(0, n));
    out[n] = this.port >> 8;
    out[n + 1] = this.port & 0xff;
    return out.subarray(0, n + 2);
  }

  toString(): string {
    if (this.family === 4) return `${this.addr[0]}.${this.addr[1]}.${this.addr[2]}.${this.addr[3]}:${this.port}`;
    return `[${formatAddress(this.addr, 0)}]:${this.port}`;
  }
}

// A WireGuard device on real UDP sockets (IPv6 and IPv4 on one port), driven by this thread's
// event loop: libuv says when a socket is readable (fdWatch), we drain it in batches with
// non-blocking recvmmsg, and datagrams the device emits are gathered into per-family batches
// sent with one sendmmsg at the end of each round (`flush`). Decrypted packets go to the
// owner's `onPacket` — a TUN for sixpn-wg, the 6PN router for the mesh.
import {
  UdpBatch, close as closeFd, fdUnwatch, fdWatch, isErrno, udpOpen, udpSetMark,
  UDP_META_ADDR, UDP_META_FAMILY, UDP_META_IFINDEX, UDP_META_LOCAL, UDP_META_PORT, UDP_RECORD_WORDS,
  type FdWatch,
} from '../tun/index.ts';
import { Device, type DeviceOptions } from './device.ts';
import { Endpoint } from './endpoint.ts';
import type { Peer } from './peer.ts';
import { DeviceUapi } from './uapi-adapter.ts';

export const BATCH = 64;
export const SLOT = 65_536 + 64; // the largest IP packet, plus the transport header, padding and tag
const SOCKET_BUFFER = 4 << 20;

export interface Logger {
  error(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

interface Sock {
  family: 4 | 6;
  fd: number;
  watch: FdWatch | null;
}

export class WgPort {
  readonly device: Device;
  readonly uapi: DeviceUapi;
  private readonly log: Logger;
  private socks: Sock[] = [];
  private readonly udpIn = new UdpBatch(BATCH, SLOT);
  private readonly udpOut4 = new UdpBatch(BATCH, SLOT);
  private readonly udpOut6 = new UdpBatch(BATCH, SLOT);
  private udpOut4Count = 0;
  private udpOut6Count = 0;
  private readonly from = new Endpoint();
  /** Called after each round of received datagrams, so the owner can flush its own output. */
  afterRound: () => void = () => {};
  closed = false;

  constructor(log: Logger, onPacket: (buf: Uint8Array, off: number, len: number, peer: Peer) => void, opts: DeviceOptions = {}) {
    this.log = log;
    this.device = new Device({ sendUdp: (buf, off, len, to) => this.queueUdp(buf, off, len, to), writeTun: onPacket }, opts);
    this.uapi = new DeviceUapi(this.device, {
      bindPort: (port) => this.bind(port),
      setFwmark: (mark) => {
        for (const s of this.socks) udpSetMark(s.fd, mark);
      },
    });
  }

  /**
   * (Re)binds the listen port on IPv6 and IPv4 (0 = pick a free port usable on both). New
   * sockets are opened before the old ones close, so a failure leaves the old ones in place.
   */
  bind(port: number): number {
    for (let attempt = 0; ; attempt++) {
      const opened: Sock[] = [];
      try {
        let bound = port;
        try {
          const s = udpOpen(6, '::', port, { v6only: true, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER });
          opened.push({ family: 6, fd: s.fd, watch: null });
          bound = s.port;
        } catch (err) {
          if (!isErrno(err, 'EAFNOSUPPORT')) throw err; // IPv6 disabled: IPv4 only
        }
        const v4 = udpOpen(4, '0.0.0.0', bound, { rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER });
        opened.push({ family: 4, fd: v4.fd, watch: null });
        bound = v4.port;
        for (const s of opened) {
          if (this.device.fwmark !== 0) udpSetMark(s.fd, this.device.fwmark);
          s.watch = fdWatch(s.fd, () => this.onReadable(s));
        }
        for (const s of this.socks) this.closeSock(s);
        this.socks = opened;
        this.device.listenPort = bound;
        this.log.debug(`listening on UDP port ${bound}`);
        return bound;
      } catch (err) {
        for (const s of opened) this.closeSock(s);
        // port 0: the port the kernel gave on IPv6 may be taken on IPv4; try another
        if (port === 0 && isErrno(err, 'EADDRINUSE') && attempt < 8) continue;
        throw err;
      }
    }
  }

  private closeSock(s: Sock): void {
    if (s.watch) fdUnwatch(s.watch);
    closeFd(s.fd);
  }

  private onReadable(s: Sock): void {
    if (this.closed) return;
    const b = this.udpIn;
    const from = this.from;
    const meta = b.meta;
    const mb = b.metaBytes;
    for (let round = 0; round < 4; round++) {
      const n = b.recv(s.fd, 0);
      for (let i = 0; i < n; i++) {
        if (b.error(i) !== 0) continue; // cut short: not a datagram we can use
        const r = i * UDP_RECORD_WORDS;
        const a = (r + UDP_META_ADDR) * 4;
        const l = (r + UDP_META_LOCAL) * 4;
        if (meta[r + UDP_META_FAMILY] === 4) {
          // IPv4 arrives as ::ffff:a.b.c.d
          from.set(4, mb, a + 12, meta[r + UDP_META_PORT]);
          from.local.fill(0);
          for (let k = 0; k < 4; k++) from.local[k] = mb[l + 12 + k];
        } else {
          from.set(6, mb, a, meta[r + UDP_META_PORT]);
          for (let k = 0; k < 16; k++) from.local[k] = mb[l + k];
        }
        from.ifindex = meta[r + UDP_META_IFINDEX];
        this.device.receiveDatagram(b.slab, b.offset(i), b.length(i), from);
      }
      if (n < b.size) break;
    }
    this.afterRound();
    this.flush();
  }

  private queueUdp(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    const v4 = to.family === 4;
    const b = v4 ? this.udpOut4 : this.udpOut6;
    if ((v4 ? this.udpOut4Count : this.udpOut6Count) === b.size) this.flushFamily(v4 ? 4 : 6);
    const i = v4 ? this.udpOut4Count++ : this.udpOut6Count++;
    b.slab.set(buf.subarray(off, off + len), b.offset(i));
    b.setLength(i, len);
    const r = i * UDP_RECORD_WORDS;
    const meta = b.meta;
    const mb = b.metaBytes;
    meta[r + UDP_META_FAMILY] = to.family;
    meta[r + UDP_META_PORT] = to.port;
    meta[r + UDP_META_IFINDEX] = to.ifindex;
    const a = (r + UDP_META_ADDR) * 4;
    const l = (r + UDP_META_LOCAL) * 4;
    if (v4) {
      mappedV4(mb, a, to.addr);
      if (to.local[0] | to.local[1] | to.local[2] | to.local[3]) mappedV4(mb, l, to.local);
      else mb.fill(0, l, l + 16);
    } else {
      for (let k = 0; k < 16; k++) mb[a + k] = to.addr[k];
      for (let k = 0; k < 16; k++) mb[l + k] = to.local[k];
    }
  }

  /** Sends every queued datagram. */
  flush(): void {
    this.flushFamily(4);
    this.flushFamily(6);
  }

  private flushFamily(family: 4 | 6): void {
    const count = family === 4 ? this.udpOut4Count : this.udpOut6Count;
    if (count === 0) return;
    if (family === 4) this.udpOut4Count = 0;
    else this.udpOut6Count = 0;
    const s = this.socks.find((x) => x.family === family);
    if (s === undefined) return;
    const b = family === 4 ? this.udpOut4 : this.udpOut6;
    const sent = b.send(s.fd, count, 100);
    for (let i = 0; i < sent; i++) if (b.error(i) !== 0) this.log.debug(`udp send: errno ${b.error(i)}`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.socks) this.closeSock(s);
    this.socks = [];
    for (const p of [...this.device.peers.values()]) this.device.removePeer(p);
    this.device.setPrivateKey(null);
  }
}

function mappedV4(mb: Uint8Array, off: number, addr: Uint8Array): void {
  mb.fill(0, off, off + 10);
  mb[off + 10] = 0xff;
  mb[off + 11] = 0xff;
  for (let k = 0; k < 4; k++) mb[off + 12 + k] = addr[k];
}

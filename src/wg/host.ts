// The device on a real TUN queue and real UDP sockets (src/tun), driven by this thread's event
// loop: libuv tells us when the TUN or a socket is readable (fdWatch), we drain it in batches
// with non-blocking calls, and what the device emits is gathered into batches that go out in
// one tunWrite/udpSend at the end of each round. Timers run on a 100 ms tick.
//
// The TUN fd stays with this process, so the interface may be moved to another network
// namespace. The host stops when the interface is deleted (reads fail), on close(), or when
// the owner (the CLI) says so.
import { readFile } from 'node:fs/promises';
import {
  TunBatch, UdpBatch, close as closeFd, fdUnwatch, fdWatch, isErrno, linkSetMtu, tunOpen, udpOpen, udpSetMark,
  UDP_META_ADDR, UDP_META_FAMILY, UDP_META_IFINDEX, UDP_META_LOCAL, UDP_META_PORT, UDP_RECORD_WORDS,
  type FdWatch,
} from '../tun/index.ts';
import { Device, type DeviceOptions, type DeviceIO } from './device.ts';
import { Endpoint } from './endpoint.ts';
import { DeviceUapi } from './uapi-adapter.ts';

export const DEFAULT_MTU = 1420;
const BATCH = 64;
const SLOT = 65_536 + 64; // the largest IP packet, plus the transport header, padding and tag
const HEADROOM = 16;
const TICK_MS = 100;

export interface Logger {
  error(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

interface Sock {
  family: 4 | 6;
  fd: number;
  watch: FdWatch;
}

export class WgHost {
  readonly name: string;
  readonly device: Device;
  readonly uapi: DeviceUapi;
  private readonly log: Logger;
  private tunFd: number;
  private tunWatch: FdWatch | null;
  private socks: Sock[] = [];
  private readonly tunIn = new TunBatch(BATCH, SLOT, { headroom: HEADROOM });
  private readonly tunOut = new TunBatch(BATCH, SLOT);
  private tunOutCount = 0;
  private readonly udpIn = new UdpBatch(BATCH, SLOT);
  private readonly udpOut4 = new UdpBatch(BATCH, SLOT);
  private readonly udpOut6 = new UdpBatch(BATCH, SLOT);
  private udpOut4Count = 0;
  private udpOut6Count = 0;
  private readonly from = new Endpoint();
  private readonly ticker: NodeJS.Timeout;
  private mtuCheck = 0;
  private closed = false;
  private readonly onStop: (reason: string) => void;

  private constructor(name: string, tunFd: number, log: Logger, onStop: (reason: string) => void, opts: DeviceOptions) {
    this.name = name;
    this.log = log;
    this.onStop = onStop;
    this.tunFd = tunFd;
    const io: DeviceIO = {
      sendUdp: (buf, off, len, to) => this.queueUdp(buf, off, len, to),
      writeTun: (buf, off, len) => this.queueTun(buf, off, len),
    };
    this.device = new Device(io, opts);
    this.uapi = new DeviceUapi(this.device, {
      bindPort: (port) => this.bind(port),
      setFwmark: (mark) => {
        for (const s of this.socks) udpSetMark(s.fd, mark);
      },
    });
    this.tunWatch = fdWatch(tunFd, () => this.onTunReadable());
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  /**
   * Creates the TUN `name` (MTU 1420 unless given) and the device, with no key and no socket
   * yet (as wireguard-go: `wg` configures it). `onStop` is called once if the host stops by
   * itself (interface deleted).
   */
  static async create(name: string, log: Logger, onStop: (reason: string) => void, opts: DeviceOptions = {}): Promise<WgHost> {
    const tun = tunOpen(name);
    try {
      await linkSetMtu(tun.name, opts.mtu ?? DEFAULT_MTU);
    } catch (err) {
      closeFd(tun.fd);
      throw err;
    }
    const host = new WgHost(tun.name, tun.fd, log, onStop, { ...opts, mtu: opts.mtu ?? DEFAULT_MTU });
    host.bind(0);
    return host;
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
        let v6: number | null = null;
        try {
          const s = udpOpen(6, '::', port, { v6only: true, rcvbuf: 4 << 20, sndbuf: 4 << 20 });
          v6 = s.fd;
          bound = s.port;
        } catch (err) {
          if (!isErrno(err, 'EAFNOSUPPORT')) throw err; // IPv6 disabled: IPv4 only
        }
        const v4 = udpOpen(4, '0.0.0.0', bound, { rcvbuf: 4 << 20, sndbuf: 4 << 20 });
        bound = v4.port;
        if (v6 !== null) opened.push({ family: 6, fd: v6, watch: null as unknown as FdWatch });
        opened.push({ family: 4, fd: v4.fd, watch: null as unknown as FdWatch });
        for (const s of opened) {
          if (this.device.fwmark !== 0) udpSetMark(s.fd, this.device.fwmark);
          s.watch = fdWatch(s.fd, () => this.onUdpReadable(s));
        }
        for (const s of this.socks) this.closeSock(s);
        this.socks = opened;
        this.device.listenPort = bound;
        this.log.debug(`listening on UDP port ${bound}`);
        return bound;
      } catch (err) {
        for (const s of opened) {
          if (s.watch) fdUnwatch(s.watch);
          closeFd(s.fd);
        }
        // port 0: the v6 port we got may be taken on v4; try another
        if (port === 0 && isErrno(err, 'EADDRINUSE') && attempt < 8) continue;
        throw err;
      }
    }
  }

  private closeSock(s: Sock): void {
    fdUnwatch(s.watch);
    closeFd(s.fd);
  }

  // ---- outbound: TUN → device → UDP ----

  private onTunReadable(): void {
    if (this.closed) return;
    const b = this.tunIn;
    for (let round = 0; round < 4; round++) {
      let n: number;
      try {
        n = b.read(this.tunFd, 0);
      } catch (err) {
        return this.stop(`TUN ${this.name}: ${(err as Error).message} (interface deleted?)`);
      }
      for (let i = 0; i < n; i++) {
        if (b.error(i) !== 0) continue;
        this.device.sendPacket(b.slab, b.offset(i), b.length(i));
      }
      if (n < b.size) break;
    }
    this.flush();
  }

  // ---- inbound: UDP → device → TUN ----

  private onUdpReadable(s: Sock): void {
    if (this.closed) return;
    const b = this.udpIn;
    const from = this.from;
    const meta = b.meta;
    const mb = b.metaBytes;
    for (let round = 0; round < 4; round++) {
      const n = b.recv(s.fd, 0);
      for (let i = 0; i < n; i++) {
        if (b.error(i) !== 0) continue; // truncated
        const r = i * UDP_RECORD_WORDS;
        const family = meta[r + UDP_META_FAMILY] === 4 ? 4 : 6;
        const a = (r + UDP_META_ADDR) * 4;
        const l = (r + UDP_META_LOCAL) * 4;
        if (family === 4) {
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
    this.flush();
  }

  // ---- output batches ----

  private queueTun(buf: Uint8Array, off: number, len: number): void {
    const b = this.tunOut;
    if (this.tunOutCount === b.size) this.flushTun();
    const i = this.tunOutCount++;
    b.slab.set(buf.subarray(off, off + len), b.offset(i));
    b.setLength(i, len);
  }

  private queueUdp(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    const v4 = to.family === 4;
    const b = v4 ? this.udpOut4 : this.udpOut6;
    if ((v4 ? this.udpOut4Count : this.udpOut6Count) === b.size) this.flushUdp(v4 ? 4 : 6);
    const i = v4 ? this.udpOut4Count++ : this.udpOut6Count++;
    b.slab.set(buf.subarray(off, off + len), b.offset(i));
    b.setLength(i, len);
    const r = i * UDP_RECORD_WORDS;
    const meta = b.meta;
    const mb = b.metaBytes;
    meta[r + UDP_META_FAMILY] = to.family;
    meta[r + UDP_META_PORT] = to.port;
    const a = (r + UDP_META_ADDR) * 4;
    const l = (r + UDP_META_LOCAL) * 4;
    if (v4) {
      mb.fill(0, a, a + 10);
      mb[a + 10] = 0xff;
      mb[a + 11] = 0xff;
      for (let k = 0; k < 4; k++) mb[a + 12 + k] = to.addr[k];
      const anyLocal = to.local[0] === 0 && to.local[1] === 0 && to.local[2] === 0 && to.local[3] === 0;
      mb.fill(0, l, l + 16);
      if (!anyLocal) {
        mb[l + 10] = 0xff;
        mb[l + 11] = 0xff;
        for (let k = 0; k < 4; k++) mb[l + 12 + k] = to.local[k];
      }
    } else {
      for (let k = 0; k < 16; k++) mb[a + k] = to.addr[k];
      for (let k = 0; k < 16; k++) mb[l + k] = to.local[k];
    }
    meta[r + UDP_META_IFINDEX] = to.ifindex;
  }

  private flush(): void {
    this.flushTun();
    this.flushUdp(4);
    this.flushUdp(6);
  }

  private flushTun(): void {
    if (this.tunOutCount === 0) return;
    try {
      this.tunOut.write(this.tunFd, this.tunOutCount, 100);
    } catch (err) {
      this.stop(`TUN ${this.name}: ${(err as Error).message}`);
    }
    this.tunOutCount = 0;
  }

  private flushUdp(family: 4 | 6): void {
    const count = family === 4 ? this.udpOut4Count : this.udpOut6Count;
    if (count === 0) return;
    const s = this.socks.find((x) => x.family === family);
    const b = family === 4 ? this.udpOut4 : this.udpOut6;
    if (s !== undefined) {
      const sent = b.send(s.fd, count, 100);
      // a source address we no longer own (EINVAL): forget it and let routing choose next time
      for (let i = 0; i < sent; i++) if (b.error(i) !== 0) this.log.debug(`udp send: errno ${b.error(i)}`);
    }
    if (family === 4) this.udpOut4Count = 0;
    else this.udpOut6Count = 0;
  }

  // ---- timers ----

  private tick(): void {
    if (this.closed) return;
    this.device.tick();
    this.flush();
    if (++this.mtuCheck % 10 === 0) void this.refreshMtu();
  }

  /** Follows MTU changes (wg-quick sets the MTU after we start), for padding. */
  private async refreshMtu(): Promise<void> {
    try {
      const mtu = Number((await readFile(`/sys/class/net/${this.name}/mtu`, 'utf8')).trim());
      if (mtu > 0) this.device.mtu = mtu;
    } catch {
      // moved to another namespace: keep the last known MTU
    }
  }

  private stop(reason: string): void {
    if (this.closed) return;
    this.log.info(reason);
    this.close();
    this.onStop(reason);
  }

  /** Stops everything and closes the TUN (which removes the interface) and the sockets. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    if (this.tunWatch) fdUnwatch(this.tunWatch);
    this.tunWatch = null;
    for (const s of this.socks) this.closeSock(s);
    this.socks = [];
    for (const p of this.device.peers.values()) this.device.removePeer(p);
    this.device.setPrivateKey(null);
    closeFd(this.tunFd);
    this.tunFd = -1;
  }
}

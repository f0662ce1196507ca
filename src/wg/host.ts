// sixpn-wg's device: a WgPort (UDP sockets + WireGuard device) in front of a TUN queue. TUN
// reads are drained in batches when libuv says the fd is readable; decrypted packets are
// gathered and written with one tunWrite per round. Timers run on a 100 ms tick.
//
// The TUN fd stays with this process, so the interface may be moved to another network
// namespace. The host stops when the interface is deleted (reads fail) or on close().
import { readFile } from 'node:fs/promises';
import { TunBatch, close as closeFd, fdUnwatch, fdWatch, linkSetMtu, tunOpen, type FdWatch } from '../tun/index.ts';
import type { DeviceOptions } from './device.ts';
import { BATCH, SLOT, WgPort, type Logger } from './port.ts';

export type { Logger } from './port.ts';
export const DEFAULT_MTU = 1420;
const HEADROOM = 16;
const TICK_MS = 100;

export class WgHost {
  readonly name: string;
  readonly port: WgPort;
  private readonly log: Logger;
  private tunFd: number;
  private tunWatch: FdWatch | null;
  private readonly tunIn = new TunBatch(BATCH, SLOT, { headroom: HEADROOM });
  private readonly tunOut = new TunBatch(BATCH, SLOT);
  private tunOutCount = 0;
  private readonly ticker: NodeJS.Timeout;
  private ticks = 0;
  private closed = false;
  private readonly onStop: (reason: string) => void;

  private constructor(name: string, tunFd: number, log: Logger, onStop: (reason: string) => void, opts: DeviceOptions) {
    this.name = name;
    this.log = log;
    this.onStop = onStop;
    this.tunFd = tunFd;
    this.port = new WgPort(log, (buf, off, len) => this.queueTun(buf, off, len), opts);
    this.port.afterRound = () => this.flushTun();
    this.tunWatch = fdWatch(tunFd, () => this.onTunReadable());
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  get device() {
    return this.port.device;
  }

  get uapi() {
    return this.port.uapi;
  }

  /**
   * Creates the TUN `name` (MTU 1420 unless given) and the device, with no key and a random
   * listen port (as wireguard-go: `wg` configures it). `onStop` is called once if the host
   * stops by itself (interface deleted).
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
    host.port.bind(0);
    return host;
  }

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
      for (let i = 0; i < n; i++) if (b.error(i) === 0) this.device.sendPacket(b.slab, b.offset(i), b.length(i));
      if (n < b.size) break;
    }
    this.port.flush();
  }

  private queueTun(buf: Uint8Array, off: number, len: number): void {
    const b = this.tunOut;
    if (this.tunOutCount === b.size) this.flushTun();
    const i = this.tunOutCount++;
    b.slab.set(buf.subarray(off, off + len), b.offset(i));
    b.setLength(i, len);
  }

  private flushTun(): void {
    if (this.tunOutCount === 0) return;
    const n = this.tunOutCount;
    this.tunOutCount = 0;
    try {
      this.tunOut.write(this.tunFd, n, 100);
    } catch (err) {
      this.stop(`TUN ${this.name}: ${(err as Error).message}`);
    }
  }

  private tick(): void {
    if (this.closed) return;
    this.device.tick();
    this.flushTun();
    this.port.flush();
    if (++this.ticks % 10 === 0) void this.refreshMtu();
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
    this.port.close();
    closeFd(this.tunFd);
    this.tunFd = -1;
  }
}

// sixpn-wg's device: a WgPort (UDP sockets + WireGuard device) in front of a TUN queue. TUN
// reads are drained in batches when libuv says the fd is readable; decrypted packets are
// gathered and written with one tunWrite per round. Timers run on a 100 ms tick.
//
// The TUN fd stays with this process, so the interface may be moved to another network
// namespace. The host stops when the interface is deleted (reads fail) or on close().
import { readFile } from 'node:fs/promises';
import {
  Coalescer, SEGMENT_INVALID, Segmenter, VNET_HDR_LEN, completeChecksum, vnetGsoType, VNET_GSO_NONE,
} from '../offload/index.ts';
import {
  TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_USO4, TUN_F_USO6, TunBatch, close as closeFd, fdUnwatch,
  fdWatch, linkSetMtu, tunOpen, tunSetOffload, type FdWatch,
} from '../tun/index.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../noise/index.ts';
import type { DeviceOptions } from './device.ts';
import { BATCH, SLOT, WgPort, flatCounters, type Logger, type PortOffloads } from './port.ts';

export type { Logger } from './port.ts';
export const DEFAULT_MTU = 1420;
const HEADROOM = MESSAGE_TRANSPORT_HEADER_SIZE;
const TICK_MS = 100;

/** Offloads of a sixpn-wg device (all on by default; SIXPN_OFFLOAD_* turn them off). */
export interface WgOffloads extends PortOffloads {
  /** IFF_VNET_HDR + TUNSETOFFLOAD on the TUN: 64 KB segments in and out */
  tun?: boolean;
}

/**
 * Offload switches, for a kernel that misbehaves: SIXPN_OFFLOAD=0 turns all off;
 * SIXPN_TUN_OFFLOAD=0 (TSO/USO/checksum on the TUN), SIXPN_UDP_GSO=0, SIXPN_UDP_GRO=0 one each.
 */
export function offloadsFromEnv(env: Readonly<Record<string, string | undefined>>): WgOffloads {
  const off = (name: string) => env.SIXPN_OFFLOAD === '0' || env[name] === '0';
  return { tun: !off('SIXPN_TUN_OFFLOAD'), gso: !off('SIXPN_UDP_GSO'), gro: !off('SIXPN_UDP_GRO') };
}

/** What the TUN side did not deliver, and its offload state. */
export interface TunCounters {
  /** TUN_F_* flags the kernel accepted (0: a plain TUN) */
  offloadFlags: number;
  /** packets read whose offload header could not be honoured (bad GSO or checksum fields) */
  rxBadOffload: number;
  /** super-packets read and cut into segments */
  rxSuperPackets: number;
  /** segments written coalesced into super-packets (beyond the first of each) */
  txCoalesced: number;
  /** packets not written: the TUN queue was full */
  txQueueFull: number;
  /** packets the kernel refused, by errno */
  txErrors: Record<string, number>;
}

/** The TUN_F_* offloads to ask for, best first; each is tried until the kernel accepts one. */
const TUN_OFFLOAD_CHOICES = [
  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6,
  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
  TUN_F_CSUM,
];

export class WgHost {
  readonly name: string;
  readonly port: WgPort;
  readonly tunCounters: TunCounters = {
    offloadFlags: 0, rxBadOffload: 0, rxSuperPackets: 0, txCoalesced: 0, txQueueFull: 0, txErrors: {},
  };
  private readonly log: Logger;
  private tunFd: number;
  private tunWatch: FdWatch | null;
  private readonly vnet: boolean;
  private readonly tunIn: TunBatch;
  private readonly tunOut = new TunBatch(BATCH, SLOT);
  private readonly coalescer: Coalescer;
  private readonly segmenter = new Segmenter();
  /** one segment at a time, sealed in place behind HEADROOM */
  private readonly scratch = new Uint8Array(SLOT);
  private readonly ticker: NodeJS.Timeout;
  private ticks = 0;
  private closed = false;
  private readonly onStop: (reason: string) => void;

  private constructor(
    name: string, tunFd: number, offloadFlags: number, log: Logger, onStop: (reason: string) => void,
    opts: DeviceOptions, offloads: WgOffloads,
  ) {
    this.name = name;
    this.log = log;
    this.onStop = onStop;
    this.tunFd = tunFd;
    this.vnet = offloadFlags !== 0;
    this.tunCounters.offloadFlags = offloadFlags;
    // with a virtio header the packet sits VNET_HDR_LEN in; HEADROOM in all before it
    this.tunIn = new TunBatch(BATCH, SLOT, { headroom: this.vnet ? HEADROOM - VNET_HDR_LEN : HEADROOM });
    this.coalescer = new Coalescer(this.tunOut, this.vnet);
    this.port = new WgPort(log, (buf, off, len) => this.queueTun(buf, off, len), opts, offloads);
    this.port.afterRound = () => this.flushTun();
    this.port.extraStats = () => ({ offloads: this.offloads, ...flatCounters(this.tunCounters, 'tun') });
    this.tunWatch = fdWatch(tunFd, () => this.onTunReadable());
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  get device() {
    return this.port.device;
  }

  get uapi() {
    return this.port.uapi;
  }

  /** Offloads in use, for --stats and status: "tun tso4 tso6 uso udp-gso udp-gro", or "none". */
  get offloads(): string {
    const f = this.tunCounters.offloadFlags;
    const on: string[] = [];
    if (f & TUN_F_CSUM) on.push('tun-csum');
    if (f & TUN_F_TSO4) on.push('tso4');
    if (f & TUN_F_TSO6) on.push('tso6');
    if (f & TUN_F_USO4) on.push('uso4');
    if (f & TUN_F_USO6) on.push('uso6');
    const udp = this.port.offloadNames();
    if (udp !== '') on.push(udp);
    return on.length === 0 ? 'none' : on.join(' ');
  }

  /**
   * Creates the TUN `name` (MTU 1420 unless given) and the device, with no key and a random
   * listen port (as wireguard-go: `wg` configures it). `onStop` is called once if the host
   * stops by itself (interface deleted). Offloads are probed: what the kernel refuses is off.
   */
  static async create(
    name: string, log: Logger, onStop: (reason: string) => void, opts: DeviceOptions = {}, offloads: WgOffloads = {},
  ): Promise<WgHost> {
    const { fd, name: actual, flags } = openTun(name, offloads.tun !== false, log);
    try {
      await linkSetMtu(actual, opts.mtu ?? DEFAULT_MTU);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    const host = new WgHost(actual, fd, flags, log, onStop, { ...opts, mtu: opts.mtu ?? DEFAULT_MTU }, offloads);
    host.port.bind(0);
    return host;
  }

  private onTunReadable(): void {
    if (this.closed) return;
    const b = this.tunIn;
    const device = this.device;
    for (let round = 0; round < 4; round++) {
      let n: number;
      try {
        n = b.read(this.tunFd, 0);
      } catch (err) {
        return this.stop(`TUN ${this.name}: ${(err as Error).message} (interface deleted?)`);
      }
      for (let i = 0; i < n; i++) {
        if (b.error(i) !== 0) continue;
        if (!this.vnet) {
          device.sendPacket(b.slab, b.offset(i), b.length(i));
          continue;
        }
        const h = b.offset(i);
        const off = h + VNET_HDR_LEN;
        const len = b.length(i) - VNET_HDR_LEN;
        if (len <= 0) continue;
        if (vnetGsoType(b.slab, h) === VNET_GSO_NONE) {
          if (completeChecksum(b.slab, h, off, len)) device.sendPacket(b.slab, off, len);
          else this.tunCounters.rxBadOffload++;
          continue;
        }
        this.sendSegments(b.slab, h, off, len);
      }
      if (n < b.size) break;
    }
    this.port.flush();
  }

  /** Cuts a super-packet read from the TUN and sends each segment. */
  private sendSegments(buf: Uint8Array, h: number, off: number, len: number): void {
    const seg = this.segmenter;
    const count = seg.begin(buf, h, off, len);
    if (count === SEGMENT_INVALID || seg.maxLength + HEADROOM + 32 > this.scratch.length) {
      this.tunCounters.rxBadOffload++;
      return;
    }
    this.tunCounters.rxSuperPackets++;
    const scratch = this.scratch;
    for (let k = 0; k < count; k++) {
      const n = seg.write(k, scratch, HEADROOM);
      if (n > 0) this.device.sendPacket(scratch, HEADROOM, n);
    }
  }

  private queueTun(buf: Uint8Array, off: number, len: number): void {
    const c = this.coalescer;
    if (c.add(buf, off, len)) return;
    if (c.full) {
      this.flushTun();
      if (c.add(buf, off, len)) return;
    }
    this.tunCounters.txErrors.EMSGSIZE = (this.tunCounters.txErrors.EMSGSIZE ?? 0) + 1;
  }

  private flushTun(): void {
    const c = this.coalescer;
    if (c.count === 0) return;
    const n = c.finish();
    this.tunCounters.txCoalesced += c.merged;
    c.merged = 0;
    let written = 0;
    try {
      written = this.tunOut.write(this.tunFd, n, 0);
    } catch (err) {
      c.reset();
      this.stop(`TUN ${this.name}: ${(err as Error).message}`);
      return;
    }
    c.reset();
    this.tunCounters.txQueueFull += n - written;
    for (let i = 0; i < written; i++) {
      const e = this.tunOut.error(i);
      if (e !== 0) this.tunCounters.txErrors[`errno ${e}`] = (this.tunCounters.txErrors[`errno ${e}`] ?? 0) + 1;
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

/** Opens the TUN, with the best offloads the kernel accepts when `offload` (flags 0: plain). */
function openTun(name: string, offload: boolean, log: Logger): { fd: number; name: string; flags: number } {
  if (offload) {
    let q: { fd: number; name: string } | null = null;
    try {
      q = tunOpen(name, { vnetHdr: true });
      for (const flags of TUN_OFFLOAD_CHOICES) {
        try {
          tunSetOffload(q.fd, flags);
          return { fd: q.fd, name: q.name, flags };
        } catch {
          // an older kernel: fewer offloads
        }
      }
      closeFd(q.fd);
    } catch (err) {
      if (q !== null) closeFd(q.fd);
      log.info(`TUN offloads refused (${(err as Error).message}): a plain TUN`);
    }
  }
  const q = tunOpen(name);
  return { fd: q.fd, name: q.name, flags: 0 };
}

// sixpn-wg's device: a DeviceSockets (UDP sockets + WireGuard device) in front of a TUN queue, whose
// I/O is a TunPump (src/tun/pump.ts): reads in batches when libuv says the fd is readable,
// super-packets cut once, decrypted packets coalesced and written once per round. Timers run on
// a 100 ms tick.
//
// The TUN fd stays with this process, so the interface may be moved to another network
// namespace. The host stops when the interface is deleted (reads fail) or on close().
import { readFile } from 'node:fs/promises';
import {
  TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_USO4, TUN_F_USO6, TunPump, close as closeFd, linkSetMtu,
  offloadFlagNames, tunOpen, tunSetOffload, type TunCounters,
} from './index.ts';
import { AeadPool, MESSAGE_TRANSPORT_HEADER_SIZE } from '../noise/index.ts';
import { DEFAULT_MTU, type DeviceOptions } from '../wg/device.ts';
import { BATCH, SLOT, DeviceSockets, flatCounters, type Logger, type PortOffloads } from './device-sockets.ts';

export { DEFAULT_MTU };
export type { Logger } from './device-sockets.ts';
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
  // SIXPN_BATCH=0: seal and open one packet per call (no batches in the wasm arena), to compare
  const batch = env.SIXPN_BATCH !== '0';
  return { tun: !off('SIXPN_TUN_OFFLOAD'), gso: !off('SIXPN_UDP_GSO'), gro: !off('SIXPN_UDP_GRO'), batchSeal: batch, batchOpen: batch };
}

/** The TUN_F_* offloads to ask for, best first; each is tried until the kernel accepts one. */
const TUN_OFFLOAD_CHOICES = [
  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6,
  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
  TUN_F_CSUM,
];

export class WgInterface {
  readonly name: string;
  readonly port: DeviceSockets;
  private readonly log: Logger;
  private tunFd: number;
  private readonly tun: TunPump;
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
    this.port = new DeviceSockets(log, (buf, off, len) => this.tun.write(buf, off, len), opts, offloads);
    this.tun = new TunPump(tunFd, {
      vnet: offloadFlags !== 0,
      cut: true,
      headroom: HEADROOM, // the transport header is sealed in front of each packet, in place
      readBatch: BATCH,
      readSlot: SLOT,
      writeBatch: BATCH,
      writeSlot: SLOT,
      onPacket: (buf, off, len) => this.port.device.sendPacket(buf, off, len),
      afterRead: () => this.port.flush(),
      onFail: (err) => this.stop(`TUN ${this.name}: ${err.message} (interface deleted?)`),
    });
    this.tun.counters.offloadFlags = offloadFlags;
    this.port.afterRound = () => this.tun.flush();
    this.port.extraStats = () => ({ offloads: this.offloads, aeadWorkers: AeadPool.current()?.size ?? 0, ...flatCounters(this.tunCounters, 'tun') });
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  get device() {
    return this.port.device;
  }

  get uapi() {
    return this.port.uapi;
  }

  /** What the TUN side did not deliver, and its offload state. */
  get tunCounters(): TunCounters {
    return this.tun.counters;
  }

  /** Offloads in use, for --stats and status: "tun-csum tso4 tso6 uso4 uso6 udp-gso udp-gro", or "none". */
  get offloads(): string {
    return [offloadFlagNames(this.tunCounters.offloadFlags), this.port.offloadNames()].filter(Boolean).join(' ') || 'none';
  }

  /**
   * Creates the TUN `name` (MTU 1420 unless given) and the device, with no key and a random
   * listen port (as wireguard-go: `wg` configures it). `onStop` is called once if the host
   * stops by itself (interface deleted). Offloads are probed: what the kernel refuses is off.
   */
  static async create(
    name: string, log: Logger, onStop: (reason: string) => void, opts: DeviceOptions = {}, offloads: WgOffloads = {},
  ): Promise<WgInterface> {
    const { fd, name: actual, flags } = openTun(name, offloads.tun !== false, log);
    try {
      await linkSetMtu(actual, opts.mtu ?? DEFAULT_MTU);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    const host = new WgInterface(actual, fd, flags, log, onStop, { ...opts, mtu: opts.mtu ?? DEFAULT_MTU }, offloads);
    host.port.bind(0);
    return host;
  }

  private tick(): void {
    if (this.closed) return;
    this.device.tick();
    this.tun.flush();
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
    this.tun.stop();
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

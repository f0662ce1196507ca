// Egress: SNAT66 on a real egress TUN — the I/O around the sans-IO Nat66 (issue 5, DESIGN.md
// "One host"). The router hands it a machine's packet for a global destination; the packet is
// translated to the host's egress address (or the machine's app's static one) and written to the
// egress TUN, and the host kernel forwards it to the uplink. Replies come back to the same TUN
// (the egress address is routed there, see ipv6-forwarding.ts), go through the reverse lookup, and are
// handed to the router for the machine — or dropped.
//
//   const egress = await Egress.open({
//     address: '2001:db8:e::11',                           // the host's egress address
//     deliver: (slot, buf, off, len) => …,                 // to machine `slot` (copy before returning)
//     afterRound: () => …,                                 // flush the machines' TUN writes
//   });
//   toEgress: (m, buf, off, len) => egress.send(slots.get(m.id), buf, off, len, egress.egressOf(m.app))
//
// The TUN is a TunPump (src/tun/pump.ts): its readiness, batches, virtio_net_hdr framing and the
// counts of what the kernel did not take (status: `tun`).
// Outbound, per packet: copy into a write slot of the pump (rawSlot), Nat66.outbound in place, then
//   FORWARD  queue it (commitRaw); the pump writes when full, on flush(), or at the end of the
//            current task (a microtask), so a router round becomes one native call;
//   HAIRPIN  deliver it at once to the machine that owns the mapping (never leaves the process);
//   REJECT   deliver ICMPv6 Destination Unreachable, administratively prohibited (rate-limited)
//            to the sender;
//   DROP     nothing (counted by Nat66's counters).
// Inbound: when the pump reads a batch, each packet goes through Nat66.inbound; DELIVER calls
// deliver(nat.machine, …); then afterRound() once.
// Expiry: one coarse interval tick (Nat66.tick with a work budget). No per-packet allocation:
// the batches, the ICMPv6 scratch buffer and the copy view are allocated once.
//
// Offloads (`vnetHdr: true`, for a router whose machine TUNs are vnet_hdr queues too): every
// packet, both ways, is framed by a 10-byte virtio_net_hdr, and the egress TUN takes and hands
// over 64 KB TCP segments (TSO/GSO), so one translation covers up to 45 wire packets. A segment
// with NEEDS_CSUM carries in its checksum field the pseudo-header sum, not yet complemented;
// the field is prepared around the translation (src/nat66/partial-checksum.ts).

import { addressBytes, formatAddress } from '../ipv6/index.ts';
import { MACHINE_MTU } from '../router/router.ts';
import {
  TUN_F_CSUM,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TunPump,
  VNET_HDR_LEN,
  close as closeFd,
  ip,
  tunOpen,
  tunSetOffload,
  type TunCounters,
} from '../tun/index.ts';
import {
  NAT66_DELIVER, NAT66_FORWARD, NAT66_HAIRPIN, NAT66_REJECT, Nat66, PartialChecksum, VIRTIO_NET_HDR_LEN, type Nat66Options,
} from '../nat66/index.ts';
import {
  addProxyNeighbour, defaultUplink, deleteProxyNeighbour, enableForwarding, isOnLink,
} from './ipv6-forwarding.ts';

// ---- Implementation constants ----

export const EGRESS_IFNAME = '6pnegress'; // the egress TUN's default name
export const EGRESS_BATCH = 64; // packets per TUN read / write call
export const EGRESS_TICK_MS = 1000; // expiry tick
export const EGRESS_TICK_BUDGET = 100_000; // sessions one tick may expire (the rest wait for the next)
export const EGRESS_READ_ROUNDS = 8; // batches read per readiness callback before yielding to the loop
export const EGRESS_REJECTS_PER_S = 100; // ICMPv6 "administratively prohibited" sent per second, at most (RFC 4443 §2.4 f)
const ICMP_ERROR_ROOM = 1280; // an ICMPv6 error never exceeds the minimum MTU (RFC 4443 §2.4 c)
const GSO_MAX = 65_536; // an IPv6 packet without jumbogram: 40 + 65,535 bytes at most

/** The offloads an offload-mode egress TUN takes (TUNSETOFFLOAD). */
export const EGRESS_OFFLOADS = TUN_F_CSUM | TUN_F_TSO6 | TUN_F_TSO_ECN;

/** Hands a packet to machine `slot`. buf[off, off + len) is valid only during the call. */
export type DeliverFn = (slot: number, buf: Uint8Array, off: number, len: number) => void;

export interface EgressOptions {
  /** The host's egress address (egress id 0): routed to the TUN, never owned by the kernel. */
  address: string;
  deliver: DeliverFn;
  /** Called once after each batch of inbound deliveries (flush the machines' writes). */
  afterRound?: () => void;
  /** TUN name (default 6pnegress). */
  ifname?: string;
  /** The host's network namespace, when it is not ours: the TUN is created here and moved in. */
  netns?: string;
  /** The interface toward the provider; default: the IPv6 default route's. */
  uplink?: string;
  /** Proxy NDP for the egress addresses on the uplink: 'auto' (default) when on-link. */
  proxyNdp?: boolean | 'auto';
  /** TUN MTU (default MACHINE_MTU: no packet of a machine is bigger). */
  mtu?: number;
  /** The translator's limits and timeouts (src/nat66/nat.ts). */
  nat?: Nat66Options;
  tickMs?: number;
  /** Clock in ms (default performance.now). */
  now?: () => number;
  batchSize?: number;
  /** Source of the ICMPv6 errors sent to machines (default: the egress address). */
  errorSource?: string;
  rejectsPerSecond?: number;
  /**
   * Offload mode: packets in send() and deliver() start with a virtio_net_hdr (VNET_HDR_LEN
   * bytes, counted in len), and the egress TUN passes 64 KB TCP segments (default false).
   */
  vnetHdr?: boolean;
  /** Set the sysctls (default true); false: the caller has done it. */
  configureKernel?: boolean;
  onError?: (err: Error) => void;
}

// The I/O side's packet counts; Nat66Counters say why the core dropped or rejected.
export class EgressCounters {
  fromMachines = 0; // packets handed to send()
  toTun = 0; // translated and written to the egress TUN
  tunWriteErrors = 0; // … refused by the kernel (per-packet errno)
  hairpinned = 0; // delivered back to a machine without leaving
  rejected = 0; // REJECT verdicts
  prohibitedSent = 0; // ICMPv6 administratively prohibited delivered to the sender
  prohibitedLimited = 0; // … not sent: rate limit or not answerable (an error, a multicast source)
  droppedOut = 0; // DROP verdicts, outbound
  oversize = 0; // larger than a batch slot: dropped
  fromTun = 0; // packets read from the egress TUN
  tunReadErrors = 0; // the TUN failed (its reads stop); per-record read errors: status tun.rxErrors
  delivered = 0; // translated inbound, handed to deliver()
  droppedIn = 0; // DROP verdicts, inbound (unsolicited, filtered, expired, invalid)
}

export interface EgressStatus {
  ifname: string;
  netns: string | null;
  uplink: string | null;
  /** Egress addresses by id (0: the host's). */
  addresses: string[];
  /** Addresses the kernel answers neighbour solicitations for on the uplink. */
  proxyNdp: string[];
  /** Sysctls changed at open, "key: old → new". */
  sysctls: string[];
  entries: number; // sessions (conntrack entries)
  mappings: number;
  capacity: number;
  tableBytes: number;
  io: EgressCounters;
  /** the TUN pump's counts: reads failed, records not written by reason */
  tun: TunCounters;
  nat: Record<string, number>;
}

export class Egress {
  readonly nat: Nat66;
  readonly ifname: string;
  readonly netns: string | undefined;
  readonly uplink: string | undefined;
  readonly fd: number;
  /** VNET_HDR_LEN in offload mode, else 0: bytes in front of every packet. */
  readonly hdr: number;
  readonly counters = new EgressCounters();
  private readonly deliver: DeliverFn;
  private readonly afterRound: (() => void) | undefined;
  private readonly now: () => number;
  private readonly onError: (err: Error) => void;
  private readonly proxyNdp: boolean | 'auto';
  private readonly proxied: string[] = [];
  private readonly addresses: string[] = [];
  private readonly apps = new Map<string, number>();
  private sysctls: string[] = [];
  private pump: TunPump | null = null; // from open() until close()
  private readonly slotSize: number;
  private readonly batchSize: number;
  private readonly partial = new PartialChecksum();
  private readonly icmp = new Uint8Array(VNET_HDR_LEN + ICMP_ERROR_ROOM); // (zeroed header +) error
  private readonly errorSource: Uint8Array;
  private readonly rejectsPerSecond: number;
  private rejectWindowMs = -Infinity;
  private rejectsLeft = 0;
  private srcBuf: Uint8Array | null = null; // the caller's last buffer, and a Buffer view of it for copy()
  private srcView: Buffer = Buffer.alloc(0);
  private nowMs = 0;
  private delivered = 0; // in the read callback being run
  private readNow = -1; // its clock (read once per callback)
  private ticker: NodeJS.Timeout | null = null;
  private readonly tickBudget: number;
  private closed = false;

  private constructor(opts: EgressOptions, fd: number, ifname: string, uplink: string | undefined) {
    this.nat = new Nat66(opts.nat);
    this.fd = fd;
    this.ifname = ifname;
    this.netns = opts.netns;
    this.uplink = uplink;
    this.deliver = opts.deliver;
    this.afterRound = opts.afterRound;
    this.now = opts.now ?? (() => performance.now());
    this.onError = opts.onError ?? (() => undefined);
    this.proxyNdp = opts.proxyNdp ?? 'auto';
    this.hdr = opts.vnetHdr === true ? VNET_HDR_LEN : 0;
    if (this.hdr !== 0 && VNET_HDR_LEN !== VIRTIO_NET_HDR_LEN) throw new Error(`egress: unexpected virtio_net_hdr size ${VNET_HDR_LEN}`);
    const mtu = opts.mtu ?? MACHINE_MTU;
    this.slotSize = this.hdr !== 0 ? GSO_MAX + 64 : Math.max(2048, (mtu + 64 + 63) & ~63);
    this.batchSize = opts.batchSize ?? EGRESS_BATCH;
    this.errorSource = addressBytes(opts.errorSource ?? opts.address);
    this.rejectsPerSecond = opts.rejectsPerSecond ?? EGRESS_REJECTS_PER_S;
    this.tickBudget = EGRESS_TICK_BUDGET;
  }

  /**
   * Creates the egress TUN in the host namespace, configures the kernel (ipv6-forwarding.ts), routes the
   * egress address to the TUN and starts reading it. Throws (and undoes what it did) on failure.
   */
  static async open(opts: EgressOptions): Promise<Egress> {
    const netns = opts.netns;
    const mtu = opts.mtu ?? MACHINE_MTU;
    const uplink = opts.uplink ?? (await defaultUplink(netns));
    const tun = tunOpen(opts.ifname ?? EGRESS_IFNAME, { vnetHdr: opts.vnetHdr === true });
    let e: Egress | null = null;
    try {
      if (opts.vnetHdr === true) tunSetOffload(tun.fd, EGRESS_OFFLOADS);
      if (netns !== undefined) await ip(['link', 'set', 'dev', tun.name, 'netns', netns]);
      // No link-local address: the kernel sends no RS/MLD into the TUN (ipv6-forwarding.ts, item 5).
      await ip(['link', 'set', 'dev', tun.name, 'addrgenmode', 'none'], { netns });
      await ip(['link', 'set', 'dev', tun.name, 'mtu', String(mtu), 'up'], { netns });
      e = new Egress(opts, tun.fd, tun.name, uplink);
      if (opts.configureKernel !== false) e.sysctls = await enableForwarding(tun.name, uplink, netns);
      await e.addAddress(opts.address);
    } catch (err) {
      if (e !== null) await e.close();
      else closeFd(tun.fd);
      throw err;
    }
    e.pump = new TunPump(e.fd, {
      vnet: e.hdr !== 0, cut: false, headroom: 0,
      readBatch: e.batchSize, readSlot: e.slotSize, writeBatch: e.batchSize, writeSlot: e.slotSize,
      readRounds: EGRESS_READ_ROUNDS, autoFlush: true,
      onPacket: (buf, off, len) => e.inbound(buf, off, len),
      afterRead: () => e.afterRead(),
      onFail: (err) => {
        e.counters.tunReadErrors++;
        e.onError(err);
      },
    });
    const tickMs = opts.tickMs ?? EGRESS_TICK_MS;
    e.ticker = setInterval(() => e.tick(), tickMs);
    e.ticker.unref();
    return e;
  }

  /**
   * Adds an egress address (the host's first, then per-app static ones): routed to the TUN,
   * proxied on the uplink when on-link. Returns its egress id for send(); the same address
   * gives the same id. Addresses stay until close().
   */
  async addAddress(address: string): Promise<number> {
    const bytes = addressBytes(address);
    const text = formatAddress(bytes, 0);
    const known = this.addresses.indexOf(text);
    if (known >= 0) return known;
    await ip(['-6', 'route', 'replace', `${text}/128`, 'dev', this.ifname], { netns: this.netns });
    const u = this.uplink;
    if (u !== undefined && (this.proxyNdp === true || (this.proxyNdp === 'auto' && (await isOnLink(bytes, u, this.netns))))) {
      await addProxyNeighbour(text, u, this.netns);
      this.proxied.push(text);
    }
    const id = this.nat.addEgress(bytes, 0);
    this.addresses[id] = text;
    return id;
  }

  /** Per-app static egress (seed 000 "egress IPs"): every machine of `app` leaves from `address`. */
  async setAppAddress(app: string, address: string): Promise<number> {
    const id = await this.addAddress(address);
    this.apps.set(app, id);
    return id;
  }

  /** Back to the host's address for new flows of `app` (its existing mappings run out). */
  clearAppAddress(app: string): void {
    this.apps.delete(app);
  }

  /** The egress id for a machine of `app`: its static address, else the host's (0). */
  egressOf(app: string): number {
    return this.apps.get(app) ?? 0;
  }

  /** Address text of an egress id. */
  address(id = 0): string {
    return this.addresses[id];
  }

  /**
   * A packet from machine `slot` to a global destination (the router's toEgress). The bytes are
   * copied; the caller's buffer is not changed. Always true while open (drops are counted).
   */
  send(slot: number, buf: Uint8Array, off: number, len: number, egress = 0): boolean {
    const pump = this.pump;
    if (this.closed || pump === null) return false;
    const c = this.counters;
    c.fromMachines++;
    if (len > this.slotSize) {
      c.oversize++;
      return true;
    }
    if (len < this.hdr) {
      c.droppedOut++;
      return true;
    }
    if (pump.queued === 0) this.nowMs = this.now();
    const at = pump.rawSlot(len); // writes the queue first when it is full
    if (at < 0) {
      c.oversize++;
      return true;
    }
    if (buf !== this.srcBuf) {
      this.srcBuf = buf;
      this.srcView = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const slab = pump.slab;
    const h = this.hdr;
    this.srcView.copy(slab, at, off, off + len);
    const partial = h !== 0 && this.partial.open(slab, at, len);
    const v = this.nat.outbound(slab, at + h, len - h, slot, egress, this.nowMs);
    if (partial) this.partial.close(slab);
    if (v === NAT66_FORWARD) {
      c.toTun++; // until the kernel refuses it (status subtracts the pump's refusals)
      pump.commitRaw(len);
    } else if (v === NAT66_HAIRPIN) {
      c.hairpinned++;
      this.deliver(this.nat.machine, slab, at, len);
    } else if (v === NAT66_REJECT) {
      c.rejected++;
      this.prohibited(slot, slab, at + h, len - h);
    } else {
      c.droppedOut++;
    }
    return true;
  }

  /** Writes the translated packets queued by send() (also done at the end of the task). */
  flush(): void {
    if (!this.closed) this.pump?.flush();
  }

  /** Drops every flow of a machine that stopped, moved or was removed; returns how many. */
  forgetMachine(slot: number): number {
    return this.nat.flushMachine(slot);
  }

  /** Expires entries (runs on an interval; callable for tests). */
  tick(): number {
    if (this.closed) return 0;
    return this.nat.tick(this.now(), this.tickBudget);
  }

  /** Live entries, `conntrack -L` style (for `sixpn conntrack`). */
  list(): string[] {
    return this.nat.list(this.now());
  }

  get size(): number {
    return this.nat.size;
  }

  status(): EgressStatus {
    const nat = this.nat;
    return {
      ifname: this.ifname,
      netns: this.netns ?? null,
      uplink: this.uplink ?? null,
      addresses: [...this.addresses],
      proxyNdp: [...this.proxied],
      sysctls: [...this.sysctls],
      entries: nat.size,
      mappings: nat.mappings,
      capacity: nat.capacity,
      tableBytes: nat.byteLength(),
      io: this.io(),
      tun: { ...(this.pump?.counters ?? ({} as TunCounters)), txErrors: { ...this.pump?.counters.txErrors } },
      nat: { ...nat.counters },
    };
  }

  /** The I/O counts, toTun net of what the TUN did not take (tunWriteErrors: the pump's refusals, any reason). */
  private io(): EgressCounters {
    const io = { ...this.counters };
    const t = this.pump?.counters;
    if (t !== undefined) {
      let refused = t.txQueueFull; // (txTooLong cannot happen: send() refuses what is longer than a slot first)
      for (const n of Object.values(t.txErrors)) refused += n;
      io.tunWriteErrors = refused;
      io.toTun -= refused;
    }
    return io;
  }

  /** Stops reading, removes the proxy entries, closes the TUN (its routes go with it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.pump?.stop();
    closeFd(this.fd);
    if (this.uplink !== undefined) for (const a of this.proxied) await deleteProxyNeighbour(a, this.uplink, this.netns);
  }

  // ---- inbound ----

  private inbound(buf: Uint8Array, off: number, len: number): void {
    if (this.closed) return;
    const c = this.counters;
    c.fromTun++;
    const h = this.hdr;
    if (len < h) {
      c.droppedIn++;
      return;
    }
    if (this.readNow < 0) this.readNow = this.now();
    const partial = h !== 0 && this.partial.open(buf, off, len);
    const v = this.nat.inbound(buf, off + h, len - h, this.readNow);
    if (partial) this.partial.close(buf);
    if (v === NAT66_DELIVER) {
      this.delivered++;
      this.deliver(this.nat.machine, buf, off, len);
    } else {
      c.droppedIn++;
    }
  }

  private afterRead(): void {
    const n = this.delivered;
    this.delivered = 0;
    this.readNow = -1;
    this.counters.delivered += n;
    if (n > 0 && !this.closed) this.afterRound?.();
  }

  // ---- errors to machines ----

  // REJECT: Destination Unreachable, administratively prohibited, to the sender, at most
  // rejectsPerSecond a second.
  private prohibited(slot: number, buf: Uint8Array, off: number, len: number): void {
    const c = this.counters;
    const now = this.nowMs;
    if (now - this.rejectWindowMs >= 1000) {
      this.rejectWindowMs = now;
      this.rejectsLeft = this.rejectsPerSecond;
    }
    if (this.rejectsLeft <= 0) {
      c.prohibitedLimited++;
      return;
    }
    const h = this.hdr; // offload mode: a zeroed virtio_net_hdr in front (no offload asked)
    const n = this.nat.buildProhibited(this.icmp, h, this.errorSource, 0, buf, off, len);
    if (n <= 0) {
      c.prohibitedLimited++;
      return;
    }
    this.rejectsLeft--;
    c.prohibitedSent++;
    this.deliver(slot, this.icmp, 0, h + n);
  }
}


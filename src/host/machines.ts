// The machines of this host as the host process holds them: one TUN each (its fd stays here,
// the interface lives in the machine's namespace, netns.ts), read in batches when libuv says it
// is readable, and a write queue each, flushed once per round (`flush`). A machine also has a
// slot, the small number SNAT66 knows it by (src/nat66). In offload mode ("offload", the
// default) the TUNs are vnet_hdr queues: every packet read or written starts with its
// virtio_net_hdr, and a slot holds a 64 KB segment with its header, the mesh headroom and the
// tag behind.
import type { Logger } from '../log.ts';
import { Coalescer } from '../offload/index.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../noise/constants.ts';
import type { Machine } from '../topology/index.ts';
import {
  TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TunBatch, VNET_HDR_LEN, close as closeFd, fdUnwatch, fdWatch,
  tunOpen, tunSetOffload, type FdWatch,
} from '../tun/index.ts';
import { configureMachineLink, ensureNamespace, machineIfname, writeNetnsFiles } from './netns.ts';

/** The offloads a machine TUN takes in offload mode (TUNSETOFFLOAD). */
export const MACHINE_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
/** A batch slot: a plain packet up to the machine MTU with headroom and tag, or (offload mode) a 64 KB segment. */
export const SLOT = 2048;
export const VNET_SLOT = 65_536 + 256;
const IN_BATCH = 64;
const OUT_BATCH = 32;
const VNET_OUT_BATCH = 16;
const READ_ROUNDS = 4; // batches read per readiness callback before yielding to the loop

export interface LocalMachine {
  machine: Machine;
  readonly slot: number; // its number for SNAT66 (src/nat66)
  readonly ns: string;
  readonly ifname: string;
  fd: number;
  watch: FdWatch | null;
  readonly out: TunBatch;
  /** the write queue: packets from elsewhere coalesced into super-packets (offload mode) */
  readonly queue: Coalescer;
  /** Lines about this machine carry its id, app and org. */
  readonly log: Logger;
}

export interface MachineTunsOptions {
  /** vnet_hdr TUNs with MACHINE_OFFLOADS. */
  readonly offload: boolean;
  readonly log: Logger;
  /**
   * A packet read from the machine's TUN: buf[off, off + len), with headroom in front (in
   * offload mode, buf[off] is its virtio_net_hdr and len counts it).
   */
  onPacket(lm: LocalMachine, buf: Uint8Array, off: number, len: number): void;
  /** After the packets of one readiness callback (flush what they caused). */
  afterRead(): void;
  /** The machine's TUN failed (its interface was deleted): it is closed; set it up again later. */
  onLost(lm: LocalMachine): void;
  /** The machine's TUN is being closed: its slot is free after this (drop its SNAT66 flows). */
  onClose(lm: LocalMachine): void;
}

export class MachineTuns {
  /** The machines set up, by id. */
  readonly byId = new Map<string, LocalMachine>();
  private readonly opts: MachineTunsOptions;
  private readonly slots: Array<LocalMachine | null> = []; // SNAT66 slot → machine
  private readonly pending = new Set<LocalMachine>(); // machines with packets waiting to be written
  private readonly tunIn: TunBatch;
  readonly counters = new MachineTunCounters();

  constructor(opts: MachineTunsOptions) {
    this.opts = opts;
    this.tunIn = new TunBatch(IN_BATCH, opts.offload ? VNET_SLOT : SLOT, { headroom: MESSAGE_TRANSPORT_HEADER_SIZE });
  }

  get size(): number {
    return this.byId.size;
  }

  /** The machine in SNAT66 slot `slot`, if it is still set up. */
  bySlot(slot: number): LocalMachine | undefined {
    return this.slots[slot] ?? undefined;
  }

  /** A TUN for the machine, moved into its namespace, with address, MTU, routes and resolver. */
  async open(m: Machine): Promise<LocalMachine> {
    const ns = m.id;
    await ensureNamespace(ns);
    const offload = this.opts.offload;
    const tun = tunOpen(machineIfname(m), { vnetHdr: offload });
    let slot = this.slots.indexOf(null);
    if (slot < 0) slot = this.slots.push(null) - 1;
    const out = offload ? new TunBatch(VNET_OUT_BATCH, VNET_SLOT) : new TunBatch(OUT_BATCH, SLOT);
    const log = this.opts.log.child({ machine: m.id, app: m.app, org: m.org });
    const queue = new Coalescer(out, offload);
    const lm: LocalMachine = { machine: m, slot, ns, ifname: tun.name, fd: tun.fd, watch: null, out, queue, log };
    try {
      if (offload) tunSetOffload(tun.fd, MACHINE_OFFLOADS);
      await configureMachineLink(ns, tun.name, m);
      writeNetnsFiles(ns, m);
    } catch (err) {
      closeFd(tun.fd);
      throw err;
    }
    lm.watch = fdWatch(lm.fd, () => this.read(lm));
    this.slots[slot] = lm;
    this.byId.set(m.id, lm);
    return lm;
  }

  /** Closes the machine's TUN (the interface disappears with its last fd) and frees its slot. */
  close(lm: LocalMachine): void {
    if (lm.watch) fdUnwatch(lm.watch);
    lm.watch = null;
    this.pending.delete(lm);
    if (this.slots[lm.slot] === lm) {
      this.opts.onClose(lm);
      this.slots[lm.slot] = null;
    }
    if (this.byId.get(lm.machine.id) === lm) this.byId.delete(lm.machine.id);
    if (lm.fd >= 0) closeFd(lm.fd);
    lm.fd = -1;
  }

  closeAll(): void {
    for (const lm of [...this.byId.values()]) this.close(lm);
  }

  private read(lm: LocalMachine): void {
    if (lm.fd < 0) return;
    const b = this.tunIn;
    for (let round = 0; round < READ_ROUNDS; round++) {
      let n: number;
      try {
        n = b.read(lm.fd, 0);
      } catch (err) {
        // the interface went away (deleted in the namespace): set it up again on the next retry
        lm.log.error(`machine ${lm.machine.id}: ${(err as Error).message} (recreating its interface)`);
        this.close(lm);
        this.opts.onLost(lm);
        return;
      }
      for (let i = 0; i < n; i++) if (b.error(i) === 0) this.opts.onPacket(lm, b.slab, b.offset(i), b.length(i));
      if (n < b.size) break;
    }
    this.opts.afterRead();
  }

  /** Queues buf[off, off + len) as is for the machine (in offload mode, its virtio_net_hdr included). */
  queue(m: Machine, buf: Uint8Array, off: number, len: number): void {
    const lm = this.byId.get(m.id);
    if (lm === undefined || lm.fd < 0) return;
    if (!lm.queue.addRaw(buf, off, len)) {
      if (!lm.queue.full) return void this.counters.txTooLong++;
      this.flushOne(lm);
      lm.queue.addRaw(buf, off, len);
    }
    this.pending.add(lm);
  }

  /**
   * Queues an IP packet without a virtio_net_hdr of its own (from the mesh, a peer, DNS, an
   * error): in offload mode, segments of one TCP flow are coalesced into super-packets.
   */
  queuePlain(m: Machine, buf: Uint8Array, off: number, len: number): void {
    const lm = this.byId.get(m.id);
    if (lm === undefined || lm.fd < 0) return;
    if (!lm.queue.add(buf, off, len)) {
      if (!lm.queue.full) return void this.counters.txTooLong++;
      this.flushOne(lm);
      lm.queue.add(buf, off, len);
    }
    this.pending.add(lm);
  }

  /** Writes every machine's queued packets. */
  flush(): void {
    for (const lm of this.pending) this.flushOne(lm);
    this.pending.clear();
  }

  private flushOne(lm: LocalMachine): void {
    const q = lm.queue;
    if (q.count === 0) return;
    const n = q.finish();
    this.counters.txCoalesced += q.merged;
    q.merged = 0;
    q.reset();
    if (lm.fd < 0) return;
    try {
      const written = lm.out.write(lm.fd, n, 0);
      this.counters.txQueueFull += n - written;
      for (let i = 0; i < written; i++) if (lm.out.error(i) !== 0) this.counters.txRefused++;
    } catch (err) {
      lm.log.error(`machine ${lm.machine.id}: ${(err as Error).message}`);
    }
  }
}

/** What the machines' TUNs did not take, and what was coalesced (in `sixpn status`). */
export class MachineTunCounters {
  txCoalesced = 0; // packets written as part of a super-packet (beyond the first of each)
  txQueueFull = 0; // records not written: the TUN queue was full (the main thread does not wait)
  txRefused = 0; // records the kernel refused (EINVAL, EIO)
  txTooLong = 0; // packets longer than a slot
}

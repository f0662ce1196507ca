// The machines of this host as the host process holds them: one TUN each (its fd stays here,
// the interface lives in the machine's namespace, netns.ts), on a TunPump (src/tun/pump.ts):
// read in batches when libuv says it is readable (one read batch shared by all machines), and a
// write queue each that coalesces segments into super-packets, flushed once per round (`flush`). A machine also has a
// slot, the small number SNAT66 knows it by (src/nat66). In offload mode ("offload", the
// default) the TUNs are vnet_hdr queues: every packet read or written starts with its
// virtio_net_hdr, and a slot holds a 64 KB segment with its header, the mesh headroom and the
// tag behind.
import type { Logger } from '../log.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../noise/constants.ts';
import type { Machine } from '../topology/index.ts';
import {
  TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TunCounters, TunPump, close as closeFd, tunOpen, tunSetOffload,
  type TunBatch,
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
  /** its TUN's I/O: reads, and the write queue (segments coalesced into super-packets in offload mode) */
  readonly pump: TunPump;
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
  /** The machine whose TUN is being read (set around onPacket; null between callbacks). */
  reading: LocalMachine | null = null;
  // The packet path's lookup: by the router's Machine object (the topology's, compared by
  // identity, no string hashing), kept by open/close/setMachine; a Machine of a newer topology,
  // between its apply and setMachine, is found by id.
  private readonly byMachine = new Map<Machine, LocalMachine>();
  private readonly opts: MachineTunsOptions;
  private readonly slots: Array<LocalMachine | null> = []; // SNAT66 slot → machine
  private readonly pending = new Set<LocalMachine>(); // machines with packets waiting to be written
  private readonly tunIn: TunBatch;
  private readonly pumpShape: { vnet: boolean; cut: boolean; headroom: number; readBatch: number; readSlot: number };
  /** what the machines' TUNs did not take, and what was coalesced, summed over machines closed too */
  private readonly closedCounters = new TunCounters();

  constructor(opts: MachineTunsOptions) {
    this.opts = opts;
    // in offload mode the packet is handed on behind its virtio_net_hdr (whole to the egress or a
    // machine of this host, or cut by machine-offload.ts), with the mesh headroom before the header
    this.pumpShape = { vnet: opts.offload, cut: false, headroom: MESSAGE_TRANSPORT_HEADER_SIZE, readBatch: IN_BATCH, readSlot: opts.offload ? VNET_SLOT : SLOT };
    this.tunIn = TunPump.readBatch(this.pumpShape);
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
    const log = this.opts.log.child({ machine: m.id, app: m.app, org: m.org });
    try {
      if (offload) tunSetOffload(tun.fd, MACHINE_OFFLOADS);
      await configureMachineLink(ns, tun.name, m);
      writeNetnsFiles(ns, m);
    } catch (err) {
      closeFd(tun.fd);
      throw err;
    }
    const lm: LocalMachine = {
      machine: m, slot, ns, ifname: tun.name, fd: tun.fd, log,
      pump: new TunPump(tun.fd, {
        ...this.pumpShape,
        writeBatch: offload ? VNET_OUT_BATCH : OUT_BATCH,
        writeSlot: offload ? VNET_SLOT : SLOT,
        readRounds: READ_ROUNDS,
        sharedRead: this.tunIn,
        onPacket: (buf, off, len) => {
          this.reading = lm;
          this.opts.onPacket(lm, buf, off, len);
          this.reading = null;
        },
        afterRead: () => this.opts.afterRead(),
        onFail: (err) => {
          // the interface went away (deleted in the namespace): set it up again on the next retry
          lm.log.error(`machine ${lm.machine.id}: ${err.message} (recreating its interface)`);
          this.close(lm);
          this.opts.onLost(lm);
        },
      }),
    };
    this.slots[slot] = lm;
    this.byId.set(m.id, lm);
    this.byMachine.set(m, lm);
    return lm;
  }

  /** Closes the machine's TUN (the interface disappears with its last fd) and frees its slot. */
  close(lm: LocalMachine): void {
    if (lm.fd >= 0) addCounters(this.closedCounters, lm.pump.counters);
    lm.pump.stop();
    this.pending.delete(lm);
    if (this.slots[lm.slot] === lm) {
      this.opts.onClose(lm);
      this.slots[lm.slot] = null;
    }
    if (this.byId.get(lm.machine.id) === lm) this.byId.delete(lm.machine.id);
    if (this.byMachine.get(lm.machine) === lm) this.byMachine.delete(lm.machine);
    if (lm.fd >= 0) closeFd(lm.fd);
    lm.fd = -1;
  }

  closeAll(): void {
    for (const lm of [...this.byId.values()]) this.close(lm);
  }

  /** The topology gave the machine a new object (same id and address): the lookups follow. */
  setMachine(lm: LocalMachine, m: Machine): void {
    if (lm.machine === m) return;
    this.byMachine.delete(lm.machine);
    lm.machine = m;
    this.byMachine.set(m, lm);
  }

  /** The local machine the router means by `m` (undefined: not set up here). */
  of(m: Machine): LocalMachine | undefined {
    return this.byMachine.get(m) ?? this.byId.get(m.id); // by id: a newer topology's object, until setMachine
  }

  /** Queues buf[off, off + len) as is for the machine (in offload mode, its virtio_net_hdr included). */
  queue(m: Machine, buf: Uint8Array, off: number, len: number): void {
    const lm = this.of(m);
    if (lm === undefined || lm.fd < 0) return;
    lm.pump.writeRaw(buf, off, len);
    this.pending.add(lm);
  }

  /**
   * Queues an IP packet without a virtio_net_hdr of its own (from the mesh, a peer, DNS, an
   * error): in offload mode, segments of one TCP flow are coalesced into super-packets.
   */
  queuePlain(m: Machine, buf: Uint8Array, off: number, len: number): void {
    const lm = this.of(m);
    if (lm === undefined || lm.fd < 0) return;
    lm.pump.write(buf, off, len);
    this.pending.add(lm);
  }

  /** Writes every machine's queued packets. */
  flush(): void {
    for (const lm of this.pending) lm.pump.flush();
    this.pending.clear();
  }

  /** The machine TUNs' counters, summed (machines closed included). */
  get counters(): TunCounters {
    const sum = new TunCounters();
    addCounters(sum, this.closedCounters);
    for (const lm of this.byId.values()) addCounters(sum, lm.pump.counters);
    return sum;
  }
}

function addCounters(to: TunCounters, from: TunCounters): void {
  to.rxErrors += from.rxErrors;
  to.rxBadOffload += from.rxBadOffload;
  to.rxSuperPackets += from.rxSuperPackets;
  to.txCoalesced += from.txCoalesced;
  to.txQueueFull += from.txQueueFull;
  to.txTooLong += from.txTooLong;
  for (const [k, v] of Object.entries(from.txErrors)) to.txErrors[k] = (to.txErrors[k] ?? 0) + v;
}

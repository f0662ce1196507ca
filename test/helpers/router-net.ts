// A recording RouterIO and a small in-memory 6PN: one Router per host of a topology, the mesh
// replayed by hand (what one host's router sends to another with toMesh goes into that host's
// Router.fromMesh), so a packet can be followed from a machine's TUN to wherever it ends.
import { COUNTERS, Router, type Counter, type RouterIO } from '../../src/router/router.ts';
import type { Machine, Peer, Topology } from '../../src/topology/index.ts';

/** One call a router made on its RouterIO, with a copy of the bytes. */
export interface IoCall {
  /** the host whose router made the call */
  host: number;
  kind: 'machine' | 'mesh' | 'peer' | 'dns' | 'egress';
  /** machine id (machine, egress), host id (mesh), peer name (peer), '' (dns) */
  target: string;
  bytes: Buffer;
}

export class RecordingIO implements RouterIO {
  readonly calls: IoCall[] = [];
  readonly host: number;
  /** what toEgress answers (false: the host has no egress, as in the demo) */
  egress: boolean;

  constructor(host: number, egress = false) {
    this.host = host;
    this.egress = egress;
  }
  private rec(kind: IoCall['kind'], target: string, buf: Uint8Array, off: number, len: number): void {
    this.calls.push({ host: this.host, kind, target, bytes: Buffer.from(buf.subarray(off, off + len)) });
  }
  toMachine(machine: Machine, buf: Uint8Array, off: number, len: number): void {
    this.rec('machine', machine.id, buf, off, len);
  }
  toMesh(hostId: number, buf: Uint8Array, off: number, len: number): void {
    this.rec('mesh', String(hostId), buf, off, len);
  }
  toPeer(peer: Peer, buf: Uint8Array, off: number, len: number): void {
    this.rec('peer', peer.name, buf, off, len);
  }
  toDns(buf: Uint8Array, off: number, len: number): void {
    this.rec('dns', '', buf, off, len);
  }
  toEgress(machine: Machine, buf: Uint8Array, off: number, len: number): boolean {
    if (this.egress) this.rec('egress', machine.id, buf, off, len);
    return this.egress;
  }
}

/** One step of a packet's journey: a router's entry point and the IO calls it made. */
export interface Step {
  host: number;
  entry: 'machine' | 'mesh';
  /** machine id for 'machine', sending host id for 'mesh' */
  from: string;
  input: Buffer;
  calls: IoCall[];
}

export interface Journey {
  steps: Step[];
  /** every toMachine call, in order */
  delivered: IoCall[];
  /** every call that left the 6PN: dns, peer, egress */
  exits: IoCall[];
  /** counters that changed, on every router: "hostName.counter" → delta */
  counters: Map<string, number>;
}

const HEADROOM = 24; // packets are fed at an offset, as the TUN batches do

export class Net {
  topology: Topology;
  readonly routers = new Map<number, Router>();
  readonly ios = new Map<number, RecordingIO>();
  clock = 0;
  /** mesh hops allowed for one packet before the harness gives up (a loop would be a bug) */
  maxSteps = 16;

  constructor(topology: Topology, opts: { meshMtu?: number; egress?: boolean; icmpErrorsPerSecond?: number } = {}) {
    this.topology = topology;
    for (const h of topology.hosts) {
      const io = new RecordingIO(h.id, opts.egress ?? false);
      this.ios.set(h.id, io);
      // no ICMPv6 rate limit unless a test asks: the clock stands still between packets here
      this.routers.set(h.id, new Router(topology, h.id, io, { meshMtu: opts.meshMtu, now: () => this.clock, icmpErrorsPerSecond: opts.icmpErrorsPerSecond ?? Infinity }));
    }
  }

  router(host: number | string): Router {
    const id = typeof host === 'number' ? host : this.topology.hostByName(host)!.id;
    const r = this.routers.get(id);
    if (r === undefined) throw new Error(`no router for host ${host}`);
    return r;
  }

  setTopology(t: Topology): void {
    this.topology = t;
    for (const r of this.routers.values()) r.setTopology(t);
  }

  hostName(id: number): string {
    return this.topology.host(id)?.name ?? `host-${id.toString(16)}`;
  }

  private snapshot(): Map<string, number> {
    const s = new Map<string, number>();
    for (const [id, r] of this.routers) for (const c of COUNTERS) s.set(`${this.hostName(id)}.${c}`, r.counters[c]);
    return s;
  }

  /** Sends a packet from a machine's TUN (on its host) and follows it across the mesh. */
  fromMachine(machine: Machine, packet: Uint8Array): Journey {
    return this.run({ host: machine.host, entry: 'machine', from: machine.id, input: Buffer.from(packet), calls: [] });
  }

  /** Feeds a packet (already swapped) into `host`'s router as if host `fromHost` sent it. */
  fromMesh(host: number, fromHost: number, packet: Uint8Array): Journey {
    return this.run({ host, entry: 'mesh', from: String(fromHost), input: Buffer.from(packet), calls: [] });
  }

  private run(first: Step): Journey {
    const before = this.snapshot();
    const j: Journey = { steps: [], delivered: [], exits: [], counters: new Map() };
    const queue: Step[] = [first];
    while (queue.length > 0) {
      if (j.steps.length >= this.maxSteps) throw new Error('packet loops over the mesh');
      const s = queue.shift()!;
      const r = this.routers.get(s.host);
      const io = this.ios.get(s.host)!;
      if (r === undefined) throw new Error(`mesh packet for a host without a router: ${s.host}`);
      const buf = new Uint8Array(HEADROOM + s.input.length + 32);
      buf.set(s.input, HEADROOM);
      const mark = io.calls.length;
      if (s.entry === 'machine') r.fromMachine(this.topology.machine(s.from)!, buf, HEADROOM, s.input.length);
      else r.fromMesh(Number(s.from), buf, HEADROOM, s.input.length);
      s.calls = io.calls.slice(mark);
      io.calls.length = 0;
      j.steps.push(s);
      for (const c of s.calls) {
        if (c.kind === 'machine') j.delivered.push(c);
        else if (c.kind === 'mesh') queue.push({ host: Number(c.target), entry: 'mesh', from: String(s.host), input: c.bytes, calls: [] });
        else j.exits.push(c);
      }
    }
    const after = this.snapshot();
    for (const [k, v] of after) if (v !== before.get(k)) j.counters.set(k, v - before.get(k)!);
    return j;
  }

  /**
   * The journey as text: "ams1 toMesh ord1 | ord1 toMachine web2", "ams1 drop"; machine ids go
   * through `name` (e.g. demo ids → web1).
   */
  describe(j: Journey, name: (machineId: string) => string = (x) => x): string {
    const parts: string[] = [];
    for (const s of j.steps) {
      const h = this.hostName(s.host);
      if (s.calls.length === 0) parts.push(`${h} drop`);
      for (const c of s.calls) {
        if (c.kind === 'machine') parts.push(`${h} toMachine ${name(c.target)}`);
        else if (c.kind === 'mesh') parts.push(`${h} toMesh ${this.hostName(Number(c.target))}`);
        else if (c.kind === 'peer') parts.push(`${h} toPeer ${c.target}`);
        else if (c.kind === 'dns') parts.push(`${h} toDns`);
        else parts.push(`${h} toEgress`);
      }
    }
    return parts.join(' | ');
  }

  /** Changed counters as sorted text: "ams1.forwarded_mesh ord1.forwarded_local ams1.icmp_sent×2". */
  static counterText(j: Journey): string {
    return [...j.counters]
      .map(([k, v]) => (v === 1 ? k : `${k}×${v}`))
      .sort()
      .join(' ');
  }
}

export type { Counter };

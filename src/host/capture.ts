// The capture tap of `sixpn up` (`sixpn capture`, issue 14): copies of the decrypted IPv6
// packets the router sees for a machine, an external peer or the mesh, streamed over the
// status socket (src/capture/stream.ts) while forwarding goes on.
//
// The host's forwarding edge (sixpn-host.ts) calls the tap only behind `if (tap.on)`: with no
// capture running, that one boolean is the whole cost per packet. With one running, a packet of
// a selected machine, peer or mesh host is copied (mesh packets swapped back to their real
// addresses), filtered (src/capture/filter.ts) and queued as a frame for the session's socket.
// Each session's queue is bounded (QUEUE_BYTES, counting what the socket has not sent yet):
// what does not fit is dropped and counted, never waited for. The queue is written once per
// turn of the event loop; a slow reader only costs its own drops.
//
// Who may capture: whoever can connect to the status socket — root, or its owner (the socket is
// 0600 in a 0700 directory, status.ts).
import type { Socket } from 'node:net';
import { type PacketFilter, parseFilter } from '../capture/filter.ts';
import { DIR_INBOUND, DIR_OUTBOUND, SNAPLEN } from '../capture/pcapng.ts';
import {
  type CaptureRequest, type CaptureStats, PACKET_FRAME_DATA, endFrame, interfaceFrame, packetFrame, parseRequest, statsFrame,
} from '../capture/stream.ts';
import { SWAP_BOTH, swapPacket } from '../ipv6/index.ts';
import type { Logger } from '../log.ts';
import type { Machine, Peer, Topology } from '../topology/index.ts';

/** Bytes a session may hold unsent (its queue and its socket's buffer). */
export const QUEUE_BYTES = 8 << 20;
/** Captures at once (each may hold QUEUE_BYTES): more are refused. */
export const MAX_CAPTURES = 8;
const STATS_EVERY_MS = 1000;

export const FROM = DIR_INBOUND; // into the router: from the machine, the peer, the mesh host
export const TO = DIR_OUTBOUND; // out of the router: to the machine, the peer, the mesh host

/** What the tap needs of the host: its topology and names. */
export interface CaptureContext {
  topology(): Topology;
  hostId: number;
  log: Logger;
}

class Session {
  readonly machines = new Map<string, number>(); // machine id → interface id
  readonly peers = new Map<string, number>(); // peer key (org/name) → interface id
  readonly meshHosts = new Map<number, number>(); // host id → interface id (made at its first packet)
  readonly mesh: boolean;
  readonly filter: PacketFilter;
  private readonly socket: Socket;
  private readonly count: number;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private scheduled = false;
  private nextIface = 0;
  private readonly perIface: Array<{ captured: number; dropped: number }> = [];
  captured = 0;
  dropped = 0;
  ended = false;
  private readonly statsTimer: NodeJS.Timeout;

  private readonly onEnd: (s: Session) => void;

  constructor(socket: Socket, req: CaptureRequest, onEnd: (s: Session) => void) {
    this.socket = socket;
    this.onEnd = onEnd;
    this.mesh = req.mesh;
    this.count = req.count;
    this.filter = parseFilter(req.filter);
    this.statsTimer = setInterval(() => this.send(statsFrame(this.stats())), STATS_EVERY_MS);
    this.statsTimer.unref();
  }

  /** A new interface of this capture (an IDB in the file). */
  addInterface(name: string): number {
    const id = this.nextIface++;
    this.perIface.push({ captured: 0, dropped: 0 });
    this.send(interfaceFrame(id, name));
    return id;
  }

  /** Queues the packet buf[off, off + len) on interface `iface` if it matches and fits. */
  packet(iface: number, dir: number, buf: Uint8Array, off: number, len: number, swapped: boolean): void {
    if (this.ended) return;
    const cap = Math.min(len, SNAPLEN);
    const frame = packetFrame(iface, dir, (performance.timeOrigin + performance.now()) * 1000, len, buf, off, cap);
    if (swapped && cap >= 40) swapPacket(frame, PACKET_FRAME_DATA, SWAP_BOTH);
    if (!this.filter(frame, PACKET_FRAME_DATA, cap)) return;
    const c = this.perIface[iface];
    if (this.queued + this.socket.writableLength + frame.length > QUEUE_BYTES) {
      this.dropped++;
      c.dropped++;
      return;
    }
    this.captured++;
    c.captured++;
    this.send(frame);
    if (this.count > 0 && this.captured >= this.count) this.end({ reason: `${this.count} packets captured` });
  }

  private send(frame: Uint8Array): void {
    if (this.ended) return;
    this.queue.push(frame);
    this.queued += frame.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.write());
    }
  }

  private write(): void {
    this.scheduled = false;
    if (this.queue.length === 0 || this.socket.destroyed) return;
    const out = Buffer.concat(this.queue);
    this.queue = [];
    this.queued = 0;
    this.socket.write(out);
  }

  /** The first stats frame: the capture runs (the client says so). */
  ready(): void {
    this.send(statsFrame(this.stats()));
  }

  stats(): CaptureStats {
    return {
      captured: this.captured,
      dropped: this.dropped,
      perInterface: Object.fromEntries(this.perIface.map((c, i) => [String(i), { ...c }])),
    };
  }

  /** Ends the stream: the last stats and the end frame, then the socket is closed. */
  end(why: { reason?: string; error?: string }): void {
    if (this.ended) return;
    this.send(statsFrame(this.stats()));
    this.send(endFrame(why));
    this.write();
    this.ended = true;
    clearInterval(this.statsTimer);
    this.socket.end();
    this.onEnd(this);
  }

  /** The client went away. */
  gone(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.statsTimer);
    this.onEnd(this);
  }
}

export class CaptureTap {
  /** A capture is running: the only thing the packet path reads when none is. */
  on = false;
  private readonly sessions = new Set<Session>();
  private readonly ctx: CaptureContext;

  constructor(ctx: CaptureContext) {
    this.ctx = ctx;
  }

  get running(): number {
    return this.sessions.size;
  }

  /**
   * A `capture {…}` request on the status socket: the session streams on `socket` until its
   * count is reached, the client closes, or the host stops. A bad request gets an end frame
   * with the error.
   */
  serve(socket: Socket, json: string): void {
    let s: Session;
    try {
      const req = parseRequest(json);
      if (this.sessions.size >= MAX_CAPTURES) throw new Error(`${MAX_CAPTURES} captures are running on this host already: end one first`);
      const topo = this.ctx.topology();
      const machines = req.machines.map((id) => {
        const m = topo.machine(id);
        if (m === undefined) throw new Error(`no machine ${id} in the topology`);
        if (m.host !== this.ctx.hostId) throw new Error(`machine ${id} is on host ${topo.host(m.host)?.name ?? m.host}, not this one: capture it there`);
        return m;
      });
      const peers = req.peers.map((name) => this.findPeer(topo, name));
      s = new Session(socket, req, (x) => this.forget(x));
      for (const m of machines) s.machines.set(m.id, s.addInterface(`machine:${m.id}`));
      for (const p of peers) s.peers.set(peerKey(p), s.addInterface(`peer:${p.org}/${p.name}`));
    } catch (err) {
      socket.end(endFrame({ error: (err as Error).message }));
      return;
    }
    this.sessions.add(s);
    this.on = true;
    s.ready();
    socket.on('close', () => s.gone());
    this.ctx.log.info(`capture started: ${describe(s)}`, { capture: describe(s) });
  }

  private findPeer(topo: Topology, name: string): Peer {
    const slash = name.indexOf('/');
    const [org, n] = slash >= 0 ? [name.slice(0, slash), name.slice(slash + 1)] : [undefined, name];
    const found = topo.peersOnGateway(this.ctx.hostId).filter((p) => p.name === n && (org === undefined || p.org === org));
    if (found.length === 1) return found[0];
    if (found.length > 1) throw new Error(`peer ${name} is in several orgs (${found.map((p) => p.org).join(', ')}): name it ORG/NAME`);
    throw new Error(`no peer ${name} on this gateway`);
  }

  private forget(s: Session): void {
    if (!this.sessions.delete(s)) return;
    this.on = this.sessions.size > 0;
    this.ctx.log.info(`capture ended: ${describe(s)}: ${s.captured} packets, ${s.dropped} dropped`, { capture: describe(s), captured: s.captured, dropped: s.dropped });
  }

  /** A packet from (FROM) or to (TO) machine `m`. */
  machine(m: Machine, dir: number, buf: Uint8Array, off: number, len: number): void {
    for (const s of this.sessions) {
      const iface = s.machines.get(m.id);
      if (iface !== undefined) s.packet(iface, dir, buf, off, len, false);
    }
  }

  /** A packet from or to external peer `p`. */
  peer(p: Peer, dir: number, buf: Uint8Array, off: number, len: number): void {
    const key = peerKey(p);
    for (const s of this.sessions) {
      const iface = s.peers.get(key);
      if (iface !== undefined) s.packet(iface, dir, buf, off, len, false);
    }
  }

  /** A packet from or to the mesh peer of host `hostId`, in swapped form (copied back). */
  mesh(hostId: number, dir: number, buf: Uint8Array, off: number, len: number): void {
    for (const s of this.sessions) {
      if (!s.mesh) continue;
      let iface = s.meshHosts.get(hostId);
      if (iface === undefined) {
        iface = s.addInterface(`mesh:${this.ctx.topology().host(hostId)?.name ?? hostId}`);
        s.meshHosts.set(hostId, iface);
      }
      s.packet(iface, dir, buf, off, len, true);
    }
  }

  /** Ends every capture (the host stops). */
  close(): void {
    for (const s of [...this.sessions]) s.end({ reason: 'the host is shutting down' });
  }
}

const peerKey = (p: Peer) => `${p.org}/${p.name}`;

function describe(s: Session): string {
  const parts = [...[...s.machines.keys()].map((m) => `machine ${m}`), ...[...s.peers.keys()].map((p) => `peer ${p}`)];
  if (s.mesh) parts.push('the mesh');
  return parts.join(', ');
}

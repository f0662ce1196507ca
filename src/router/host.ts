// `sixpn up`: one process per host. It reads the host config and the topology, creates a TUN
// per local machine and moves it into the machine's namespace (created if missing) with its
// address, MTU and routes, brings up the mesh WireGuard device (src/wg) toward every other
// host, and runs the router between them. Topology edits apply as they are saved; a bad edit is
// refused and the running state kept. `sixpn status` reads the counters over a unix socket.
// By default (unless "offload": false in the host config; issue 5), machine TUNs and the egress are vnet_hdr
// queues with TSO and checksum offload: a machine's 64 KB TCP segments go whole to the egress
// and to machines of this host, and are cut into ordinary packets (src/router/offload.ts) for
// everything else; the router's checks run on every packet either way.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { DnsService } from '../host/dns-service.ts';
import { Egress } from '../host/egress.ts';
import { formatAddress, meshHostPrefix } from '../ipv6/index.ts';
import {
  TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TunBatch, VNET_HDR_LEN as TUN_VNET_HDR_LEN, close as closeFd, fdUnwatch,
  fdWatch, ip, tunOpen, tunSetOffload, type FdWatch,
} from '../tun/index.ts';
import {
  describeDiff, dnsView, readPrivateKey, resolveLocalHost, topologyDigest, watchTopology,
  type HostConfig, type Host, type Machine, type Peer, type Topology, type TopologySource,
} from '../topology/index.ts';
import { UapiServer } from '../uapi/index.ts';
import { Endpoint } from '../wg/endpoint.ts';
import type { Peer as WgPeer } from '../wg/peer.ts';
import type { Logger } from '../log.ts';
import { WgPort } from '../wg/port.ts';
import { VNET_GSO_NONE, VNET_HDR_LEN, completeChecksum, gsoSegment, vnetOffloaded } from './offload.ts';
import { COUNTERS, Router } from './router.ts';
import { STATUS_DIR, statusSocketPath } from './status.ts';


export const MACHINE_MTU = 1420;
const HEADROOM = 16;
const SLOT = 2048;
const TICK_MS = 100;
// Offload mode ("offload": true): machine TUNs are vnet_hdr queues taking these offloads, and a
// slot holds a 64 KB segment with its virtio_net_hdr, the mesh headroom and the tag behind.
export const MACHINE_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
const VNET_SLOT = 65_536 + 256;
const VNET_OUT_BATCH = 16;
const SEG_AT = 32; // where a piece of a cut segment starts in the scratch buffer (headroom, header)

/** Offload mode's own counts (in `sixpn status` as "offload"). */
export class OffloadCounters {
  whole = 0; // offloaded packets passed on unchanged (egress, a machine of this host)
  segmented = 0; // 64 KB segments cut into MSS-sized packets
  segments = 0; // … the packets they gave
  checksummed = 0; // partial checksums completed
  invalid = 0; // offloaded packets that could not be cut or completed: dropped
}

interface LocalMachine {
  machine: Machine;
  slot: number; // its number for SNAT66 (src/nat66)
  ns: string;
  ifname: string;
  fd: number;
  watch: FdWatch | null;
  out: TunBatch;
  outCount: number;
}

export class SixpnHost {
  private topology: Topology;
  private readonly host: Host;
  private readonly log: Logger;
  private readonly watcher: TopologySource;
  readonly port: WgPort;
  /** External WireGuard peers of the orgs connect here (mesh port + 1, the host's key). */
  readonly gateway: WgPort;
  readonly router: Router;
  private uapi: UapiServer | null = null;
  private gatewayUapi: UapiServer | null = null;
  private status: Server | null = null;
  private readonly machines = new Map<string, LocalMachine>();
  private readonly pending = new Set<LocalMachine>(); // machines with packets waiting to be written
  private readonly tunIn: TunBatch;
  private readonly offload: boolean;
  readonly offloadCounters = new OffloadCounters();
  private readonly seg: Uint8Array; // offload mode: the piece of a segment being routed
  private egressScratch: Uint8Array | null = null; // offload mode: a plain packet for the egress, header in front
  // offload mode: the packet being routed from a machine, whose virtio_net_hdr is just in front
  private curBuf: Uint8Array | null = null;
  private curOff = -1;
  private readonly hostOfPeer = new Map<WgPeer, number>();
  private readonly externalOfPeer = new Map<WgPeer, Peer>();
  private dnsService: DnsService | null = null; // fdaa::3 and the orgs' ::3 (src/dns/service.ts)
  private egress: Egress | null = null; // SNAT66 to the Internet, when the host has an egress address
  private readonly egressAddress: Uint8Array | undefined;
  private readonly slots: Array<LocalMachine | null> = []; // egress slot → machine
  private readonly ticker: NodeJS.Timeout;
  private ticks = 0;
  private busy: Promise<void> = Promise.resolve(); // machine setup runs one change at a time
  private retrySetup = false; // a machine failed to set up: try again on the next second
  private closed = false;

  private constructor(config: HostConfig, log: Logger, key: Uint8Array, pollMs: number) {
    this.log = log;
    this.offload = config.offload !== false; // default on; "offload": false for plain TUNs
    if (this.offload && TUN_VNET_HDR_LEN !== VNET_HDR_LEN) throw new Error(`unexpected virtio_net_hdr size ${TUN_VNET_HDR_LEN}`);
    this.tunIn = new TunBatch(64, this.offload ? VNET_SLOT : SLOT, { headroom: HEADROOM });
    this.seg = new Uint8Array(this.offload ? VNET_SLOT : 0);
    this.watcher = (config.source ?? watchTopology)( // config.source: an etcd store (src/cli/up.ts)
      config.topology,
      (next, diff) => {
        log.info(`topology changed: ${describeDiff(diff).join('; ')}`);
        this.apply(next);
      },
      (err) => log.error(`topology edit refused, keeping the running state: ${err.message}`),
      { intervalMs: pollMs },
    );
    this.topology = this.watcher.current;
    const local = resolveLocalHost(config, this.topology);
    this.host = local.host;
    this.egressAddress = local.egress;
    this.port = new WgPort(log, (buf, off, len, peer) => this.fromMesh(buf, off, len, peer), { mtu: MACHINE_MTU });
    this.port.afterRound = () => {
      this.flushMachines();
      this.gateway?.flush(); // mesh → external peer goes out in the same round
    };
    this.port.device.setPrivateKey(key);
    this.port.bind(local.listenPort);
    this.gateway = new WgPort(log, (buf, off, len, peer) => this.fromGateway(buf, off, len, peer), { mtu: MACHINE_MTU });
    this.gateway.afterRound = () => {
      this.flushMachines();
      this.port.flush();
    };
    this.gateway.device.setPrivateKey(key);
    this.gateway.bind(local.listenPort + 1);
    this.router = new Router(this.topology, this.host.id, {
      toMachine: (m, buf, off, len) => {
        if (!this.offload) this.queueMachine(m, buf, off, len);
        else if (buf === this.curBuf && off === this.curOff) this.queueMachine(m, buf, off - VNET_HDR_LEN, len + VNET_HDR_LEN);
        else this.queuePlain(m, buf, off, len);
      },
      toMesh: (_host, buf, off, len) => this.port.device.sendPacket(buf, off, len),
      toPeer: (_peer, buf, off, len) => this.gateway.device.sendPacket(buf, off, len),
      toDns: (buf, off, len) => this.dnsService?.packet(buf, off, len),
      toEgress: (m, buf, off, len) => {
        const lm = this.machines.get(m.id);
        if (this.egress === null || lm === undefined) return false;
        const id = this.egress.egressOf(m.app);
        if (!this.offload) return this.egress.send(lm.slot, buf, off, len, id);
        if (buf === this.curBuf && off === this.curOff) return this.egress.send(lm.slot, buf, off - VNET_HDR_LEN, len + VNET_HDR_LEN, id);
        // not a machine's packet as read (the router only sends those here): a zero header in front
        const s = (this.egressScratch ??= new Uint8Array(VNET_SLOT));
        if (len + VNET_HDR_LEN > s.length) return true;
        s.fill(0, 0, VNET_HDR_LEN);
        s.set(buf.subarray(off, off + len), VNET_HDR_LEN);
        return this.egress.send(lm.slot, s, 0, len + VNET_HDR_LEN, id);
      },
    }, { meshMtu: MACHINE_MTU });
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  /** Starts the host: mesh, machines, status socket. Throws on a bad config or topology. */
  static async start(config: HostConfig, log: Logger, opts: { pollMs?: number } = {}): Promise<SixpnHost> {
    const { key, warnings } = readPrivateKey(config.privateKeyFile);
    for (const w of warnings) log.error(w);
    const h = new SixpnHost(config, log, key, opts.pollMs ?? 1000);
    key.fill(0);
    try {
      h.syncMesh();
      h.syncGateway();
      h.dnsService = await h.startDns(config);
      if (h.egressAddress !== undefined) {
        h.egress = await Egress.open({
          address: formatAddress(h.egressAddress, 0),
          deliver: (slot, buf, off, len) => {
            const lm = h.slots[slot];
            if (lm) h.queueMachine(lm.machine, buf, off, len);
          },
          afterRound: () => h.flushMachines(),
          ...(config.uplink ? { uplink: config.uplink } : {}),
          ...(h.offload ? { vnetHdr: true } : {}),
          onError: (e) => log.error(`egress: ${e.message}`),
        });
      }
      await h.syncMachines();
      const meshName = config.meshInterface ?? `6pn-${h.host.name}`.slice(0, 15);
      h.uapi = await UapiServer.listen(meshName, h.port.uapi, {
        watchIntervalMs: 0,
        onError: (e) => log.error(`uapi: ${String(e)}`),
      });
      h.gatewayUapi = await UapiServer.listen(`6pg${meshName.slice(3)}`, h.gateway.uapi, {
        watchIntervalMs: 0,
        onError: (e) => log.error(`uapi: ${String(e)}`),
      });
      h.status = await h.serveStatus();
    } catch (err) {
      await h.close();
      throw err;
    }
    log.info(`host ${h.host.name} up: ${h.machines.size} machines, mesh port ${h.port.device.listenPort}`);
    return h;
  }

  // ---- topology ----

  private apply(next: Topology): void {
    this.topology = next;
    this.router.setTopology(next);
    this.syncMesh();
    this.syncGateway();
    void this.dnsService?.sync();
    this.busy = this.busy.then(() => this.syncMachines()).catch((e: Error) => this.log.error(`machines: ${e.message}`));
  }

  /** One mesh peer per other host: its key, endpoint, and its /48 in swapped form. */
  private syncMesh(): void {
    const d = this.port.device;
    const wanted = new Map(this.topology.hosts.filter((h) => h.id !== this.host.id).map((h) => [h.publicKeyBase64, h]));
    for (const [peer, hostId] of [...this.hostOfPeer]) {
      const h = this.topology.host(hostId);
      if (h === undefined || !wanted.has(Buffer.from(peer.publicKey).toString('base64'))) {
        d.removePeer(peer);
        this.hostOfPeer.delete(peer);
      }
    }
    for (const h of wanted.values()) {
      const peer = d.addPeer(h.publicKey);
      this.hostOfPeer.set(peer, h.id);
      const ep = Endpoint.parse(h.endpoint.family === 6 ? `[${h.endpoint.address}]:${h.endpoint.port}` : `${h.endpoint.address}:${h.endpoint.port}`);
      if (peer.endpoint === null || !peer.endpoint.sameRemote(ep)) peer.endpoint = ep;
      const prefix = new Uint8Array(16);
      meshHostPrefix(prefix, 0, h.id);
      d.allowedIps.removeValue(peer);
      d.allowedIps.insert({ family: 6, addr: prefix, prefixLen: 48 }, peer);
    }
  }

  /** External peers whose gateway is this host: their key and their /120 (cryptokey routing). */
  private syncGateway(): void {
    const d = this.gateway.device;
    const wanted = new Map(this.topology.peersOnGateway(this.host.id).map((p) => [p.publicKeyBase64, p]));
    for (const [wp] of [...this.externalOfPeer]) {
      if (!wanted.has(Buffer.from(wp.publicKey).toString('base64'))) {
        d.removePeer(wp);
        this.externalOfPeer.delete(wp);
      }
    }
    for (const p of wanted.values()) {
      const wp = d.addPeer(p.publicKey);
      this.externalOfPeer.set(wp, p);
      d.allowedIps.removeValue(wp);
      d.allowedIps.insert({ family: 6, addr: p.prefix, prefixLen: 120 }, wp);
    }
  }

  private async syncMachines(): Promise<void> {
    const want = new Map(this.topology.machinesOnHost(this.host.id).map((m) => [m.id, m]));
    for (const [id, lm] of [...this.machines]) {
      const m = want.get(id);
      if (m === undefined || m.address.some((b, i) => b !== lm.machine.address[i])) {
        this.teardown(lm);
        this.machines.delete(id);
        this.log.info(`machine ${id}: removed from this host`);
      } else lm.machine = m;
    }
    for (const m of want.values()) {
      if (this.machines.has(m.id) || this.closed) continue;
      try {
        this.machines.set(m.id, await this.setup(m));
        this.log.info(`machine ${m.id} (${m.app}) at ${m.addressText}${m.started ? '' : ' (stopped)'}`);
      } catch (err) {
        this.retrySetup = true;
        this.log.error(`machine ${m.id}: ${(err as Error).message} (will retry)`);
      }
    }
  }

  /** A TUN for the machine, moved into its namespace, with address, MTU, routes and resolver. */
  private async setup(m: Machine): Promise<LocalMachine> {
    const ns = m.id;
    const namespaces = await ip(['netns', 'list']);
    if (!new RegExp(`^${ns}\\b`, 'm').test(namespaces)) await ip(['netns', 'add', ns]);
    // unique per host and machine: during a migration the old host's interface may still be
    // in the namespace when the new host moves its own in
    const ifname = `6pn${(m.host & 0xffff).toString(16).padStart(4, '0')}${(m.instance >>> 0).toString(16).padStart(8, '0')}`;
    const tun = tunOpen(ifname, { vnetHdr: this.offload });
    let slot = this.slots.indexOf(null);
    if (slot < 0) slot = this.slots.push(null) - 1;
    const out = this.offload ? new TunBatch(VNET_OUT_BATCH, VNET_SLOT) : new TunBatch(32, SLOT);
    const lm: LocalMachine = { machine: m, slot, ns, ifname: tun.name, fd: tun.fd, watch: null, out, outCount: 0 };
    try {
      if (this.offload) tunSetOffload(tun.fd, MACHINE_OFFLOADS);
      await ip(['link', 'set', 'dev', tun.name, 'netns', ns]);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'addr', 'add', `${m.addressText}/112`, 'dev', tun.name, 'nodad']);
      await ip(['-n', ns, 'link', 'set', 'dev', tun.name, 'mtu', String(MACHINE_MTU), 'up']);
      await ip(['-n', ns, '-6', 'route', 'replace', 'fdaa::/16', 'dev', tun.name]);
      await ip(['-n', ns, '-6', 'route', 'replace', 'default', 'dev', tun.name]);
      const etc = join('/etc/netns', ns);
      mkdirSync(etc, { recursive: true });
      writeFileSync(join(etc, 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${m.addressText}\t${m.id}.vm.${m.app}.internal ${m.id}\n`);
      writeFileSync(join(etc, 'resolv.conf'), 'nameserver fdaa::3\noptions edns0\n');
    } catch (err) {
      closeFd(tun.fd);
      throw err;
    }
    lm.watch = fdWatch(lm.fd, () => this.fromMachineTun(lm));
    this.slots[slot] = lm;
    return lm;
  }

  private teardown(lm: LocalMachine): void {
    if (lm.watch) fdUnwatch(lm.watch);
    lm.watch = null;
    this.pending.delete(lm);
    if (this.slots[lm.slot] === lm) {
      this.egress?.forgetMachine(lm.slot); // its mappings go with it
      this.slots[lm.slot] = null;
    }
    closeFd(lm.fd); // the interface disappears with its last fd
    lm.fd = -1;
  }

  // ---- packet path ----

  private fromMachineTun(lm: LocalMachine): void {
    if (this.closed || lm.fd < 0) return;
    const b = this.tunIn;
    for (let round = 0; round < 4; round++) {
      let n: number;
      try {
        n = b.read(lm.fd, 0);
      } catch (err) {
        // the interface went away (deleted in the namespace): set it up again on the next retry
        this.log.error(`machine ${lm.machine.id}: ${(err as Error).message} (recreating its interface)`);
        this.teardown(lm);
        if (this.machines.get(lm.machine.id) === lm) this.machines.delete(lm.machine.id);
        this.retrySetup = true;
        return;
      }
      if (this.offload) {
        for (let i = 0; i < n; i++) if (b.error(i) === 0) this.fromMachineVnet(lm.machine, b.slab, b.offset(i), b.length(i));
      } else {
        for (let i = 0; i < n; i++) if (b.error(i) === 0) this.router.fromMachine(lm.machine, b.slab, b.offset(i), b.length(i));
      }
      if (n < b.size) break;
    }
    this.flushMachines();
    this.port.flush();
    this.gateway.flush();
  }

  /**
   * Offload mode: a machine's packet behind its virtio_net_hdr at buf[h]. An ordinary one is
   * routed as always (its header zeroed: passed on with it, it asks nothing). An offloaded one
   * (a 64 KB TCP segment, a partial checksum) goes whole to the egress or a machine of this
   * host when the router sends it there; else it is cut into MSS-sized packets, or its checksum
   * completed (src/router/offload.ts), and those are routed like any.
   */
  private fromMachineVnet(m: Machine, buf: Uint8Array, h: number, total: number): void {
    if (total < VNET_HDR_LEN) return;
    const off = h + VNET_HDR_LEN;
    const len = total - VNET_HDR_LEN;
    const r = this.router;
    const c = this.offloadCounters;
    this.curBuf = buf;
    this.curOff = off;
    try {
      if (!vnetOffloaded(buf, h)) {
        buf.fill(0, h, off);
        r.fromMachine(m, buf, off, len);
      } else if (r.fromMachine(m, buf, off, len, true)) {
        c.whole++;
      } else if (buf[h + 1] === VNET_GSO_NONE) {
        if (!completeChecksum(buf, h, off, len)) return void c.invalid++;
        c.checksummed++;
        buf.fill(0, h, off);
        r.fromMachine(m, buf, off, len);
      } else {
        const s = this.seg;
        this.curBuf = s;
        this.curOff = SEG_AT;
        let k = 0;
        for (let n: number; (n = gsoSegment(buf, h, off, len, k, s, SEG_AT)) > 0; k++) {
          s.fill(0, SEG_AT - VNET_HDR_LEN, SEG_AT); // the mesh may have sealed over it
          r.fromMachine(m, s, SEG_AT, n);
        }
        if (k === 0) return void c.invalid++;
        c.segmented++;
        c.segments += k;
      }
    } finally {
      this.curBuf = null;
      this.curOff = -1;
    }
  }

  private fromMesh(buf: Uint8Array, off: number, len: number, peer: WgPeer): void {
    const hostId = this.hostOfPeer.get(peer);
    if (hostId !== undefined) this.router.fromMesh(hostId, buf, off, len);
  }

  private fromGateway(buf: Uint8Array, off: number, len: number, wp: WgPeer): void {
    const p = this.externalOfPeer.get(wp);
    if (p !== undefined) this.router.fromPeer(p, buf, off, len);
  }

  /** Offload mode: a packet without its own virtio_net_hdr gets a zero one in front. */
  private queuePlain(m: Machine, buf: Uint8Array, off: number, len: number): void {
    const lm = this.machines.get(m.id);
    if (lm === undefined || lm.fd < 0 || len + VNET_HDR_LEN > lm.out.slotSize) return;
    if (lm.outCount === lm.out.size) this.flushMachine(lm);
    const i = lm.outCount++;
    const at = lm.out.offset(i);
    lm.out.slab.fill(0, at, at + VNET_HDR_LEN);
    lm.out.slab.set(buf.subarray(off, off + len), at + VNET_HDR_LEN);
    lm.out.setLength(i, len + VNET_HDR_LEN);
    this.pending.add(lm);
  }

  /** buf[off, off + len) as is (in offload mode, its virtio_net_hdr included). */
  private queueMachine(m: Machine, buf: Uint8Array, off: number, len: number): void {
    const lm = this.machines.get(m.id);
    if (lm === undefined || lm.fd < 0 || len > lm.out.slotSize) return;
    if (lm.outCount === lm.out.size) this.flushMachine(lm);
    const i = lm.outCount++;
    lm.out.slab.set(buf.subarray(off, off + len), lm.out.offset(i));
    lm.out.setLength(i, len);
    this.pending.add(lm);
  }

  private flushMachine(lm: LocalMachine): void {
    const n = lm.outCount;
    lm.outCount = 0;
    if (n === 0 || lm.fd < 0) return;
    try {
      lm.out.write(lm.fd, n, 0);
    } catch (err) {
      this.log.error(`machine ${lm.machine.id}: ${(err as Error).message}`);
    }
  }

  private flushMachines(): void {
    for (const lm of this.pending) this.flushMachine(lm);
    this.pending.clear();
  }

  // ---- DNS: the service answers; replies come back through router.fromLocal ----

  private startDns(config: HostConfig): Promise<DnsService> {
    const local = () => [...this.topology.machinesOnHost(this.host.id), ...this.topology.peersOnGateway(this.host.id)];
    return DnsService.start({
      view: dnsView(() => this.topology),
      upstreams: config.dnsUpstream, // empty: the host's /etc/resolv.conf
      networks: () => local().map((x) => x.network),
      log: this.log,
      mtu: MACHINE_MTU,
    }, {
      deliver: (buf, off, len) => this.router.fromLocal(buf, off, len),
      flush: () => {
        this.flushMachines();
        this.gateway.flush();
      },
    });
  }

  private tick(): void {
    if (this.closed) return;
    this.port.device.tick();
    this.gateway.device.tick();
    this.port.flush();
    this.gateway.flush();
    this.flushMachines();
    if (++this.ticks % 100 === 0) this.router.expire();
    if (this.ticks % 10 === 0 && this.retrySetup) {
      this.retrySetup = false;
      this.busy = this.busy.then(() => this.syncMachines()).catch((e: Error) => this.log.error(`machines: ${e.message}`));
    }
  }

  // ---- status ----

  private async serveStatus(): Promise<Server> {
    mkdirSync(STATUS_DIR, { recursive: true });
    const path = statusSocketPath(this.host.name);
    rmSync(path, { force: true });
    // a request line "conntrack" gets conntrack -L style lines; "status", or nothing within
    // 200 ms (a plain reader such as `socat - UNIX:…`), gets the status as JSON
    const server = createServer((c) => {
      c.on('error', () => undefined);
      let line = '';
      let answered = false;
      const answer = (conntrack: boolean) => {
        if (answered) return;
        answered = true;
        clearTimeout(silent);
        if (conntrack) c.end((this.egress?.list() ?? []).map((l) => `${l}\n`).join(''));
        else c.end(JSON.stringify(this.snapshot()) + '\n');
      };
      const silent = setTimeout(() => answer(false), 200);
      c.on('data', (d) => {
        line += d.toString();
        if (line.includes('\n')) answer(line.startsWith('conntrack'));
      });
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
    return server;
  }

  snapshot(): unknown {
    const d = this.port.device;
    return {
      host: this.host.name,
      hostId: this.host.id,
      topology: topologyDigest(this.topology),
      store: this.watcher.status?.() ?? null,
      machinesReady: [...this.machines.values()].length === this.topology.machinesOnHost(this.host.id).length,
      meshPort: d.listenPort,
      gatewayPort: this.gateway.device.listenPort,
      externalPeers: [...this.externalOfPeer].map(([wp, p]) => ({
        name: p.name,
        org: p.org,
        address: p.addressText,
        endpoint: wp.endpoint?.toString() ?? null,
        lastHandshakeUnixMs: wp.lastHandshakeUnixMs,
      })),
      router: Object.fromEntries(COUNTERS.map((c) => [c, this.router.counters[c]])),
      dns: this.dnsService === null ? null : { ...this.dnsService.counters },
      egress: this.egress === null ? null : this.egress.status(),
      ...(this.offload ? { offload: { ...this.offloadCounters } } : {}),
      mesh: { ...d.counters },
      peers: [...this.hostOfPeer].map(([p, id]) => ({
        host: this.topology.host(id)?.name ?? id,
        endpoint: p.endpoint?.toString() ?? null,
        lastHandshakeUnixMs: p.lastHandshakeUnixMs,
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
      })),
      machines: [...this.machines.values()].map((lm) => ({
        id: lm.machine.id,
        app: lm.machine.app,
        address: formatAddress(lm.machine.address, 0),
        state: lm.machine.state,
        namespace: lm.ns,
        interface: lm.ifname,
      })),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    this.watcher.close();
    for (const lm of this.machines.values()) this.teardown(lm);
    this.machines.clear();
    this.port.close();
    this.gateway.close();
    await this.dnsService?.close();
    await this.egress?.close();
    await this.uapi?.close();
    await this.gatewayUapi?.close();
    if (this.status) {
      await new Promise((r) => this.status!.close(r));
      rmSync(statusSocketPath(this.host.name), { force: true });
    }
  }
}

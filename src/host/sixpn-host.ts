// `sixpn up`: one process per host, and the life of it. It reads the host config and the
// topology, and runs the router (src/router, the pure forwarding decision) between
//   - the machines of this host: a TUN each, in the machine's namespace (machines.ts, netns.ts);
//   - the mesh WireGuard toward every other host and the gateway WireGuard for the orgs'
//     external peers (wireguard.ts);
//   - the `.internal` DNS service at fdaa::3 and the orgs' ::3 (dns-service.ts);
//   - SNAT66 through the egress TUN, when the topology gives this host an egress address
//     (egress.ts, ipv6-forwarding.ts);
//   - the status socket (status.ts) and the Prometheus metrics (metrics.ts), on the host
//     config's `metrics` address (default 127.0.0.1:9586, in the host's namespace).
// Topology edits apply as they are saved; a bad edit is refused and the running state kept.
// By default (unless "offload": false in the host config; issue 5) machine TUNs and the egress
// are vnet_hdr queues with TSO and checksum offload (machine-offload.ts); the router's checks
// run on every packet either way. One 100 ms tick drives the WireGuard timers, expiry and
// retries; every readiness callback ends by flushing what it queued.
import { DnsStats } from '../dns/stats.ts';
import { formatAddress } from '../ipv6/index.ts';
import { AeadPool, DEFAULT_WORKERS } from '../noise/index.ts';
import { KeyLog } from '../keylog.ts';
import { MetricsServer } from '../metrics/index.ts';
import type { Logger } from '../log.ts';
import { COUNTERS, MACHINE_MTU, Router } from '../router/router.ts';
import {
  DEFAULT_METRICS_ADDRESS, describeDiff, dnsView, resolveLocalHost, topologyDigest,
  type HostConfig, type Host, type Machine, type Peer, type Topology, type TopologyDiff, type TopologySource,
} from '../topology/index.ts';
import { FileStore, watchTopology } from '../store/index.ts';
import { readPrivateKey } from './config-files.ts';
import { CaptureTap, FROM, TO } from './capture.ts';
import { DnsService } from './dns-service.ts';
import { Egress } from './egress.ts';
import { MachineOffload } from './machine-offload.ts';
import { offloadsFromEnv } from '../tun/wg-interface.ts';
import { MACHINE_OFFLOADS, MachineTuns } from './machines.ts';
import { VNET_HDR_LEN, offloadFlagNames } from '../tun/index.ts';
import { hostMetrics, networkNamespace } from './metrics.ts';
import { StatusServer } from './status.ts';
import { HostWireGuard } from './wireguard.ts';
import { HostServices } from './services.ts';

const TICK_MS = 100;
const EXPIRE_EVERY_TICKS = 100; // the router's migration flows
const RETRY_EVERY_TICKS = 10; // machines that failed to set up

/** Whether an edit's diff names a machine on the host (before or after) or a peer of its gateway. */
function touchesHost(d: TopologyDiff, hostId: number): boolean {
  const m = d.machines;
  const on = (x: Machine) => x.host === hostId;
  const gw = (x: Peer) => x.gateway === hostId;
  return [m.added, m.removed, m.started, m.stopped].some((l) => l.some(on)) ||
    [m.updated, m.moved].some((l) => l.some((c) => on(c.before) || on(c.after))) ||
    [d.peers.added, d.peers.removed].some((l) => l.some(gw)) || d.peers.updated.some((c) => gw(c.before) || gw(c.after));
}

export class SixpnHost {
  private topology: Topology;
  private readonly host: Host;
  private readonly log: Logger;
  private readonly watcher: TopologySource;
  readonly wg: HostWireGuard;
  readonly router: Router;
  readonly machines: MachineTuns;
  /** Offload mode's glue (null with plain TUNs). */
  readonly offload: MachineOffload | null;
  private dns: DnsService | null = null; // fdaa::3 and the orgs' ::3
  private egress: Egress | null = null; // SNAT66 to the Internet, when the host has an egress address
  /** Static egress per app, autostart and autostop (services.ts). */
  readonly services: HostServices;
  private readonly egressAddress: Uint8Array | undefined;
  private status: StatusServer | null = null;
  /** UDP DNS answers by type and rcode, and their latency (metrics), seen at the service's door. */
  readonly dnsStats = new DnsStats();
  private metricsServer: MetricsServer | null = null;
  private metricsError: string | null = null;
  private applies = 1; // topologies applied, the first included
  private digest = { applies: 0, text: '' }; // topologyDigest is O(topology): once per apply, when asked
  /** The Wireshark key log of both devices ("keylog" in the host config), or null. */
  private readonly keylog: KeyLog | null;
  private lastApplyUnixMs = Date.now();
  /** `sixpn capture`: read once per packet (`tap.on`) on every path the router sees. */
  readonly tap: CaptureTap;
  private readonly ticker: NodeJS.Timeout;
  private ticks = 0;
  private busy: Promise<void> = Promise.resolve(); // machine setup runs one change at a time
  private retrySetup = false; // a machine failed to set up: try again on the next second
  private closed = false;

  private constructor(config: HostConfig, log: Logger, key: Uint8Array, pollMs: number) {
    this.log = log;
    this.watcher = (config.source ?? watchTopology)( // config.source: an etcd store (src/cli/up.ts)
      config.topology,
      (next, diff, previous) => {
        log.info(`topology changed: ${describeDiff(diff).join('; ')}`);
        this.apply(next, diff, previous);
      },
      (err) => log.error(`topology edit refused, keeping the running state: ${err.message}`),
      { intervalMs: pollMs },
    );
    this.topology = this.watcher.current;
    const local = resolveLocalHost(config, this.topology);
    this.host = local.host;
    this.egressAddress = local.egress;
    const offload = config.offload !== false; // default on; "offload": false for plain TUNs
    this.keylog = config.keylog !== undefined ? KeyLog.open(config.keylog, log) : null;
    const tap = (this.tap = new CaptureTap({ topology: () => this.topology, hostId: this.host.id, log }));
    AeadPool.configure(config.workers ?? DEFAULT_WORKERS); // "workers": before the devices, whose queues use it
    this.wg = new HostWireGuard({
      log,
      host: this.host,
      privateKey: key,
      listenPort: local.listenPort,
      fromMesh: (hostId, buf, off, len) => {
        if (tap.on) tap.mesh(hostId, FROM, buf, off, len);
        this.router.fromMesh(hostId, buf, off, len);
      },
      fromPeer: (peer, buf, off, len) => {
        if (tap.on) tap.peer(peer, FROM, buf, off, len);
        this.router.fromPeer(peer, buf, off, len);
      },
      afterRound: () => this.machines.flush(),
      udpOffloads: offloadsFromEnv(process.env),
      ...(this.keylog !== null ? { deviceOptions: this.keylog.deviceOptions() } : {}),
    });
    this.machines = new MachineTuns({
      offload,
      log,
      onPacket: offload
        ? (lm, buf, off, len) => {
          if (tap.on) tap.machine(lm.machine, FROM, buf, off + VNET_HDR_LEN, len - VNET_HDR_LEN);
          this.offload!.fromMachine(lm.machine, buf, off, len);
        }
        : (lm, buf, off, len) => {
          if (tap.on) tap.machine(lm.machine, FROM, buf, off, len);
          this.router.fromMachine(lm.machine, buf, off, len);
        },
      afterRead: () => {
        this.machines.flush();
        this.wg.flush();
      },
      onLost: () => (this.retrySetup = true),
      onClose: (lm) => this.egress?.forgetMachine(lm.slot), // its mappings go with it
    });
    this.router = new Router(this.topology, this.host.id, {
      toMachine: (m, buf, off, len) => {
        if (tap.on) tap.machine(m, TO, buf, off, len);
        if (this.offload === null) this.machines.queue(m, buf, off, len);
        else this.offload.toMachine(this.machines, m, buf, off, len);
      },
      toMesh: (host, buf, off, len) => {
        if (tap.on) tap.mesh(host, TO, buf, off, len);
        this.wg.mesh.device.sendPacket(buf, off, len);
      },
      toPeer: (peer, buf, off, len) => {
        if (tap.on) tap.peer(peer, TO, buf, off, len);
        this.wg.gateway.device.sendPacket(buf, off, len);
      },
      toDns: (buf, off, len) => {
        this.dnsStats.query(buf, off, len, performance.now());
        this.dns?.packet(buf, off, len);
      },
      toEgress: (m, buf, off, len) => {
        // only a packet read from a machine goes to the egress: the machine being read
        const lm = this.machines.reading;
        if (this.egress === null || lm === null || lm.machine !== m) return false;
        const id = this.egress.egressOf(m.app);
        if (this.offload === null) return this.egress.send(lm.slot, buf, off, len, id);
        return this.offload.toEgress(this.egress, lm.slot, id, buf, off, len);
      },
    }, { meshMtu: MACHINE_MTU });
    this.offload = offload ? new MachineOffload(this.router) : null;
    this.services = new HostServices({
      host: this.host, log, router: this.router, store: config.writer ?? new FileStore(config.topology), egress: () => this.egress,
    });
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  /** Starts the host: mesh, DNS, egress, machines, UAPI and status sockets. Throws on a bad config or topology. */
  static async start(config: HostConfig, log: Logger, opts: { pollMs?: number } = {}): Promise<SixpnHost> {
    const { key, warnings } = readPrivateKey(config.privateKeyFile);
    for (const w of warnings) log.error(w);
    const h = new SixpnHost(config, log, key, opts.pollMs ?? 1000);
    key.fill(0);
    try {
      h.checkOwnKey(config.privateKeyFile);
      h.wg.sync(h.topology);
      h.dns = await h.startDns(config);
      if (h.egressAddress !== undefined) h.egress = await h.openEgress(config, h.egressAddress);
      await h.services.syncEgress(h.topology);
      await h.syncMachines();
      await h.wg.listenUapi(config.meshInterface ?? `6pn-${h.host.name}`.slice(0, 15));
      h.status = await StatusServer.listen(h.host.name, {
        status: () => h.snapshot(),
        conntrack: () => h.egress?.list() ?? [],
        capture: (socket, json) => h.tap.serve(socket, json),
      });
      await h.startMetrics(config.metrics ?? DEFAULT_METRICS_ADDRESS);
    } catch (err) {
      await h.close();
      throw err;
    }
    log.info(`host ${h.host.name} up: ${h.machines.size} machines, mesh port ${h.wg.mesh.device.listenPort}`);
    return h;
  }

  /**
   * The private key must be this host's: its public key is the one the topology gives the host
   * (else every other host would refuse our handshakes, silently). Both keys are named.
   */
  private checkOwnKey(keyFile: string): void {
    const ours = this.wg.mesh.device.identity?.publicKey;
    if (ours === undefined || Buffer.from(ours).equals(Buffer.from(this.host.publicKey))) return;
    throw new Error(
      `host ${this.host.name}: the private key in ${keyFile} is the key of public key ${Buffer.from(ours).toString('base64')}, ` +
        `but the topology gives host ${this.host.name} public key ${this.host.publicKeyBase64}; ` +
        'start with the key made for this host (sixpn host add), or correct its publicKey in the topology',
    );
  }

  /** The machine TUNs' offloads ("tun-csum tso4 tso6"), or "none" with plain TUNs. */
  private machineOffloads(): string {
    return this.offload !== null ? offloadFlagNames(MACHINE_OFFLOADS) : 'none';
  }

  /** /metrics on `address` (false: none). A failure to listen is logged; forwarding goes on without metrics. */
  private async startMetrics(address: string | false): Promise<void> {
    if (address === false) return;
    const metrics = hostMetrics({
      host: this.host.name,
      router: this.router.counters,
      offload: this.offload?.counters ?? null,
      machineTuns: () => this.machines.counters,
      machines: () => this.machines.byId.values(),
      devices: () => [
        { device: 'mesh', dev: this.wg.mesh.device, port: this.wg.mesh.counters, offloads: () => this.wg.mesh.offloadNames(), peers: () => this.wg.meshPeers(this.topology) },
        { device: 'gateway', dev: this.wg.gateway.device, port: this.wg.gateway.counters, offloads: () => this.wg.gateway.offloadNames(), peers: () => this.wg.gatewayPeers() },
      ],
      machineOffloads: () => this.machineOffloads(),
      egress: () => this.egress?.status() ?? null,
      dns: () => (this.dns === null ? null : { counters: this.dns.counters, stats: this.dnsStats, tun: this.dns.tunCounters }),
      topology: () => {
        const st = this.watcher.status?.() as { revision?: number; connected?: boolean } | undefined;
        return { revision: st?.revision || this.applies, applies: this.applies, lastApplyUnixMs: this.lastApplyUnixMs, connected: st?.connected ?? null };
      },
    });
    try {
      this.metricsServer = await MetricsServer.listen(metrics, address, this.log);
    } catch (err) {
      this.metricsError = `${address}: ${(err as Error).message}`;
      this.log.error(`metrics: cannot serve on ${this.metricsError}; running without metrics`, { address });
    }
  }

  // ---- the DNS service and the egress: started once, wired to the router and the machines ----

  /** The DNS service answers; its replies come back through router.fromLocal. */
  private startDns(config: HostConfig): Promise<DnsService> {
    const local = () => [...this.topology.machinesOnHost(this.host.id), ...this.topology.peersOnGateway(this.host.id)];
    return DnsService.start({
      view: dnsView(() => this.topology),
      upstreams: config.dnsUpstream, // empty: the host's /etc/resolv.conf
      networks: () => local().map((x) => x.network),
      log: this.log,
      mtu: MACHINE_MTU,
      offload: this.offload !== null,
    }, {
      deliver: (buf, off, len) => {
        this.dnsStats.reply(buf, off, len, performance.now());
        this.router.fromLocal(buf, off, len);
      },
      flush: () => {
        this.machines.flush();
        this.wg.gateway.flush();
      },
    });
  }

  /** SNAT66 on the egress TUN; replies go to the machine of their slot. */
  private openEgress(config: HostConfig, address: Uint8Array): Promise<Egress> {
    return Egress.open({
      address: formatAddress(address, 0),
      deliver: (slot, buf, off, len) => {
        const lm = this.machines.bySlot(slot);
        if (lm === undefined) return;
        if (this.tap.on) this.tap.machine(lm.machine, TO, buf, off + (this.offload !== null ? VNET_HDR_LEN : 0), len - (this.offload !== null ? VNET_HDR_LEN : 0));
        this.machines.queue(lm.machine, buf, off, len);
      },
      afterRound: () => this.machines.flush(),
      ...(config.uplink ? { uplink: config.uplink } : {}),
      ...(this.offload !== null ? { vnetHdr: true } : {}),
      onError: (e) => this.log.error(`egress: ${e.message}`, { egress: formatAddress(address, 0) }),
    });
  }

  // ---- topology ----

  /**
   * A change of the topology. An edit applied in place (`next` is `previous`, patch.ts) is
   * followed at its own cost, from its diff: the mesh peers of the hosts it names, this gateway's
   * peers, the static egress of the apps it names, this host's machines and DNS addresses only
   * when it touches them. A topology built again (a file edit, a whole reload) is followed whole.
   */
  private apply(next: Topology, diff: TopologyDiff, previous: Topology): void {
    this.topology = next;
    this.applies++;
    this.lastApplyUnixMs = Date.now();
    const rebuilt = next !== previous;
    this.router.setTopology(next, rebuilt ? undefined : diff);
    if (rebuilt) this.wg.sync(next);
    else this.wg.apply(diff);
    if (rebuilt || touchesHost(diff, this.host.id)) {
      void this.dns?.sync();
      this.busy = this.busy.then(() => this.syncMachines()).catch((e: Error) => this.log.error(`machines: ${e.message}`));
    }
    const egress = () => (rebuilt ? this.services.syncEgress(next) : this.services.applyEgress(diff));
    this.busy = this.busy.then(egress).catch((e: Error) => this.log.error(`static egress: ${e.message}`));
  }

  private topologyDigest(): string {
    if (this.digest.applies !== this.applies) this.digest = { applies: this.applies, text: topologyDigest(this.topology) };
    return this.digest.text;
  }

  private async syncMachines(): Promise<void> {
    const want = new Map(this.topology.machinesOnHost(this.host.id).map((m) => [m.id, m]));
    for (const [id, lm] of [...this.machines.byId]) {
      const m = want.get(id);
      if (m === undefined || m.address.some((b, i) => b !== lm.machine.address[i])) {
        this.machines.close(lm);
        lm.log.info(`machine ${id}: removed from this host`);
      } else this.machines.setMachine(lm, m);
    }
    for (const m of want.values()) {
      if (this.machines.byId.has(m.id) || this.closed) continue;
      try {
        const lm = await this.machines.open(m);
        lm.log.info(`machine ${m.id} (${m.app}) at ${m.addressText}${m.started ? '' : ' (stopped)'}`);
      } catch (err) {
        this.retrySetup = true;
        this.log.error(`machine ${m.id}: ${(err as Error).message} (will retry)`, { machine: m.id, app: m.app, org: m.org });
      }
    }
  }

  private tick(): void {
    if (this.closed) return;
    this.wg.tick();
    this.router.services.release(); // held packets (autostart) past their time
    this.machines.flush();
    if (++this.ticks % EXPIRE_EVERY_TICKS === 0) {
      this.router.expire();
      this.dnsStats.expire(performance.now());
    }
    if (this.ticks % RETRY_EVERY_TICKS === 0) this.services.autostop(); // machines idle past their service's autostop
    if (this.ticks % RETRY_EVERY_TICKS === 0 && this.retrySetup) {
      this.retrySetup = false;
      this.busy = this.busy.then(() => this.syncMachines()).catch((e: Error) => this.log.error(`machines: ${e.message}`));
    }
  }

  // ---- status ----

  snapshot(): unknown {
    const wg = this.wg.status(this.topology);
    const machines = [...this.machines.byId.values()];
    return {
      host: this.host.name,
      hostId: this.host.id,
      topology: this.topologyDigest(),
      store: this.watcher.status?.() ?? null,
      applied: { count: this.applies, lastUnixMs: this.lastApplyUnixMs },
      metrics: { url: this.metricsServer?.url ?? null, namespace: networkNamespace(), error: this.metricsError },
      machinesReady: machines.length === this.topology.machinesOnHost(this.host.id).length,
      meshPort: wg.meshPort,
      gatewayPort: wg.gatewayPort,
      externalPeers: wg.externalPeers,
      router: Object.fromEntries(COUNTERS.map((c) => [c, this.router.counters[c]])),
      dns: this.dns === null ? null : { ...this.dns.counters, tun: this.dns.tunCounters },
      egress: this.egress === null ? null : this.egress.status(),
      services: this.services.status(),
      ...(this.offload !== null ? { offload: { ...this.offload.counters } } : {}),
      offloads: {
        machineTuns: this.machineOffloads(),
        mesh: this.wg.mesh.offloadNames() || 'none',
        gateway: this.wg.gateway.offloadNames() || 'none',
        aeadWorkers: AeadPool.current()?.size ?? 0,
      },
      machineTuns: { ...this.machines.counters },
      meshIo: { ...this.wg.mesh.counters },
      mesh: wg.mesh,
      gateway: wg.gateway,
      gatewayIo: { ...this.wg.gateway.counters },
      peers: wg.peers,
      machines: machines.map((lm) => ({
        id: lm.machine.id,
        app: lm.machine.app,
        org: lm.machine.org,
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
    this.tap.close();
    this.machines.closeAll();
    this.wg.closeDevices();
    await this.dns?.close();
    await this.egress?.close();
    await this.wg.closeUapi();
    await this.status?.close();
    await this.metricsServer?.close();
    this.keylog?.close();
  }
}

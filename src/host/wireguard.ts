// The host's two WireGuard devices (src/wg, each on its own UDP sockets) and their UAPI sockets
// (`wg show 6pn-<host>`, `wg show 6pg-<host>`):
//   mesh     every other host: its key, endpoint, and its /48 in swapped form as allowed IPs,
//            so one entry per host does cryptokey routing (DESIGN.md "Addresses");
//   gateway  the orgs' external peers whose gateway is this host, on the mesh port + 1 with the
//            host's key: each peer's key and its /120.
// Both follow the topology (`sync`, or `apply` of one edit's diff); decrypted packets come out as (packet, host id) and
// (packet, peer) for the router.
import { meshHostPrefix } from '../ipv6/index.ts';
import type { Logger } from '../log.ts';
import { MACHINE_MTU } from '../router/router.ts';
import { changed } from '../topology/index.ts';
import type { Host, Peer, Topology, TopologyDiff } from '../topology/index.ts';
import { UapiServer } from '../uapi/server.ts';
import { Endpoint } from '../wg/endpoint.ts';
import type { DeviceOptions } from '../wg/device.ts';
import type { Peer as WgPeer } from '../wg/peer.ts';
import { DeviceSockets, type PortOffloads } from '../tun/device-sockets.ts';

/** The longest wait before the handshake with a mesh peer added (greet). */
const GREET_JITTER_MS = 300;
/** The host with the higher public key greets this much later, so two hosts started together do not cross. */
const GREET_DEFER_MS = 1000;

export interface HostWireGuardOptions {
  readonly log: Logger;
  readonly host: Host;
  readonly privateKey: Uint8Array;
  /** The mesh's UDP port; the gateway listens on the next one. */
  readonly listenPort: number;
  /** A packet from another host's machine (swapped form), with that host's id. */
  fromMesh(hostId: number, buf: Uint8Array, off: number, len: number): void;
  /** A packet from an external peer of this gateway. */
  fromPeer(peer: Peer, buf: Uint8Array, off: number, len: number): void;
  /** After each round of received datagrams: flush the machines' writes. */
  afterRound(): void;
  /** UDP GSO/GRO on the mesh and gateway sockets (default on; SIXPN_UDP_GSO=0 / SIXPN_UDP_GRO=0). */
  readonly udpOffloads?: PortOffloads;
  /** More options of both devices (the key log's backend and handshake hook, src/keylog.ts). */
  readonly deviceOptions?: DeviceOptions;
}

export class HostWireGuard {
  /** To every other host. */
  readonly mesh: DeviceSockets;
  /** External WireGuard peers of the orgs connect here (mesh port + 1, the host's key). */
  readonly gateway: DeviceSockets;
  private readonly host: Host;
  private readonly log: Logger;
  private readonly hostOfPeer = new Map<WgPeer, number>();
  private readonly externalOfPeer = new Map<WgPeer, Peer>();
  private meshUapi: UapiServer | null = null;
  private closed = false;
  private gatewayUapi: UapiServer | null = null;

  constructor(opts: HostWireGuardOptions) {
    this.host = opts.host;
    this.log = opts.log;
    this.mesh = new DeviceSockets(opts.log, (buf, off, len, peer) => {
      const hostId = this.hostOfPeer.get(peer);
      if (hostId !== undefined) opts.fromMesh(hostId, buf, off, len);
    }, { ...opts.deviceOptions, mtu: MACHINE_MTU }, opts.udpOffloads);
    this.mesh.afterRound = () => {
      opts.afterRound();
      this.gateway.flush(); // mesh → external peer goes out in the same round
    };
    this.mesh.device.setPrivateKey(opts.privateKey);
    this.mesh.bind(opts.listenPort);
    this.gateway = new DeviceSockets(opts.log, (buf, off, len, wp) => {
      const p = this.externalOfPeer.get(wp);
      if (p !== undefined) opts.fromPeer(p, buf, off, len);
    }, { ...opts.deviceOptions, mtu: MACHINE_MTU }, opts.udpOffloads);
    this.gateway.afterRound = () => {
      opts.afterRound();
      this.mesh.flush();
    };
    this.gateway.device.setPrivateKey(opts.privateKey);
    this.gateway.bind(opts.listenPort + 1);
  }

  /** Brings both devices' peers in line with the topology. */
  sync(topology: Topology): void {
    this.syncMesh(topology);
    this.syncGateway(topology);
  }

  /**
   * Follows one edit of the topology in force, at the cost of the edit: the mesh peers of the
   * hosts its diff names, the gateway's peers it names on this gateway (the same as sync would).
   */
  apply(diff: TopologyDiff): void {
    const h = diff.hosts;
    if (changed(h)) {
      const come = [...h.added, ...h.updated.map((c) => c.after)].filter((x) => x.id !== this.host.id);
      const keys = new Set(come.map((x) => x.publicKeyBase64));
      for (const x of [...h.removed, ...h.updated.map((c) => c.before)]) {
        const peer = this.mesh.device.peer(x.publicKey);
        if (peer !== undefined && this.hostOfPeer.has(peer) && !keys.has(x.publicKeyBase64)) this.removeMeshPeer(peer, x.name);
      }
      for (const x of come) this.meshPeer(x);
    }
    const p = diff.peers;
    const mine = (x: Peer) => x.gateway === this.host.id;
    const come = [...p.added, ...p.updated.map((c) => c.after)].filter(mine);
    const gone = [...p.removed, ...p.updated.map((c) => c.before)].filter(mine);
    const keys = new Set(come.map((x) => x.publicKeyBase64));
    for (const x of gone) {
      const wp = this.gateway.device.peer(x.publicKey);
      if (wp !== undefined && this.externalOfPeer.has(wp) && !keys.has(x.publicKeyBase64)) this.removeGatewayPeer(wp);
    }
    for (const x of come) this.gatewayPeer(x);
  }

  /** One mesh peer per other host: its key, endpoint, and its /48 in swapped form. */
  private syncMesh(topology: Topology): void {
    const wanted = new Map(topology.hosts.filter((h) => h.id !== this.host.id).map((h) => [h.publicKeyBase64, h]));
    for (const [peer, hostId] of [...this.hostOfPeer]) {
      const h = topology.host(hostId);
      if (h === undefined || !wanted.has(Buffer.from(peer.publicKey).toString('base64'))) this.removeMeshPeer(peer, h?.name ?? String(hostId));
    }
    for (const h of wanted.values()) this.meshPeer(h);
  }

  private removeMeshPeer(peer: WgPeer, name: string): void {
    this.mesh.device.removePeer(peer);
    this.hostOfPeer.delete(peer);
    this.log.info(`mesh peer ${name} removed`, { device: 'mesh', peer: name });
  }

  /** The mesh peer of host `h`, added or brought up to date (endpoint, allowed IPs). */
  private meshPeer(h: Host): void {
    const d = this.mesh.device;
    const peer = d.addPeer(h.publicKey);
    const added = !this.hostOfPeer.has(peer);
    if (added) this.log.info(`mesh peer ${h.name} at ${h.endpoint.address} port ${h.endpoint.port}`, { device: 'mesh', peer: h.name });
    this.hostOfPeer.set(peer, h.id);
    const ep = Endpoint.parse(h.endpoint.family === 6 ? `[${h.endpoint.address}]:${h.endpoint.port}` : `${h.endpoint.address}:${h.endpoint.port}`);
    if (peer.endpoint === null || !peer.endpoint.sameRemote(ep)) peer.endpoint = ep;
    const prefix = new Uint8Array(16);
    meshHostPrefix(prefix, 0, h.id);
    d.allowedIps.removeValue(peer);
    d.allowedIps.insert({ family: 6, addr: prefix, prefixLen: 48 }, peer);
    if (added) this.greet(peer);
  }

  /**
   * A handshake with a mesh peer just added (at start too): after a restart (a crash) the other
   * host still holds a session with our old process and would send into it, unanswered, until
   * its own timers gave up (15 s); a new session replaces it now (its keepalive confirms the
   * keys both ways). After a random 0-GREET_JITTER_MS, GREET_DEFER_MS more for the higher public
   * key of the two, and only if no session has begun meanwhile: two hosts started together would
   * otherwise cross their initiations, and each drop the other's response (then wait
   * REKEY_TIMEOUT before trying again); this way the lower key's greeting is answered first.
   */
  private greet(peer: WgPeer): void {
    const ours = this.mesh.device.identity?.publicKey;
    const later = ours !== undefined && Buffer.compare(Buffer.from(ours), Buffer.from(peer.publicKey)) > 0;
    const t = setTimeout(() => {
      if (this.closed || !this.hostOfPeer.has(peer) || peer.current !== null || peer.next !== null) return;
      this.mesh.device.sendInitiation(peer, false);
      this.mesh.flush();
    }, Math.random() * GREET_JITTER_MS + (later ? GREET_DEFER_MS : 0));
    t.unref();
  }

  /** External peers whose gateway is this host: their key and their /120 (cryptokey routing). */
  private syncGateway(topology: Topology): void {
    const wanted = new Map(topology.peersOnGateway(this.host.id).map((p) => [p.publicKeyBase64, p]));
    for (const wp of [...this.externalOfPeer.keys()]) {
      if (!wanted.has(Buffer.from(wp.publicKey).toString('base64'))) this.removeGatewayPeer(wp);
    }
    for (const p of wanted.values()) this.gatewayPeer(p);
  }

  private removeGatewayPeer(wp: WgPeer): void {
    const p = this.externalOfPeer.get(wp)!;
    this.gateway.device.removePeer(wp);
    this.externalOfPeer.delete(wp);
    this.log.info(`gateway peer ${p.name} (${p.org}) removed`, { device: 'gateway', peer: p.name, org: p.org });
  }

  private gatewayPeer(p: Peer): void {
    const d = this.gateway.device;
    const wp = d.addPeer(p.publicKey);
    if (!this.externalOfPeer.has(wp)) this.log.info(`gateway peer ${p.name} (${p.org}) at ${p.addressText}`, { device: 'gateway', peer: p.name, org: p.org });
    this.externalOfPeer.set(wp, p);
    d.allowedIps.removeValue(wp);
    d.allowedIps.insert({ family: 6, addr: p.prefix, prefixLen: 120 }, wp);
  }

  /** The UAPI sockets: `meshName` (default 6pn-<host>) and the gateway's 6pg… beside it. */
  async listenUapi(meshName: string): Promise<void> {
    const gatewayName = `6pg${meshName.slice(3)}`;
    const onError = (name: string) => (e: unknown) => this.log.error(`uapi ${name}: ${String(e)}`, { device: name });
    this.meshUapi = await UapiServer.listen(meshName, this.mesh.uapi, { watchIntervalMs: 0, onError: onError(meshName) });
    this.gatewayUapi = await UapiServer.listen(gatewayName, this.gateway.uapi, { watchIntervalMs: 0, onError: onError(gatewayName) });
  }

  /** Timers of both devices (the host's 100 ms tick), then what they queued. */
  tick(): void {
    this.mesh.device.tick();
    this.gateway.device.tick();
    this.flush();
  }

  flush(): void {
    this.mesh.flush();
    this.gateway.flush();
  }

  /** The mesh and gateway parts of `sixpn status`. */
  status(topology: Topology): { meshPort: number; gatewayPort: number; externalPeers: unknown[]; gateway: unknown; mesh: unknown; peers: unknown[] } {
    return {
      meshPort: this.mesh.device.listenPort,
      gatewayPort: this.gateway.device.listenPort,
      externalPeers: [...this.externalOfPeer].map(([wp, p]) => ({
        name: p.name,
        org: p.org,
        address: p.addressText,
        endpoint: wp.endpoint?.toString() ?? null,
        lastHandshakeUnixMs: wp.lastHandshakeUnixMs,
        rxBytes: wp.rxBytes,
        txBytes: wp.txBytes,
      })),
      gateway: { ...this.gateway.device.counters },
      mesh: { ...this.mesh.device.counters },
      peers: [...this.hostOfPeer].map(([p, id]) => ({
        host: topology.host(id)?.name ?? id,
        endpoint: p.endpoint?.toString() ?? null,
        lastHandshakeUnixMs: p.lastHandshakeUnixMs,
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
      })),
    };
  }

  /** The mesh peers by host name (metrics). */
  *meshPeers(topology: Topology): Iterable<{ peer: WgPeer; name: string }> {
    for (const [peer, id] of this.hostOfPeer) yield { peer, name: topology.host(id)?.name ?? String(id) };
  }

  /** The gateway's external peers with their names and orgs (metrics). */
  *gatewayPeers(): Iterable<{ peer: WgPeer; name: string; org: string }> {
    for (const [peer, p] of this.externalOfPeer) yield { peer, name: p.name, org: p.org };
  }

  /** Closes both devices (their sockets; peers and keys dropped). */
  closeDevices(): void {
    this.closed = true;
    this.mesh.close();
    this.gateway.close();
  }

  async closeUapi(): Promise<void> {
    await this.meshUapi?.close();
    await this.gatewayUapi?.close();
  }
}

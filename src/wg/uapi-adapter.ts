// The device as the UAPI socket sees it (src/uapi/types.ts): `get` snapshots the state,
// `set` applies a request that src/uapi has already parsed and validated as a whole, in
// wireguard-go's order (device/uapi.go). Binding the listen port is the one step that can fail;
// it runs first, so a failed request changes nothing.
import { isZero } from '../noise/index.ts';
import type { UapiDevice, UapiDeviceState, UapiSet } from '../uapi/types.ts';
import { UAPI_EADDRINUSE } from '../uapi/constants.ts';
import type { Device } from './device.ts';
import { Endpoint } from './endpoint.ts';

export interface UapiHostHooks {
  /** Binds the listen port (0 = pick one); returns the port bound; throws if it is taken. */
  bindPort(port: number): number;
  /** Counters of the I/O side (sockets, TUN, offloads) for `stats=1`, beside the device's. */
  stats?(): Record<string, number | string>;
  /** Applies SO_MARK to the sockets (0 = none). */
  setFwmark(mark: number): void;
}

export class DeviceUapi implements UapiDevice {
  private readonly device: Device;
  private readonly hooks: UapiHostHooks;
  private privateKey: Uint8Array | null = null;

  constructor(device: Device, hooks: UapiHostHooks) {
    this.device = device;
    this.hooks = hooks;
  }

  uapiGet(): UapiDeviceState {
    const d = this.device;
    return {
      privateKey: this.privateKey,
      listenPort: d.listenPort,
      fwmark: d.fwmark,
      peers: [...d.peers.values()].map((p) => ({
        publicKey: p.publicKey,
        presharedKey: p.presharedKey,
        endpoint: p.endpoint?.toString() ?? null,
        lastHandshakeUnixMs: p.lastHandshakeUnixMs,
        txBytes: p.txBytes,
        rxBytes: p.rxBytes,
        persistentKeepaliveS: p.persistentKeepaliveS,
        allowedIps: d.allowedIps.prefixesOf(p),
      })),
    };
  }

  uapiStats(): Record<string, number | string> {
    return { ...this.device.counters, peers: this.device.peers.size, ...this.hooks.stats?.() };
  }

  uapiSet(set: UapiSet): number {
    const d = this.device;
    if (set.listenPort !== undefined && (set.listenPort === 0 || set.listenPort !== d.listenPort)) {
      try {
        d.listenPort = this.hooks.bindPort(set.listenPort);
      } catch {
        return UAPI_EADDRINUSE;
      }
    }
    if (set.fwmark !== undefined && set.fwmark !== d.fwmark) {
      this.hooks.setFwmark(set.fwmark);
      d.fwmark = set.fwmark;
    }
    if (set.privateKey !== undefined) {
      const key = set.privateKey === null || isZero(set.privateKey, 0, 32) ? null : Uint8Array.from(set.privateKey);
      this.privateKey?.fill(0);
      this.privateKey = key;
      d.setPrivateKey(key);
    }
    if (set.replacePeers) for (const p of [...d.peers.values()]) d.removePeer(p);
    const own = d.identity?.publicKey ?? null;
    for (const change of set.peers) {
      if (own !== null && Buffer.compare(change.publicKey, own) === 0) continue;
      let peer = d.peer(change.publicKey);
      if (change.remove) {
        if (peer) d.removePeer(peer);
        continue;
      }
      if (peer === undefined) {
        if (change.updateOnly) continue;
        peer = d.addPeer(change.publicKey);
      }
      if (change.presharedKey !== undefined) peer.setPresharedKey(change.presharedKey);
      if (change.endpoint !== undefined) {
        const ep = new Endpoint();
        ep.set(change.endpoint.family, change.endpoint.addr, 0, change.endpoint.port);
        peer.endpoint = ep;
      }
      if (change.replaceAllowedIps) d.allowedIps.removeValue(peer);
      for (const c of change.allowedIpsRemove) d.allowedIps.remove(c, peer);
      for (const c of change.allowedIpsAdd) d.allowedIps.insert(c, peer);
      if (change.persistentKeepaliveS !== undefined) d.setPersistentKeepalive(peer, change.persistentKeepaliveS);
    }
    return 0;
  }
}

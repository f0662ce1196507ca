// MemoryDevice: a UapiDevice with no network, applying a UapiSet with exactly the semantics
// types.ts describes (wireguard-go's). Tests drive the socket with it; src/wg can check its own
// configuration handling against it.
import { chosenBackend, keyToHex } from '../noise/index.ts';
import type { Cidr, UapiDevice, UapiDeviceState, UapiPeerState, UapiSet } from './types.ts';
import { UAPI_EADDRINUSE } from './constants.ts';
import { formatEndpoint } from './text.ts';

export interface MemoryPeer {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  endpoint: string | null;
  persistentKeepaliveS: number;
  lastHandshakeUnixMs: number;
  txBytes: number;
  rxBytes: number;
  allowed: Map<string, Cidr>; // prefix key → prefix, in insertion order
}

export interface MemoryDeviceOptions {
  /** Ports that a set may not take: it fails with -EADDRINUSE and changes nothing. */
  portsInUse?: Iterable<number>;
  /** What listen_port=0 binds. */
  pickPort?: () => number;
}

function prefixKey(c: Cidr): string {
  return String.fromCharCode(c.prefixLen, ...c.addr);
}

export class MemoryDevice implements UapiDevice {
  privateKey: Uint8Array | null = null;
  publicKey: Uint8Array | null = null;
  listenPort = 0;
  fwmark = 0;
  readonly peers = new Map<string, MemoryPeer>(); // hex public key → peer
  private readonly owner = new Map<string, string>(); // prefix key → hex public key
  readonly portsInUse: Set<number>;
  /** Requests applied, and keepalives that turning persistent keepalive on would send now. */
  sets = 0;
  keepalivesSent = 0;
  private readonly pickPort: () => number;

  constructor(options: MemoryDeviceOptions = {}) {
    this.portsInUse = new Set(options.portsInUse ?? []);
    let next = 40000;
    this.pickPort = options.pickPort ?? (() => next++);
  }

  uapiGet(): UapiDeviceState {
    const peers: UapiPeerState[] = [];
    for (const p of this.peers.values()) {
      peers.push({
        publicKey: p.publicKey,
        presharedKey: p.presharedKey,
        endpoint: p.endpoint,
        lastHandshakeUnixMs: p.lastHandshakeUnixMs,
        txBytes: p.txBytes,
        rxBytes: p.rxBytes,
        persistentKeepaliveS: p.persistentKeepaliveS,
        allowedIps: [...p.allowed.values()],
      });
    }
    return { privateKey: this.privateKey, listenPort: this.listenPort, fwmark: this.fwmark, peers };
  }

  uapiSet(set: UapiSet): number {
    // Everything that can fail is checked before anything changes.
    if (set.listenPort !== undefined && set.listenPort !== 0 && set.listenPort !== this.listenPort && this.portsInUse.has(set.listenPort)) {
      return UAPI_EADDRINUSE;
    }
    this.sets++;
    if (set.privateKey !== undefined) {
      this.privateKey = set.privateKey === null ? null : set.privateKey.slice();
      this.publicKey = null;
      if (set.privateKey !== null) {
        const k = chosenBackend.x25519.importPrivate(set.privateKey);
        this.publicKey = k.publicKey.slice();
        k.zero();
      }
    }
    if (set.listenPort !== undefined) this.listenPort = set.listenPort === 0 ? this.pickPort() : set.listenPort;
    if (set.fwmark !== undefined) this.fwmark = set.fwmark;
    if (set.replacePeers) {
      this.peers.clear();
      this.owner.clear();
    }
    const self = this.publicKey === null ? '' : keyToHex(this.publicKey);
    for (const c of set.peers) {
      const hex = keyToHex(c.publicKey);
      if (hex === self) continue;
      let p = this.peers.get(hex);
      if (c.remove) {
        if (p !== undefined) this.removePeer(hex, p);
        continue;
      }
      if (p === undefined) {
        if (c.updateOnly) continue;
        p = {
          publicKey: c.publicKey.slice(),
          presharedKey: null,
          endpoint: null,
          persistentKeepaliveS: 0,
          lastHandshakeUnixMs: 0,
          txBytes: 0,
          rxBytes: 0,
          allowed: new Map(),
        };
        this.peers.set(hex, p);
      }
      if (c.presharedKey !== undefined) p.presharedKey = c.presharedKey === null ? null : c.presharedKey.slice();
      if (c.endpoint !== undefined) p.endpoint = formatEndpoint(c.endpoint);
      if (c.persistentKeepaliveS !== undefined) {
        if (p.persistentKeepaliveS === 0 && c.persistentKeepaliveS !== 0) this.keepalivesSent++;
        p.persistentKeepaliveS = c.persistentKeepaliveS;
      }
      if (c.replaceAllowedIps) {
        for (const k of p.allowed.keys()) this.owner.delete(k);
        p.allowed.clear();
      }
      for (const r of c.allowedIpsRemove) {
        const k = prefixKey(r);
        if (this.owner.get(k) === hex) {
          this.owner.delete(k);
          p.allowed.delete(k);
        }
      }
      for (const a of c.allowedIpsAdd) {
        const k = prefixKey(a);
        const prev = this.owner.get(k);
        if (prev !== undefined && prev !== hex) this.peers.get(prev)!.allowed.delete(k);
        this.owner.set(k, hex);
        p.allowed.set(k, a);
      }
    }
    return 0;
  }

  peer(publicKey: Uint8Array): MemoryPeer | undefined {
    return this.peers.get(keyToHex(publicKey));
  }

  private removePeer(hex: string, p: MemoryPeer): void {
    for (const k of p.allowed.keys()) this.owner.delete(k);
    this.peers.delete(hex);
  }
}

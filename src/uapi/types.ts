// The contract between the UAPI socket (this folder) and the WireGuard device (src/wg).
// The socket parses and validates a whole `set=1` request into a UapiSet before the device sees
// any of it, so the device can apply it all or nothing.

/** An allowed-IP prefix. */
export interface Cidr { family: 4 | 6; addr: Uint8Array /* 4 or 16 bytes, host bits cleared */; prefixLen: number }

export interface UapiPeerState {
  publicKey: Uint8Array; presharedKey: Uint8Array | null; endpoint: string | null; // "1.2.3.4:51820" or "[fd00::1]:51820"
  lastHandshakeUnixMs: number; // 0 = never
  txBytes: number; rxBytes: number; persistentKeepaliveS: number; allowedIps: Cidr[];
}

/** What `get=1` reports. listenPort is the port actually bound (0 only when none is). */
export interface UapiDeviceState { privateKey: Uint8Array | null; listenPort: number; fwmark: number; peers: UapiPeerState[] }

export interface UapiEndpoint { family: 4 | 6; addr: Uint8Array; port: number }

/**
 * One `public_key=` section of a set request. Sections are applied in order; the same key may
 * appear in several. How wireguard-go applies one (device/uapi.go), which the device follows:
 * - a section whose key is the device's own public key (after this request's private_key) is
 *   ignored;
 * - remove: the peer is removed if it exists; the parser leaves every other field empty;
 * - updateOnly: the section is ignored when the peer does not exist yet (it is not created);
 * - otherwise the peer is created if missing, then: presharedKey (null clears), endpoint,
 *   persistentKeepaliveS (turning it on from 0 sends a keepalive at once), then
 *   replaceAllowedIps (drop all of this peer's prefixes), then allowedIpsRemove (each removed
 *   only if this peer owns it), then allowedIpsAdd (each taken from whichever peer owns it).
 *   The parser has already folded the section's line order into these three steps.
 */
export interface UapiPeerChange {
  publicKey: Uint8Array; remove: boolean; updateOnly: boolean;
  presharedKey?: Uint8Array | null; // all-zero key on the wire = null (clear)
  endpoint?: UapiEndpoint; persistentKeepaliveS?: number;
  replaceAllowedIps: boolean; allowedIpsAdd: Cidr[]; allowedIpsRemove: Cidr[];
}

/**
 * A validated `set=1` request. Device fields first (privateKey null = clear; listenPort 0 = pick
 * a free port, and `get` then reports the real one), then replacePeers (remove every peer), then
 * the peer sections in order.
 */
export interface UapiSet { privateKey?: Uint8Array | null; listenPort?: number; fwmark?: number; replacePeers: boolean; peers: UapiPeerChange[] }

export interface UapiDevice {
  uapiGet(): UapiDeviceState;
  /** Applies a fully parsed and validated request; returns 0 or a negative errno. */
  uapiSet(set: UapiSet): number;
  /** sixpn's own `stats=1`: the device's counters (drops per reason…); absent → -EPROTO. */
  uapiStats?(): Record<string, number | string>;
}

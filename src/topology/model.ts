// The topology data model: orgs, apps, machines, hosts and external WireGuard peers, as the
// router and the DNS server read them once a topology file has been validated.
//
// Addresses are derived, never stored (seeds 003, 004):
//   fdaa (16) | network (32) | host (32) | instance (32) | free (16)
// A machine owns the /112 (org network, host id, instance id) and answers on ::2 in it:
// network 0x18, host 0x0a7b007d, instance 0xf066b83b → fdaa:0:18:a7b:7d:f066:b83b:2.
// Moving a machine to another host changes its address (the host field); the old one is kept in
// `previous`, with the host it was on, so the router can rewrite it to the new one (seed 002).
//
// Everything here is immutable once built; a topology change builds a new object graph.

import { IPV6_ADDR_LEN, encodeSixpn, formatAddress, ipFamily, machineAddress, parseAddress } from '../ipv6/index.ts';

// ---- Names and identifiers ----

/** Org, app, host names and process groups: one lower-case DNS label (RFC 1035 §2.3.1). */
export const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A machine id: 14 characters of [a-z0-9], unrelated to the instance id of the address. */
export const MACHINE_ID_RE = /^[a-z0-9]{14}$/;
/** A region: a three-letter code (ams, ord, syd). */
export const REGION_RE = /^[a-z]{3}$/;
/** WireGuard peer names; also a DNS label (`<name>._peer.internal`), so 63 characters at most. */
export const PEER_NAME_RE = /^[a-zA-Z0-9-]{1,63}$/;
/** Metadata keys (`<value>.<key>.kv._metadata.<app>.internal`). */
export const METADATA_KEY_RE = /^[A-Za-z0-9_-]{1,63}$/;
export const METADATA_VALUE_MAX_LEN = 255;
/** The process group of a machine that names none. */
export const DEFAULT_PROCESS_GROUP = 'app';

export const U32_MAX = 0xffffffff;

// ---- The model ----

export type MachineState = 'started' | 'stopped';

export interface Org {
  readonly name: string;
  /** 32-bit network id: the org owns fdaa:NNNN:NNNN::/48. Never 0 (fdaa::3 lives there). */
  readonly network: number;
}

export interface App {
  readonly name: string; // unique across the topology
  readonly org: string;
  /** Its service addresses (app-wide addresses the routers balance over its started machines). */
  readonly services: readonly Service[];
  /** Its own SNAT66 egress address per region (seed 000), if any: region → address. */
  readonly egress: readonly AppEgress[];
}

/**
 * The host field of every service address: `fdaa | network | 0:1 | 0 | N` (seed 004's
 * `<org /48>:0:1::N`). No host has this id, so no machine or peer address falls there.
 */
export const SERVICE_HOST = 1;
/** The largest N of `<org /48>:0:1::N` (the free field; the instance field is 0). */
export const SERVICE_INDEX_MAX = 0xffff;
/** The top-level name of service addresses: `<app>.sixpn` (AAAA: its service addresses). */
export { SERVICE_ZONE as SERVICE_DNS_SUFFIX } from '../dns/zone.ts';

export type ServiceProtocol = 'tcp' | 'udp';

export interface ServicePort {
  readonly port: number;
  readonly protocol: ServiceProtocol;
}

/** An app-wide address in some org's /48 (its own org's, or another's to expose the app there). */
export interface Service {
  readonly app: string;
  /** The app's org, whose machines serve it. */
  readonly org: string;
  /** The org whose /48 holds the address: the only one whose machines and peers reach it. */
  readonly clientOrg: string;
  readonly network: number;
  readonly address: Uint8Array;
  readonly addressText: string;
  readonly ports: readonly ServicePort[];
  /** Start a stopped machine of the app when a flow arrives and none is started. */
  readonly autostart: boolean;
  /** Stop a machine after this many seconds without flows (0: never), keeping minRunning started. */
  readonly autostopSeconds: number;
  readonly minRunning: number;
}

export interface AppEgress {
  readonly region: string;
  readonly address: Uint8Array;
  readonly text: string;
}

/** A UDP endpoint: an IPv4 or IPv6 address (text, IPv6 without brackets) and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

export interface Host {
  /** The 32-bit host field of the addresses of its machines. Never 0. */
  readonly id: number;
  readonly name: string;
  readonly region: string;
  /** Curve25519 public key of the host on the mesh (32 bytes) and its wg(8) base64 text. */
  readonly publicKey: Uint8Array;
  readonly publicKeyBase64: string;
  /** Where the host's mesh WireGuard listens. */
  readonly endpoint: Endpoint;
  /** The host's SNAT66 egress address (16 bytes), if it has one. */
  readonly egress?: Uint8Array;
}

export interface PreviousAddress {
  /** The machine's old ::2 (16 bytes); the old /112 is rewritten to the current one. */
  readonly address: Uint8Array;
  readonly text: string;
  /** The host the machine was on (the address's host field); it may be gone since. */
  readonly host: number;
  /** That host's name, when the entry names it by name (not by id): it must stay in the topology. */
  readonly hostName?: string;
}

export interface Machine {
  readonly id: string;
  readonly app: string;
  readonly org: string;
  /** The network id of the org (copied here for the packet path). */
  readonly network: number;
  readonly region: string;
  readonly processGroup: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Id of the host it runs on. */
  readonly host: number;
  /** 32-bit instance id: unique on its host. */
  readonly instance: number;
  readonly state: MachineState;
  readonly started: boolean;
  /** machineAddress(network, host, instance): the ::2 of its /112, and its RFC 5952 text. */
  readonly address: Uint8Array;
  readonly addressText: string;
  /** Addresses it had before migrations, oldest first. */
  readonly previous: readonly PreviousAddress[];
}

export interface Peer {
  /** `^[a-zA-Z0-9-]+$`, unique in its org. */
  readonly name: string;
  readonly org: string;
  readonly network: number;
  readonly publicKey: Uint8Array;
  readonly publicKeyBase64: string;
  /** The peer's interface address as written (fdaa:0:18:a7b:d6b:0:a:2) and its text. */
  readonly address: Uint8Array;
  readonly addressText: string;
  /** The /120 (low byte cleared), PEER_PREFIX_LEN bits. */
  readonly prefix: Uint8Array;
  readonly prefixText: string;
  /** Id of the gateway host whose gateway WireGuard it connects to: the address's host field. */
  readonly gateway: number;
}

/** A validated topology before indexing. */
export interface TopologyData {
  readonly orgs: readonly Org[];
  readonly apps: readonly App[];
  readonly hosts: readonly Host[];
  readonly machines: readonly Machine[];
  readonly peers: readonly Peer[];
}

// ---- Derived values ----

/** A new 16-byte machine address: fdaa | network | host | instance | ::2. */
export function deriveMachineAddress(network: number, host: number, instance: number): Uint8Array {
  const out = new Uint8Array(IPV6_ADDR_LEN);
  machineAddress(out, 0, network, host, instance);
  return out;
}

/** A service address: fdaa | network | 0:1 | 0 | n (seed 004's `<org /48>:0:1::N`). */
export function deriveServiceAddress(network: number, n: number): Uint8Array {
  const out = new Uint8Array(IPV6_ADDR_LEN);
  encodeSixpn(out, 0, network, SERVICE_HOST, 0, n);
  return out;
}

/** A 32-bit id as it reads in an address: 0x0a7b007d → "a7b:7d". */
export function formatId32(id: number): string {
  return `${(id >>> 16).toString(16)}:${(id & 0xffff).toString(16)}`;
}

/**
 * A 32-bit id from the topology file: a JSON integer (24), hex text ("0x18", "0x0a7b007d"), or
 * the two address groups ("a7b:7d", "0:18"). Undefined when it is none of those or out of range.
 */
export function parseId32(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 && value <= U32_MAX ? value : undefined;
  }
  if (typeof value !== 'string') return undefined;
  let m = /^0x([0-9a-fA-F]{1,8})$/.exec(value);
  if (m) return parseInt(m[1], 16);
  m = /^([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})$/.exec(value);
  if (m) return (parseInt(m[1], 16) * 0x10000 + parseInt(m[2], 16)) >>> 0;
  return undefined;
}

/**
 * "192.0.2.1:51820" or "[2001:db8::1]:51820". With defaultPort, the port may be left out
 * ("192.0.2.53", "2001:db8::53", "[2001:db8::53]"). Returns an error text instead of throwing.
 */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint | string {
  let addr: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (v6) {
    addr = v6[1];
    portText = v6[2];
  } else if (text.indexOf(':') !== text.lastIndexOf(':')) {
    addr = text; // bare IPv6, no port
  } else {
    const colon = text.indexOf(':');
    addr = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return `"${text}" has no port (write ip:port or [ipv6]:port)`;
    port = defaultPort;
  } else {
    if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535) {
      return `"${text}" has a bad port (1-65535)`;
    }
    port = Number(portText);
  }
  if (!v6 && ipFamily(addr) === 4) return { address: addr, port, family: 4 };
  const bytes = new Uint8Array(IPV6_ADDR_LEN);
  if (!parseAddress(addr, bytes, 0)) return `"${text}" is not an IPv4 or [IPv6] address with a port`;
  return { address: formatAddress(bytes, 0), port, family: 6 };
}

export function formatEndpoint(e: Endpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

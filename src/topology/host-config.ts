// The host's own settings for `sixpn up`: which host of the topology this process is, its
// private key, where the mesh listens, the uplink, the topology file, DNS upstreams and an
// egress override. They come from a small JSON file (`sixpn up -c FILE`), from flags, or both;
// flags win. Relative paths in the file are relative to the file's folder.
//
//   {
//     "host": "ams1",                          name or 32-bit id ("a7b:7d", "0x0a7b007d", 175833213)
//     "privateKeyFile": "ams1.key",            wg(8) base64 private key (wg genkey), mode 0600
//     "listenPort": 51820,                     default: the port of this host's endpoint in the topology
//     "uplink": "eth0",                        interface egress traffic leaves by
//     "topology": "/etc/sixpn/topology.json",  default /etc/sixpn/topology.json
//     "dnsUpstream": ["192.0.2.53", "[2001:db8::53]:53"],   resolvers for names outside .internal
//     "egress": "2001:db8:e::11",              overrides the host's egress address of the topology
//     "meshInterface": "6pn-ams1",             UAPI name of the mesh (`wg show 6pn-ams1`); the
//                                              gateway is the same with 6pg-; default 6pn-<host>
//     "offload": true,                         machine TUNs and the egress pass 64 KB TCP segments
//                                              and partial checksums (issue 5); default false
//     "store": "etcd://h1:2379,h2:2379",       the topology from etcd instead of the file (issue 12;
//                                              see stores.ts); with TLS: {"url": "etcds://…",
//                                              "ca": "ca.pem", "cert": "h1.pem", "key": "h1-key.pem"}
//     "metrics": "127.0.0.1:9586",             Prometheus /metrics over HTTP (issue 14), served in the
//                                              host's network namespace; default 127.0.0.1:9586;
//                                              "[::1]:9586", ":9586" (all addresses), false: none
//     "keylog": "/root/sixpn-keys.log",        appends the WireGuard session keys for Wireshark
//                                              (wg.keylog_file); a secret: off unless set
//     "workers": 0                             seal and open on N worker threads (0-8, issue 10);
//                                              default DEFAULT_WORKERS (src/noise/aead-pool.ts)
//   }
//
// Flags: --host, --private-key, --listen-port, --uplink, --topology, --dns (repeatable or
// comma-separated), --egress, --offload (alone, or with true or false), --store URL with
// --store-ca, --store-cert, --store-key FILE, --metrics ADDR|false, --keylog FILE, --workers N, and
// -c/--config FILE; `--flag value` or `--flag=value`.

import { dirname, resolve } from 'node:path';
import { DNS_PORT } from '../dns/wire.ts';
import { MAX_WORKERS } from '../noise/aead-pool.ts';
import { IPV6_ADDR_LEN, isSixpn, parseAddress } from '../ipv6/index.ts';
import { formatId32, parseEndpoint, parseId32 } from './model.ts';
import type { Endpoint, Host } from './model.ts';
import { DEFAULT_TOPOLOGY_FILE } from './stores.ts';
import type { TopologySourceFactory } from './stores.ts';
import type { Topology } from './topology.ts';
import type { TopologyStore } from './stores.ts';

export { DNS_PORT }; // defined once, in src/dns (the protocol's port)
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/; // IFNAMSIZ is 16 with the NUL
/** Where `sixpn up` serves /metrics unless the config says otherwise: loopback, in the host's namespace. */
export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:9586';
const LISTEN_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]*):[0-9]{1,5}$/;

export interface HostConfig {
  /** This process's host in the topology: a host name, or an id in any parseId32 form. */
  readonly host: string | number;
  readonly privateKeyFile: string; // absolute
  /** The mesh WireGuard port; undefined means the port of this host's endpoint. */
  readonly listenPort?: number;
  readonly uplink?: string;
  readonly topology: string; // absolute
  readonly dnsUpstream: readonly Endpoint[];
  readonly egress?: Uint8Array;
  /** UAPI name of the mesh WireGuard (`wg show NAME`); default `6pn-<host name>`. */
  readonly meshInterface?: string;
  /** Machine TUNs and the egress with offloads (TSO, partial checksums); default on (false: plain TUNs). */
  readonly offload?: boolean;
  /** Where the topology is: an etcd URL or a file path (then it replaces `topology`), and TLS files (absolute). */
  readonly store?: { readonly url: string; readonly ca?: string; readonly cert?: string; readonly key?: string };
  /** Where /metrics is served (HOST:PORT, [ADDR]:PORT, :PORT); false: not served. Default DEFAULT_METRICS_ADDRESS. */
  readonly metrics?: string | false;
  /** A file the WireGuard session keys are appended to, for Wireshark (absolute); unset: none. */
  readonly keylog?: string;
  /** Worker threads that seal and open for both devices (0: on the main thread); default DEFAULT_WORKERS. */
  readonly workers?: number;
  /** Set by `sixpn up` for a store other than the file (not from the config file or flags). */
  readonly source?: TopologySourceFactory;
  /** Set by `sixpn up` with such a store: where the host writes autostart and autostop (default: the file). */
  readonly writer?: TopologyStore;
}

/** Settings from one source (file or flags), each validated, none required yet. */
export type PartialHostConfig = { -readonly [K in keyof HostConfig]?: HostConfig[K] };

export class HostConfigError extends Error {
  readonly code = 'EHOSTCONFIG';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`host config refused:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'HostConfigError';
    this.problems = problems;
  }
}

interface Field {
  readonly key: keyof HostConfig;
  readonly flag: string;
  // Returns the value, or an error text. `base` resolves relative paths.
  readonly parse: (v: unknown, base: string) => unknown;
}

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

function path(v: unknown, base: string): string | Error {
  return typeof v === 'string' && v !== '' ? resolve(base, v) : new Error(`${show(v)} is not a path`);
}

function port(v: unknown): number | Error {
  const n = typeof v === 'string' && /^[0-9]{1,5}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535
    ? n : new Error(`${show(v)} is not a port (1-65535)`);
}

const FIELDS: readonly Field[] = [
  {
    key: 'host', flag: '--host',
    parse: (v) => (typeof v === 'string' && v !== '') || parseId32(v) !== undefined
      ? v : new Error(`${show(v)} is not a host name or id`),
  },
  { key: 'privateKeyFile', flag: '--private-key', parse: path },
  { key: 'listenPort', flag: '--listen-port', parse: port },
  {
    key: 'uplink', flag: '--uplink',
    parse: (v) => typeof v === 'string' && IFNAME_RE.test(v) && v !== '.' && v !== '..'
      ? v : new Error(`${show(v)} is not an interface name (1-15 characters of A-Z, a-z, 0-9, _ . -)`),
  },
  { key: 'topology', flag: '--topology', parse: path },
  {
    key: 'meshInterface', flag: '--mesh-interface',
    parse: (v) => typeof v === 'string' && /^6pn[A-Za-z0-9_.-]{1,12}$/.test(v)
      ? v : new Error(`${show(v)} is not a mesh interface name (6pn followed by 1-12 characters of A-Z, a-z, 0-9, _ . -)`),
  },
  {
    key: 'dnsUpstream', flag: '--dns',
    parse: (v) => {
      const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v;
      if (!Array.isArray(list) || list.length === 0) return new Error(`${show(v)} is not a list of resolvers`);
      const out: Endpoint[] = [];
      for (const s of list) {
        const e = typeof s === 'string' ? parseEndpoint(s, DNS_PORT) : `${show(s)} is not a string`;
        if (typeof e === 'string') return new Error(`resolver ${e}`);
        out.push(e);
      }
      return out;
    },
  },
  {
    key: 'store', flag: '--store',
    parse: (v, base) => {
      const o = typeof v === 'string' ? { url: v } : v;
      if (typeof o !== 'object' || o === null || Array.isArray(o)) return new Error(`${show(v)} is not a store URL or {"url", "ca", "cert", "key"}`);
      const out: Record<string, string> = {};
      for (const [k, x] of Object.entries(o as Record<string, unknown>)) {
        if (!['url', 'ca', 'cert', 'key'].includes(k)) return new Error(`unknown field ${show(k)} (expected: url, ca, cert, key)`);
        if (typeof x !== 'string' || x === '') return new Error(`${k}: ${show(x)} is not a string`);
        out[k] = k === 'url' ? (/^[a-z0-9+.-]+:\/\//i.test(x) ? x : resolve(base, x)) : resolve(base, x);
      }
      if (out.url === undefined) return new Error('missing "url"');
      return out;
    },
  },
  ...(['ca', 'cert', 'key'] as const).map((k): Field => ({
    key: 'store', flag: `--store-${k}`,
    parse: (v, base) => (typeof v === 'string' && v !== '' ? { [k]: resolve(base, v) } : new Error(`${show(v)} is not a path`)),
  })),
  {
    key: 'offload', flag: '--offload',
    parse: (v) => v === true || v === 'true' ? true : v === false || v === 'false' ? false
      : new Error(`${show(v)} is not true or false`),
  },
  {
    key: 'metrics', flag: '--metrics',
    parse: (v) => v === false || v === 'false' ? false
      : typeof v === 'string' && LISTEN_RE.test(v) && Number(v.slice(v.lastIndexOf(':') + 1)) >= 1 && Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535
        ? v : new Error(`${show(v)} is not HOST:PORT, [ADDRESS]:PORT, :PORT or false`),
  },
  { key: 'keylog', flag: '--keylog', parse: path },
  {
    key: 'workers', flag: '--workers',
    parse: (v) => {
      const n = typeof v === 'string' && /^[0-9]{1,2}$/.test(v) ? Number(v) : v;
      return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_WORKERS
        ? n : new Error(`${show(v)} is not a number of workers (0-${MAX_WORKERS})`);
    },
  },
  {
    key: 'egress', flag: '--egress',
    parse: (v) => {
      const a = new Uint8Array(IPV6_ADDR_LEN);
      if (typeof v !== 'string' || !parseAddress(v, a, 0)) return new Error(`${show(v)} is not an IPv6 address`);
      return isSixpn(a, 0) ? new Error(`${v} is a 6PN address (fdaa::/16)`) : a;
    },
  },
];

function set(out: PartialHostConfig, f: Field, v: unknown, where: string, problems: string[], base: string): void {
  const r = f.parse(v, base);
  if (r instanceof Error) problems.push(`${where}: ${r.message}`);
  else if (f.key === 'store') out.store = { ...out.store, ...(r as object) } as HostConfig['store']; // --store and --store-ca … add up
  else (out as Record<string, unknown>)[f.key] = r;
}

/** Parses the text of a host config file; throws HostConfigError naming the file and field. */
export function parseHostConfigFile(text: string, file: string): PartialHostConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new HostConfigError([`${file}: not valid JSON: ${(err as Error).message}`]);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new HostConfigError([`${file}: the top level must be a JSON object`]);
  }
  const out: PartialHostConfig = {};
  const problems: string[] = [];
  for (const [k, v] of Object.entries(doc)) {
    const f = FIELDS.find((x) => x.key === k);
    if (f) set(out, f, v, `${file}: ${k}`, problems, dirname(resolve(file)));
    else if (k !== 'comment') {
      problems.push(`${file}: unknown field ${show(k)} (expected: ${[...new Set(FIELDS.map((x) => x.key))].join(', ')})`);
    }
  }
  if (problems.length > 0) throw new HostConfigError(problems);
  return out;
}

/**
 * Takes the host-config flags out of argv. Arguments it does not know are returned in `rest`
 * for the caller. Throws HostConfigError for a bad or missing value.
 */
export function parseHostFlags(
  argv: readonly string[],
  cwd = process.cwd(),
): { config: PartialHostConfig; configFile?: string; rest: string[] } {
  const config: PartialHostConfig = {};
  const rest: string[] = [];
  const problems: string[] = [];
  const dns: string[] = [];
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const f = FIELDS.find((x) => x.flag === name);
    if (!f && name !== '-c' && name !== '--config') {
      rest.push(arg);
      continue;
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (f?.key === 'offload' && argv[i + 1] !== 'true' && argv[i + 1] !== 'false') value = 'true'; // a bare switch
    else if (i + 1 < argv.length) value = argv[++i];
    else {
      problems.push(`${name}: needs a value`);
      continue;
    }
    if (!f) configFile = resolve(cwd, value);
    else if (f.key === 'dnsUpstream') dns.push(value);
    else set(config, f, value, name, problems, cwd);
  }
  if (dns.length > 0) set(config, FIELDS.find((x) => x.key === 'dnsUpstream')!, dns.join(','), '--dns', problems, cwd);
  if (problems.length > 0) throw new HostConfigError(problems);
  return { config, configFile, rest };
}

/** Flags over file; checks the required settings are there and fills defaults. */
export function mergeHostConfig(file: PartialHostConfig, flags: PartialHostConfig): HostConfig {
  const m: PartialHostConfig = { ...file };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) (m as Record<string, unknown>)[k] = v;
  if (file.store && flags.store) m.store = { ...file.store, ...flags.store };
  const problems: string[] = [];
  if (m.store && m.store.url === undefined) problems.push('store: --store-ca, --store-cert and --store-key need a store URL ("store" or --store)');
  if (m.host === undefined) problems.push('host: missing (which host of the topology this is; "host" or --host)');
  if (m.privateKeyFile === undefined) problems.push('privateKeyFile: missing ("privateKeyFile" or --private-key)');
  if (problems.length > 0) throw new HostConfigError(problems);
  return {
    ...m,
    host: m.host!,
    privateKeyFile: m.privateKeyFile!,
    topology: m.topology ?? DEFAULT_TOPOLOGY_FILE,
    dnsUpstream: m.dnsUpstream ?? [],
  };
}

/** This host in the topology, with the config's overrides applied. */
export interface LocalHost {
  readonly host: Host;
  readonly listenPort: number;
  readonly egress?: Uint8Array;
}

export function resolveLocalHost(config: HostConfig, topology: Topology): LocalHost {
  const ref = config.host;
  let host = typeof ref === 'string' ? topology.hostByName(ref) : undefined;
  if (!host) {
    const id = parseId32(ref);
    if (id !== undefined) host = topology.host(id);
  }
  if (!host) {
    const known = topology.hosts.map((h) => `${h.name} (${formatId32(h.id)})`).join(', ') || 'none';
    throw new HostConfigError([`host: ${show(ref)} is not a host of topology ${topology.source} (hosts: ${known})`]);
  }
  const egress = config.egress ?? host.egress;
  const listenPort = config.listenPort ?? host.endpoint.port;
  if (listenPort === 65535) {
    const where = config.listenPort !== undefined ? 'listenPort' : `host ${host.name}'s endpoint in the topology`;
    throw new HostConfigError([`${where}: mesh port 65535 leaves no port for the gateway, which listens on the mesh port + 1; use 65534 or lower`]);
  }
  return { host, listenPort, ...(egress ? { egress } : {}) };
}

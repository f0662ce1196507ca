// The fields of the two files an operator writes — the host config (`sixpn up -c FILE`) and the
// topology — as one declarative table: name, type, whether required, default, the values it
// takes, an example and what it does. The topology validator takes its allowed and required
// keys from here (validate.ts), and docs/config.md is generated from it
// (scripts/gen-config-docs.ts), whose check feeds every example to the real parsers. A field
// added to a parser without a row here is refused by the validator or fails that check, so it
// cannot go undocumented.
//
// Pure data: no I/O.

import { METADATA_VALUE_MAX_LEN, DEFAULT_PROCESS_GROUP } from './model.ts';
// No imports from validate.ts or stores.ts (they import this file): the defaults written out
// below are compared with theirs by the docs check.

export interface FieldDoc {
  /** The JSON key. */
  readonly key: string;
  /** The JSON type, in words: `string`, `32-bit id`, `array of …`. */
  readonly type: string;
  readonly required?: boolean;
  /** What an absent field means (optional fields only). */
  readonly default?: string;
  /** The values it takes and the rules between entries (uniqueness, references). */
  readonly range: string;
  /** A value the parser accepts (checked by scripts/gen-config-docs.ts). */
  readonly example: unknown;
  /** What it does, one or two sentences. */
  readonly doc: string;
  /** The `sixpn up` flag (host config only). */
  readonly flag?: string;
}

export interface SectionDoc {
  /** `hosts`, `machines[].previous`, … or `host config`. */
  readonly name: string;
  readonly doc: string;
  readonly fields: readonly FieldDoc[];
}

const ID32 = 'a JSON integer, `"0x…"` hex (up to 8 digits) or the two address groups `"hhhh:hhhh"`; 0 to 0xffffffff';
const LABEL = 'one lower-case DNS label: 1-63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`';
const REGION = 'three letters `a-z` (`ams`, `ord`, `syd`)';
const KEY = 'a WireGuard public key in wg(8) base64 (44 characters, from `wg pubkey`)';
const COMMENT: FieldDoc = {
  key: 'comment', type: 'string', default: 'none', range: 'any text', example: 'free text',
  doc: 'Ignored by sixpn: a note for people.',
};

// ---- The topology (one document, the same on every host or in etcd) ----

export const TOPOLOGY_DOCUMENT: SectionDoc = {
  name: 'topology',
  doc: 'The top level of a topology file (or of `sixpn topology export` from etcd).',
  fields: [
    { key: 'version', type: 'integer', required: true, range: 'must be `1`', example: 1, doc: 'The format version.' },
    COMMENT,
    { key: 'orgs', type: 'array of org', default: '`[]`', range: 'see [orgs](#orgs)', example: [], doc: 'The organizations; each owns one /48.' },
    { key: 'apps', type: 'array of app', default: '`[]`', range: 'see [apps](#apps)', example: [], doc: 'The apps; each belongs to one org.' },
    { key: 'hosts', type: 'array of host', default: '`[]`', range: 'see [hosts](#hosts)', example: [], doc: 'The servers, each running one `sixpn up`.' },
    { key: 'machines', type: 'array of machine', default: '`[]`', range: 'see [machines](#machines)', example: [], doc: 'The machines (network namespaces) of the apps.' },
    { key: 'peers', type: 'array of peer', default: '`[]`', range: 'see [peers](#peers)', example: [], doc: 'External WireGuard peers (`wg-quick` clients).' },
  ],
};

export const TOPOLOGY_SECTIONS: readonly SectionDoc[] = [
  {
    name: 'orgs',
    doc: 'An organization: an isolated network. Its machines and peers reach each other and never another org.',
    fields: [
      { key: 'name', type: 'string', required: true, range: `${LABEL}; unique among orgs`, example: 'acme', doc: 'The org\'s name, used by apps and peers.' },
      {
        key: 'network', type: '32-bit id', required: true, range: `${ID32}; not 0 (\`fdaa::3\` lives there); unique among orgs`, example: '0x18',
        doc: 'The org\'s network id: it owns `fdaa:NNNN:NNNN::/48` (`0x18` → `fdaa:0:18::/48`) and its peers\' DNS server is that prefix\'s `::3`.',
      },
      COMMENT,
    ],
  },
  {
    name: 'apps',
    doc: 'An app: a name for a group of machines in DNS (`<app>.internal`).',
    fields: [
      { key: 'name', type: 'string', required: true, range: `${LABEL}; unique across all orgs`, example: 'shop-web', doc: 'The app\'s name.' },
      { key: 'org', type: 'string', required: true, range: 'the name of an org in `orgs`', example: 'acme', doc: 'The org it belongs to.' },
      {
        key: 'services', type: 'array of service', default: '`[]`', range: 'see [apps[].services](#appsservices)', example: [{ address: 'fdaa:0:18:0:1::3', ports: ['80/tcp'] }],
        doc: 'Its service addresses: app-wide addresses whose flows the routers balance over its started machines (`<app>.sixpn` in DNS).',
      },
      {
        key: 'egress', type: 'object of strings', default: 'none: its machines leave from their host\'s `egress`', range: `keys: regions (${REGION}); values: IPv6 unicast addresses outside \`fdaa::/16\`, unique among apps and hosts`, example: { ams: '2001:db8:e::100' },
        doc: 'Its static egress address per region: SNAT66 flows of its machines in that region leave from it (routed to each host of the region).',
      },
      COMMENT,
    ],
  },
  {
    name: 'apps[].services',
    doc: 'A service address of an app. Flows to it go to one started machine of the app (same host first, then same region, then the others; the fewest flows among equals), and its replies come from it. In another org\'s /48 it exposes only these ports of the app to that org; the machines see the flows come from addresses of their own org.',
    fields: [
      {
        key: 'address', type: 'string', required: true, range: '`fdaa:<org network>:0:1::N` with N 1-ffff, in the /48 of an org in `orgs`; unique', example: 'fdaa:0:18:0:1::3',
        doc: 'The address. In the app\'s own org\'s /48, or another org\'s to let that org (and only it) reach the app.',
      },
      {
        key: 'ports', type: 'array of string', required: true, range: '`PORT/tcp` or `PORT/udp`, port 1-65535; at least one; no duplicates', example: ['80/tcp', '53/udp'],
        doc: 'What it serves: the machines listen on the same ports. Other ports are refused (TCP reset, ICMPv6 port unreachable).',
      },
      { key: 'autostart', type: 'boolean', default: '`false`', range: '`true` or `false`', example: true, doc: 'A flow that finds no started machine starts a stopped one (through the topology store); its first packets wait for it.' },
      { key: 'autostop', type: 'integer', default: '`0` (never)', range: '0-86400 seconds', example: 300, doc: 'A started machine of the app with no flows for this long is stopped (through the topology store).' },
      { key: 'minRunning', type: 'integer', default: '`0`', range: '0-1000', example: 1, doc: 'Autostop keeps at least this many machines of the app started.' },
      COMMENT,
    ],
  },
  {
    name: 'hosts',
    doc: 'A server running `sixpn up`: it carries machines, takes part in the mesh and can be a gateway for external peers.',
    fields: [
      {
        key: 'id', type: '32-bit id', required: true, range: `${ID32}; not 0; unique among hosts`, example: 'a7b:7d',
        doc: 'The host field of its machines\' addresses (`fdaa:<org>:a7b:7d:…`) and of its peers\' /120s.',
      },
      {
        key: 'name', type: 'string', required: true, range: `${LABEL}; unique among hosts; up to 11 characters keeps the default interface names (\`6pn-<name>\`) whole`, example: 'ams1',
        doc: 'The host\'s name: `"host"` in its host config, `--host` of the CLI.',
      },
      { key: 'region', type: 'string', required: true, range: REGION, example: 'ams', doc: 'Where it is; DNS answers `<region>.<app>.internal` and the nearest machines by it.' },
      {
        key: 'publicKey', type: 'string', required: true, range: `${KEY}; no two hosts or peers share a key`, example: 'mxVLM6Q/ZCB4ugOaHLdmb2kTSRnMJJSnmb/pgjFHjXo=',
        doc: 'The public key of the host\'s private key file (`privateKeyFile` of its host config).',
      },
      {
        key: 'endpoint', type: 'string', required: true, range: '`IPv4:port` or `[IPv6]:port`, port 1-65535; unique among hosts', example: '192.0.2.11:51820',
        doc: 'Where the other hosts reach its mesh WireGuard (UDP). Its gateway for external peers listens on the next port (UDP).',
      },
      {
        key: 'egress', type: 'string', default: 'none: machines on this host reach only the 6PN', range: 'an IPv6 unicast address outside `fdaa::/16`, not one the host\'s kernel owns; unique among hosts', example: '2001:db8:e::11',
        doc: 'The address machines on this host reach the Internet from (SNAT66). It must be routed to the host (or on-link on its uplink).',
      },
      COMMENT,
    ],
  },
  {
    name: 'machines',
    doc: 'A machine: a network namespace on one host, named by its id, with a /112 of its org. Its address is derived (`fdaa | org network | host id | instance | ::2`), never written.',
    fields: [
      { key: 'id', type: 'string', required: true, range: '14 characters of `a-z` and `0-9`; unique', example: '148e21ea235a89', doc: 'The machine id: the name of its network namespace and of `<id>.vm.<app>.internal`.' },
      { key: 'app', type: 'string', required: true, range: 'the name of an app in `apps`', example: 'shop-web', doc: 'Its app (and so its org).' },
      { key: 'region', type: 'string', default: 'its host\'s region', range: `${REGION}; the region of its host`, example: 'ams', doc: 'Its region in DNS: always its host\'s (a machine whose region differs from its host\'s is refused).' },
      {
        key: 'processGroup', type: 'string', default: `\`"${DEFAULT_PROCESS_GROUP}"\``, range: LABEL, example: 'worker',
        doc: 'Its process group: `<group>.process.<app>.internal`.',
      },
      {
        key: 'metadata', type: 'object of strings', default: '`{}`', range: `keys: 1-63 characters of \`A-Z\`, \`a-z\`, \`0-9\`, \`_\` and \`-\`; values: strings of at most ${METADATA_VALUE_MAX_LEN} characters`, example: { role: 'primary' },
        doc: 'Key-value pairs answered as `<value>.<key>.kv._metadata.<app>.internal`.',
      },
      { key: 'host', type: 'string or 32-bit id', required: true, range: 'the name or id of a host in `hosts`', example: 'ams1', doc: 'The host it runs on. Changing it is a migration: list the old address in `previous`.' },
      {
        key: 'instance', type: '32-bit id', required: true, range: `${ID32}; unique on its host (also against the peers of that host)`, example: '0xf066b83b',
        doc: 'The instance field of its address.',
      },
      { key: 'state', type: 'string', default: '`"started"`', range: '`"started"` or `"stopped"`', example: 'stopped', doc: 'A stopped machine keeps its namespace but is out of DNS, and packets to it get ICMPv6 unreachable.' },
      {
        key: 'previous', type: 'array of previous address', default: '`[]`', range: 'see [machines[].previous](#machinesprevious)', example: [{ address: 'fdaa:0:18:a7b:bea:0:2:2', host: 'a7b:bea' }],
        doc: 'Addresses it had before migrations, oldest first; packets to them are rewritten to the current address.',
      },
      COMMENT,
    ],
  },
  {
    name: 'machines[].previous',
    doc: 'One old address of a migrated machine. A bare string is the same as `{"address": …}`.',
    fields: [
      {
        key: 'address', type: 'string', required: true, range: 'the `::2` of a /112 of the machine\'s org on a host (host field not 0); not its current address, nor any machine\'s current or previous one', example: 'fdaa:0:18:a7b:bea:0:2:2',
        doc: 'The old address.',
      },
      { key: 'host', type: 'string or 32-bit id', default: 'none (not checked)', range: 'a host name or id whose id is the address\'s host field (the host may be gone)', example: 'a7b:bea', doc: 'The host it was on, as a check on the address.' },
      COMMENT,
    ],
  },
  {
    name: 'peers',
    doc: 'An external WireGuard peer (a laptop, a CI runner): a /120 of its org on a gateway host. `sixpn peer create` allocates it and writes the `wg-quick` file.',
    fields: [
      {
        key: 'name', type: 'string', required: true, range: '1-63 characters of `A-Z`, `a-z`, `0-9` and `-`; unique in its org; names starting with `interactive-` are left out of DNS', example: 'ops-laptop',
        doc: 'The peer\'s name: `<name>._peer.internal`.',
      },
      { key: 'org', type: 'string', required: true, range: 'the name of an org in `orgs`', example: 'acme', doc: 'The org it joins; it reaches that org only.' },
      { key: 'publicKey', type: 'string', required: true, range: `${KEY}; no two hosts or peers share a key`, example: 'WiD38puIP8cdMjHdhRi15xqd6Do6Z2w7xyCYqjv6vEc=', doc: 'The peer\'s public key.' },
      {
        key: 'address', type: 'string', required: true, range: 'an IPv6 address with `/120`, inside the org\'s /48, whose host field is the gateway\'s id; its /120 overlaps no other peer\'s nor a machine\'s /112', example: 'fdaa:0:18:a7b:7d:0:a:2/120',
        doc: 'The peer\'s interface address (`Address =` of its wg-quick file).',
      },
      { key: 'gateway', type: 'string or 32-bit id', required: true, range: 'the name or id of a host in `hosts`', example: 'ams1', doc: 'The host whose gateway WireGuard (its endpoint\'s port + 1) the peer connects to.' },
      COMMENT,
    ],
  },
];

/** The keys a section allows, in table order (the validator's "expected: …" list). */
export function sectionKeys(section: SectionDoc): string[] {
  return section.fields.map((f) => f.key);
}

/** The keys a section requires, in table order. */
export function requiredKeys(section: SectionDoc): string[] {
  return section.fields.filter((f) => f.required).map((f) => f.key);
}

export function topologySection(name: string): SectionDoc {
  const s = name === TOPOLOGY_DOCUMENT.name ? TOPOLOGY_DOCUMENT : TOPOLOGY_SECTIONS.find((x) => x.name === name);
  if (!s) throw new Error(`no topology section ${name}`);
  return s;
}

// ---- The host config (one small file per host) ----

export const HOST_CONFIG: SectionDoc = {
  name: 'host config',
  doc: 'The host\'s own settings for `sixpn up -c FILE`. Every field can also be given as a flag (flags win over the file). Relative paths in the file are relative to the file\'s folder.',
  fields: [
    {
      key: 'host', flag: '--host', type: 'string or 32-bit id', required: true, range: 'the name or id of a host in the topology', example: 'ams1',
      doc: 'Which host of the topology this process is.',
    },
    {
      key: 'privateKeyFile', flag: '--private-key', type: 'path', required: true, range: 'a file holding a wg(8) base64 private key (`wg genkey`); mode 0600 (a warning is logged otherwise)', example: '/etc/sixpn/ams1.key',
      doc: 'The host\'s mesh and gateway private key. Its public key is the host\'s `publicKey` in the topology.',
    },
    {
      key: 'listenPort', flag: '--listen-port', type: 'integer', default: 'the port of this host\'s `endpoint` in the topology', range: '1-65535', example: 51820,
      doc: 'The UDP port of the mesh WireGuard; the gateway listens on this port + 1.',
    },
    {
      key: 'topology', flag: '--topology', type: 'path', default: '`/etc/sixpn/topology.json`', range: 'a topology file', example: '/etc/sixpn/topology.json',
      doc: 'The topology file, watched: edits apply while `sixpn up` runs; a refused edit is logged and the running topology kept.',
    },
    {
      key: 'store', flag: '--store', type: 'string or object', default: 'none: the `topology` file', range: '`etcd://h1:2379,h2:2379[/prefix]` (default prefix `/sixpn/v1`), `etcds://…` for TLS, or a file path; or `{"url", "ca", "cert", "key"}` with PEM files (flags `--store-ca`, `--store-cert`, `--store-key`)', example: 'etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379',
      doc: 'Where the topology is kept when not in a file: etcd, watched; while etcd is unreachable the last applied topology stays in force.',
    },
    {
      key: 'dnsUpstream', flag: '--dns', type: 'array of string', default: 'the resolvers of the host\'s `/etc/resolv.conf`', range: '`IPv4`, `IPv6`, `IPv4:port` or `[IPv6]:port` (port 53 if left out); the flag is repeatable or comma-separated', example: ['192.0.2.53', '[2001:db8::53]:53'],
      doc: 'Where the `.internal` server forwards names outside `.internal`.',
    },
    {
      key: 'egress', flag: '--egress', type: 'string', default: 'the host\'s `egress` in the topology', range: 'an IPv6 address outside `fdaa::/16`', example: '2001:db8:e::11',
      doc: 'Overrides the host\'s SNAT66 egress address of the topology.',
    },
    {
      key: 'uplink', flag: '--uplink', type: 'string', default: 'the interface of the default IPv6 route', range: 'an interface name: 1-15 characters of `A-Z`, `a-z`, `0-9`, `_`, `.` and `-`', example: 'eth0',
      doc: 'The interface egress traffic leaves by (forwarding and proxy NDP are set on it).',
    },
    {
      key: 'meshInterface', flag: '--mesh-interface', type: 'string', default: '`6pn-<host name>` (cut to 15 characters)', range: '`6pn` followed by 1-12 characters of `A-Z`, `a-z`, `0-9`, `_`, `.` and `-`', example: '6pn-ams1',
      doc: 'The UAPI name of the mesh WireGuard (`wg show 6pn-ams1`); the gateway\'s is the same with `6pg` (`wg show 6pg-ams1`).',
    },
    {
      key: 'offload', flag: '--offload', type: 'boolean', default: '`true`', range: '`true` or `false` (the flag alone means true)', example: false,
      doc: 'Machine TUNs and the egress TUN with offloads (64 KB TCP segments, partial checksums); `false` for plain TUNs.',
    },
    {
      key: 'metrics', flag: '--metrics', type: 'string or false', default: '`"127.0.0.1:9586"`', range: '`HOST:PORT`, `[ADDRESS]:PORT`, `:PORT` (all addresses) or `false` (none); port 1-65535', example: '[::1]:9586',
      doc: 'Where Prometheus `/metrics` is served over HTTP, in the host\'s network namespace.',
    },
    {
      key: 'keylog', flag: '--keylog', type: 'path', default: 'none', range: 'a file; it is appended to', example: '/root/sixpn-keys.log',
      doc: 'Appends the WireGuard session keys for Wireshark to decrypt a capture. A secret: set it only while debugging.',
    },
    {
      key: 'workers', flag: '--workers', type: 'integer', default: '`SIXPN_WORKERS` from the environment, else `0` (the winner measured on a 2-core machine)', range: '0-8', example: 2,
      doc: 'Worker threads that seal and open the transport data of the mesh and gateway devices in batches, the main thread doing the I/O; `0` keeps the crypto on the main thread. More than 0 pays off only with cores to spare (`npm run bench:tunnel` with `WORKERS=0,1,2`).',
    },
    COMMENT,
  ],
};

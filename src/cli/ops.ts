// The operator CLI (issue 12): orgs, apps, hosts, machines, external peers and the whole
// topology, against either store:
//   --store etcd://h1:2379,h2:2379[/prefix]   (TLS: etcds:// or --store-ca, --store-cert, --store-key)
//   --store FILE, -t FILE                     a topology file (default /etc/sixpn/topology.json,
//                                             or $SIXPN_STORE)
// Every write is one validated, transactional update (src/topology/stores.ts): ids are allocated
// inside it (src/topology/alloc.ts), so operators running at once get unique ids and lose no edit.
// Tables for people; --json for scripts. Errors name the object and the rule it breaks.

import { chmodSync, closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { StaticIdentity, chosenBackend, generatePrivateKeyBytes, keyToBase64 } from '../noise/index.ts';
import { formatAddress, orgDnsAddress, orgPrefix } from '../ipv6/index.ts';
import {
  DEFAULT_TOPOLOGY_FILE, EditError, TopologyError, addHost, asDocument, createApp, createMachine, createOrg, createPeer,
  allocateService, describeStore, destroyMachine, releaseService, formatEndpoint, formatId32, migrateMachine, parseStoreSpec, removeApp, removeHost,
  removeOrg, removePeer, replaceDocument, setMachineStateIn, topologyFromDocument, validateTopology,
} from '../topology/index.ts';
import { openStore } from '../store/index.ts';
import type { StoreSpec, Topology, TopologyDocument, TopologyStore } from '../topology/index.ts';
import { readFileSync } from 'node:fs';

export const OPS_COMMANDS = ['org', 'app', 'host', 'machine', 'peer', 'service', 'topology'] as const;

export const OPS_USAGE = `  org create NAME [--network ID] | org list | org remove NAME
  app create NAME --org ORG | app list [--org ORG] | app remove NAME
  host add NAME --region R --endpoint IP:PORT [--egress ADDR] [--id ID] [--key-file F]
            (prints the host config for \`sixpn up\`; the private key is made here, into F)
  host list | host remove NAME
  machine create APP --region R [--host H] [--metadata k=v]… [--process-group G] [--stopped]
  machine start|stop|destroy ID | machine migrate ID --host H | machine list [--app A] [--host H]
  peer create ORG REGION NAME [--gateway H] [--out FILE]   (a wg-quick file; the key is never stored)
  peer list [--org ORG] | peer remove ORG NAME
  service allocate APP --port PORT/tcp|udp… [--org ORG] [--autostart] [--autostop S] [--min-running N]
            (an app-wide address <org /48>:0:1::N, in the app's org or --org's to expose it there)
  service list [--app A] | service release ADDRESS
  topology validate | topology export | topology import FILE
            each with --store etcd://h1:2379,…[/prefix] or --store FILE / -t FILE
            (default ${DEFAULT_TOPOLOGY_FILE}; TLS: --store-ca, --store-cert, --store-key), --json`;

const OPTIONS = {
  store: { type: 'string' },
  topology: { type: 'string', short: 't' },
  'store-ca': { type: 'string' },
  'store-cert': { type: 'string' },
  'store-key': { type: 'string' },
  json: { type: 'boolean' },
  network: { type: 'string' },
  org: { type: 'string' },
  app: { type: 'string' },
  region: { type: 'string' },
  endpoint: { type: 'string' },
  egress: { type: 'string' },
  id: { type: 'string' },
  instance: { type: 'string' },
  host: { type: 'string' },
  gateway: { type: 'string' },
  metadata: { type: 'string', multiple: true },
  'process-group': { type: 'string' },
  stopped: { type: 'boolean' },
  'key-file': { type: 'string' },
  out: { type: 'string' },
  port: { type: 'string', multiple: true },
  autostart: { type: 'boolean' },
  autostop: { type: 'string' },
  'min-running': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class UsageError extends Error {}

function storeSpec(v: Values): StoreSpec {
  const url = v.store ?? v.topology ?? process.env.SIXPN_STORE ?? DEFAULT_TOPOLOGY_FILE;
  return parseStoreSpec(url, {
    ...(v['store-ca'] ? { ca: v['store-ca'] } : {}),
    ...(v['store-cert'] ? { cert: v['store-cert'] } : {}),
    ...(v['store-key'] ? { key: v['store-key'] } : {}),
  });
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  if (rows.length === 0) return '(none)';
  const cell = (r: Record<string, unknown>, c: string) => {
    const x = r[c];
    return x === undefined || x === null ? '' : typeof x === 'object' ? Object.entries(x).map(([k, y]) => `${k}=${y}`).join(',') : String(x);
  };
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)));
  const line = (xs: string[]) => xs.map((x, i) => x.padEnd(w[i])).join('  ').trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => cell(r, c))))].join('\n');
}

function need(v: string | undefined, what: string): string {
  if (v === undefined || v === '') throw new UsageError(`missing ${what}`);
  return v;
}

function metadataOf(list: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--metadata "${kv}" is not key=value`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** A private key in a new file (0600, never overwriting one); its public key. */
function newKeyFile(file: string): { publicKey: string; privateKey: string } {
  const priv = generatePrivateKeyBytes();
  const privateKey = keyToBase64(priv);
  const publicKey = keyToBase64(new StaticIdentity(chosenBackend, priv).publicKey);
  priv.fill(0);
  writeNew(file, `${privateKey}\n`);
  return { publicKey, privateKey };
}

function writeNew(file: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    throw new EditError(`file ${file}`, (err as NodeJS.ErrnoException).code === 'EEXIST' ? 'already exists (a key file is never overwritten)' : `cannot create: ${(err as NodeJS.ErrnoException).code}`);
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o600);
}

async function current(store: TopologyStore): Promise<Topology> {
  const { doc, revision } = await store.read();
  return topologyFromDocument(doc, `${store.location}${store.kind === 'etcd' ? `@${revision}` : ''}`);
}

function machineRow(t: Topology, id: string): Record<string, unknown> {
  const m = t.machine(id)!;
  return {
    id: m.id, app: m.app, org: m.org, region: m.region, host: t.host(m.host)?.name ?? formatId32(m.host),
    instance: formatId32(m.instance), address: m.addressText, state: m.state, processGroup: m.processGroup, metadata: m.metadata,
    ...(m.previous.length ? { previous: m.previous.map((p) => p.text) } : {}),
  };
}

/** `sixpn org|app|host|machine|peer|topology …`: the exit code. */
export async function ops(command: string, argv: string[]): Promise<number> {
  let v: Values;
  let pos: string[];
  try {
    ({ values: v, positionals: pos } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true }));
  } catch (err) {
    console.error(`sixpn ${command}: ${(err as Error).message}\n${OPS_USAGE}`);
    return 2;
  }
  const [verb, ...args] = pos;
  const where = `sixpn ${command}${verb ? ` ${verb}` : ''}`;
  let store: TopologyStore | undefined;
  try {
    store = await openStore(storeSpec(v));
    const out = await run(store, command, verb, args, v);
    if (v.json) console.log(JSON.stringify(out.json, null, 2));
    else if (out.text !== undefined) console.log(out.text);
    return out.code ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`${where}: ${err.message}\n${OPS_USAGE}`);
      return 2;
    }
    const e = err as Error;
    if (v.json) console.log(JSON.stringify({ error: e.message, ...(err instanceof EditError ? { object: err.object, rule: err.rule } : {}), ...(err instanceof TopologyError ? { problems: err.problems } : {}) }));
    console.error(`${where}: ${e.message}`);
    return 1;
  } finally {
    await store?.close();
  }
}

interface Out {
  json: unknown;
  text?: string;
  code?: number;
}

async function run(store: TopologyStore, command: string, verb: string | undefined, args: string[], v: Values): Promise<Out> {
  const arg = (i: number, what: string) => need(args[i], what);
  const write = async <T>(what: string, edit: (doc: TopologyDocument) => T) => store.update(what, edit);
  switch (`${command} ${verb ?? ''}`) {
    // ---- orgs ----
    case 'org create': {
      const r = await write(`org create ${args[0]}`, (d) => createOrg(d, arg(0, 'NAME'), v.network !== undefined ? { network: v.network } : {}));
      const o = r.topology.org(args[0])!;
      const p = new Uint8Array(16);
      orgPrefix(p, 0, o.network);
      return { json: { name: o.name, network: formatId32(o.network), prefix: `${formatAddress(p, 0)}/48` }, text: `org ${o.name} created: network ${formatId32(o.network)}, ${formatAddress(p, 0)}/48` };
    }
    case 'org list': {
      const t = await current(store);
      const rows = t.orgs.map((o) => {
        const p = new Uint8Array(16);
        orgPrefix(p, 0, o.network);
        return { name: o.name, network: formatId32(o.network), prefix: `${formatAddress(p, 0)}/48`, apps: t.appsOfOrg(o.name).length, peers: t.peers.filter((x) => x.org === o.name).length };
      });
      return { json: rows, text: table(rows, ['name', 'network', 'prefix', 'apps', 'peers']) };
    }
    case 'org remove':
      await write(`org remove ${args[0]}`, (d) => removeOrg(d, arg(0, 'NAME')));
      return { json: { removed: args[0] }, text: `org ${args[0]} removed` };
    // ---- apps ----
    case 'app create':
      await write(`app create ${args[0]}`, (d) => createApp(d, arg(0, 'NAME'), need(v.org, '--org ORG')));
      return { json: { name: args[0], org: v.org }, text: `app ${args[0]} created in org ${v.org}` };
    case 'app list': {
      const t = await current(store);
      const rows = t.apps.filter((a) => !v.org || a.org === v.org).map((a) => ({ name: a.name, org: a.org, machines: t.machines.filter((m) => m.app === a.name).length }));
      return { json: rows, text: table(rows, ['name', 'org', 'machines']) };
    }
    case 'app remove':
      await write(`app remove ${args[0]}`, (d) => removeApp(d, arg(0, 'NAME')));
      return { json: { removed: args[0] }, text: `app ${args[0]} removed` };
    // ---- hosts ----
    case 'host add': {
      const name = arg(0, 'NAME');
      const keyFile = resolve(v['key-file'] ?? `${name}.key`);
      const region = need(v.region, '--region R');
      const endpoint = need(v.endpoint, '--endpoint IP:PORT');
      const { publicKey } = newKeyFile(keyFile);
      let r;
      try {
        r = await write(`host add ${name}`, (d) => addHost(d, {
          name, region, endpoint, publicKey, ...(v.egress ? { egress: v.egress } : {}), ...(v.id ? { id: v.id } : {}),
        }));
      } catch (err) {
        unlinkSync(keyFile);
        throw err;
      }
      const h = r.topology.hostByName(name)!;
      const config = { host: name, privateKeyFile: keyFile, ...(store.kind === 'etcd' ? { store: describeStore(storeSpec(v)) } : { topology: store.location }) };
      return {
        json: { name, id: formatId32(h.id), region, endpoint: formatEndpoint(h.endpoint), publicKey, config },
        text: `host ${name} added: id ${formatId32(h.id)}, public key ${publicKey}\nprivate key: ${keyFile} (mode 0600; copy it to the host)\nhost config for \`sixpn up -c FILE\`:\n${JSON.stringify(config, null, 2)}`,
      };
    }
    case 'host list': {
      const t = await current(store);
      const rows = t.hosts.map((h) => ({
        name: h.name, id: formatId32(h.id), region: h.region, endpoint: formatEndpoint(h.endpoint),
        egress: h.egress ? formatAddress(h.egress, 0) : '', machines: t.machinesOnHost(h.id).length, peers: t.peersOnGateway(h.id).length, publicKey: h.publicKeyBase64,
      }));
      return { json: rows, text: table(rows, ['name', 'id', 'region', 'endpoint', 'egress', 'machines', 'peers']) };
    }
    case 'host remove':
      await write(`host remove ${args[0]}`, (d) => removeHost(d, arg(0, 'NAME')));
      return { json: { removed: args[0] }, text: `host ${args[0]} removed` };
    // ---- machines ----
    case 'machine create': {
      const app = arg(0, 'APP');
      const r = await write(`machine create ${app}`, (d) => createMachine(d, {
        app, region: need(v.region, '--region R'), ...(v.host ? { host: v.host } : {}), metadata: metadataOf(v.metadata),
        ...(v['process-group'] ? { processGroup: v['process-group'] } : {}), ...(v.id ? { id: v.id } : {}),
        ...(v.instance ? { instance: v.instance } : {}), state: v.stopped ? 'stopped' : 'started',
      }));
      const row = machineRow(r.topology, r.result.id as string);
      return { json: row, text: `machine ${row.id} created: app ${row.app}, host ${row.host}, ${row.address}, ${row.state}` };
    }
    case 'machine start':
    case 'machine stop': {
      const id = arg(0, 'ID');
      const r = await write(`machine ${verb} ${id}`, (d) => setMachineStateIn(d, id, verb === 'start' ? 'started' : 'stopped'));
      return { json: machineRow(r.topology, id), text: `machine ${id} ${verb === 'start' ? 'started' : 'stopped'}${r.changed ? '' : ' (already)'}` };
    }
    case 'machine migrate': {
      const id = arg(0, 'ID');
      const r = await write(`machine migrate ${id}`, (d) => migrateMachine(d, id, need(v.host, '--host H')));
      const row = machineRow(r.topology, id);
      return { json: row, text: `machine ${id} migrated to host ${row.host}: ${row.address} (the old address is rewritten to it)` };
    }
    case 'machine destroy': {
      const id = arg(0, 'ID');
      await write(`machine destroy ${id}`, (d) => destroyMachine(d, id));
      return { json: { destroyed: id }, text: `machine ${id} destroyed` };
    }
    case 'machine list': {
      const t = await current(store);
      const host = v.host ? t.hostByName(v.host) : undefined;
      if (v.host && !host) throw new EditError(`host "${v.host}"`, 'does not exist');
      const rows = t.machines.filter((m) => (!v.app || m.app === v.app) && (!host || m.host === host.id)).map((m) => machineRow(t, m.id));
      return { json: rows, text: table(rows, ['id', 'app', 'region', 'host', 'address', 'state', 'processGroup', 'metadata']) };
    }
    // ---- external peers ----
    case 'peer create': {
      const [org, region, name] = [arg(0, 'ORG'), arg(1, 'REGION'), arg(2, 'NAME')];
      const file = resolve(v.out ?? `${name}.conf`);
      const priv = generatePrivateKeyBytes();
      const publicKey = keyToBase64(new StaticIdentity(chosenBackend, priv).publicKey);
      const r = await write(`peer create ${org} ${name}`, (d) => createPeer(d, { org, region, name, publicKey, ...(v.gateway ? { gateway: v.gateway } : {}) }));
      const { entry, org: o, gateway } = r.result;
      const dns = new Uint8Array(16);
      orgDnsAddress(dns, 0, o.network);
      const p48 = new Uint8Array(16);
      orgPrefix(p48, 0, o.network);
      const conf = [
        `# sixpn peer ${name} of org ${org}, through gateway host ${gateway.name} (${gateway.region})`,
        '# The private key below was made on this machine and is stored nowhere else: it cannot be recovered.',
        '[Interface]',
        `PrivateKey = ${keyToBase64(priv)}`,
        `Address = ${entry.address as string}`,
        `DNS = ${formatAddress(dns, 0)}`,
        '',
        '[Peer]',
        `PublicKey = ${gateway.publicKeyBase64}`,
        `Endpoint = ${formatEndpoint({ ...gateway.endpoint, port: gateway.endpoint.port + 1 })}`,
        `AllowedIPs = ${formatAddress(p48, 0)}/48`,
        'PersistentKeepalive = 15',
        '',
      ].join('\n');
      priv.fill(0);
      try {
        writeNew(file, conf);
      } catch (err) {
        await store.update(`peer create ${org} ${name}: undo (file not written)`, (d) => removePeer(d, org, name));
        throw err;
      }
      console.error(`sixpn peer create: the private key of peer ${name} is only in ${file}; it is stored nowhere else and cannot be recovered. Keep the file safe.`);
      return {
        json: { name, org, address: entry.address, gateway: gateway.name, file },
        text: `peer ${name} created: ${entry.address as string} through ${gateway.name}; wg-quick file ${file}`,
      };
    }
    case 'peer list': {
      const t = await current(store);
      const rows = t.peers.filter((p) => !v.org || p.org === v.org).map((p) => ({
        name: p.name, org: p.org, address: p.addressText + '/120', gateway: t.host(p.gateway)?.name ?? formatId32(p.gateway), publicKey: p.publicKeyBase64,
      }));
      return { json: rows, text: table(rows, ['name', 'org', 'address', 'gateway', 'publicKey']) };
    }
    case 'peer remove': {
      const [org, name] = [arg(0, 'ORG'), arg(1, 'NAME')];
      await write(`peer remove ${org} ${name}`, (d) => removePeer(d, org, name));
      return { json: { removed: `${org}/${name}` }, text: `peer ${name} of org ${org} removed` };
    }
    // ---- the whole topology ----
    // ---- service addresses ----
    case 'service allocate': {
      const app = arg(0, 'APP');
      const int = (x: string | undefined, what: string) => {
        if (x === undefined) return undefined;
        if (!/^[0-9]+$/.test(x)) throw new UsageError(`${what} ${x} is not a whole number`);
        return Number(x);
      };
      const r = await write(`service allocate ${app}`, (d) => allocateService(d, {
        app, ports: v.port ?? [], ...(v.org ? { org: v.org } : {}), ...(v.autostart ? { autostart: true } : {}),
        ...(v.autostop ? { autostop: int(v.autostop, '--autostop') } : {}), ...(v['min-running'] ? { minRunning: int(v['min-running'], '--min-running') } : {}),
      }));
      const s = r.topology.services.find((x) => x.addressText === r.result.address)!;
      return {
        json: { app, address: s.addressText, org: s.clientOrg, ports: s.ports.map((p) => `${p.port}/${p.protocol}`), autostart: s.autostart },
        text: `service ${s.addressText} allocated to app ${app} in org ${s.clientOrg}'s network (${app}.sixpn): ${s.ports.map((p) => `${p.port}/${p.protocol}`).join(' ')}`,
      };
    }
    case 'service list': {
      const t = await current(store);
      const rows = t.services.filter((s) => !v.app || s.app === v.app).map((s) => ({
        address: s.addressText, app: s.app, org: s.clientOrg, ports: s.ports.map((p) => `${p.port}/${p.protocol}`).join(' '),
        autostart: s.autostart, autostop: s.autostopSeconds, minRunning: s.minRunning,
      }));
      return { json: rows, text: table(rows, ['address', 'app', 'org', 'ports', 'autostart', 'autostop', 'minRunning']) };
    }
    case 'service release': {
      const address = arg(0, 'ADDRESS');
      const r = await write(`service release ${address}`, (d) => releaseService(d, address));
      return { json: { released: address, app: r.result }, text: `service ${address} of app ${r.result} released` };
    }
    case 'topology validate': {
      const { doc, revision } = await store.read();
      const { data, problems } = validateTopology(doc, store.location);
      const counts = data ? { orgs: data.orgs.length, apps: data.apps.length, hosts: data.hosts.length, machines: data.machines.length, peers: data.peers.length } : undefined;
      if (!data) {
        return { json: { valid: false, revision, problems }, text: new TopologyError(store.location, problems).message, code: 1 };
      }
      return { json: { valid: true, revision, ...counts }, text: `${store.location}: valid (${Object.entries(counts!).map(([k, n]) => `${n} ${k}`).join(', ')})` };
    }
    case 'topology export': {
      const { doc } = await store.read();
      return { json: doc, text: v.json ? undefined : JSON.stringify(doc, null, 2) };
    }
    case 'topology import': {
      const file = arg(0, 'FILE');
      let next: TopologyDocument;
      try {
        next = asDocument(JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8')));
      } catch (err) {
        throw new EditError(`file ${file}`, `cannot import: ${(err as Error).message}`);
      }
      topologyFromDocument(next, file); // refused before anything is written
      const r = await write(`topology import ${file}`, (d) => replaceDocument(d, next));
      const t = r.topology;
      return { json: { imported: file, changed: r.changed, revision: r.revision }, text: `imported ${file} into ${store.location}: ${t.orgs.length} orgs, ${t.apps.length} apps, ${t.hosts.length} hosts, ${t.machines.length} machines, ${t.peers.length} peers${r.changed ? '' : ' (no change)'}` };
    }
    default:
      throw new UsageError(verb ? `unknown command "${command} ${verb}"` : `${command}: which command?`);
  }
}

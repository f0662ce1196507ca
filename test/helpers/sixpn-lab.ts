// A live 6PN for tests and benchmarks: hosts as network namespaces on one underlay bridge, each
// running its own `sixpn up` (as `sixpn demo` does), machines created by those processes,
// extra namespaces on the underlay (a DNS upstream, …) and external WireGuard peers
// (wireguard-go). With `store: 'etcd'` the hosts take the topology from etcd (Debian's, running
// in the extra namespace `etcd` at fd00:6f::e7, reached over the underlay) instead of the file;
// the document is imported into it with `sixpn topology import`, at start and on `edit`. Names
// are unique per run (a 5-character tag); `cleanup()` removes every process, namespace,
// /etc/netns entry and socket it made, also after a failed start.
// No traffic leaves the namespaces made here.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { readStatus, statusSocketPath } from '../../src/host/status.ts';
import { EtcdServer } from './etcd.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeSixpn, formatAddress, machineAddress } from '../../src/ipv6/index.ts';
import { StaticIdentity, chosenBackend, generatePrivateKeyBytes, keyToBase64 } from '../../src/noise/index.ts';
import { parseTopology, topologyDigest } from '../../src/topology/index.ts';
import { writeFileAtomic } from '../../src/store/index.ts';
import { SIXPN_NODE_FLAGS } from '../../src/cli/node-flags.ts';

export const IP = '/usr/sbin/ip';
const NSENTER = '/usr/bin/nsenter';
const SIXPN_CLI = fileURLToPath(new URL('../../src/cli/sixpn.ts', import.meta.url));
const UNDERLAY_PREFIX = 'fd00:6f::';

export interface LabHost {
  /** Short key in the spec; the topology name is `<tag><key>`. */
  readonly key: string;
  readonly region: string;
  /** `dnsUpstream` of its host config (e.g. `[fd00:6f::53]:53`); default none (→ resolv.conf). */
  readonly dnsUpstream?: readonly string[];
  /** `egress` of its host config (SNAT66 to the underlay, uplink eth0); default none. */
  readonly egress?: string;
  /** `offload` of its host config; default unset (on, as in `sixpn up`). */
  readonly offload?: boolean;
}

export interface LabMachine {
  readonly key: string; // id = `<tag><key>` padded to 14 characters
  readonly app: string;
  readonly host: string; // a LabHost key
  readonly instance: number;
  readonly region?: string;
  readonly state?: 'started' | 'stopped';
  readonly metadata?: Record<string, string>;
}

export interface LabPeer {
  readonly name: string;
  readonly org: string;
  readonly gateway: string; // a LabHost key
}

export interface LabSpec {
  readonly orgs: readonly { name: string; network: number }[];
  readonly apps: readonly { name: string; org: string }[];
  readonly hosts: readonly LabHost[];
  readonly machines: readonly LabMachine[];
  readonly peers?: readonly LabPeer[];
  /** Extra namespaces on the underlay: key → underlay address suffix (`53` → fd00:6f::53). */
  readonly extras?: Readonly<Record<string, string>>;
  /** LOG_LEVEL of the `sixpn up` processes; default info. */
  readonly logLevel?: string;
  /** Where the hosts' topology is kept: the file (default), or etcd in the extra namespace `etcd`. */
  readonly store?: 'file' | 'etcd';
}

/** The underlay address suffix of the etcd namespace (`store: 'etcd'`). */
const ETCD_SUFFIX = 'e7';

export interface RunResult {
  ok: boolean;
  code: number | null;
  out: string;
  ms: number;
}

export function run(cmd: string, args: string[], opts: { timeout?: number; input?: string } = {}): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = execFile(cmd, args, { timeout: opts.timeout ?? 20_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
      resolve({ ok: err === null, code, out: `${stdout}${stderr}`, ms: performance.now() - t0 });
    });
    if (opts.input !== undefined) c.stdin!.end(opts.input);
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.out.trim()}`);
  return r.out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let counter = 0;

export class SixpnLab {
  readonly tag: string;
  readonly dir: string;
  readonly spec: LabSpec;
  readonly underlay: string;
  readonly topologyFile: string;
  /** host key → { name in the topology, id, namespace, underlay address } */
  readonly hosts = new Map<string, { name: string; id: number; ns: string; addr: string; mesh: string }>();
  /** machine key → { id (= its namespace), address text } (address as of the last `edit`) */
  readonly machines = new Map<string, { id: string; app: string; address: string }>();
  /** extra key → namespace */
  readonly extras = new Map<string, { ns: string; addr: string }>();
  /** peer name → { namespace, interface, address } */
  readonly peers = new Map<string, { ns: string; ifname: string; address: string; prefix48: string }>();
  private readonly procs: ChildProcess[] = [];
  /** the `sixpn up` process of each host (for benchmarks: RSS, CPU time) */
  readonly upProcs: ChildProcess[] = [];
  private readonly namespaces: string[] = [];
  private doc: Record<string, unknown> = {};
  /** With `store: 'etcd'`: the server (in the extra namespace `etcd`) and the hosts' --store URL. */
  etcd: EtcdServer | undefined;
  storeUrl: string | undefined;

  private constructor(spec: LabSpec) {
    this.tag = ((Date.now() + counter++ * 7919) % 46656).toString(36).padStart(3, '0') + (process.pid % 1296).toString(36).padStart(2, '0');
    this.dir = mkdtempSync(join(tmpdir(), `sixpn-lab-${this.tag}-`));
    this.spec = spec;
    this.underlay = `sxu${this.tag}`;
    this.topologyFile = join(this.dir, 'topology.json');
  }

  /** Builds the lab and waits until every host runs with all its machines set up. */
  static async start(spec: LabSpec): Promise<SixpnLab> {
    const lab = new SixpnLab(spec);
    try {
      await lab.build();
    } catch (err) {
      const logs = lab.logs();
      await lab.cleanup();
      throw new Error(`${(err as Error).message}\n${logs}`);
    }
    return lab;
  }

  machineId(key: string): string {
    return `${this.tag}${key}`.padEnd(14, '0').slice(0, 14);
  }

  /** The namespace of a machine, host, extra or peer by its key. */
  ns(key: string): string {
    const n = this.machines.get(key)?.id ?? this.extras.get(key)?.ns ?? this.hosts.get(key)?.ns ?? this.peers.get(key)?.ns;
    if (n === undefined) throw new Error(`lab: no "${key}"`);
    return n;
  }

  /** Runs a command inside a namespace (never throws; see `ok`). */
  exec(key: string, cmd: string, args: string[], opts: { timeout?: number; input?: string } = {}): Promise<RunResult> {
    return run(IP, ['netns', 'exec', this.ns(key), cmd, ...args], opts);
  }

  /** Starts a long-running command inside a namespace (killed at cleanup). */
  spawn(key: string, cmd: string, args: string[]): ChildProcess {
    const c = spawn(IP, ['netns', 'exec', this.ns(key), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.resume();
    c.stderr!.resume();
    this.procs.push(c);
    return c;
  }

  file(name: string, text: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  private async addNs(name: string): Promise<void> {
    await must(IP, ['netns', 'add', name]);
    this.namespaces.push(name);
    await must(IP, ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** A namespace on the underlay bridge with address fd00:6f::SUFFIX/64. */
  private async attach(name: string, suffix: string): Promise<string> {
    await this.addNs(name);
    const addr = `${UNDERLAY_PREFIX}${suffix}`;
    await must(IP, ['link', 'add', `${name}u`, 'type', 'veth', 'peer', 'name', `${name}e`]);
    await must(IP, ['link', 'set', `${name}u`, 'netns', this.underlay]);
    await must(IP, ['link', 'set', `${name}e`, 'netns', name]);
    await must(IP, ['-n', this.underlay, 'link', 'set', `${name}u`, 'master', 'br0', 'up']);
    await must(IP, ['-n', name, 'link', 'set', `${name}e`, 'name', 'eth0']);
    await must(IP, ['-n', name, 'addr', 'add', `${addr}/64`, 'dev', 'eth0', 'nodad']);
    await must(IP, ['-n', name, 'link', 'set', 'eth0', 'up']);
    return addr;
  }

  private async build(): Promise<void> {
    const spec = this.spec;
    const t = this.tag;
    await this.addNs(this.underlay);
    await must(IP, ['-n', this.underlay, 'link', 'add', 'br0', 'type', 'bridge']);
    await must(IP, ['-n', this.underlay, 'link', 'set', 'br0', 'up']);
    const pub: Record<string, string> = {};
    for (const [i, h] of spec.hosts.entries()) {
      const ns = `sxh${t}${i + 1}`;
      const addr = await this.attach(ns, String(i + 1));
      const name = `${t}${h.key}`;
      const mesh = `6pn${t}${i + 1}`;
      this.hosts.set(h.key, { name, id: 0x0a7c0001 + i, ns, addr, mesh });
      const priv = generatePrivateKeyBytes();
      writeFileSync(join(this.dir, `${name}.key`), keyToBase64(priv) + '\n', { mode: 0o600 });
      pub[h.key] = keyToBase64(new StaticIdentity(chosenBackend, priv).publicKey);
      const cfg: Record<string, unknown> = { host: name, privateKeyFile: `${name}.key`, listenPort: 51820, topology: 'topology.json', meshInterface: mesh };
      if (h.dnsUpstream !== undefined) cfg.dnsUpstream = h.dnsUpstream;
      if (h.egress !== undefined) Object.assign(cfg, { egress: h.egress, uplink: 'eth0' });
      if (h.offload !== undefined) cfg.offload = h.offload;
      writeFileSync(join(this.dir, `${name}.json`), JSON.stringify(cfg));
    }
    const extras = { ...spec.extras, ...(spec.store === 'etcd' ? { etcd: ETCD_SUFFIX } : {}) };
    for (const [key, suffix] of Object.entries(extras)) {
      const ns = `sxx${t}${key}`.slice(0, 13);
      this.extras.set(key, { ns, addr: await this.attach(ns, suffix) });
    }
    if (spec.store === 'etcd') {
      const x = this.extras.get('etcd')!;
      this.etcd = await EtcdServer.start(x.ns, x.addr);
      this.storeUrl = `etcd://${this.etcd.addressEndpoint!}/lab${t}`;
      for (const h of this.hosts.values()) {
        const f = join(this.dir, `${h.name}.json`);
        writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')) as object, store: { url: this.storeUrl } }));
      }
    }
    const peerKeys: Record<string, Uint8Array> = {};
    const peerEntries: unknown[] = [];
    for (const [i, p] of (spec.peers ?? []).entries()) {
      const org = spec.orgs.find((o) => o.name === p.org)!;
      const gw = this.hosts.get(p.gateway)!;
      const a = new Uint8Array(16);
      encodeSixpn(a, 0, org.network, gw.id, 0xa0 + i, 2);
      const address = formatAddress(a, 0);
      encodeSixpn(a, 0, org.network, 0, 0, 0);
      const prefix48 = `${formatAddress(a, 0)}/48`;
      peerKeys[p.name] = generatePrivateKeyBytes();
      writeFileSync(join(this.dir, `peer-${p.name}.key`), keyToBase64(peerKeys[p.name]) + '\n', { mode: 0o600 });
      this.peers.set(p.name, { ns: `sxp${t}${i}`, ifname: `sxp${t}${i}wg`, address, prefix48 });
      peerEntries.push({ name: p.name, org: p.org, gateway: gw.name, publicKey: keyToBase64(new StaticIdentity(chosenBackend, peerKeys[p.name]).publicKey), address: `${address}/120` });
    }
    this.doc = {
      version: 1,
      orgs: spec.orgs.map((o) => ({ name: o.name, network: `0x${o.network.toString(16)}` })),
      hosts: spec.hosts.map((h) => {
        const x = this.hosts.get(h.key)!;
        return { name: x.name, id: x.id, region: h.region, publicKey: pub[h.key], endpoint: `[${x.addr}]:51820` };
      }),
      apps: spec.apps,
      machines: spec.machines.map((m) => ({
        id: this.machineId(m.key), app: m.app, region: m.region ?? spec.hosts.find((h) => h.key === m.host)!.region,
        host: this.hosts.get(m.host)!.name, instance: m.instance, state: m.state ?? 'started', ...(m.metadata ? { metadata: m.metadata } : {}),
      })),
      peers: peerEntries,
    };
    writeFileAtomic(this.topologyFile, JSON.stringify(this.doc, null, 2));
    await this.importIntoStore();
    this.refreshMachines();
    for (const x of this.hosts.values()) this.upProcs.push(this.startUp(x));
    await this.waitApplied(60_000);
    for (const [name, p] of this.peers) await this.startPeer(name, p, pub[spec.peers!.find((x) => x.name === name)!.gateway], this.hosts.get(spec.peers!.find((x) => x.name === name)!.gateway)!.addr);
  }

  /** One `sixpn up` for host x; nsenter --net keeps the shared mount namespace (/run/netns). */
  private startUp(x: { name: string; ns: string }): ChildProcess {
    const log = openSync(join(this.dir, `${x.name}.log`), 'a');
    const up = spawn(NSENTER, [`--net=/run/netns/${x.ns}`, process.execPath, ...SIXPN_NODE_FLAGS, SIXPN_CLI, 'up', '-c', join(this.dir, `${x.name}.json`)], {
      stdio: ['ignore', log, log],
      env: { ...process.env, LOG_LEVEL: this.spec.logLevel ?? 'info' },
    });
    this.procs.push(up);
    closeSync(log);
    return up;
  }

  /**
   * Kills the `sixpn up` of a host with `signal` (default SIGKILL: a crash), waits until it is
   * gone and starts it again with the same config; resolves with the new process at once (not
   * waiting for it to be ready).
   */
  async restart(hostKey: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<ChildProcess> {
    const x = this.hosts.get(hostKey)!;
    const i = [...this.hosts.keys()].indexOf(hostKey);
    const old = this.upProcs[i];
    if (old.exitCode === null && old.signalCode === null) {
      const gone = new Promise((r) => old.once('exit', r));
      old.kill(signal);
      await gone;
    }
    const up = this.startUp(x);
    this.upProcs[i] = up;
    return up;
  }

  private async startPeer(name: string, p: { ns: string; ifname: string; address: string; prefix48: string }, gatewayKey: string, gatewayAddr: string): Promise<void> {
    const n = [...this.peers.keys()].indexOf(name);
    await this.attach(p.ns, `${100 + n}`);
    await must(IP, ['netns', 'exec', p.ns, 'wireguard-go', p.ifname]);
    await must(IP, ['netns', 'exec', p.ns, 'wg', 'set', p.ifname, 'private-key', join(this.dir, `peer-${name}.key`), 'peer', gatewayKey,
      'endpoint', `[${gatewayAddr}]:51821`, 'allowed-ips', p.prefix48, 'persistent-keepalive', '15']);
    await must(IP, ['-n', p.ns, 'addr', 'add', `${p.address}/120`, 'dev', p.ifname, 'nodad']);
    await must(IP, ['-n', p.ns, 'link', 'set', p.ifname, 'up']);
    await must(IP, ['-n', p.ns, 'route', 'add', p.prefix48, 'dev', p.ifname]);
  }

  private refreshMachines(): void {
    const topo = parseTopology(JSON.stringify(this.doc), 'lab');
    this.machines.clear();
    for (const m of this.spec.machines) {
      const x = topo.machine(this.machineId(m.key));
      if (x === undefined) continue; // removed by an edit (it may come back)
      const a = new Uint8Array(16);
      machineAddress(a, 0, x.network, x.host, x.instance);
      this.machines.set(m.key, { id: x.id, app: x.app, address: formatAddress(a, 0) });
    }
  }

  /** The topology document as last written. */
  document(): Record<string, unknown> {
    return structuredClone(this.doc);
  }

  /** With `store: 'etcd'`: the topology file imported into etcd through the CLI, in the etcd namespace. */
  private async importIntoStore(): Promise<void> {
    if (this.storeUrl === undefined) return;
    const r = await this.exec('etcd', process.execPath, [SIXPN_CLI, 'topology', 'import', this.topologyFile, '--store', this.storeUrl, '--json'], { timeout: 60_000 });
    if (!r.ok) throw new Error(`sixpn topology import into ${this.storeUrl}: ${r.out.trim()}`);
  }

  /**
   * Writes an edited topology (the file; with an etcd store, imported into it); with `wait`,
   * waits until every host applied it. Returns the write time.
   */
  async edit(next: Record<string, unknown>, wait = true): Promise<number> {
    this.doc = next;
    writeFileAtomic(this.topologyFile, JSON.stringify(next, null, 2));
    await this.importIntoStore();
    const at = performance.now();
    this.refreshMachines();
    if (wait) await this.waitApplied(20_000);
    return at;
  }

  /** The JSON of `sixpn status` of one host (read from its status socket). */
  status(hostKey: string): Promise<Record<string, unknown> | undefined> {
    return readStatus(statusSocketPath(this.hosts.get(hostKey)!.name));
  }


  private async waitApplied(ms: number): Promise<void> {
    const want = topologyDigest(parseTopology(JSON.stringify(this.doc), 'lab'));
    const end = Date.now() + ms;
    for (;;) {
      let ready = 0;
      for (const k of this.hosts.keys()) {
        const s = await this.status(k);
        if (s !== undefined && s.topology === want && s.machinesReady === true) ready++;
      }
      if (ready === this.hosts.size) return;
      if (this.upProcs.some((p) => p.exitCode !== null)) throw new Error('a `sixpn up` exited');
      if (Date.now() > end) throw new Error(`hosts not ready within ${ms} ms (${ready}/${this.hosts.size})`);
      await sleep(150);
    }
  }

  /** The last lines of every host's log. */
  logs(lines = 15): string {
    return [...this.hosts.values()].map((h) => {
      let text = '';
      try {
        text = readFileSync(join(this.dir, `${h.name}.log`), 'utf8');
      } catch {
        // not started
      }
      return `--- ${h.name}.log\n${text.split('\n').slice(-lines).join('\n')}`;
    }).join('\n');
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGTERM');
    const end = Date.now() + 2000;
    while (this.procs.some((p) => p.exitCode === null && p.signalCode === null) && Date.now() < end) await sleep(50);
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await this.etcd?.stop();
    const all = [...this.namespaces, ...this.spec.machines.map((m) => this.machineId(m.key))];
    for (const ns of all) {
      const pids = (await run(IP, ['netns', 'pids', ns])).out.split(/\s+/).filter((x) => /^\d+$/.test(x));
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    for (const ns of all) {
      await run(IP, ['netns', 'del', ns]);
      rmSync(join('/etc/netns', ns), { recursive: true, force: true });
    }
    for (const h of this.hosts.values()) {
      rmSync(`/var/run/wireguard/${h.mesh}.sock`, { force: true });
      rmSync(`/var/run/wireguard/6pg${h.mesh.slice(3)}.sock`, { force: true });
      rmSync(statusSocketPath(h.name), { force: true });
    }
    for (const p of this.peers.values()) rmSync(`/var/run/wireguard/${p.ifname}.sock`, { force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A dig/kdig answer, parsed. */
export interface DigAnswer {
  status: string;
  flags: string[];
  aaaa: string[];
  txt: string[];
  tcp: boolean;
  id: number;
  question: string;
  raw: string;
}

export function parseDig(out: string): DigAnswer {
  const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? '';
  const flagsText = /;; [Ff]lags: ([a-z ]*);/.exec(out)?.[1] ?? '';
  const aaaa: string[] = [];
  const txt: string[] = [];
  let question = '';
  let inQuestion = false;
  for (const line of out.split('\n')) {
    if (/^;; QUESTION SECTION/.test(line)) {
      inQuestion = true;
      continue;
    }
    if (inQuestion) {
      const q = /^;+\s*(\S+)\s/.exec(line);
      if (q) question = q[1];
      inQuestion = false;
    }
    if (line.startsWith(';')) continue;
    const a = /\sAAAA\s+([0-9a-fA-F:]+)\s*$/.exec(line);
    if (a) aaaa.push(a[1]);
    const x = /\sTXT\s+(.*)$/.exec(line);
    if (x) txt.push(x[1]);
  }
  return {
    status,
    flags: flagsText.trim().split(/\s+/).filter(Boolean),
    aaaa,
    txt,
    tcp: /\(TCP\)/.test(out), // dig: `;; SERVER: fdaa::3#53(fdaa::3) (TCP)`, kdig: `;; From fdaa::3@53(TCP)`
    id: Number(/id: (\d+)/.exec(out)?.[1] ?? -1),
    question,
    raw: out,
  };
}

// The etcd of `sixpn demo --store etcd`: a real 3-member cluster of Debian's etcd 3.4, each
// member in a network namespace of its own on the demo's underlay, its data and log under the
// demo's directory (every member's command line names it, so `sixpn demo down` finds them).
// Members are killed as in a crash (SIGKILL) and started again on the same data.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export const ETCD_BINARY = ['/usr/bin/etcd', '/usr/local/bin/etcd'].find((p) => existsSync(p));
const ETCDCTL = ['/usr/bin/etcdctl', '/usr/local/bin/etcdctl'].find((p) => existsSync(p)) ?? 'etcdctl';
export const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;

export interface EtcdMember {
  readonly name: string;
  /** its network namespace (made by the caller, on the underlay) */
  readonly ns: string;
  /** its underlay address */
  readonly address: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const url = (address: string, port: number) => `http://[${address}]:${port}`;

function ctl(ns: string, args: string[], timeoutMs = 5000): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, ETCDCTL, ...args], { timeout: timeoutMs, env: { ...process.env, ETCDCTL_API: '3' } }, (err, stdout, stderr) => {
      resolve({ ok: err === null, out: stdout + stderr });
    });
  });
}

export class DemoEtcdCluster {
  readonly members: readonly EtcdMember[];
  private readonly dir: string;
  private readonly token: string;
  private readonly onSpawn: (p: ChildProcess) => void;
  private readonly procs = new Map<string, ChildProcess>();

  /** `onSpawn` is told of every member process started (for the demo's cleanup and record). */
  constructor(dir: string, token: string, members: readonly EtcdMember[], onSpawn: (p: ChildProcess) => void) {
    this.dir = dir;
    this.token = token;
    this.members = members;
    this.onSpawn = onSpawn;
  }

  /** The client endpoints, `[addr]:2379` each: the store URL is `etcd://` and these joined by commas. */
  get endpoints(): string[] {
    return this.members.map((m) => `[${m.address}]:${ETCD_CLIENT_PORT}`);
  }

  /** Starts member `name` (a new cluster the first time, its own data after that). */
  start(name: string): void {
    const m = this.member(name);
    if (this.running(name)) return;
    const log = openSync(join(this.dir, `etcd-${m.name}.log`), 'a');
    const peer = url(m.address, ETCD_PEER_PORT);
    const client = url(m.address, ETCD_CLIENT_PORT);
    // `ip netns exec` execs etcd: the pid is etcd's
    const p = spawn('ip', ['netns', 'exec', m.ns, ETCD_BINARY!,
      '--name', m.name, '--data-dir', join(this.dir, `etcd-${m.name}`),
      '--listen-client-urls', `${client},http://127.0.0.1:${ETCD_CLIENT_PORT}`, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', this.members.map((x) => `${x.name}=${url(x.address, ETCD_PEER_PORT)}`).join(','),
      '--initial-cluster-state', 'new', '--initial-cluster-token', this.token,
      // a LAN of namespaces: a leader lost is replaced in about half a second
      '--heartbeat-interval', '50', '--election-timeout', '500',
      '--logger', 'zap', '--log-level', 'warn',
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.procs.set(name, p);
    this.onSpawn(p);
  }

  startAll(): void {
    for (const m of this.members) this.start(m.name);
  }

  running(name: string): boolean {
    const p = this.procs.get(name);
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Kills member `name` with SIGKILL (a crash) and waits until it is gone. */
  async kill(name: string): Promise<void> {
    const p = this.procs.get(name);
    if (p === undefined || !this.running(name)) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  /**
   * Each member's view, asked of the member itself from namespace `fromNs` (one that reaches the
   * underlay): whether it answers, and the leader it follows (a member name).
   */
  async status(fromNs: string): Promise<Array<{ name: string; up: boolean; leader?: string }>> {
    return Promise.all(this.members.map(async (m) => {
      const r = await ctl(fromNs, ['--endpoints', `[${m.address}]:${ETCD_CLIENT_PORT}`, '--command-timeout', '1s', 'endpoint', 'status', '-w', 'json']);
      if (!r.ok) return { name: m.name, up: false };
      // ids are 64-bit: read them as text, not as JSON numbers (which would round them)
      const leader = /"leader":(\d+)/.exec(r.out)?.[1];
      if (leader === undefined) return { name: m.name, up: false };
      const ids = await this.memberIds(fromNs);
      return { name: m.name, up: true, ...(ids.has(leader) ? { leader: ids.get(leader) } : {}) };
    }));
  }

  private ids: Map<string, string> | undefined;

  /** member id (decimal, as `endpoint status -w json` prints it) → name */
  private async memberIds(fromNs: string): Promise<Map<string, string>> {
    if (this.ids !== undefined) return this.ids;
    const r = await ctl(fromNs, ['--endpoints', this.endpoints.join(','), '--command-timeout', '2s', 'member', 'list', '-w', 'json']);
    const out = new Map<string, string>();
    for (const x of r.out.matchAll(/"ID":(\d+),"name":"([^"]+)"/g)) out.set(x[1], x[2]);
    if (out.size === this.members.length) this.ids = out;
    return out;
  }

  /** Waits until the members named (default all) answer and agree on a leader; the leader's name, or undefined after `ms`. */
  async waitHealthy(fromNs: string, ms: number, names = this.members.map((m) => m.name)): Promise<string | undefined> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      for (const n of names) if (!this.running(n)) return undefined;
      const s = (await this.status(fromNs)).filter((x) => names.includes(x.name));
      const leaders = new Set(s.map((x) => x.leader));
      // a leader among them: right after the leader dies the others still name it for a moment
      if (s.every((x) => x.up && x.leader !== undefined) && leaders.size === 1 && names.includes(s[0].leader!)) return s[0].leader;
      await sleep(200);
    }
    return undefined;
  }

  private member(name: string): EtcdMember {
    const m = this.members.find((x) => x.name === name);
    if (m === undefined) throw new Error(`no etcd member ${name}`);
    return m;
  }
}

// A real etcd for tests: Debian's etcd binary on loopback, a fresh data dir and free ports,
// killed at teardown (and when the test process exits, even after a failure).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD = ['/usr/bin/etcd', '/usr/local/bin/etcd'].find((p) => existsSync(p));
export const HAVE_ETCD = ETCD !== undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export class EtcdServer {
  readonly dir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  private proc: ChildProcess | null = null;
  /** More etcd flags (e.g. --max-txn-ops N). */
  private flags: string[] = [];
  log = '';

  /** A network namespace it runs in (then its loopback is that namespace's). */
  readonly netns: string | undefined;
  /** An address of that namespace it also serves clients on (beside 127.0.0.1), e.g. on a lab's underlay. */
  readonly address: string | undefined;

  private constructor(dir: string, clientPort: number, peerPort: number, netns?: string, address?: string) {
    this.netns = netns;
    this.address = address;
    this.dir = dir;
    this.clientPort = clientPort;
    this.peerPort = peerPort;
  }

  /** host:port of the client URL. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }
  /** The --store value. */
  get url(): string {
    return `etcd://${this.endpoint}`;
  }

  /** host:port of the client URL on `address` ([v6]:port), when it has one. */
  get addressEndpoint(): string | undefined {
    if (this.address === undefined) return undefined;
    return `${this.address.includes(':') ? `[${this.address}]` : this.address}:${this.clientPort}`;
  }

  /**
   * In `netns` (which must exist), on ports 2379 and 2380 of its loopback, and for clients also
   * on `address` of that namespace if given (other namespaces reach it there).
   */
  static async start(netns?: string, address?: string, flags: string[] = []): Promise<EtcdServer> {
    if (!ETCD) throw new Error('etcd is not installed');
    if (address !== undefined && netns === undefined) throw new Error('EtcdServer: an address needs a namespace');
    const dir = mkdtempSync(join(tmpdir(), 'sixpn-etcd-'));
    const s = netns ? new EtcdServer(dir, 2379, 2380, netns, address) : new EtcdServer(dir, await freePort(), await freePort());
    s.flags = flags;
    await s.run();
    return s;
  }

  async run(): Promise<void> {
    const c = `http://127.0.0.1:${this.clientPort}`;
    const p = `http://127.0.0.1:${this.peerPort}`;
    const clients = this.addressEndpoint !== undefined ? `${c},http://${this.addressEndpoint}` : c;
    const cmd = this.netns ? ['/usr/sbin/ip', 'netns', 'exec', this.netns, ETCD!] : [ETCD!]; // ip netns exec execs etcd: same pid
    const proc = spawn(cmd[0], [...cmd.slice(1),
      '--name', 'test', '--data-dir', join(this.dir, 'data'),
      '--listen-client-urls', clients, '--advertise-client-urls', clients,
      '--listen-peer-urls', p, '--initial-advertise-peer-urls', p, '--initial-cluster', `test=${p}`,
      '--logger', 'zap', '--log-level', 'error', ...this.flags,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => (this.log += d));
    proc.stderr!.on('data', (d) => (this.log += d));
    this.proc = proc;
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    const end = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`etcd exited ${proc.exitCode}: ${this.log.slice(-2000)}`);
      if (this.netns) {
        if (spawnSync('/usr/sbin/ip', ['netns', 'exec', this.netns, 'etcdctl', '--endpoints', this.endpoint, 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' } }).status === 0) return;
      } else {
        try {
          const r = await fetch(`${c}/health`);
          if (r.ok) return;
        } catch {
          // not yet listening
        }
      }
      if (Date.now() > end) throw new Error(`etcd not healthy within 15 s: ${this.log.slice(-2000)}`);
      await sleep(100);
    }
  }

  /** Kills the server (SIGKILL: as a crash); the data dir stays for `run()`. */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  /** etcdctl against this server (synchronous, for setup and checks). */
  ctl(...args: string[]): string {
    const pre = this.netns ? ['netns', 'exec', this.netns, 'etcdctl'] : [];
    const r = spawnSync(this.netns ? '/usr/sbin/ip' : 'etcdctl', [...pre, '--endpoints', this.endpoint, ...args], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } });
    if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

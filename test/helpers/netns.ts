// Network-namespace labs for tests: unique names per run, everything torn down even on
// failure (processes in the namespaces are killed, namespaces and veths deleted, sockets of
// userspace WireGuard interfaces removed). Traffic stays inside the namespaces made here.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const pexec = promisify(execFile);
export const SIXPN_WG = fileURLToPath(new URL('../../bin/sixpn-wg', import.meta.url));
export const SIXPN = fileURLToPath(new URL('../../bin/sixpn', import.meta.url));
let counter = 0;

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export class Lab {
  readonly id: string;
  readonly namespaces: string[] = [];
  readonly links: string[] = [];
  readonly ifnames: string[] = [];
  readonly children: ChildProcess[] = [];
  readonly dir: string;

  constructor(tag: string) {
    // short: interface names are at most 15 bytes
    this.id = `${tag}${(process.pid % 10000).toString(36)}${(counter++).toString(36)}`;
    this.dir = mkdtempSync(join(tmpdir(), `sixpn-${this.id}-`));
  }

  name(suffix: string): string {
    return `${this.id}${suffix}`.slice(0, 15);
  }

  async ns(suffix: string): Promise<string> {
    const n = this.name(suffix);
    await sh('ip', ['netns', 'add', n]);
    this.namespaces.push(n);
    await sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    return n;
  }

  /** A veth pair between two namespaces, with the given addresses (CIDR) on each end. */
  async veth(nsA: string, addrsA: string[], nsB: string, addrsB: string[], mtu?: number): Promise<[string, string]> {
    const a = this.name(`a${this.links.length}`);
    const b = this.name(`b${this.links.length}`);
    await sh('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    this.links.push(a);
    await sh('ip', ['link', 'set', a, 'netns', nsA]);
    await sh('ip', ['link', 'set', b, 'netns', nsB]);
    for (const [ns, dev, addrs] of [[nsA, a, addrsA], [nsB, b, addrsB]] as const) {
      for (const addr of addrs) await sh('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev, ...(addr.includes(':') ? ['nodad'] : [])]);
      if (mtu) await sh('ip', ['-n', ns, 'link', 'set', dev, 'mtu', String(mtu)]);
      await sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    return [a, b];
  }

  /** Runs a command inside a namespace; resolves with stdout, rejects with stderr. */
  exec(ns: string, cmd: string, args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** Starts a long-running command in a namespace (killed at cleanup). */
  start(ns: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    this.children.push(child);
    return child;
  }

  file(name: string, content: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, content, { mode: 0o600 });
    return p;
  }

  async genkey(): Promise<{ priv: string; pub: string; file: string }> {
    const priv = (await sh('wg', ['genkey'])).trim();
    const pub = (await sh('wg', ['pubkey'], { input: priv })).trim();
    return { priv, pub, file: this.file(`key-${pub.slice(0, 8).replace(/[/+]/g, '_')}`, priv) };
  }

  /** Starts a userspace WireGuard (`sixpn-wg` or `wireguard-go`) named `ifname` in `ns`. */
  async wg(ns: string, impl: 'sixpn' | 'wggo', ifname: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
    this.ifnames.push(ifname);
    if (impl === 'sixpn') await this.exec(ns, SIXPN_WG, [ifname], { env: { ...process.env, ...env, SIXPN_NODE: process.execPath } });
    else await this.exec(ns, 'wireguard-go', [ifname]);
  }

  /**
   * Two namespaces A and B joined by a veth (fd00:b1::1|2/64 and 192.168.241.1|2/24), a
   * WireGuard interface in each (`implA`, `implB`) peered with the other over IPv6 or IPv4
   * outside, ports 51820/51821, tunnel addresses 10.9.0.1|2/24 and fd99::1|2/64 inside.
   */
  async wgPair(
    implA: 'sixpn' | 'wggo', implB: 'sixpn' | 'wggo',
    opts: { outer?: 4 | 6; psk?: boolean; mtu?: number; vethMtu?: number; env?: NodeJS.ProcessEnv } = {},
  ): Promise<WgPair> {
    const outer = opts.outer ?? 6;
    const nsA = await this.ns('A');
    const nsB = await this.ns('B');
    await this.veth(nsA, ['fd00:b1::1/64', '192.168.241.1/24'], nsB, ['fd00:b1::2/64', '192.168.241.2/24'], opts.vethMtu);
    const ifA = this.name('wa');
    const ifB = this.name('wb');
    await this.wg(nsA, implA, ifA, opts.env);
    await this.wg(nsB, implB, ifB, opts.env);
    const keyA = await this.genkey();
    const keyB = await this.genkey();
    const psk = opts.psk ? ['preshared-key', this.file('psk', (await this.genkey()).priv)] : [];
    const ep = (i: 1 | 2, port: number) => (outer === 6 ? `[fd00:b1::${i}]:${port}` : `192.168.241.${i}:${port}`);
    await this.exec(nsA, 'wg', ['set', ifA, 'private-key', keyA.file, 'listen-port', '51820', 'peer', keyB.pub, ...psk, 'allowed-ips', '10.9.0.2/32,fd99::2/128', 'endpoint', ep(2, 51821)]);
    await this.exec(nsB, 'wg', ['set', ifB, 'private-key', keyB.file, 'listen-port', '51821', 'peer', keyA.pub, ...psk, 'allowed-ips', '10.9.0.1/32,fd99::1/128', 'endpoint', ep(1, 51820)]);
    for (const [ns, dev, n] of [[nsA, ifA, 1], [nsB, ifB, 2]] as const) {
      await this.exec(ns, 'ip', ['addr', 'add', `10.9.0.${n}/24`, 'dev', dev]);
      await this.exec(ns, 'ip', ['addr', 'add', `fd99::${n}/64`, 'dev', dev, 'nodad']);
      if (opts.mtu) await this.exec(ns, 'ip', ['link', 'set', dev, 'mtu', String(opts.mtu)]);
      await this.exec(ns, 'ip', ['link', 'set', dev, 'up']);
    }
    return { lab: this, nsA, nsB, ifA, ifB, keyA, keyB };
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    for (const ns of this.namespaces) {
      const pids = (await sh('ip', ['netns', 'pids', ns]).catch(() => '')).split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    for (const ns of this.namespaces) await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    for (const l of this.links) await sh('ip', ['link', 'del', l]).catch(() => undefined);
    for (const i of this.ifnames) rmSync(`/var/run/wireguard/${i}.sock`, { force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface WgPair {
  lab: Lab;
  nsA: string;
  nsB: string;
  ifA: string;
  ifB: string;
  keyA: { pub: string; file: string };
  keyB: { pub: string; file: string };
}

export async function sh(cmd: string, args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<string> {
  if (opts.input !== undefined) {
    return new Promise((resolve, reject) => {
      const c = execFile(cmd, args, { timeout: opts.timeout ?? 60_000, env: opts.env }, (err, stdout, stderr) =>
        err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
      );
      c.stdin!.end(opts.input);
    });
  }
  try {
    const { stdout } = await pexec(cmd, args, { timeout: opts.timeout ?? 60_000, env: opts.env, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr || e.message}${e.stdout ? `\n${e.stdout}` : ''}`);
  }
}

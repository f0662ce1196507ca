// docs/deploy.md, run: every shell block of the guide, in order, on the server it names. Each
// server is a network namespace on one bridge with the guide's public address and its own
// hostname (a UTS namespace per block); the laptop is another. Names are unique per run: the
// guide's server and peer names get this run's tag (ams1 → ams1<tag>), and the paths the guide
// writes (/etc/sixpn, /etc/nftables.conf, /etc/default/etcd, …) go to a folder per server. The
// few blocks marked `# not run by the test` are done another way here: etcd is started from the
// /etc/default/etcd the guide wrote, `sixpn up` from the ExecStart= of examples/sixpn.service, and
// the wg-quick file is copied. After each block the test waits until every running host applied
// the same topology, as a person typing would. Everything is removed at the end, also on failure.
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readStatus, statusSocketPath } from '../src/host/status.ts';
import { shellBlocks, type DocBlock } from './helpers/doc-blocks.ts';
import { isRoot, sh } from './helpers/netns.ts';
import { HAVE_ETCD } from './helpers/etcd.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GUIDE = join(ROOT, 'docs/deploy.md');
const UNIT = join(ROOT, 'examples/sixpn.service');
const SERVERS = { ams1: '192.0.2.11', ord1: '192.0.2.12', syd1: '192.0.2.13' } as const;
type Server = keyof typeof SERVERS;
const LAPTOP_ADDR = '192.0.2.100';
/** Paths the guide writes, moved under each server's folder. */
const PRIVATE_PATHS = ['/etc/sixpn', '/etc/nftables.conf', '/etc/default/etcd', '/etc/profile.d/sixpn.sh', '/etc/systemd/system', '/etc/wireguard', '/var/lib/etcd'];
const MAX_SKIPPED = 6;

const rootSerial = isRoot() && HAVE_ETCD ? test.serial : test.serial.skip; // counted as skipped when not root or without etcd
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('every shell block of docs/deploy.md says where it runs; few are left to the reader', (t) => {
  const blocks = shellBlocks(GUIDE);
  t.true(blocks.length >= 10);
  for (const b of blocks) {
    for (const on of b.on) t.true(on in SERVERS || on === 'laptop', `line ${b.line}: unknown place "${on}"`);
  }
  const skipped = blocks.filter((b) => b.skip);
  t.true(skipped.length <= MAX_SKIPPED, `${skipped.length} blocks not run by the test`);
});

test('examples/sixpn.service passes systemd-analyze verify', (t) => {
  if (!existsSync('/usr/bin/systemd-analyze')) return t.pass();
  const dir = mkdtempSync(join(tmpdir(), 'sixpn-unit-'));
  try {
    // the unit as installed, with ExecStart= pointing at this checkout's launcher
    writeFileSync(join(dir, 'sixpn.service'), readFileSync(UNIT, 'utf8').replaceAll('/usr/local/bin/sixpn', join(ROOT, 'bin/sixpn')));
    const r = spawnSync('/usr/bin/systemd-analyze', ['verify', join(dir, 'sixpn.service')], { encoding: 'utf8', cwd: dir });
    t.is(`${r.stdout}${r.stderr}`.trim(), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

class GuideLab {
  readonly tag = ((Date.now() % 46656).toString(36) + (process.pid % 1296).toString(36)).padStart(5, '0').slice(-5);
  readonly dir = mkdtempSync(join(tmpdir(), `sixpn-guide-${this.tag}-`));
  readonly underlay = `sxg${this.tag}u`;
  readonly namespaces: string[] = [];
  readonly etcd = new Map<Server, ChildProcess>();
  readonly up = new Map<Server, ChildProcess>();
  readonly bin = join(this.dir, 'bin');
  log = '';

  ns(place: string): string {
    return place === 'laptop' ? `sxg${this.tag}l` : `sxg${this.tag}${Object.keys(SERVERS).indexOf(place)}`;
  }
  /** The guide's name for a server or peer, unique to this run. */
  name(n: string): string {
    return `${n}${this.tag}`;
  }
  root(place: string): string {
    return join(this.dir, place);
  }

  /** The guide's text as this run runs it: names tagged, private paths under the place's folder. */
  rewrite(text: string, place: string): string {
    let s = text.replace(/\b(ams1|ord1|syd1|ops-laptop)\b/g, (n) => this.name(n));
    s = s.replaceAll('/opt/sixpn', ROOT.replace(/\/$/, ''));
    for (const p of PRIVATE_PATHS) s = s.replaceAll(p, `${this.root(place)}${p}`);
    return s;
  }

  async start(): Promise<void> {
    mkdirSync(this.bin);
    symlinkSync(join(ROOT, 'bin/sixpn'), join(this.bin, 'sixpn'));
    symlinkSync(join(ROOT, 'bin/sixpn-wg'), join(this.bin, 'sixpn-wg'));
    // wg-quick hands the DNS = line to resolvconf; the laptop here has none to change
    writeFileSync(join(this.bin, 'resolvconf'), '#!/bin/sh\ncat >/dev/null\n', { mode: 0o755 });
    await this.addNs(this.underlay);
    await sh('ip', ['-n', this.underlay, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh('ip', ['-n', this.underlay, 'link', 'set', 'br0', 'up']);
    for (const [place, addr] of [...Object.entries(SERVERS), ['laptop', LAPTOP_ADDR]]) {
      const ns = this.ns(place);
      await this.addNs(ns);
      await sh('ip', ['link', 'add', `${ns}v`, 'type', 'veth', 'peer', 'name', `${ns}e`]);
      await sh('ip', ['link', 'set', `${ns}v`, 'netns', this.underlay]);
      await sh('ip', ['-n', this.underlay, 'link', 'set', `${ns}v`, 'master', 'br0', 'up']);
      await sh('ip', ['link', 'set', `${ns}e`, 'netns', ns]);
      await sh('ip', ['-n', ns, 'link', 'set', `${ns}e`, 'name', 'eth0']);
      await sh('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      for (const p of ['etc/default', 'etc/profile.d', 'etc/systemd/system', 'etc/wireguard', 'var/lib/etcd']) mkdirSync(join(this.root(place), p), { recursive: true });
    }
  }

  private async addNs(ns: string): Promise<void> {
    await sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, PATH: `${this.bin}:${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`, SIXPN_NODE: process.execPath, ETCDCTL_API: '3' };
  }

  /** Runs one block on one place: its hostname set, /etc/profile.d/sixpn.sh read as a login shell would. */
  run(block: DocBlock, place: string): { code: number | null; out: string } {
    const profile = `${this.root(place)}/etc/profile.d/sixpn.sh`;
    const script = join(this.dir, `block-${block.line}-${place}.sh`);
    writeFileSync(script, [
      `hostname ${place === 'laptop' ? 'laptop' : this.name(place)}`,
      `[ -f ${profile} ] && . ${profile}`,
      'set -euo pipefail',
      `cd ${this.root(place)}`,
      this.rewrite(block.text, place),
      '',
    ].join('\n'));
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.ns(place)}`, 'unshare', '--uts', 'bash', script], { encoding: 'utf8', env: this.env(), timeout: 90_000 });
    return { code: r.status, out: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}` };
  }

  startEtcd(s: Server): void {
    const env = `${this.root(s)}/etc/default/etcd`;
    const p = spawn('nsenter', [`--net=/run/netns/${this.ns(s)}`, 'bash', '-c', `set -a; . ${env}; exec etcd --log-level error`], { stdio: ['ignore', 'pipe', 'pipe'], env: this.env() });
    p.stdout!.on('data', (d) => (this.log += `[etcd ${s}] ${d}`));
    p.stderr!.on('data', (d) => (this.log += `[etcd ${s}] ${d}`));
    this.etcd.set(s, p);
  }

  /** `sixpn up` as the unit starts it: its ExecStart= and Environment=, in the server's namespace. */
  async startUp(s: Server): Promise<void> {
    const unit = this.rewrite(readFileSync(`${this.root(s)}/etc/systemd/system/sixpn.service`, 'utf8'), s);
    const exec = /^ExecStart=(.+)$/m.exec(unit)![1].trim().split(/\s+/).map((a) => a === '/usr/local/bin/sixpn' ? join(this.bin, 'sixpn') : a);
    const env = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    const p = spawn('nsenter', [`--net=/run/netns/${this.ns(s)}`, ...exec], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...this.env(), ...env } });
    p.stdout!.on('data', (d) => (this.log += `[up ${s}] ${d}`));
    p.stderr!.on('data', (d) => (this.log += `[up ${s}] ${d}`));
    this.up.set(s, p);
    const end = Date.now() + 60_000;
    while ((await readStatus(statusSocketPath(this.name(s)))) === undefined) {
      if (p.exitCode !== null) throw new Error(`sixpn up on ${s} exited ${p.exitCode}`);
      if (Date.now() > end) throw new Error(`sixpn up on ${s} not answering within 60 s`);
      await sleep(200);
    }
  }

  async stopUp(s: Server): Promise<void> {
    const p = this.up.get(s);
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([gone, sleep(15_000)]);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }

  /** Until every running host reports the same topology with its machines set up. */
  async settle(): Promise<void> {
    const end = Date.now() + 30_000;
    let last = '';
    for (;;) {
      const st = await Promise.all([...this.up.keys()].map((s) => readStatus(statusSocketPath(this.name(s)))));
      const digests = new Set(st.map((x) => (x && x.machinesReady === true ? String(x.topology) : '?')));
      const now = [...digests].join(',');
      if (digests.size === 1 && !digests.has('?') && now === last) return;
      last = now;
      if (Date.now() > end) throw new Error(`hosts did not settle: ${now}`);
      await sleep(300);
    }
  }

  /** What the test does for a block the guide leaves to systemd or ssh. */
  async instead(b: DocBlock, place: string): Promise<void> {
    if (/systemctl restart etcd/.test(b.text)) {
      this.startEtcd(place as Server);
      if (place === b.on[b.on.length - 1]) await this.etcdHealthy();
    } else if (/systemctl enable --now sixpn/.test(b.text)) {
      await this.startUp(place as Server);
    } else if (/systemctl restart sixpn/.test(b.text)) {
      await this.stopUp(place as Server);
      await this.startUp(place as Server);
    } else if (/^scp root@([0-9.]+):(\S+) (\S+)$/m.test(b.text)) {
      const [, addr, from, to] = /^scp root@([0-9.]+):(\S+) (\S+)$/m.exec(b.text)!;
      const server = (Object.keys(SERVERS) as Server[]).find((s) => SERVERS[s] === addr)!;
      copyFileSync(this.rewrite(from, server), this.rewrite(to, place));
    } else if (!/apt-get install/.test(b.text)) {
      throw new Error(`docs/deploy.md:${b.line}: a block not run by the test that the test does not know how to replace`);
    }
  }

  private async etcdHealthy(): Promise<void> {
    const end = Date.now() + 30_000;
    for (;;) {
      const r = spawnSync('nsenter', [`--net=/run/netns/${this.ns('ams1')}`, 'etcdctl', 'endpoint', 'health', '--cluster'], { env: this.env() });
      if (r.status === 0) return;
      if (Date.now() > end) throw new Error(`etcd cluster not healthy: ${this.log.slice(-2000)}`);
      await sleep(300);
    }
  }

  async cleanup(): Promise<void> {
    // the machines' namespaces, named by ids the CLI allocated: from the store while it runs
    const ids = new Set<string>();
    for (const s of Object.keys(SERVERS) as Server[]) {
      const st = await readStatus(statusSocketPath(this.name(s)));
      for (const m of (st?.machines as { id: string }[] | undefined) ?? []) ids.add(m.id);
    }
    const list = spawnSync('nsenter', [`--net=/run/netns/${this.ns('ams1')}`, join(this.bin, 'sixpn'), 'machine', 'list', '--json', '--store', 'etcd://127.0.0.1:2379'], { encoding: 'utf8', env: this.env(), timeout: 20_000 });
    try {
      for (const m of JSON.parse(list.stdout) as { id: string }[]) ids.add(m.id);
    } catch {
      // etcd never came up: no machines
    }
    for (const s of this.up.keys()) await this.stopUp(s);
    for (const p of this.etcd.values()) p.kill('SIGKILL');
    for (const ns of [...this.namespaces, ...ids]) {
      const pids = (await sh('ip', ['netns', 'pids', ns]).catch(() => '')).split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    for (const ns of [...this.namespaces, ...ids]) {
      await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
      rmSync(join('/etc/netns', ns), { recursive: true, force: true });
    }
    for (const s of Object.keys(SERVERS)) {
      rmSync(statusSocketPath(this.name(s)), { force: true });
      rmSync(`/var/run/wireguard/6pn-${this.name(s)}.sock`, { force: true });
      rmSync(`/var/run/wireguard/6pg-${this.name(s)}.sock`, { force: true });
    }
    rmSync(`/var/run/wireguard/${this.name('ops-laptop')}.sock`, { force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

rootSerial('docs/deploy.md runs: three servers, etcd, two orgs, machines, a wg-quick peer, a restart', async (t) => {
  t.timeout(300_000);
  const lab = new GuideLab();
  const done: string[] = [];
  try {
    await lab.start();
    for (const b of shellBlocks(GUIDE)) {
      for (const place of b.on) {
        if (b.skip) {
          await lab.instead(b, place);
          done.push(`line ${b.line} on ${place}: done by the test (${b.skip})`);
        } else {
          const r = lab.run(b, place);
          if (r.code !== 0) throw new Error(`docs/deploy.md:${b.line} on ${place} exited ${r.code}:\n${b.text}\n--- output\n${r.out}\n--- log\n${lab.log.slice(-3000)}`);
          done.push(`line ${b.line} on ${place}: ok${/refused|isolation/.test(r.out) ? ` (${r.out.trim().split('\n').pop()})` : ''}`);
        }
      }
      if (lab.up.size > 0) await lab.settle();
    }
    t.log(done.join('\n'));
    t.pass();
  } finally {
    await lab.cleanup();
  }
});

// Live: `sixpn up --store etcd://…` in a network namespace, with etcd running in the same
// namespace, picks up a machine that the operator CLI creates (its namespace and TUN address
// appear), stops showing it when it is destroyed, and says so in `sixpn status` when etcd is
// killed, forwarding on. Everything it made is removed, also when a check fails.
import test from 'ava';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIXPN, isRoot } from './helpers/netns.ts';
import { EtcdServer, HAVE_ETCD } from './helpers/etcd.ts';

const IP = '/usr/sbin/ip';
const SIXPN_CLI = fileURLToPath(new URL('../src/cli/sixpn.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, env: { ...process.env, SIXPN_NODE: process.execPath } }, (e, out, err) => {
      resolve({ code: e ? (typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : -1) : 0, out, err });
    });
  });
}

(HAVE_ETCD && isRoot() ? test.serial : test.skip)('sixpn up --store etcd:// applies a machine created with the CLI, and rides out etcd going away', async (t) => {
  t.timeout(180_000);
  const tag = `${(Date.now() % 46656).toString(36)}${(process.pid % 1296).toString(36)}`.padStart(5, '0');
  const ns = `sxe${tag}`;
  const hostName = `h${tag}`;
  const mesh = `6pn${tag}`;
  const dir = mkdtempSync(join(tmpdir(), `sixpn-etcdlive-${tag}-`));
  const machines: string[] = [];
  let up: ChildProcess | undefined;
  let etcd: EtcdServer | undefined;
  t.teardown(async () => {
    if (up && up.exitCode === null) {
      up.kill('SIGTERM');
      for (let i = 0; i < 40 && up.exitCode === null && up.signalCode === null; i++) await sleep(50);
      if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
    }
    await etcd?.stop();
    for (const n of [ns, ...machines]) {
      const pids = (await sh(IP, ['netns', 'pids', n])).out.split(/\s+/).filter((x) => /^\d+$/.test(x));
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      await sh(IP, ['netns', 'del', n]);
      rmSync(join('/etc/netns', n), { recursive: true, force: true });
    }
    for (const f of [`/var/run/wireguard/${mesh}.sock`, `/var/run/wireguard/6pg${mesh.slice(3)}.sock`, `/run/sixpn/${hostName}.sock`]) rmSync(f, { force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  t.is((await sh(IP, ['netns', 'add', ns])).code, 0);
  await sh(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
  etcd = await EtcdServer.start(ns);
  const store = `etcd://127.0.0.1:2379/live${tag}`;
  const cli = async (...args: string[]) => {
    const r = await sh(IP, ['netns', 'exec', ns, SIXPN, ...args, '--store', store, '--json']);
    t.is(r.code, 0, `sixpn ${args.join(' ')}: ${r.err}`);
    return JSON.parse(r.out);
  };
  await cli('org', 'create', 'acme');
  await cli('app', 'create', 'web', '--org', 'acme');
  const host = await cli('host', 'add', hostName, '--region', 'ams', '--endpoint', '127.0.0.1:51820', '--key-file', join(dir, 'h.key'));
  const cfg = join(dir, 'host.json');
  writeFileSync(cfg, JSON.stringify({ ...host.config, meshInterface: mesh }));
  t.is(host.config.store, store);
  // nsenter --net keeps the shared mount namespace, so the machines' namespaces are seen outside
  up = spawn('/usr/bin/nsenter', [`--net=/run/netns/${ns}`, process.execPath, SIXPN_CLI, 'up', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  up.stdout!.on('data', (d) => (log += d));
  up.stderr!.on('data', (d) => (log += d));

  const status = async (): Promise<Record<string, any> | undefined> => {
    const r = await sh(SIXPN, ['status', hostName, '--json']);
    return r.code === 0 ? JSON.parse(r.out) : undefined;
  };
  const until = async (what: string, cond: (s: Record<string, any>) => boolean, ms = 30_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const s = await status();
      if (s && cond(s)) return s;
      if (up!.exitCode !== null) throw new Error(`sixpn up exited ${up!.exitCode}:\n${log}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${log.slice(-3000)}`);
      await sleep(200);
    }
  };
  const s0 = await until('sixpn up', (s) => s.store?.connected === true);
  t.is(s0.store.kind, 'etcd');
  t.deepEqual(s0.machines, []);

  const m = await cli('machine', 'create', 'web', '--region', 'ams');
  machines.push(m.id);
  t.is(m.host, hostName);
  const s1 = await until('the new machine', (s) => s.machines.some((x: { id: string }) => x.id === m.id) && s.machinesReady === true);
  t.is(s1.machines[0].address, m.address);
  const mns = s1.machines[0].namespace as string;
  if (!machines.includes(mns)) machines.push(mns);
  const addr = await sh(IP, ['-n', mns, '-6', 'addr', 'show']);
  t.true(addr.out.includes(m.address), `the machine's namespace ${mns} has ${m.address}: ${addr.out}${addr.err} ${JSON.stringify(s1.machines)}`);

  // etcd goes away: the host says so and keeps its machine; back: edits apply again
  await etcd.kill();
  const s2 = await until('disconnected in status', (s) => s.store?.connected === false, 30_000);
  t.true(s2.machines.some((x: { id: string }) => x.id === m.id), 'the machine stays while etcd is away');
  t.regex(log, /unreachable.*forwarding with the topology of revision/);
  await etcd.run();
  await until('connected again', (s) => s.store?.connected === true, 30_000);
  await cli('machine', 'destroy', m.id);
  await until('the machine gone', (s) => s.machines.length === 0, 30_000);
});

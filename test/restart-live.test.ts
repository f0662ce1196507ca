// Crash and restart (issue 11): a `sixpn up` killed with SIGKILL leaves its machines' namespaces,
// its status socket and its UAPI sockets behind; started again with the same config it takes the
// namespaces back (one interface, one address each, no new namespace), replaces the stale
// sockets, and forwards again — both ways across the mesh — within 3 s of being started. A
// topology file that is corrupt at start gives one clear line and changes nothing on the host.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { statusSocketPath } from '../src/host/status.ts';
import { SIXPN, isRoot } from './helpers/netns.ts';
import { IP, SixpnLab, run } from './helpers/sixpn-lab.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip;
const pexec = promisify(execFile);

let lab: SixpnLab | undefined;
let ready: Promise<SixpnLab> | undefined;
test.after.always(async () => {
  await lab?.cleanup();
});
function setup(): Promise<SixpnLab> {
  ready ??= SixpnLab.start({
    orgs: [{ name: 'acme', network: 0x18 }],
    apps: [{ name: 'web', org: 'acme' }, { name: 'db', org: 'acme' }],
    hosts: [{ key: 'a', region: 'ord' }, { key: 'b', region: 'ams' }],
    machines: [
      { key: 'w1', app: 'web', host: 'a', instance: 1 },
      { key: 'w2', app: 'web', host: 'a', instance: 2 },
      { key: 'd1', app: 'db', host: 'b', instance: 1 },
    ],
  }).then((l) => (lab = l));
  return ready;
}

/** What a host's machines look like from outside: per namespace its links and global addresses. */
async function machineView(l: SixpnLab, keys: string[]): Promise<Record<string, { links: string[]; addrs: string[]; routes: string[] }>> {
  const out: Record<string, { links: string[]; addrs: string[]; routes: string[] }> = {};
  for (const k of keys) {
    const ns = l.ns(k);
    const links = (await run(IP, ['-n', ns, '-o', 'link', 'show'])).out.split('\n').map((x) => /^\d+: ([^:@]+)/.exec(x)?.[1]).filter((x): x is string => x !== undefined && x !== 'lo');
    const addrs = (await run(IP, ['-n', ns, '-6', '-o', 'addr', 'show', 'scope', 'global'])).out.split('\n').map((x) => /inet6 (\S+)/.exec(x)?.[1]).filter((x): x is string => x !== undefined);
    const routes = (await run(IP, ['-n', ns, '-6', 'route', 'show'])).out.trim().split('\n').filter(Boolean).map((r) => r.replace(/ dev \S+/, ' dev X'));
    out[k] = { links, addrs, routes };
  }
  return out;
}

rootSerial('sixpn up killed with SIGKILL and started again: same namespaces and interfaces, stale sockets replaced, forwarding both ways within 3 s', async (t) => {
  t.timeout(120_000);
  const l = await setup();
  const a = l.hosts.get('a')!;
  const d1 = l.machines.get('d1')!;
  const w1 = l.machines.get('w1')!;
  const w2 = l.machines.get('w2')!;
  const ping = (from: string, to: string, waitS = '1') => l.exec(from, 'ping', ['-c', '1', '-W', waitS, to]);
  t.true((await ping('w1', d1.address, '3')).ok);
  t.true((await ping('d1', w2.address, '3')).ok);
  const before = await machineView(l, ['w1', 'w2']);
  const ours = async () => (await run(IP, ['netns', 'list'])).out.split('\n').map((x) => x.split(' ')[0]).filter((x) => x.includes(l.tag)).sort();
  const namespaces = await ours();
  t.deepEqual(before.w1.links.length, 1, JSON.stringify(before));

  // the crash: nothing cleaned up
  const old = l.upProcs[0];
  const gone = new Promise((r) => old.once('exit', r));
  old.kill('SIGKILL');
  await gone;
  const uapi = `/var/run/wireguard/${a.mesh}.sock`;
  t.true(existsSync(statusSocketPath(a.name)), 'a stale status socket');
  t.true(existsSync(uapi), 'a stale UAPI socket');
  t.false((await ping('w1', d1.address)).ok, 'nothing forwards while it is down');

  const t0 = performance.now();
  await l.restart('a');
  // first from the other host toward it, alone (the other host's session with the old process
  // is dead and it has no reason to handshake: the new process must, at once), then from the
  // restarted host's machine
  const fwd = { out: -1, in: -1 };
  while (performance.now() - t0 < 20_000 && fwd.in < 0) if ((await ping('d1', w2.address, '0.2')).ok) fwd.in = performance.now() - t0;
  while (performance.now() - t0 < 20_000 && fwd.out < 0) if ((await ping('w1', d1.address, '0.2')).ok) fwd.out = performance.now() - t0;
  t.log(`forwarding again after the restart: toward host a's machine after ${fwd.in.toFixed(0)} ms, from it after ${fwd.out.toFixed(0)} ms`);
  t.true(fwd.out >= 0 && fwd.out < 3000, `out ${fwd.out} ms`);
  t.true(fwd.in >= 0 && fwd.in < 3000, `in ${fwd.in} ms`);

  // the same machines, nothing doubled
  const after = await machineView(l, ['w1', 'w2']);
  for (const k of ['w1', 'w2'] as const) {
    t.is(after[k].links.length, 1, `${k}: one interface ${JSON.stringify(after[k])}`);
    t.deepEqual(after[k].addrs, before[k].addrs, `${k}: its address, once`);
    t.deepEqual(after[k].routes, before[k].routes, `${k}: its routes, once`);
  }
  t.deepEqual(await ours(), namespaces, 'no namespace added or lost');
  const hostLinks = (await run(IP, ['-n', a.ns, '-o', 'link', 'show'])).out;
  t.notRegex(hostLinks, /6pn[0-9a-f]{6,}/, 'no machine TUN left in the host namespace');
  // the stale sockets were replaced: the status and wg(8) answer the new process
  const s = await l.status('a');
  t.is((s?.machines as unknown[] | undefined)?.length, 2);
  const wg = await pexec('wg', ['show', a.mesh, 'peers']);
  t.is(wg.stdout.trim().split('\n').length, 1);
  t.true((await ping('w1', w1.address)).ok);
});

rootSerial('a topology file corrupt at start: one clear line, exit 1, nothing changed on the host', async (t) => {
  t.timeout(60_000);
  const l = await setup();
  const a = l.hosts.get('a')!;
  const ns = `${l.tag}cx`;
  await pexec(IP, ['netns', 'add', ns]);
  t.teardown(() => void run(IP, ['netns', 'del', ns]));
  const good = JSON.parse(JSON.stringify(l.document())) as { machines: Array<{ host: string; id: string }> };
  const cases: Array<[string, string, RegExp, number]> = [
    ['truncated.json', JSON.stringify(good).slice(0, 200), /^sixpn: topology \S+truncated\.json refused: \(document\): not valid JSON/, 1],
    ['invalid.json', JSON.stringify({ ...good, machines: [{ ...good.machines[0], host: 'nosuchhost' }] }), /^sixpn: topology \S+invalid\.json refused: machines\[0\].*nosuchhost/, 1],
    ['empty.json', '', /^sixpn: topology \S+empty\.json refused: /, 1],
    // two problems: the one error lists them, one line each
    ['two.json', JSON.stringify({ ...good, version: 9, machines: [{ ...good.machines[0], host: 'nosuchhost' }] }), /^sixpn: topology \S+two\.json refused, 2 problems:$/, 3],
  ];
  const snapshot = async () => ({
    namespaces: (await run(IP, ['netns', 'list'])).out.split('\n').filter((x) => x.includes(l.tag)).sort(), // ours (others run labs too)
    links: (await run(IP, ['-n', ns, '-o', 'link', 'show'])).out,
    run: readdirSync('/run/sixpn').filter((x) => x.includes(l.tag)).sort(),
    wg: existsSync('/var/run/wireguard') ? readdirSync('/var/run/wireguard').filter((x) => x.includes(l.tag)).sort() : [],
    etcNetns: existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((x) => x.includes(l.tag)).sort() : [],
  });
  for (const [name, text, why, count] of cases) {
    const cfg = join(l.dir, `corrupt-${name}`);
    writeFileSync(join(l.dir, name), text);
    // a host of its own name (so no running host's sockets are touched), the key of host a
    writeFileSync(cfg, JSON.stringify({ host: a.name, privateKeyFile: join(l.dir, `${a.name}.key`), listenPort: 51990, topology: name, meshInterface: `6pn${l.tag}x` }));
    const before = await snapshot();
    const r = await run('nsenter', [`--net=/run/netns/${ns}`, process.execPath, SIXPN.replace(/bin\/sixpn$/, 'src/cli/sixpn.ts'), 'up', '-c', cfg], { timeout: 20_000 });
    t.is(r.code, 1, `${name}: ${r.out}`);
    const lines = r.out.trim().split('\n');
    t.is(lines.length, count, `${name}: ${count} line(s): ${r.out}`);
    t.regex(lines[0], why);
    t.notRegex(r.out, /"level"|\bat \S+:\d+:\d+/, 'no log line, no stack');
    t.deepEqual(await snapshot(), before, `${name}: nothing changed`);
  }
});

// The `.internal` DNS server live (issue 4): two hosts running `sixpn up`, two orgs, an app of
// 40 machines, an external WireGuard peer (wireguard-go) and a DNS upstream of our own (dnsmasq
// in a namespace on the underlay). Real resolvers ask from inside the machine namespaces: dig
// (UDP, TCP, no EDNS, buffer sizes), kdig, and glibc's getaddrinfo through `getent`. Nothing
// leaves the namespaces made here; the host's own resolvers are never used.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { moveMachine, setMachineState } from '../src/topology/index.ts';
import { SixpnLab, parseDig, type DigAnswer } from './helpers/sixpn-lab.ts';
import { isRoot } from './helpers/netns.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

const DIG = '/usr/bin/dig';
const KDIG = '/usr/bin/kdig';
const GETENT = '/usr/bin/getent';
const DNSMASQ = '/usr/sbin/dnsmasq';
const FUZZ = fileURLToPath(new URL('./helpers/dns-fuzz.ts', import.meta.url));
const UPSTREAM = 'fd00:6f::53'; // dnsmasq, on the underlay
const DEAD_UPSTREAM = 'fd00:6f::54'; // nobody
const BIG = 60; // AAAA records of big.example.test at the upstream: more than a 1420-byte MTU holds

const web = Array.from({ length: 40 }, (_, i) => ({
  key: `w${String(i + 1).padStart(2, '0')}`, app: 'web', host: i < 20 ? 'h1' : 'h2', instance: 0x100 + i,
}));

let lab: SixpnLab | undefined;

test.before(async (t) => {
  if (!isRoot()) return;
  t.timeout(110_000);
  lab = await SixpnLab.start({
    orgs: [{ name: 'acme', network: 0x18 }, { name: 'initech', network: 0x863 }],
    apps: [{ name: 'web', org: 'acme' }, { name: 'db', org: 'acme' }, { name: 'ledger', org: 'initech' }],
    hosts: [
      { key: 'h1', region: 'ams', dnsUpstream: [`[${UPSTREAM}]:53`] },
      { key: 'h2', region: 'ord', dnsUpstream: [`[${DEAD_UPSTREAM}]:53`] },
    ],
    machines: [
      ...web,
      { key: 'db1', app: 'db', host: 'h1', instance: 0x201 },
      { key: 'led1', app: 'ledger', host: 'h1', instance: 0x301 },
      { key: 'led2', app: 'ledger', host: 'h2', instance: 0x302 },
    ],
    peers: [{ name: 'laptop', org: 'acme', gateway: 'h1' }],
    extras: { up: '53' },
  });
  const hosts = ['2001:db8::77 www.example.test', ...Array.from({ length: BIG }, (_, i) => `2001:db8::1:${i + 1} big.example.test`)];
  const file = lab.file('upstream.hosts', hosts.join('\n') + '\n');
  lab.spawn('up', DNSMASQ, ['-k', '-C', '/dev/null', '--user=root', '--no-resolv', '--no-hosts', `--addn-hosts=${file}`,
    `--listen-address=${UPSTREAM}`, '--bind-interfaces', '--pid-file', '--edns-packet-max=4096']);
  for (let i = 0; ; i++) {
    const r = await lab.exec('up', DIG, ['+short', '+time=1', '+tries=1', `@${UPSTREAM}`, 'AAAA', 'www.example.test']);
    if (r.out.includes('2001:db8::77')) break;
    if (i > 50) throw new Error(`the upstream dnsmasq does not answer: ${r.out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

test.after.always(async () => {
  await lab?.cleanup();
});

async function dig(from: string, ...args: string[]): Promise<DigAnswer & { ms: number }> {
  const r = await lab!.exec(from, DIG, ['+time=4', '+tries=1', ...args]);
  return { ...parseDig(r.out), ms: r.ms };
}

const webAddrs = (): string[] => web.map((w) => lab!.machines.get(w.key)!.address).sort();
const sorted = (xs: string[]) => [...xs].sort();

rootSerial('dig over UDP: AAAA web.internal from a machine lists all 40 machines of the app', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const a = await dig('w01', 'AAAA', 'web.internal');
  t.is(a.status, 'NOERROR', a.raw);
  t.false(a.tcp);
  t.false(a.flags.includes('tc'));
  t.deepEqual(sorted(a.aaaa), webAddrs());
  const b = await dig('w33', 'TXT', 'regions.web.internal'); // a machine of the other host
  t.deepEqual(b.txt, ['"ams,ord"'], b.raw);
});

rootSerial('dig +tcp: the same answer over TCP (the kernel terminates the connection)', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const a = await dig('w02', '+tcp', 'AAAA', 'web.internal');
  t.is(a.status, 'NOERROR', a.raw);
  t.true(a.tcp, a.raw);
  t.deepEqual(sorted(a.aaaa), webAddrs());
  const b = await dig('w25', '+tcp', 'AAAA', `${lab.machines.get('w03')!.id}.vm.web.internal`);
  t.deepEqual(b.aaaa, [lab.machines.get('w03')!.address], b.raw);
});

rootSerial('without EDNS (musl-like, +noedns +ignore): TC=1 with the records that fit in 512 bytes; dig then retries over TCP', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const a = await dig('w01', '+noedns', '+ignore', 'AAAA', 'web.internal');
  t.is(a.status, 'NOERROR', a.raw);
  t.true(a.flags.includes('tc'), a.raw);
  t.false(a.tcp);
  t.true(a.aaaa.length >= 16 && a.aaaa.length < 40, `${a.aaaa.length} answers`);
  t.true(a.aaaa.every((x) => webAddrs().includes(x)));
  const b = await dig('w01', '+noedns', 'AAAA', 'web.internal');
  t.true(b.tcp, b.raw);
  t.false(b.flags.includes('tc'));
  t.deepEqual(sorted(b.aaaa), webAddrs());
});

rootSerial('+bufsize=4096: the whole answer over UDP; +bufsize=512 truncates', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const a = await dig('w05', '+bufsize=4096', 'AAAA', 'web.internal');
  t.false(a.tcp);
  t.false(a.flags.includes('tc'), a.raw);
  t.deepEqual(sorted(a.aaaa), webAddrs());
  const b = await dig('w05', '+bufsize=512', '+ignore', 'AAAA', 'web.internal');
  t.true(b.flags.includes('tc'), b.raw);
  t.true(b.aaaa.length > 0 && b.aaaa.length < 40);
});

rootSerial('kdig: without EDNS it gets TC and retries over TCP; +tcp; +edns', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  for (const opts of [[], ['+tcp'], ['+edns=0', '+bufsize=1232']]) {
    const r = await lab.exec('w07', KDIG, ['+time=4', '+retry=0', ...opts, 'AAAA', 'web.internal']);
    const a = parseDig(r.out);
    t.is(a.status, 'NOERROR', r.out);
    t.deepEqual(sorted(a.aaaa), webAddrs(), opts.join(' '));
    if (opts.length < 2) t.true(a.tcp, r.out);
  }
});

rootSerial('getent ahostsv6 (glibc getaddrinfo through /etc/netns/<ns>/resolv.conf) resolves the app and another machine', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const r = await lab.exec('w10', GETENT, ['ahostsv6', 'web.internal']);
  t.true(r.ok, r.out);
  t.deepEqual(sorted([...new Set(r.out.trim().split('\n').map((l) => l.split(/\s+/)[0]))]), webAddrs());
  const w30 = lab.machines.get('w30')!;
  const v = await lab.exec('w10', GETENT, ['ahostsv6', `${w30.id}.vm.web.internal`]);
  t.is(v.out.trim().split('\n')[0].split(/\s+/)[0], w30.address, v.out);
});

rootSerial('a machine of another org gets NXDOMAIN for the same names, over UDP, TCP and getent', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  for (const opts of [[], ['+tcp']]) {
    const a = await dig('led1', ...opts, 'AAAA', 'web.internal');
    t.is(a.status, 'NXDOMAIN', a.raw);
    t.deepEqual(a.aaaa, []);
  }
  const g = await lab.exec('led2', GETENT, ['ahostsv6', 'web.internal']);
  t.false(g.ok);
  t.is(g.out.trim(), '');
  const apps = await dig('led2', '+tcp', 'TXT', '_apps.internal');
  t.deepEqual(apps.txt, ['"ledger"'], apps.raw);
  // and acme's ::3 is not reachable for initech at all (the router refuses it)
  const x = await dig('led1', '+time=1', '@fdaa:0:18::3', 'AAAA', 'web.internal');
  t.is(x.status, '');
});

rootSerial('names outside .internal go to the host\'s upstream: ID and question as asked, over UDP and TCP', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  for (const opts of [[], ['+tcp']]) {
    const a = await dig('w03', ...opts, 'AAAA', 'WwW.ExAmPlE.TeSt');
    t.is(a.status, 'NOERROR', a.raw);
    t.deepEqual(a.aaaa, ['2001:db8::77']);
    t.is(a.question, 'WwW.ExAmPlE.TeSt.', a.raw);
    t.is(a.tcp, opts.length > 0);
    t.notRegex(a.raw, /ID mismatch|WARNING/);
  }
});

rootSerial('a forwarded answer larger than the tunnel MTU: TC=1 over UDP, whole over TCP', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const a = await dig('w04', '+bufsize=4096', '+ignore', 'AAAA', 'big.example.test');
  t.true(a.flags.includes('tc'), a.raw);
  t.false(a.tcp);
  const b = await dig('w04', '+bufsize=4096', 'AAAA', 'big.example.test');
  t.true(b.tcp, b.raw);
  t.is(b.aaaa.length, BIG);
  // offload mode (the default): the kernel's TCP answer came through the DNS TUN as a TSO super-packet
  const dns = (await lab.status('h1'))?.dns as { tun?: { rxSuperPackets?: number; offloadFlags?: number } } | undefined;
  t.true((dns?.tun?.rxSuperPackets ?? 0) > 0, JSON.stringify(dns?.tun));
});

rootSerial('a dead upstream: SERVFAIL within the forward timeout (2 s), ID and question kept, over UDP and TCP', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  for (const opts of [[], ['+tcp']]) {
    const a = await dig('w40', '+time=8', ...opts, 'AAAA', 'WwW.ExAmPlE.TeSt');
    t.is(a.status, 'SERVFAIL', a.raw);
    t.is(a.question, 'WwW.ExAmPlE.TeSt.', a.raw);
    t.true(a.ms >= 1500 && a.ms < 4000, `${Math.round(a.ms)} ms`);
  }
});

rootSerial('the external WireGuard peer resolves at its org\'s ::3 over UDP and TCP, outside names too', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const p = lab.peers.get('laptop')!;
  const dns = p.prefix48.replace('::/48', '::3');
  for (const opts of [[], ['+tcp']]) {
    const a = await dig('laptop', ...opts, `@${dns}`, 'AAAA', 'web.internal');
    t.is(a.status, 'NOERROR', a.raw);
    t.deepEqual(sorted(a.aaaa), webAddrs());
    const f = await dig('laptop', ...opts, `@${dns}`, 'AAAA', 'www.example.test');
    t.deepEqual(f.aaaa, ['2001:db8::77'], f.raw);
  }
  const me = await dig('laptop', `@${dns}`, 'AAAA', 'laptop._peer.internal');
  t.deepEqual(me.aaaa, [p.address]);
});

rootSerial('ping fdaa::3 from a machine: other traffic to the DNS address reaches the host kernel', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const r = await lab.exec('w06', '/usr/bin/ping', ['-6', '-c', '1', '-W', '2', 'fdaa::3']);
  t.true(r.ok, r.out);
});

rootSerial('answers follow the topology within one TTL (5 s): stop, start, migrate', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  t.timeout(60_000);
  const L = lab;
  const until = async (pred: (a: DigAnswer) => boolean, name: string, opts: string[] = []): Promise<number> => {
    for (;;) {
      const a = await dig('w02', ...opts, 'AAAA', name);
      if (pred(a)) return performance.now();
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const w01 = L.machines.get('w01')!;
  let at = await L.edit(setMachineState(L.document(), w01.id, 'stopped'), false);
  let ms = (await until((a) => a.aaaa.length === 39 && !a.aaaa.includes(w01.address), 'web.internal')) - at;
  t.true(ms < 5000, `stop seen after ${Math.round(ms)} ms`);
  at = await L.edit(setMachineState(L.document(), w01.id, 'started'), false);
  ms = (await until((a) => a.aaaa.length === 40, 'web.internal', ['+tcp'])) - at;
  t.true(ms < 5000, `start seen after ${Math.round(ms)} ms`);
  const db1 = L.machines.get('db1')!;
  const h2 = L.hosts.get('h2')!;
  at = await L.edit(moveMachine(L.document(), db1.id, h2.name), false);
  const moved = L.machines.get('db1')!.address;
  t.not(moved, db1.address);
  ms = (await until((a) => a.aaaa[0] === moved, `${db1.id}.vm.db.internal`)) - at;
  t.true(ms < 5000, `migration seen after ${Math.round(ms)} ms`);
  t.log(`changes seen after ≤ ${Math.round(ms)} ms`);
});

rootSerial('DNS under abuse: TCP pipelining, garbage, short frames, mutated queries, idle and too many connections; UDP garbage', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  t.timeout(90_000);
  const r = await lab.exec('w08', process.execPath, [FUZZ, 'fdaa::3', '10000', '256'], { timeout: 80_000 });
  t.true(r.ok, r.out);
  const x = JSON.parse(r.out.trim().split('\n').pop()!) as Record<string, number | boolean>;
  t.log(JSON.stringify(x));
  t.is(x.pipelined, 200);
  t.is(x.garbageClosed, 200);
  t.is(x.garbageAmplified, 0);
  t.true(x.shortFrameClosed);
  t.true((x.shortFrameMs as number) < 1000);
  t.is(x.mutatedTooBig, 0);
  t.true((x.floodAnswered as number) <= 256 && (x.floodAnswered as number) >= 240, `answered ${x.floodAnswered}`);
  t.is(x.afterwards, 40);
  t.is(x.udpAmplified, 0);
  t.true((x.udpReplies as number) > 0);
  t.true(x.idleClosed);
  t.true((x.idleMs as number) >= 9500 && (x.idleMs as number) < 14_000, `idle closed after ${x.idleMs} ms`);
  // the host is still up and answers UDP
  const a = await dig('w08', 'AAAA', 'web.internal');
  t.is(a.aaaa.length, 40);
  const s = await lab.status('h1');
  t.truthy(s);
  const d = s!.dns as Record<string, number>;
  t.true(d.tcpRefused >= 1, JSON.stringify(d));
});

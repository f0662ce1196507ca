// `sixpn capture` against a live 6PN (issue 14): two hosts in namespaces, each a `sixpn up`; a
// machine pings one on the other host while captures run; the pcapng files are read with
// tshark and tcpdump: the inner ICMPv6 echoes, their direction, the mesh packets with their
// real (unswapped) addresses, and the pings answered all along (forwarding goes on).
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SIXPN, isRoot } from './helpers/netns.ts';
import { SixpnLab } from './helpers/sixpn-lab.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip;
const pexec = promisify(execFile);
const env = { ...process.env, SIXPN_NODE: process.execPath };

let lab: SixpnLab | undefined;
let ready: Promise<SixpnLab> | undefined;
test.after.always(async () => {
  await lab?.cleanup();
});
function setup(): Promise<SixpnLab> {
  ready ??= SixpnLab.start({
    orgs: [{ name: 'acme', network: 0x18 }],
    apps: [{ name: 'web', org: 'acme' }, { name: 'db', org: 'acme' }],
    hosts: [{ key: 'a', region: 'ord' }, { key: 'b', region: 'ams', offload: false }], // b: plain TUNs (the other tap)
    machines: [{ key: 'w1', app: 'web', host: 'a', instance: 1 }, { key: 'd1', app: 'db', host: 'b', instance: 1 }],
    peers: [{ name: 'laptop', org: 'acme', gateway: 'a' }],
  }).then((l) => (lab = l));
  return ready;
}

/** Starts `sixpn capture ARGS` and resolves once it says it runs; `done` resolves at its exit. */
async function startCapture(args: string[]): Promise<{ done: Promise<{ code: number | null; err: string }>; stop(): void }> {
  const c = spawn(SIXPN, ['capture', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const done = new Promise<{ code: number | null; err: string }>((resolve) => c.on('exit', (code) => resolve({ code, err })));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`capture did not start: ${err}`)), 20_000);
    c.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Ctrl-C to stop')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void done.then(() => {
      clearTimeout(timer);
      if (!err.includes('Ctrl-C to stop')) reject(new Error(`capture exited: ${err}`));
    });
  });
  return { done, stop: () => c.kill('SIGINT') };
}

async function tsharkRows(file: string, fields: string[]): Promise<string[][]> {
  const { stdout } = await pexec('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]);
  return stdout.trim().split('\n').filter(Boolean).map((l) => l.split('|'));
}

rootSerial('capture --machine -c N: the inner ICMPv6 echoes of a ping across the mesh, in and out, while it forwards', async (t) => {
  t.timeout(120_000);
  const l = await setup();
  const a = l.hosts.get('a')!;
  const w1 = l.machines.get('w1')!;
  const d1 = l.machines.get('d1')!;
  const file = join(l.dir, 'w1.pcapng');
  t.teardown(() => rmSync(file, { force: true }));
  const cap = await startCapture([a.name, '--machine', w1.id, '-w', file, '-c', '6', '--filter', `icmp6 and host ${d1.address}`]);
  const ping = await l.exec('w1', 'ping', ['-c', '3', '-i', '0.2', '-W', '3', d1.address]);
  t.true(ping.ok, ping.out);
  t.regex(ping.out, /3 received/);
  const end = await cap.done;
  t.is(end.code, 0, end.err);
  t.regex(end.err, /6 packets written to .*w1\.pcapng; 0 dropped/);
  const rows = await tsharkRows(file, ['frame.interface_name', 'ipv6.src', 'ipv6.dst', 'icmpv6.type', 'frame.packet_flags_direction']);
  t.is(rows.length, 6, JSON.stringify(rows));
  for (const r of rows) t.is(r[0], `machine:${w1.id}`);
  const requests = rows.filter((r) => r[3] === '128');
  const replies = rows.filter((r) => r[3] === '129');
  t.is(requests.length, 3);
  t.is(replies.length, 3);
  for (const r of requests) t.deepEqual([r[1], r[2], Number(r[4])], [w1.address, d1.address, 1]); // from the machine: inbound
  for (const r of replies) t.deepEqual([r[1], r[2], Number(r[4])], [d1.address, w1.address, 2]); // to it: outbound
  const td = await pexec('tcpdump', ['-n', '-r', file]);
  t.is(td.stdout.match(/ICMP6, echo request/g)?.length, 3, td.stdout);
  // the host logged the capture's start and end
  const log = readFileSync(join(l.dir, `${a.name}.log`), 'utf8');
  t.regex(log, new RegExp(`capture started: machine ${w1.id}`));
  t.regex(log, new RegExp(`capture ended: machine ${w1.id}: 6 packets, 0 dropped`));
});

rootSerial('capture --mesh: one interface per mesh host, real addresses (swapped back); Ctrl-C ends it with a summary', async (t) => {
  t.timeout(120_000);
  const l = await setup();
  const a = l.hosts.get('a')!;
  const b = l.hosts.get('b')!;
  const w1 = l.machines.get('w1')!;
  const d1 = l.machines.get('d1')!;
  const file = join(l.dir, 'mesh.pcapng');
  t.teardown(() => rmSync(file, { force: true }));
  const cap = await startCapture([b.name, '--mesh', '-w', file, '--filter', 'icmp6']);
  const ping = await l.exec('w1', 'ping', ['-c', '2', '-i', '0.2', '-W', '3', d1.address]);
  t.true(ping.ok, ping.out);
  await new Promise((r) => setTimeout(r, 300));
  cap.stop();
  const end = await cap.done;
  t.is(end.code, 0, end.err);
  t.regex(end.err, /4 packets written to .*mesh\.pcapng; 0 dropped/);
  const rows = await tsharkRows(file, ['frame.interface_name', 'ipv6.src', 'ipv6.dst', 'icmpv6.type', 'frame.packet_flags_direction']);
  t.deepEqual(rows.map((r) => [...r.slice(0, 4), Number(r[4])].join(' ')), [
    `mesh:${a.name} ${w1.address} ${d1.address} 128 1`, `mesh:${a.name} ${d1.address} ${w1.address} 129 2`,
    `mesh:${a.name} ${w1.address} ${d1.address} 128 1`, `mesh:${a.name} ${d1.address} ${w1.address} 129 2`,
  ]);
});

rootSerial('capture --machine on a host with plain TUNs ("offload": false), with -w - into tcpdump', async (t) => {
  t.timeout(120_000);
  const l = await setup();
  const b = l.hosts.get('b')!;
  const w1 = l.machines.get('w1')!;
  const d1 = l.machines.get('d1')!;
  const c = spawn('sh', ['-c', `${SIXPN} capture ${b.name} --machine ${d1.id} -w - -c 4 --filter 'icmp6 and host ${w1.address}' | tcpdump -n -r -`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 200 && !err.includes('Ctrl-C to stop'); i++) await new Promise((r) => setTimeout(r, 100));
  const ping = await l.exec('w1', 'ping', ['-c', '2', '-i', '0.2', '-W', '3', d1.address]);
  t.true(ping.ok, ping.out);
  const code = await new Promise((r) => c.on('exit', r));
  t.is(code, 0, err);
  t.is(out.match(new RegExp(`${w1.address} > ${d1.address}: ICMP6, echo request`, 'g'))?.length, 2, out);
  t.is(out.match(new RegExp(`${d1.address} > ${w1.address}: ICMP6, echo reply`, 'g'))?.length, 2, out);
  t.regex(err, /4 packets written to stdout/);
});

rootSerial('capture --peer: an external WireGuard peer (wireguard-go) of this gateway, its echoes in and out', async (t) => {
  t.timeout(120_000);
  const l = await setup();
  const a = l.hosts.get('a')!;
  const w1 = l.machines.get('w1')!;
  const laptop = l.peers.get('laptop')!;
  const file = join(l.dir, 'peer.pcapng');
  t.teardown(() => rmSync(file, { force: true }));
  const cap = await startCapture([a.name, '--peer', 'laptop', '-w', file, '-c', '4', '--filter', 'icmp6']);
  const ping = await l.exec('laptop', 'ping', ['-c', '2', '-i', '0.2', '-W', '3', w1.address]);
  t.true(ping.ok, ping.out);
  const end = await cap.done;
  t.is(end.code, 0, end.err);
  const rows = await tsharkRows(file, ['frame.interface_name', 'ipv6.src', 'ipv6.dst', 'icmpv6.type', 'frame.packet_flags_direction']);
  t.deepEqual(rows.map((r) => [...r.slice(0, 4), Number(r[4])].join(' ')), [
    `peer:acme/laptop ${laptop.address} ${w1.address} 128 1`, `peer:acme/laptop ${w1.address} ${laptop.address} 129 2`,
    `peer:acme/laptop ${laptop.address} ${w1.address} 128 1`, `peer:acme/laptop ${w1.address} ${laptop.address} 129 2`,
  ]);
});

rootSerial('capture refuses what this host does not see, and anyone but root or the socket owner', async (t) => {
  t.timeout(60_000);
  const l = await setup();
  const a = l.hosts.get('a')!;
  const d1 = l.machines.get('d1')!;
  const file = join(l.dir, 'x.pcapng');
  const other = await pexec(SIXPN, ['capture', a.name, '--machine', d1.id, '-w', file], { env }).catch((e: { code: number; stderr: string }) => e);
  t.is((other as { code: number }).code, 1);
  t.regex((other as { stderr: string }).stderr, new RegExp(`machine ${d1.id} is on host ${l.hosts.get('b')!.name}, not this one`));
  const peer = await pexec(SIXPN, ['capture', a.name, '--peer', 'nobody', '-w', file], { env }).catch((e: { code: number; stderr: string }) => e);
  t.regex((peer as { stderr: string }).stderr, /no peer nobody on this gateway/);
  const none = await pexec(SIXPN, ['capture', 'nosuchhost', '--mesh', '-w', file], { env }).catch((e: { code: number; stderr: string }) => e);
  t.regex((none as { stderr: string }).stderr, /no running `sixpn up` for host nosuchhost/);
  // another user: refused (the status directory is root's, 0700)
  const user = await pexec('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(import.meta.dirname, '../src/cli/sixpn.ts'), 'capture', a.name, '--mesh', '-w', '/tmp/never.pcapng'], { env })
    .catch((e: { code: number; stderr: string }) => e);
  t.is((user as { code: number }).code, 1);
  t.regex((user as { stderr: string }).stderr, /permission denied: capture needs root or the owner of the status socket/);
});

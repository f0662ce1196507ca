// `sixpn up` with "offload": true (issue 5): two hosts in namespaces (test/helpers/sixpn-lab.ts),
// machine TUNs with vnet_hdr and TSO, the egress in offload mode toward an "internet" namespace.
// Checks: iperf3 between machines of one host (64 KB segments passed whole) and across hosts
// (cut into MSS-sized packets for the mesh), ping, DNS over UDP and TCP, another org still
// refused, and iperf3 through SNAT66 with the server seeing the egress address.
import test from 'ava';
import { isRoot } from './helpers/netns.ts';
import { SixpnLab, parseDig } from './helpers/sixpn-lab.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

const EGRESS = '2001:db8:e::11';
const INET = '2001:db8:f::80';
const INET_UNDERLAY = 'fd00:6f::80';
const HOST1_UNDERLAY = 'fd00:6f::1';

let lab: SixpnLab | undefined;

test.before(async () => {
  if (!isRoot()) return;
  lab = await SixpnLab.start({
    orgs: [{ name: 'acme', network: 0x18 }, { name: 'initech', network: 0x863 }],
    apps: [{ name: 'web', org: 'acme' }, { name: 'ledger', org: 'initech' }],
    hosts: [
      { key: 'h1', region: 'ams', egress: EGRESS, offload: true },
      { key: 'h2', region: 'ord', offload: true },
    ],
    machines: [
      { key: 'a1', app: 'web', host: 'h1', instance: 0x101 },
      { key: 'a2', app: 'web', host: 'h1', instance: 0x102 },
      { key: 'i1', app: 'ledger', host: 'h1', instance: 0x401 },
      { key: 'b1', app: 'web', host: 'h2', instance: 0x201 },
    ],
    extras: { inet: '80' },
  });
  const l = lab;
  const must = async (key: string, args: string[]) => {
    const r = await l.exec(key, '/usr/sbin/ip', args);
    if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.out}`);
  };
  // the "internet": a global address on the underlay, routed through h1 for the egress prefix
  await must('inet', ['addr', 'add', `${INET}/64`, 'dev', 'eth0', 'nodad']);
  await must('inet', ['-6', 'route', 'add', '2001:db8:e::/64', 'via', HOST1_UNDERLAY]);
  await must('h1', ['-6', 'route', 'add', '2001:db8:f::/64', 'via', INET_UNDERLAY]);
});

test.after.always(async () => {
  await lab?.cleanup();
});

const addr = (key: string) => lab!.machines.get(key)!.address;

async function offloadCounters(host: string): Promise<Record<string, number>> {
  const s = await lab!.status(host);
  return (s?.offload ?? {}) as Record<string, number>;
}

async function router(host: string): Promise<Record<string, number>> {
  const s = await lab!.status(host);
  return (s?.router ?? {}) as Record<string, number>;
}

/** iperf3 from `client` (a machine) to `server` (a machine or the inet namespace) at `to`. */
async function iperf(client: string, server: string, to: string, port: number, secs = 2): Promise<{ bps: number; remote: string }> {
  const srv = lab!.spawn(server, 'iperf3', ['-s', '-1', '-J', '-B', to, '-p', String(port)]);
  let json = '';
  srv.stdout!.on('data', (d) => (json += d.toString()));
  const done = new Promise<void>((resolve) => srv.once('exit', () => resolve()));
  await new Promise((r) => setTimeout(r, 300));
  const c = await lab!.exec(client, 'iperf3', ['-c', to, '-p', String(port), '-t', String(secs), '-J'], { timeout: 30_000 });
  await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
  if (!c.ok) throw new Error(`iperf3 ${client} → ${to}: ${c.out.slice(0, 2000)}`);
  const bps = (JSON.parse(c.out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
  let remote = '';
  try {
    remote = (JSON.parse(json) as { start: { connected: Array<{ remote_host: string }> } }).start.connected[0].remote_host;
  } catch {
    // the server's report did not come
  }
  return { bps, remote };
}

rootSerial('ping: machines of one host and across hosts', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  for (const [from, to] of [['a1', 'a2'], ['a1', 'b1'], ['b1', 'a2']]) {
    const r = await lab.exec(from, 'ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', addr(to)]);
    t.true(r.ok, `${from} → ${to}: ${r.out}`);
  }
  // larger than the MTU: fragmented by the sender, each fragment an ordinary packet
  const big = await lab.exec('a1', 'ping', ['-6', '-c', '1', '-W', '2', '-s', '3000', addr('b1')]);
  t.true(big.ok, big.out);
});

rootSerial('iperf3 between machines of one host: 64 KB segments passed whole', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const before = await offloadCounters('h1');
  const r = await iperf('a1', 'a2', addr('a2'), 5301);
  const after = await offloadCounters('h1');
  t.true(r.bps > 1e6, `${r.bps}`);
  t.true(after.whole - (before.whole ?? 0) > 100, `offloaded packets passed whole: ${JSON.stringify(after)}`);
  t.log(`a1 → a2 (one host): ${(r.bps / 1e9).toFixed(2)} Gbit/s; ${JSON.stringify(after)}`);
});

rootSerial('iperf3 across hosts: segments cut for the mesh, both directions', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const before = await offloadCounters('h1');
  const r = await iperf('a1', 'b1', addr('b1'), 5302);
  const after = await offloadCounters('h1');
  t.true(r.bps > 1e6, `${r.bps}`);
  t.true(after.segmented - (before.segmented ?? 0) > 10, `64 KB segments cut: ${JSON.stringify(after)}`);
  t.is(after.invalid ?? 0, 0);
  t.log(`a1 → b1 (mesh): ${(r.bps / 1e6).toFixed(0)} Mbit/s; ${JSON.stringify(after)}`);
  const back = await iperf('b1', 'a2', addr('a2'), 5303);
  t.true(back.bps > 1e6);
  t.log(`b1 → a2 (mesh): ${(back.bps / 1e6).toFixed(0)} Mbit/s; h2 ${JSON.stringify(await offloadCounters('h2'))}`);
});

rootSerial('DNS over UDP and TCP from a machine', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const name = `${lab.machines.get('b1')!.id}.vm.web.internal`;
  for (const tcp of [false, true]) {
    const r = await lab.exec('a1', '/usr/bin/dig', ['+time=4', '+tries=1', ...(tcp ? ['+tcp'] : []), 'AAAA', name]);
    const a = parseDig(r.out);
    t.is(a.status, 'NOERROR', r.out);
    t.deepEqual(a.aaaa, [addr('b1')]);
    t.is(a.tcp, tcp);
  }
  const all = parseDig((await lab.exec('a2', '/usr/bin/dig', ['+time=4', '+tries=1', '+tcp', 'AAAA', 'web.internal'])).out);
  t.deepEqual(all.aaaa.sort(), [addr('a1'), addr('a2'), addr('b1')].sort());
});

rootSerial('another org is still refused: ping both ways, TCP and UDP, counted', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const before = (await router('h1')).dropped_cross_org ?? 0;
  const ping = await lab.exec('a1', 'ping', ['-6', '-c', '1', '-W', '1', addr('i1')]);
  t.false(ping.ok);
  lab.spawn('i1', 'iperf3', ['-s', '-1', '-B', addr('i1'), '-p', '5304']);
  await new Promise((r) => setTimeout(r, 300));
  const tcp = await lab.exec('a1', 'iperf3', ['-c', addr('i1'), '-p', '5304', '-t', '1', '--connect-timeout', '1500'], { timeout: 15_000 });
  t.false(tcp.ok, tcp.out);
  const back = await lab.exec('i1', 'ping', ['-6', '-c', '1', '-W', '1', addr('a1')]);
  t.false(back.ok, 'nor the other way');
  const udp = await lab.exec('a1', '/usr/bin/dig', ['+time=1', '+tries=1', `@${addr('i1')}`, 'AAAA', 'web.internal']);
  t.notRegex(udp.out, /status: NOERROR/, 'UDP');
  t.true(((await router('h1')).dropped_cross_org ?? 0) - before >= 3);
});

rootSerial('iperf3 machine → internet through SNAT66: the server sees the egress address', async (t) => {
  if (!lab) return t.fail('the lab did not start');
  const ping = await lab.exec('a1', 'ping', ['-6', '-c', '1', '-W', '2', INET]);
  t.true(ping.ok, ping.out);
  const r = await iperf('a1', 'inet', INET, 5305, 3);
  t.true(r.bps > 1e6, `${r.bps}`);
  t.is(r.remote, EGRESS);
  const s = await lab.status('h1');
  const egress = s?.egress as { io: Record<string, number> };
  t.true(egress.io.toTun > 0);
  t.log(`a1 → internet (SNAT66, offload): ${(r.bps / 1e9).toFixed(2)} Gbit/s; offload ${JSON.stringify(s?.offload)}; egress io ${JSON.stringify(egress.io)}`);
  // from the other host there is no egress path: its machine's packets are not routed out
  const other = await lab.exec('b1', 'ping', ['-6', '-c', '1', '-W', '1', INET]);
  t.false(other.ok);
});

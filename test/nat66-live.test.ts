// SNAT66 egress in network namespaces (issue 5): machines reach an internet namespace through
// sixpn's Egress (this process plays the router's part) and, in the same run, through the Linux
// kernel's nftables masquerade; the same scenarios run through both and the mapping behaviours
// are printed side by side. Where the RFCs and Linux differ, sixpn follows the RFCs and the test
// says so. Timeouts are scaled down (UDP and echo 2 s, TCP established 6 s) in both NATs.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from './helpers/netns.ts';
import {
  EGRESS_P, EGRESS_S, INET_A, INET_B, Nat66Lab, sleep, whoami,
  type NatSite, type SiteMachine, type Timeouts,
} from './helpers/nat66.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

const TIMEOUTS: Timeouts = { udpMs: 2000, icmpMs: 2000, tcpTransitoryMs: 3000, tcpEstablishedMs: 6000 };
const ON_LINK_LIMIT = 3; // hostP's per-machine session limit (the REJECT test)
const PROBE_MS = 700;
const STATIC = '2001:db8:e::7'; // a per-app static egress address on hostS // how long to wait for something that must not arrive

let lab: Nat66Lab;
// the internet's sockets (agent ids): whoami servers and probes that only send
const inet = { a7001: 0, a7002: 0, b7001: 0, a9999: 0, b9999: 0 };

test.before(async () => {
  if (!isRoot()) return;
  lab = await Nat66Lab.create({ timeouts: TIMEOUTS, onLink: true, onLinkNat: { perMachineLimit: ON_LINK_LIMIT } });
  const ag = lab.inetAgent!;
  inet.a7001 = (await ag.call('udp', { addr: INET_A, port: 7001, who: true })).id;
  inet.a7002 = (await ag.call('udp', { addr: INET_A, port: 7002, who: true })).id;
  inet.b7001 = (await ag.call('udp', { addr: INET_B, port: 7001, who: true })).id;
  inet.a9999 = (await ag.call('udp', { addr: INET_A, port: 9999 })).id;
  inet.b9999 = (await ag.call('udp', { addr: INET_B, port: 9999 })).id;
  await ag.call('tcpListen', { port: 7100, who: true });
  lab.start(lab.inet, 'ncat', ['-6', '-l', '-k', INET_A, '7000', '--sh-exec', 'echo $NCAT_REMOTE_ADDR $NCAT_REMOTE_PORT']);
  lab.start(lab.inet, 'iperf3', ['-s', '-B', INET_A, '-p', '5201']);
  await sleep(300);
});

test.after.always(async () => {
  await lab?.cleanup();
});

// ---- helpers ----

/** Runs a command in a namespace; never throws. */
function run(ns: string, cmd: string, args: string[], timeout = 30_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, cmd, ...args], { timeout, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, out: stdout + stderr });
    });
  });
}

const sockets = new Map<string, number>();
/** The machine's UDP socket on `port` (bound once, kept). */
async function udpSock(m: SiteMachine, port: number): Promise<number> {
  const key = `${m.ns}:${port}`;
  let id = sockets.get(key);
  if (id === undefined) {
    id = (await m.agent!.call('udp', { port })).id as number;
    sockets.set(key, id);
  }
  return id;
}

/** Sends from the machine's UDP `port` to a whoami server: the (address, port) it saw. */
async function udpWho(m: SiteMachine, port: number, to = INET_A, dport = 7001): Promise<[string, number]> {
  const id = await udpSock(m, port);
  await m.agent!.call('udpDrain', { id });
  await m.agent!.call('udpSend', { id, to, port: dport, data: 'who' });
  const r = await m.agent!.call('udpRecv', { id, timeoutMs: 3000 });
  if (r.timeout === true) throw new Error(`${m.name}: no UDP answer from [${to}]:${dport}`);
  return whoami(r.data as string);
}

/** What machine socket `port` received since the last look (drains it). */
async function udpGot(m: SiteMachine, port: number): Promise<Array<{ from: string; port: number; data: string }>> {
  return (await m.agent!.call('udpDrain', { id: await udpSock(m, port) })).got;
}

/** TCP from the machine (optionally from `lport`) to the agent's whoami server. */
async function tcpWho(m: SiteMachine, id: string, lport?: number): Promise<[string, number]> {
  const c = await m.agent!.call('tcpConnect', { id, to: INET_A, port: 7100, lport, timeoutMs: 3000 });
  if (c.error !== undefined) throw new Error(`${m.name}: TCP connect: ${c.error}`);
  const r = await m.agent!.call('tcpRead', { id, until: '\n', timeoutMs: 3000 });
  return whoami(r.data as string);
}

/** The internet sends a datagram from one of its sockets to (addr, port). */
async function inetSend(from: number, addr: string, port: number, data: string): Promise<void> {
  await lab.inetAgent!.call('udpSend', { id: from, to: addr, port, data });
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(100);
  }
  return cond();
}

function eachSite(): NatSite[] {
  return lab.sites;
}

/** Prints rows "behaviour | RFC | sixpn | Linux" as an aligned table. */
function table(t: ExecutionContext, rows: string[][]): void {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) t.log(r.map((c, i) => c.padEnd(w[i])).join(' | '));
}

// ---- tests ----

rootSerial('Egress setup: TUN, the /128 route and nothing else, forwarding sysctls, proxy NDP for an on-link address', async (t) => {
  const s = lab.sixpn.engine.status();
  t.log('hostS:', JSON.stringify({ ifname: s.ifname, uplink: s.uplink, addresses: s.addresses, proxyNdp: s.proxyNdp, sysctls: s.sysctls }));
  t.deepEqual(s.addresses, [EGRESS_S]);
  t.deepEqual(s.proxyNdp, [], 'a routed egress address needs no proxy');
  const routes = (await lab.exec(lab.sixpn.host, 'ip', ['-6', 'route', 'show', 'dev', s.ifname])).trim();
  t.is(routes.split('\n').length, 1, routes);
  t.regex(routes, new RegExp(`^${EGRESS_S} `));
  t.is((await lab.exec(lab.sixpn.host, 'sysctl', ['-n', 'net.ipv6.conf.all.forwarding'])).trim(), '1');
  t.is((await lab.exec(lab.sixpn.host, 'sysctl', ['-n', `net.ipv6.conf.${s.uplink}.accept_ra`])).trim(), '2', 'RA-learnt routes survive forwarding');
  t.notRegex(await lab.exec(lab.sixpn.host, 'ip', ['-6', 'addr']), new RegExp(EGRESS_S), 'the kernel does not own the egress address');
  t.notRegex(await lab.exec(lab.sixpn.host, 'ip', ['-6', 'addr', 'show', 'dev', s.ifname]), /inet6/, 'no link-local on the TUN');

  const p = lab.onLink!.engine.status();
  t.deepEqual(p.proxyNdp, [EGRESS_P], 'on-link egress address: proxied');
  t.regex(await lab.exec(lab.onLink!.host, 'ip', ['-6', 'neigh', 'show', 'proxy']), new RegExp(`${EGRESS_P} dev ${p.uplink}`));
  // the provider router finds it by neighbour discovery, and the machine behind it gets out
  const m = lab.onLink!.machines[0];
  const [addr] = await udpWho(m, 30000);
  t.is(addr, EGRESS_P);
  t.regex(await lab.exec(lab.router, 'ip', ['-6', 'neigh', 'show', EGRESS_P]), /lladdr/);
});

rootSerial('ping, TCP (ncat) and UDP from every machine reach the internet from the egress address (sixpn and Linux)', async (t) => {
  for (const site of eachSite()) {
    for (const m of site.machines) {
      const ping = await run(m.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', INET_A]);
      t.is(ping.code, 0, `${site.kind} ${m.name} ping: ${ping.out}`);
      const nc = await run(m.ns, 'ncat', ['-6', '--recv-only', INET_A, '7000']);
      const [tcpAddr] = whoami(nc.out);
      const [udpAddr] = await udpWho(m, 31000);
      t.is(tcpAddr, site.egress, `${site.kind} ${m.name}: the TCP server sees the egress address`);
      t.is(udpAddr, site.egress, `${site.kind} ${m.name}: the UDP server sees the egress address`);
      t.log(`${site.kind} ${m.name} ${m.addr}: ping ok, TCP from ${nc.out.trim()}, UDP from ${udpAddr}`);
    }
  }
  const io = lab.sixpn.engine.status().io;
  t.true(io.toTun > 0 && io.delivered > 0, JSON.stringify(io));
});

rootSerial('PMTUD through the NAT: Packet Too Big from the 1280-byte link comes back; large TCP transfers complete both ways', async (t) => {
  const errorsBefore = lab.sixpn.engine.nat.counters.errorsIn;
  const blob = join(lab.lab.dir, 'blob');
  writeFileSync(blob, randomBytes(16 << 20));
  const blobHash = createHash('sha256').update(readFileSync(blob)).digest('hex');
  for (const site of eachSite()) {
    const m = site.machines[0];
    // 1348-byte echo requests: the first meets the narrow link and its Packet Too Big;
    // the rest go out fragmented (fragments through the NAT, both ways)
    const ping = await run(m.ns, 'ping', ['-c', '4', '-i', '0.3', '-W', '2', '-s', '1300', '-M', 'want', INET_B]);
    t.regex(ping.out, /[Pp]acket too big.*mtu.*1280|mtu = 1280/, `${site.kind}: ${ping.out}`);
    t.regex(ping.out, /bytes from/, `${site.kind}: fragmented echoes are answered: ${ping.out}`);
    t.regex(await lab.exec(m.ns, 'ip', ['-6', 'route', 'get', INET_B]), /mtu 1280/, `${site.kind}: PMTU cached`);
    // TCP: full-size segments (MSS 1360) need PMTUD to cross. 16 MiB each way with ncat,
    // checked by SHA-256 on the other side; then iperf3 for the rate.
    const up = lab.start(lab.inet, 'sh', ['-c', `ncat -6 -l ${INET_A} 7200 --recv-only | sha256sum`]);
    const upHash = new Promise<string>((resolve) => {
      let text = '';
      up.stdout!.on('data', (d) => (text += d.toString()));
      up.once('exit', () => resolve(text.split(' ')[0]));
    });
    await sleep(200);
    const sent = await run(m.ns, 'sh', ['-c', `ncat -6 --send-only ${INET_A} 7200 < ${blob}`], 60_000);
    t.is(sent.code, 0, `${site.kind} upload: ${sent.out}`);
    t.is(await upHash, blobHash, `${site.kind}: 16 MiB machine → internet arrived whole`);
    const down = lab.start(lab.inet, 'sh', ['-c', `ncat -6 -l ${INET_A} 7201 --send-only < ${blob}`]);
    await sleep(200);
    const got = await run(m.ns, 'sh', ['-c', `ncat -6 --recv-only ${INET_A} 7201 | sha256sum`], 60_000);
    down.kill();
    t.is(got.out.split(' ')[0], blobHash, `${site.kind}: 16 MiB internet → machine arrived whole`);
    for (const reverse of [false, true]) {
      const r = await run(m.ns, 'iperf3', ['-c', INET_A, '-p', '5201', '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 60_000);
      t.is(r.code, 0, `${site.kind} iperf3${reverse ? ' -R' : ''}: ${r.out.slice(0, 400)}`);
      const j = JSON.parse(r.out) as { end: { sum_received: { bits_per_second: number } } };
      t.true(j.end.sum_received.bits_per_second > 1e6);
      t.log(`${site.kind}: iperf3 ${reverse ? 'internet → machine' : 'machine → internet'} ${(j.end.sum_received.bits_per_second / 1e6).toFixed(0)} Mbit/s across the 1280-byte link`);
    }
    t.regex(await lab.exec(m.ns, 'ip', ['-6', 'route', 'get', INET_A]), /mtu 1280/, `${site.kind}: TCP learnt the path MTU`);
  }
  const c = lab.sixpn.engine.nat.counters;
  t.true(c.errorsIn > errorsBefore, 'sixpn translated Packet Too Big inbound');
  t.true(c.fragments > 0, 'and non-first fragments');
  t.log(`sixpn: ${c.errorsIn - errorsBefore} ICMPv6 errors translated inbound, ${c.fragments} fragments`);
});

rootSerial('nothing from the internet reaches a machine unsolicited', async (t) => {
  const rows = [['unsolicited probe', 'RFC', 'sixpn', 'Linux']];
  const seen: Record<string, string[]> = { sixpn: [], linux: [] };
  const delivered0 = lab.sixpn.delivered();
  const ag = lab.inetAgent!;
  for (const site of eachSite()) {
    const m = site.machines[0];
    await udpSock(m, 32000);
    await m.agent!.call('tcpListen', { port: 32001 });
    // no mapping at all
    await inetSend(inet.a9999, site.egress, 32000, 'unsolicited');
    const syn = await ag.call('tcpConnect', { id: `syn-${site.kind}`, to: site.egress, port: 32001, timeoutMs: 1500 });
    const pingEgress = await run(lab.inet, 'ping', ['-c', '1', '-W', '1', site.egress]);
    const pingMachine = await run(lab.inet, 'ping', ['-c', '1', '-W', '1', m.addr]);
    await sleep(PROBE_MS);
    t.deepEqual(await udpGot(m, 32000), [], `${site.kind}: UDP to a port with no mapping`);
    t.deepEqual((await m.agent!.call('tcpAccepted', { port: 32001 })).got, [], `${site.kind}: SYN to a port with no mapping`);
    t.not(pingMachine.code, 0, `${site.kind}: the 6PN address is not routed`);
    seen[site.kind].push(syn.error === 'ETIMEDOUT' ? 'no answer' : syn.error === 'ECONNREFUSED' ? 'RST (host owns the address)' : String(syn.error ?? 'connected!'));
    seen[site.kind].push(pingEgress.code === 0 ? 'echo reply (from the host)' : 'no answer');
  }
  t.is(lab.sixpn.delivered(), delivered0, 'sixpn: not one packet was written into a machine TUN');
  t.is(seen.sixpn[0], 'no answer', 'RFC 5382 REQ-4: an unsolicited SYN gets no answer (for ≥ 6 s; with filtering, never)');
  t.is(seen.sixpn[1], 'no answer', 'the kernel does not own the egress address; sixpn answers no echo');
  rows.push(['SYN to the egress address, no mapping', 'no answer ≥ 6 s (5382 REQ-4)', seen.sixpn[0], seen.linux[0]]);
  rows.push(['echo request to the egress address', '–', seen.sixpn[1], seen.linux[1]]);

  // with a mapping: only the endpoint the machine sent to gets through (address-and-port-dependent filtering)
  for (const site of eachSite()) {
    const m = site.machines[0];
    const [, ext] = await udpWho(m, 32100);
    await inetSend(inet.a9999, site.egress, ext, 'same address, other port');
    await inetSend(inet.b9999, site.egress, ext, 'other address');
    await inetSend(inet.a7001, site.egress, ext, 'the remote endpoint');
    await sleep(PROBE_MS);
    const got = (await udpGot(m, 32100)).map((d) => d.data);
    t.deepEqual(got, ['the remote endpoint'], `${site.kind}: ${JSON.stringify(got)}`);
    const [, text] = await tcpWho(m, `u-${site.kind}`);
    const syn = await ag.call('tcpConnect', { id: `syn2-${site.kind}`, to: site.egress, port: text, timeoutMs: 1500 });
    seen[site.kind].push(syn.error === 'ETIMEDOUT' ? 'no answer' : syn.error === 'ECONNREFUSED' ? 'RST (host owns the address)' : String(syn.error ?? 'connected!'));
  }
  t.is(seen.sixpn[2], 'no answer');
  rows.push(['UDP from other endpoints to a mapping', 'dropped (4787 REQ-8)', 'dropped', 'dropped']);
  rows.push(['SYN from elsewhere to a mapped TCP port', 'no answer (5382 REQ-4)', seen.sixpn[2], seen.linux[2]]);
  table(t, rows);
});

rootSerial('two machines using the same source port get distinct mappings (UDP and TCP)', async (t) => {
  for (const site of eachSite()) {
    const [m1, m2] = site.machines;
    const [a1, e1] = await udpWho(m1, 33000);
    const [a2, e2] = await udpWho(m2, 33000);
    t.is(a1, site.egress);
    t.is(a2, site.egress);
    t.not(e1, e2, `${site.kind}: UDP ${e1} vs ${e2}`);
    t.is(e1, 33000, `${site.kind}: the first keeps its port`);
    const [, p1] = await tcpWho(m1, `same1-${site.kind}`, 33001);
    const [, p2] = await tcpWho(m2, `same2-${site.kind}`, 33001);
    t.not(p1, p2, `${site.kind}: TCP ${p1} vs ${p2}`);
    t.log(`${site.kind}: UDP port 33000 of m1, m2 → ${e1}, ${e2}; TCP port 33001 → ${p1}, ${p2}`);
    // and each gets its own replies
    const r1 = await udpWho(m1, 33000);
    const r2 = await udpWho(m2, 33000);
    t.deepEqual([r1[1], r2[1]], [e1, e2]);
  }
});

rootSerial('mapping behaviours side by side: sixpn follows RFC 4787/5382, Linux masquerade differs where shown', async (t) => {
  const r: Record<string, Record<string, string>> = { sixpn: {}, linux: {} };
  for (const site of eachSite()) {
    const o = r[site.kind];
    const [m1, m2] = site.machines;
    // port preservation and endpoint independence without contention
    const [, x1] = await udpWho(m1, 34000, INET_A, 7001);
    const [, x2] = await udpWho(m1, 34000, INET_A, 7002);
    const [, x3] = await udpWho(m1, 34000, INET_B, 7001);
    o.preserve = x1 === 34000 ? 'kept' : `→ ${x1}`;
    o.free = x1 === x2 && x2 === x3 ? `same (${x1}) to all 3` : `${x1}, ${x2}, ${x3}`;
    // contention: m1 holds port 34100 toward A; m2 uses 34100 toward B, then toward A
    const [, y0] = await udpWho(m1, 34100, INET_A, 7001);
    const [, y1] = await udpWho(m2, 34100, INET_B, 7001);
    const [, y2] = await udpWho(m2, 34100, INET_A, 7001);
    o.shared = y1 === y0 ? `shares m1's ${y0}` : `own port ${y1}`;
    o.contended = y1 === y2 ? `same (${y1})` : `other (${y2})`;
    // port ranges: a port below 1024 stays below 1024, also when taken
    const [, z0] = await udpWho(m2, 700, INET_A, 7001);
    const [, z1] = await udpWho(m1, 700, INET_A, 7001);
    o.low = `${z0}, then ${z1}`;
    t.true(z0 < 1024 && z1 < 1024 && z0 !== z1, `${site.kind} port range: ${o.low}`);
    // filtering: the remote's other port and another address, to m1's mapping x1
    await inetSend(inet.a9999, site.egress, x1, 'A:9999');
    await inetSend(inet.b9999, site.egress, x1, 'B:9999');
    await sleep(PROBE_MS);
    const got = (await udpGot(m1, 34000)).map((d) => d.data);
    o.filter = got.length === 0 ? 'address and port dependent' : got.includes('B:9999') ? 'endpoint independent' : 'address dependent';
    // hairpinning: m2 learns its external endpoint, m1 sends to it (opening m1's side), m2 answers
    const [, h1] = await udpWho(m1, 34200);
    const [, h2] = await udpWho(m2, 34200);
    await m1.agent!.call('udpSend', { id: await udpSock(m1, 34200), to: site.egress, port: h2, data: 'hello m2' });
    await m2.agent!.call('udpSend', { id: await udpSock(m2, 34200), to: site.egress, port: h1, data: 'hello m1' });
    await sleep(PROBE_MS);
    const at1 = await udpGot(m1, 34200);
    const at2 = await udpGot(m2, 34200);
    const hm = at1.find((d) => d.data === 'hello m1');
    o.hairpin = hm === undefined ? 'not delivered' : `delivered from [${hm.from}]:${hm.port}`;
    if (site.kind === 'sixpn') {
      t.truthy(hm, `hairpin: ${JSON.stringify(at1)}`);
      t.deepEqual([hm?.from, hm?.port], [site.egress, h2], 'the hairpinned packet comes from the external endpoint');
      t.false(at2.some((d) => d.data === 'hello m2'), 'm1’s first packet was filtered: m2 had not sent to m1 yet');
    }
  }
  const s = r.sixpn;
  const l = r.linux;
  t.is(s.preserve, 'kept', 'RFC 4787 REQ-3: port preservation is allowed; sixpn keeps a free port');
  t.regex(s.free, /^same/, 'RFC 4787 REQ-1: endpoint-independent mapping');
  t.regex(s.shared, /^own/, 'one external port belongs to one internal endpoint (RFC 4787 REQ-1 mappings, no overloading)');
  t.regex(s.contended, /^same/, 'RFC 4787 REQ-1: endpoint-independent mapping, also when the port had to change');
  t.is(s.filter, 'address and port dependent', 'RFC 4787 REQ-8: sixpn\'s default filtering');
  table(t, [
    ['behaviour', 'RFC', 'sixpn', 'Linux masquerade'],
    ['free internal port 34000', 'may keep (4787 REQ-3)', s.preserve, l.preserve],
    ['m1:34000 → A:7001, A:7002, B:7001', 'same port (4787 REQ-1)', s.free, l.free],
    ['m1:34100 → A holds 34100; m2:34100 → B', 'one endpoint per port', s.shared, l.shared],
    ['… then m2:34100 → A', 'same port (4787 REQ-1)', s.contended, l.contended],
    ['port 700 (m2 first, then m1)', '< 1024 (4787 REQ-3)', s.low, l.low],
    ['filtering of A:9999, B:9999', 'APDF or EIF (4787 REQ-8)', s.filter, l.filter],
    ['hairpin m2 → egress:m1', 'MUST (4787 REQ-9)', s.hairpin, l.hairpin],
  ]);
  if (l.contended !== s.contended || l.shared !== s.shared) {
    t.log('RFC 4787 REQ-1 vs Linux: masquerade keeps only the whole 5-tuple unique (and reuses a source\'s mapping while that stays unique), so two machines share an external port toward different servers, and a machine gets another port toward a server that port is taken for: endpoint-dependent mapping under contention. sixpn gives each internal endpoint one external port for every destination.');
  }
  if (l.hairpin !== s.hairpin) t.log('RFC 4787 REQ-9 vs Linux: the masquerade address is the host\'s own, so a machine\'s packet to it is local input, not translated back to the other machine; sixpn hairpins.');
});

rootSerial('time-scaled timeouts expire mappings; refresh is outbound (sixpn) vs both ways (Linux)', async (t) => {
  const out: Record<string, Record<string, string>> = { sixpn: {}, linux: {} };
  await Promise.all(eachSite().map(async (site) => {
    const o = out[site.kind];
    const [m1, m2] = site.machines;
    // UDP: after the timeout, the server's late datagram finds no mapping
    const [, ext] = await udpWho(m1, 35000);
    // inbound-only traffic: the server keeps sending to m2's mapping, m2 stays silent
    const [, ext2] = await udpWho(m2, 35100);
    // TCP established, then idle
    const [, tport] = await tcpWho(m1, `idle-${site.kind}`, 35200);
    const accepted = (await lab.inetAgent!.call('tcpAccepted', { port: 7100 })).got as Array<{ id: string; from: string; port: number }>;
    const conn = accepted.find((a) => a.from === site.egress && a.port === tport)!;
    t.truthy(conn, `${site.kind}: the server's side of the idle connection`);
    const start = Date.now();
    let received = 0;
    const sends = 10;
    for (let i = 0; i < sends; i++) {
      await inetSend(inet.a7001, site.egress, ext2, `push ${i}`);
      await sleep(400);
      received += (await udpGot(m2, 35100)).length;
    }
    o.inboundRefresh = `${received} of ${sends} over ${((Date.now() - start) / 1000).toFixed(1)} s`;
    await sleep(Math.max(0, TIMEOUTS.udpMs + 500 - (Date.now() - start)));
    await inetSend(inet.a7001, site.egress, ext, 'late');
    await sleep(PROBE_MS);
    const late = await udpGot(m1, 35000);
    t.deepEqual(late, [], `${site.kind}: the expired UDP mapping let a late datagram through`);
    o.udp = late.length === 0 ? `expired (${TIMEOUTS.udpMs / 1000} s)` : 'still open';
    await sleep(Math.max(0, TIMEOUTS.tcpEstablishedMs + 1000 - (Date.now() - start)));
    await lab.inetAgent!.call('tcpWrite', { id: conn.id, data: 'late\n' });
    const r = await m1.agent!.call('tcpRead', { id: `idle-${site.kind}`, timeoutMs: 1000 });
    t.is(r.data, '', `${site.kind}: the expired TCP mapping let data through`);
    const srv = await lab.inetAgent!.call('tcpRead', { id: conn.id, timeoutMs: 500 });
    o.tcp = `expired (${TIMEOUTS.tcpEstablishedMs / 1000} s); server's side ${srv.error ? `reset (${srv.error})` : srv.closed ? 'closed' : 'left open'}`;
    // the machine speaks again on the expired connection
    await m1.agent!.call('tcpWrite', { id: `idle-${site.kind}`, data: 'again\n' });
    const again = await m1.agent!.call('tcpRead', { id: `idle-${site.kind}`, timeoutMs: 1000 });
    o.again = again.error ? `machine's side reset (${again.error})` : 'no answer (a segment that is not a SYN creates no mapping)';
    await m1.agent!.call('tcpClose', { id: `idle-${site.kind}` });
    const lines = await site.lines();
    o.entries = String(lines.filter((x) => /sport=35000 /.test(x)).length);
  }));
  t.is(out.sixpn.entries, '0', 'the UDP entry is gone from the sixpn table');
  t.true(Number(out.sixpn.inboundRefresh.split(' ')[0]) < 10, `RFC 4787 REQ-6: only outbound packets refresh (sixpn): ${out.sixpn.inboundRefresh}`);
  table(t, [
    ['timeout behaviour', 'RFC', 'sixpn', 'Linux'],
    ['UDP mapping after the timeout', '≥ 2 min, 5 recommended (4787 REQ-5)', out.sixpn.udp, out.linux.udp],
    ['server pushes to a silent machine every 0.4 s', 'outbound refresh MUST, inbound MAY (REQ-6)', out.sixpn.inboundRefresh, out.linux.inboundRefresh],
    ['idle established TCP', '≥ 2 h 4 min (5382 REQ-5)', out.sixpn.tcp, out.linux.tcp],
    ['… then the machine writes', '–', out.sixpn.again, out.linux.again],
  ]);
  table(t, [
    ['default timeouts (s)', 'sixpn (RFC)', 'Linux'],
    ['UDP', '300', `${(await lab.exec(lab.router, 'sysctl', ['-n', 'net.netfilter.nf_conntrack_udp_timeout'])).trim()} unreplied, ${(await lab.exec(lab.router, 'sysctl', ['-n', 'net.netfilter.nf_conntrack_udp_timeout_stream'])).trim()} stream`],
    ['TCP established', '7440', (await lab.exec(lab.router, 'sysctl', ['-n', 'net.netfilter.nf_conntrack_tcp_timeout_established'])).trim()],
    ['ICMPv6 echo', '60', (await lab.exec(lab.router, 'sysctl', ['-n', 'net.netfilter.nf_conntrack_icmpv6_timeout'])).trim()],
  ]);
});

rootSerial('per-app static egress address: every machine of the app leaves from it, the others from the host\'s', async (t) => {
  const site = lab.sixpn;
  const [m1, m2] = site.machines;
  // the provider routes the app's address to the host, like the host's own
  await lab.exec(lab.router, 'ip', ['-6', 'route', 'add', `${STATIC}/128`, 'via', '2001:db8:1::2']);
  const id = await site.engine.setAppAddress('web', STATIC);
  t.is(id, 1);
  t.regex(await lab.exec(site.host, 'ip', ['-6', 'route', 'show', 'dev', site.engine.ifname]), new RegExp(`${STATIC}`));
  m2.app = 'web';
  try {
    const [a2, p2] = await udpWho(m2, 38000);
    const [a1] = await udpWho(m1, 38000);
    t.is(a2, STATIC);
    t.is(a1, EGRESS_S);
    t.is(p2, 38000, 'its own port space: no contention with m1 on the host address');
    const nc = await run(m2.ns, 'ncat', ['-6', '--recv-only', INET_A, '7000']);
    t.is(whoami(nc.out)[0], STATIC, 'TCP too');
    t.log(`m2 (app web) → ${a2}:${p2}; m1 → ${a1}`);
  } finally {
    m2.app = 'app';
    site.engine.clearAppAddress('web');
  }
});

rootSerial('a machine over its session limit gets ICMPv6 administratively prohibited; its existing flows go on', async (t) => {
  const site = lab.onLink!;
  const m = site.machines[0];
  t.true(await waitFor(async () => site.engine.size === 0, TIMEOUTS.udpMs + TIMEOUTS.tcpTransitoryMs + 2000), 'earlier entries expired');
  for (let i = 0; i < ON_LINK_LIMIT; i++) await udpWho(m, 36000 + i);
  const c = await m.agent!.call('tcpConnect', { id: 'over', to: INET_A, port: 7100, timeoutMs: 3000 });
  t.is(c.error, 'EACCES', `connect over the limit: ${JSON.stringify(c)}`);
  const [addr] = await udpWho(m, 36000);
  t.is(addr, EGRESS_P, 'an existing flow still works');
  const s = site.engine.status();
  t.true(s.nat.machineFull > 0 && s.io.prohibitedSent > 0, JSON.stringify({ nat: s.nat, io: s.io }));
  t.log(`hostP: ${s.entries} entries (limit ${ON_LINK_LIMIT}), ${s.nat.machineFull} flows refused, ${s.io.prohibitedSent} prohibited sent`);
});

rootSerial('conntrack listing and status, side by side', async (t) => {
  for (const site of eachSite()) {
    await udpWho(site.machines[0], 37000);
    await run(site.machines[0].ns, 'ping', ['-c', '1', INET_A]);
  }
  const mine = (await lab.sixpn.lines()).filter((l) => /sport=37000 |icmpv6/.test(l));
  const theirs = (await lab.linux!.lines()).filter((l) => /sport=37000 |icmpv6/.test(l));
  t.true(mine.some((l) => /^ipv6 udp 17 \d+ src=fdaa:0:18:a7b:7d:0:1:2 dst=2001:db8:f::10 sport=37000 dport=7001 src=2001:db8:f::10 dst=2001:db8:e::5 sport=7001 dport=\d+ \[ASSURED\] machine=0$/.test(l)), mine.join('\n'));
  t.true(mine.some((l) => /^ipv6 icmpv6 58 \d+ src=fdaa:\S+ dst=2001:db8:f::10 type=128 code=0 id=\d+ src=2001:db8:f::10 dst=2001:db8:e::5 type=129 code=0 id=\d+/.test(l)), mine.join('\n'));
  t.log('sixpn (Egress.list):');
  for (const l of mine) t.log(`  ${l}`);
  t.log('Linux (/proc/net/nf_conntrack):');
  for (const l of theirs) t.log(`  ${l}`);
  const s = lab.sixpn.engine.status();
  t.true(s.entries > 0 && s.tableBytes > 0);
  t.log(`sixpn status: ${s.entries} entries, ${s.mappings} mappings, capacity ${s.capacity}, ${(s.tableBytes / 2 ** 20).toFixed(1)} MiB; io ${JSON.stringify(s.io)}`);
});

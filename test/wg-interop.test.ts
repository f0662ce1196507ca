// sixpn-wg against wireguard-go (Debian's) and against itself, in network namespaces, driven
// by the stock `wg`, checked with ping and iperf3 (issue 6, behaviours 1–3, 5, 6, 8).
import test, { type ExecutionContext } from 'ava';
import { Lab, SIXPN_WG, isRoot, type WgPair } from './helpers/netns.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

type Impl = 'sixpn' | 'wggo';
type Tunnel = WgPair;

async function tunnel(t: ExecutionContext, implA: Impl, implB: Impl, opts: { outer: 4 | 6; psk?: boolean; mtu?: number; vethMtu?: number }): Promise<Tunnel> {
  const lab = new Lab('wi');
  t.teardown(() => lab.cleanup());
  return lab.wgPair(implA, implB, opts);
}

async function ping(tn: Tunnel, from: 'A' | 'B', dst: string, extra: string[] = []): Promise<string> {
  return tn.lab.exec(from === 'A' ? tn.nsA : tn.nsB, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', ...extra, dst], { timeout: 30_000 });
}

async function iperf(tn: Tunnel, dst: string, extra: string[] = []): Promise<number> {
  const server = tn.lab.start(tn.nsB, 'iperf3', ['-s', '-1']);
  await new Promise((r) => setTimeout(r, 300));
  const out = await tn.lab.exec(tn.nsA, 'iperf3', ['-c', dst, '-t', '2', '-J', ...extra], { timeout: 30_000 });
  server.kill();
  const j = JSON.parse(out) as { end: { sum_received?: { bits_per_second: number }; sum?: { bits_per_second: number; lost_percent?: number } } };
  return (j.end.sum_received ?? j.end.sum)!.bits_per_second;
}

async function wgShow(tn: Tunnel, side: 'A' | 'B', what: string): Promise<string> {
  return tn.lab.exec(side === 'A' ? tn.nsA : tn.nsB, 'wg', ['show', side === 'A' ? tn.ifA : tn.ifB, what]);
}

const combos: Array<[Impl, Impl]> = [['sixpn', 'wggo'], ['sixpn', 'sixpn']];

for (const [ia, ib] of combos) {
  for (const outer of [6, 4] as const) {
    rootSerial(`${ia} ⇄ ${ib}, IPv${outer} outside, PSK: ping v4+v6 inside both ways, iperf3 TCP and UDP`, async (t) => {
      const tn = await tunnel(t, ia, ib, { outer, psk: true });
      // outer v6: A initiates; outer v4: B initiates
      const first = outer === 6 ? 'A' : 'B';
      await ping(tn, first, first === 'A' ? '10.9.0.2' : '10.9.0.1');
      await ping(tn, first === 'A' ? 'B' : 'A', first === 'A' ? 'fd99::1' : 'fd99::2');
      const hs = await wgShow(tn, 'A', 'latest-handshakes');
      const ts = Number(hs.trim().split(/\s+/)[1]);
      t.true(Math.abs(ts - Date.now() / 1000) < 60, `latest handshake is a Unix time near now: ${hs}`);
      const tcp = await iperf(tn, '10.9.0.2');
      const udp = await iperf(tn, 'fd99::2', ['-u', '-b', '200M']);
      t.log(`TCP over v4 inside: ${(tcp / 1e6).toFixed(0)} Mbit/s; UDP over v6 inside: ${(udp / 1e6).toFixed(0)} Mbit/s`);
      t.true(tcp > 20e6 && udp > 20e6);
      // `wg show IF transfer`: "<public key>\t<rx bytes>\t<tx bytes>"; A sent the iperf3 data
      const [, rx, tx] = (await wgShow(tn, 'A', 'transfer')).trim().split(/\s+/).map(Number);
      t.true(rx > 10e3 && tx > 1e6, `transfer counters rx ${rx} tx ${tx}`);
      t.regex(await wgShow(tn, 'A', 'endpoints'), outer === 6 ? /\[fd00:b1::2\]:51821/ : /192\.168\.241\.2:51821/);
    });
  }
}

rootSerial('sixpn ⇄ wireguard-go at a large MTU (about 34 KB)', async (t) => {
  const tn = await tunnel(t, 'sixpn', 'wggo', { outer: 6, mtu: 34_000, vethMtu: 65_000 });
  await ping(tn, 'A', '10.9.0.2', ['-s', '30000']);
  await ping(tn, 'B', 'fd99::1', ['-s', '30000']);
  const tcp = await iperf(tn, 'fd99::2');
  t.log(`TCP at MTU 34000: ${(tcp / 1e6).toFixed(0)} Mbit/s`);
  t.true(tcp > 20e6);
});

rootSerial('roaming: after the peer changes its listen port, the endpoint follows', async (t) => {
  for (const other of ['wggo', 'sixpn'] as const) {
    const tn = await tunnel(t, 'sixpn', other, { outer: 6 });
    await ping(tn, 'A', '10.9.0.2');
    await tn.lab.exec(tn.nsB, 'wg', ['set', tn.ifB, 'listen-port', '40123']);
    await ping(tn, 'B', '10.9.0.1');
    t.regex(await wgShow(tn, 'A', 'endpoints'), /\[fd00:b1::2\]:40123/, `${other} roamed`);
    // and the other direction: sixpn-wg changes its port, the peer follows
    await tn.lab.exec(tn.nsA, 'wg', ['set', tn.ifA, 'listen-port', '40456']);
    await ping(tn, 'A', '10.9.0.2');
    t.regex(await wgShow(tn, 'B', 'endpoints'), /\[fd00:b1::1\]:40456/);
    t.regex(await wgShow(tn, 'A', 'listen-port'), /^40456$/m);
  }
});

rootSerial('cryptokey routing: a more specific allowed IP takes the traffic; a source the peer does not own is dropped', async (t) => {
  const tn = await tunnel(t, 'sixpn', 'wggo', { outer: 6 });
  const { lab, nsA, ifA } = tn;
  // a third peer C (wireguard-go) owning 10.9.0.3/32 while B owns 10.9.0.0/24
  const nsC = await lab.ns('C');
  await lab.veth(nsA, ['fd00:c1::1/64'], nsC, ['fd00:c1::3/64']);
  const ifC = lab.name('wc');
  await lab.wg(nsC, 'wggo', ifC);
  const keyC = await lab.genkey();
  await lab.exec(nsA, 'wg', ['set', ifA, 'peer', tn.keyB.pub, 'allowed-ips', '10.9.0.0/24,fd99::2/128']);
  await lab.exec(nsA, 'wg', ['set', ifA, 'peer', keyC.pub, 'allowed-ips', '10.9.0.3/32', 'endpoint', '[fd00:c1::3]:51823']);
  await lab.exec(nsC, 'wg', ['set', ifC, 'private-key', keyC.file, 'listen-port', '51823', 'peer', tn.keyA.pub, 'allowed-ips', '10.9.0.0/24', 'endpoint', '[fd00:c1::1]:51820']);
  await lab.exec(nsC, 'ip', ['addr', 'add', '10.9.0.3/24', 'dev', ifC]);
  await lab.exec(nsC, 'ip', ['link', 'set', ifC, 'up']);
  await ping(tn, 'A', '10.9.0.3'); // reaches C, not B (B does not have 10.9.0.3)
  t.regex(await lab.exec(nsA, 'wg', ['show', ifA, 'latest-handshakes']), new RegExp(`${keyC.pub.replace(/[+/]/g, '.')}\\s+[1-9]`));
  await ping(tn, 'A', '10.9.0.2');
  // B sends from 10.9.0.77, which A gives to B (/24) — accepted; from 10.9.0.3 (C's) — dropped
  await lab.exec(tn.nsB, 'ip', ['addr', 'add', '10.9.0.3/32', 'dev', tn.ifB]);
  await lab.exec(tn.nsB, 'wg', ['set', tn.ifB, 'peer', tn.keyA.pub, 'allowed-ips', '10.9.0.0/24,fd99::1/128']);
  const spoofed = await lab.exec(tn.nsB, 'ping', ['-c', '2', '-W', '1', '-I', '10.9.0.3', '10.9.0.1']).then(() => 'answered', () => 'dropped');
  t.is(spoofed, 'dropped');
  await ping(tn, 'B', '10.9.0.1');
});

rootSerial('on a host with two addresses, replies leave from the address the peer wrote to', async (t) => {
  const tn = await tunnel(t, 'sixpn', 'wggo', { outer: 6 });
  await tn.lab.exec(tn.nsA, 'ip', ['addr', 'add', 'fd00:b1::11/64', 'dev', tn.lab.links[0], 'nodad']);
  await tn.lab.exec(tn.nsB, 'wg', ['set', tn.ifB, 'peer', tn.keyA.pub, 'endpoint', '[fd00:b1::11]:51820']);
  await tn.lab.exec(tn.nsA, 'wg', ['set', tn.ifA, 'peer', tn.keyB.pub, 'remove']);
  await tn.lab.exec(tn.nsA, 'wg', ['set', tn.ifA, 'peer', tn.keyB.pub, 'allowed-ips', '10.9.0.2/32,fd99::2/128']); // no endpoint: A only answers
  await ping(tn, 'B', '10.9.0.1');
  await ping(tn, 'B', 'fd99::1');
  // wireguard-go roams to the source of every authenticated packet: had A answered from ::1,
  // B's endpoint would now be ::1
  t.regex(await wgShow(tn, 'B', 'endpoints'), /\[fd00:b1::11\]:51820/);
  t.regex(await wgShow(tn, 'A', 'endpoints'), /\[fd00:b1::2\]:51821/);
});

rootSerial('garbage, truncated and replayed datagrams at the listen port change nothing', async (t) => {
  const tn = await tunnel(t, 'sixpn', 'wggo', { outer: 6 });
  await ping(tn, 'B', '10.9.0.1');
  const before = await wgShow(tn, 'A', 'endpoints');
  // from a third namespace address on B's side, 2000 datagrams of junk of every kind
  const script = `
const d = require('node:dgram').createSocket('udp6');
const msgs = [];
for (let i = 0; i < 2000; i++) { const b = Buffer.alloc(1 + (i * 7) % 300); for (let k = 0; k < b.length; k++) b[k] = (i * 31 + k * 17) & 255; if (i % 3 === 0) { b[0] = 1 + (i % 4); b[1] = b[2] = b[3] = 0; } msgs.push(b); }
let n = 0; const next = () => { if (n === msgs.length) return d.close(); d.send(msgs[n++], 51820, 'fd00:b1::1', next); }; next();`;
  await tn.lab.exec(tn.nsB, process.execPath, ['-e', script]);
  await ping(tn, 'B', '10.9.0.1');
  await ping(tn, 'A', 'fd99::2');
  t.is(await wgShow(tn, 'A', 'endpoints'), before, 'the endpoint did not move to the junk source port');
  // and each was counted: `sixpn-wg --stats` shows the drops per reason
  const stats = Object.fromEntries((await tn.lab.exec(tn.nsA, SIXPN_WG, ['--stats', tn.ifA], { env: { ...process.env, SIXPN_NODE: process.execPath } }))
    .trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([k, v]) => [k, Number(v)]));
  t.true(stats.rxDatagrams >= 2000, `rxDatagrams ${stats.rxDatagrams}`);
  const dropped = stats.rxInvalid + stats.rxMac + stats.rxNoKeypair + stats.rxAuthFailed + stats.rxHandshakeRejected;
  t.true(dropped >= 1900, `dropped ${dropped}: ${JSON.stringify(stats)}`);
});

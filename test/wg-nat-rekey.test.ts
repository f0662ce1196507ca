// sixpn-wg behind a NAT with a 2-second UDP conntrack timeout (persistent keepalive 1 keeps the
// return path open), a 130-second session with wireguard-go that survives a rekey, setconf at
// scale on the real device, and wg-quick (issue 6, behaviours 4, 6, 7).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, SIXPN_WG, isRoot, sh } from './helpers/netns.ts';

const rootTest = isRoot() ? test : test.skip; // counted as skipped when not root

// by full path: under `npx ava`, node_modules/.bin has an unrelated `nft` (@vercel/nft)
const NFT = '/usr/sbin/nft';

rootTest('through a NAT with a 2 s UDP timeout, persistent keepalive 1 keeps the return path open', async (t) => {
  t.timeout(90_000);
  const lab = new Lab('nat');
  t.teardown(() => lab.cleanup());
  const nsA = await lab.ns('A'); // sixpn-wg, behind the NAT
  const nsR = await lab.ns('R'); // the NAT router
  const nsB = await lab.ns('B'); // wireguard-go, public side
  const [, rIn] = await lab.veth(nsA, ['192.168.1.2/24'], nsR, ['192.168.1.1/24']);
  const [rOut] = await lab.veth(nsR, ['10.0.0.1/24'], nsB, ['10.0.0.2/24']);
  void rIn;
  await lab.exec(nsA, 'ip', ['route', 'add', 'default', 'via', '192.168.1.1']);
  await lab.exec(nsR, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  await lab.exec(nsR, NFT, ['-f', lab.file('nat.nft', `table ip nat {\n chain post { type nat hook postrouting priority 100; oifname "${rOut}" masquerade; }\n}\n`)]);
  // conntrack's UDP timeouts are per namespace once conntrack is in use there
  await lab.exec(nsR, 'sysctl', ['-q', '-w', 'net.netfilter.nf_conntrack_udp_timeout=2']);
  await lab.exec(nsR, 'sysctl', ['-q', '-w', 'net.netfilter.nf_conntrack_udp_timeout_stream=2']);
  const ifA = lab.name('wa');
  const ifB = lab.name('wb');
  await lab.wg(nsA, 'sixpn', ifA);
  await lab.wg(nsB, 'wggo', ifB);
  const kA = await lab.genkey();
  const kB = await lab.genkey();
  await lab.exec(nsA, 'wg', ['set', ifA, 'private-key', kA.file, 'peer', kB.pub, 'allowed-ips', '10.9.0.2/32', 'endpoint', '10.0.0.2:51821']);
  await lab.exec(nsB, 'wg', ['set', ifB, 'private-key', kB.file, 'listen-port', '51821', 'peer', kA.pub, 'allowed-ips', '10.9.0.1/32']);
  for (const [ns, dev, n] of [[nsA, ifA, 1], [nsB, ifB, 2]] as const) {
    await lab.exec(ns, 'ip', ['addr', 'add', `10.9.0.${n}/24`, 'dev', dev]);
    await lab.exec(ns, 'ip', ['link', 'set', dev, 'up']);
  }
  const bPingsA = () => lab.exec(nsB, 'ping', ['-c', '2', '-i', '0.3', '-W', '1', '10.9.0.1']).then(() => true, () => false);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  // without keepalive, the mapping expires and B cannot reach A (this is what the test is about)
  await lab.exec(nsA, 'ping', ['-c', '1', '-W', '3', '10.9.0.2']);
  await sleep(4_000);
  t.false(await bPingsA(), 'without keepalive the NAT forgot the mapping');
  // with persistent keepalive 1 (sent at once when enabled), it stays open
  await lab.exec(nsA, 'wg', ['set', ifA, 'peer', kB.pub, 'persistent-keepalive', '1']);
  await sleep(4_000);
  t.true(await bPingsA(), 'keepalives kept the mapping');
  await sleep(4_000);
  t.true(await bPingsA());
  t.regex(await lab.exec(nsA, 'wg', ['show', ifA, 'persistent-keepalive']), /\s1$/m);
});

rootTest('a session with wireguard-go survives a rekey (traffic for 130 s, no stall)', async (t) => {
  t.timeout(200_000);
  const lab = new Lab('rk');
  t.teardown(() => lab.cleanup());
  const { nsA, ifA } = await lab.wgPair('sixpn', 'wggo', { outer: 6 });
  // 1300 pings, one per 100 ms: a stall of more than a second shows up as a run of losses
  const out = await lab.exec(nsA, 'ping', ['-c', '1300', '-i', '0.1', '-W', '1', 'fd99::2'], { timeout: 180_000 }).catch((e: Error) => e.message);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  t.truthy(m, out.slice(-300));
  const lost = Number(m![1]) - Number(m![2]);
  t.log(`sent ${m![1]}, received ${m![2]}`);
  t.true(lost <= 2, `${lost} pings lost across the rekey`);
  const hs = Number((await lab.exec(nsA, 'wg', ['show', ifA, 'latest-handshakes'])).trim().split(/\s+/)[1]);
  t.true(Date.now() / 1000 - hs < 30, 'a handshake happened after the first (rekey at 120 s)');
});

rootTest('wg setconf: one peer with 130,560 allowed IPs, and 40 peers × 52 prefixes, read back complete', async (t) => {
  t.timeout(120_000);
  const lab = new Lab('sc');
  t.teardown(() => lab.cleanup());
  const ns = await lab.ns('A');
  const ifA = lab.name('wa');
  await lab.wg(ns, 'sixpn', ifA);
  const k = await lab.genkey();
  const peer = await lab.genkey();
  const ips: string[] = [];
  for (let i = 0; i < 130_560; i++) ips.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`);
  const conf = `[Interface]\nPrivateKey = ${k.priv}\nListenPort = 51820\n\n[Peer]\nPublicKey = ${peer.pub}\nAllowedIPs = ${ips.join(', ')}\n`;
  const t0 = Date.now();
  await lab.exec(ns, 'wg', ['setconf', ifA, lab.file('big.conf', conf)], { timeout: 100_000 });
  const t1 = Date.now();
  const shown = await lab.exec(ns, 'wg', ['show', ifA, 'allowed-ips'], { timeout: 100_000 });
  t.log(`setconf 130,560 prefixes: ${t1 - t0} ms, show: ${Date.now() - t1} ms`);
  t.is(shown.trim().split(/\s+/).length - 1, 130_560);

  const peers = await Promise.all(Array.from({ length: 40 }, () => lab.genkey()));
  let conf2 = `[Interface]\nPrivateKey = ${k.priv}\n`;
  peers.forEach((p, i) => {
    conf2 += `\n[Peer]\nPublicKey = ${p.pub}\nAllowedIPs = ${Array.from({ length: 52 }, (_, j) => `fd${i.toString(16).padStart(2, '0')}:${j.toString(16)}::/64`).join(', ')}\n`;
  });
  await lab.exec(ns, 'wg', ['setconf', ifA, lab.file('forty.conf', conf2)]);
  const lines = (await lab.exec(ns, 'wg', ['show', ifA, 'allowed-ips'])).trim().split('\n');
  t.is(lines.length, 40);
  for (const l of lines) t.is(l.trim().split(/\s+/).length - 1, 52);
});

rootTest('wg-quick up/down with WG_QUICK_USERSPACE_IMPLEMENTATION=sixpn-wg', async (t) => {
  const lab = new Lab('wq');
  t.teardown(() => lab.cleanup());
  const ns = await lab.ns('A');
  const ifA = lab.name('wq');
  const k = await lab.genkey();
  const peer = await lab.genkey();
  const dir = lab.dir;
  const conf = join(dir, `${ifA}.conf`);
  writeFileSync(conf, `[Interface]\nPrivateKey = ${k.priv}\nAddress = 10.77.0.1/24, fd77::1/64\nListenPort = 51999\n\n[Peer]\nPublicKey = ${peer.pub}\nAllowedIPs = 10.77.0.2/32\nEndpoint = 127.0.0.1:51998\n`, { mode: 0o600 });
  lab.ifnames.push(ifA);
  const env = { ...process.env, WG_QUICK_USERSPACE_IMPLEMENTATION: SIXPN_WG, SIXPN_NODE: process.execPath };
  await lab.exec(ns, 'wg-quick', ['up', conf], { env });
  const show = await lab.exec(ns, 'wg', ['show', ifA]);
  t.regex(show, /listening port: 51999/);
  t.regex(show, /allowed ips: 10\.77\.0\.2\/32/);
  const link = await lab.exec(ns, 'ip', ['-o', 'addr', 'show', 'dev', ifA]);
  t.regex(link, /10\.77\.0\.1\/24/);
  // wg-quick's MTU: the endpoint's route (loopback, 65536) less 80
  t.regex(await lab.exec(ns, 'ip', ['-o', 'link', 'show', 'dev', ifA]), /mtu 65456/);
  await lab.exec(ns, 'wg-quick', ['down', conf], { env });
  await new Promise((r) => setTimeout(r, 1500));
  const gone = await lab.exec(ns, 'ip', ['link', 'show', 'dev', ifA]).then(() => false, () => true);
  t.true(gone, 'interface removed by wg-quick down');
  t.throws(() => writeFileSync(join('/var/run/wireguard', `${ifA}.sock`, 'x'), ''), undefined, 'socket gone');
  void sh;
});

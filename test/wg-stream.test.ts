// A 256 MiB TCP stream through the tunnel, SHA-256 checked at both ends (issue 9): sixpn-wg ⇄
// sixpn-wg with offloads on (TUN TSO/GRO coalescing, UDP GSO/GRO) and off, and sixpn-wg ⇄
// wireguard-go both ways. Each side's `sixpn-wg --stats` must show the offloads it used.
import test from 'ava';
import { Lab, SIXPN_WG, isRoot } from './helpers/netns.ts';

const BYTES = 256 << 20;
const rootTest = isRoot() ? test.serial : test.serial.skip;

type Impl = 'sixpn' | 'wggo';
const cases: Array<{ name: string; a: Impl; b: Impl; env: NodeJS.ProcessEnv; from: 'A' | 'B' }> = [
  { name: 'sixpn-wg → sixpn-wg, offloads on', a: 'sixpn', b: 'sixpn', env: {}, from: 'A' },
  { name: 'sixpn-wg → sixpn-wg, offloads off', a: 'sixpn', b: 'sixpn', env: { SIXPN_OFFLOAD: '0' }, from: 'A' },
  { name: 'sixpn-wg → wireguard-go', a: 'sixpn', b: 'wggo', env: {}, from: 'A' },
  { name: 'wireguard-go → sixpn-wg', a: 'sixpn', b: 'wggo', env: {}, from: 'B' },
];

for (const c of cases) {
  rootTest(`256 MiB over TCP, SHA-256 equal: ${c.name}`, async (t) => {
    const lab = new Lab('ws');
    t.teardown(() => lab.cleanup());
    const tn = await lab.wgPair(c.a, c.b, { outer: 6, mtu: 1420, env: c.env });
    const [src, dst, dstAddr] = c.from === 'A' ? [tn.nsA, tn.nsB, 'fd99::2'] : [tn.nsB, tn.nsA, 'fd99::1'];
    await lab.exec(src, 'ping', ['-c', '2', '-i', '0.2', '-W', '3', dstAddr], { timeout: 20_000 });
    const sink = lab.start(dst, 'bash', ['-c', `ncat -6 -l ${dstAddr} 9000 --recv-only | sha256sum`]);
    let received = '';
    sink.stdout!.on('data', (d: Buffer) => (received += d.toString()));
    const sinkDone = new Promise<void>((r) => sink.on('exit', () => r()));
    await new Promise((r) => setTimeout(r, 300));
    const sum = lab.file('sent.sha256', '');
    const sent = await lab.exec(src, 'bash', ['-c',
      `head -c ${BYTES} /dev/urandom | tee >(sha256sum > ${sum}) | ncat -6 --send-only ${dstAddr} 9000; ` +
        `for i in $(seq 100); do [ -s ${sum} ] && break; sleep 0.1; done; cat ${sum}`,
    ], { timeout: 120_000 });
    await sinkDone;
    const hash = (s: string) => /^[0-9a-f]{64}/m.exec(s)?.[0];
    t.truthy(hash(sent), `sender printed ${sent}`);
    t.is(hash(received), hash(sent));
    for (const [ns, ifname, impl] of [[tn.nsA, tn.ifA, c.a], [tn.nsB, tn.ifB, c.b]] as const) {
      if (impl !== 'sixpn') continue;
      const stats = await lab.exec(ns, SIXPN_WG, ['--stats', ifname]);
      const offloads = /^offloads\s+(.*)$/m.exec(stats)?.[1] ?? '';
      if (c.env.SIXPN_OFFLOAD === '0') t.is(offloads.trim(), 'none');
      else t.regex(offloads, /tso6.*udp-gso udp-gro/);
      t.regex(stats, /^rxAuthFailed\s+0$/m);
    }
  });
}

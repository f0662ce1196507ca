// npm run bench:tunnel — two namespaces joined by a veth, IPv6 inside and outside, MTU 1420:
// iperf3 TCP (10 s: one stream, the reverse direction -R, and 4 parallel streams -P 4) and
// `ping -i 0.01` through sixpn-wg ⇄ sixpn-wg, sixpn-wg ⇄ wireguard-go
// and wireguard-go ⇄ wireguard-go, interleaved, RUNS rounds (median). Peak RSS of sixpn-wg.
// The last line is one JSON object. Needs root.
// WORKERS=0,1,2: sixpn-wg ⇄ sixpn-wg only, once per worker count (SIXPN_WORKERS), interleaved;
// the JSON then has workers_<n>_gbps (and _reverse, _parallel, _rtt_ms) for each.
// COMPARE=name=VAR=value,…: the same for any environment variants of sixpn-wg, e.g.
// COMPARE=batch=SIXPN_BATCH=1,single=SIXPN_BATCH=0 (keys <name>_gbps …).
import { readFileSync } from 'node:fs';
import { Lab, sh } from '../test/helpers/netns.ts';
import { machineDescription, median } from './lib.ts';

type Impl = 'sixpn' | 'wggo';
const RUNS = Number(process.env.RUNS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 10);
const VARIANTS: Array<[string, string, string]> | undefined = process.env.WORKERS !== undefined
  ? process.env.WORKERS.split(',').filter(Boolean).map((w) => [`workers_${w}`, 'SIXPN_WORKERS', w])
  : process.env.COMPARE?.split(',').filter(Boolean).map((v) => {
    const [name, key, value] = v.split('=');
    if (!name || !key || value === undefined) throw new Error(`COMPARE: "${v}" is not name=VAR=value`);
    return [name, key, value];
  });
const configs: Array<[string, Impl, Impl, NodeJS.ProcessEnv?]> = VARIANTS !== undefined
  ? VARIANTS.map(([name, key, value]) => [name, 'sixpn', 'sixpn', { [key]: value }])
  : [
    ['sixpn', 'sixpn', 'sixpn'],
    ['mixed', 'sixpn', 'wggo'],
    ['wggo', 'wggo', 'wggo'],
  ];

function rssOf(pid: string): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

async function sixpnPids(lab: Lab): Promise<string[]> {
  const pids: string[] = [];
  for (const ns of lab.namespaces) {
    for (const pid of (await sh('ip', ['netns', 'pids', ns])).split(/\s+/).filter(Boolean)) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sixpn-wg')) pids.push(pid);
      } catch {
        // exited
      }
    }
  }
  return pids;
}

async function iperf(lab: Lab, nsA: string, nsB: string, args: string[]): Promise<number> {
  const server = lab.start(nsB, 'iperf3', ['-s', '-1']);
  await new Promise((r) => setTimeout(r, 300));
  try {
    const out = JSON.parse(await lab.exec(nsA, 'iperf3', ['-c', 'fd99::2', '-t', String(SECONDS), '-J', ...args], { timeout: (SECONDS + 30) * 1000 }));
    return out.end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill();
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Once { gbps: number; reverse: number; parallel: number; rttMs: number; rssMb: number }

async function once(name: string, a: Impl, b: Impl, env?: NodeJS.ProcessEnv): Promise<Once> {
  const lab = new Lab('bt');
  try {
    const { nsA, nsB } = await lab.wgPair(a, b, { outer: 6, mtu: 1420, ...(env ? { env } : {}) });
    await lab.exec(nsA, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', 'fd99::2']);
    const gbps = await iperf(lab, nsA, nsB, []);
    const reverse = await iperf(lab, nsA, nsB, ['-R']);
    const parallel = await iperf(lab, nsA, nsB, ['-P', '4']);
    const ping = await lab.exec(nsA, 'ping', ['-c', '300', '-i', '0.01', '-q', 'fd99::2'], { timeout: 60_000 });
    const rttMs = Number(/= [\d.]+\/([\d.]+)\//.exec(ping)?.[1] ?? NaN);
    const rssMb = Math.max(0, ...(await sixpnPids(lab)).map(rssOf));
    console.log(`  ${name.padEnd(6)} ${gbps.toFixed(3)} Gbit/s, -R ${reverse.toFixed(3)}, -P 4 ${parallel.toFixed(3)}  rtt ${rttMs.toFixed(3)} ms${rssMb ? `  sixpn-wg peak RSS ${rssMb.toFixed(0)} MB` : ''}`);
    return { gbps, reverse, parallel, rttMs, rssMb };
  } finally {
    await lab.cleanup();
  }
}

console.log(machineDescription());
console.log(`iperf3 TCP ${SECONDS} s and ping -i 0.01 over IPv6-in-IPv6, MTU 1420; ${RUNS} interleaved rounds (median)\n`);
const results: Record<string, { gbps: number[]; reverse: number[]; parallel: number[]; rtt: number[]; rss: number[] }> = {};
for (const [name] of configs) results[name] = { gbps: [], reverse: [], parallel: [], rtt: [], rss: [] };
for (let r = 0; r < RUNS; r++) {
  console.log(`round ${r + 1}`);
  for (const [name, a, b, env] of configs) {
    const x = await once(name, a, b, env);
    results[name].gbps.push(x.gbps);
    results[name].reverse.push(x.reverse);
    results[name].parallel.push(x.parallel);
    results[name].rtt.push(x.rttMs);
    results[name].rss.push(x.rssMb);
  }
}
const m = (k: string, f: 'gbps' | 'reverse' | 'parallel' | 'rtt') => median(results[k][f]);
if (VARIANTS !== undefined) {
  const out: Record<string, number | string> = { bench: 'tunnel-variants', node: process.version, runs: RUNS, seconds: SECONDS };
  for (const [name] of VARIANTS) {
    out[`${name}_gbps`] = +m(name, 'gbps').toFixed(3);
    out[`${name}_reverse_gbps`] = +m(name, 'reverse').toFixed(3);
    out[`${name}_parallel_gbps`] = +m(name, 'parallel').toFixed(3);
    out[`${name}_rtt_ms`] = +m(name, 'rtt').toFixed(3);
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}
const summary = {
  bench: 'tunnel',
  node: process.version,
  runs: RUNS,
  seconds: SECONDS,
  sixpn_gbps: +m('sixpn', 'gbps').toFixed(3),
  mixed_gbps: +m('mixed', 'gbps').toFixed(3),
  wggo_gbps: +m('wggo', 'gbps').toFixed(3),
  ratio: +(m('sixpn', 'gbps') / m('wggo', 'gbps')).toFixed(3),
  sixpn_reverse_gbps: +m('sixpn', 'reverse').toFixed(3),
  wggo_reverse_gbps: +m('wggo', 'reverse').toFixed(3),
  ratio_reverse: +(m('sixpn', 'reverse') / m('wggo', 'reverse')).toFixed(3),
  sixpn_parallel_gbps: +m('sixpn', 'parallel').toFixed(3),
  wggo_parallel_gbps: +m('wggo', 'parallel').toFixed(3),
  ratio_parallel: +(m('sixpn', 'parallel') / m('wggo', 'parallel')).toFixed(3),
  sixpn_rtt_ms: +m('sixpn', 'rtt').toFixed(3),
  mixed_rtt_ms: +m('mixed', 'rtt').toFixed(3),
  wggo_rtt_ms: +m('wggo', 'rtt').toFixed(3),
  peak_rss_mb: +Math.max(...results.sixpn.rss, ...results.mixed.rss).toFixed(1),
};
console.log(`\nsixpn⇄sixpn ${summary.sixpn_gbps} Gbit/s, sixpn⇄wggo ${summary.mixed_gbps}, wggo⇄wggo ${summary.wggo_gbps}: ratio ${summary.ratio}`);
console.log(JSON.stringify(summary));

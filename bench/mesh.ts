// npm run bench:mesh — two hosts running `sixpn up` (namespaces on one underlay bridge,
// test/helpers/sixpn-lab.ts), one machine on each and a second machine on the first: iperf3 TCP
// machine → machine across the mesh and on the same host, and ping across. Beside it, in the same
// run, what a user would build instead: two hosts joined by wireguard-go (Debian's), with kernel
// forwarding between veths to a machine namespace on each side, MTU 1420 as in 6PN. RUNS
// interleaved rounds, medians; peak RSS and CPU seconds per Gbit of the sixpn processes. The last
// line is one JSON object. Needs root.
import { readFileSync } from 'node:fs';
import { Lab } from '../test/helpers/netns.ts';
import { SixpnLab } from '../test/helpers/sixpn-lab.ts';
import { machineDescription, median } from './lib.ts';

const RUNS = Number(process.env.RUNS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 10);
const CLK_TCK = 100;

function iperfGbps(out: string): number {
  return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

function rttOf(out: string): number {
  return Number(/= [\d.]+\/([\d.]+)\//.exec(out)?.[1] ?? NaN);
}

/** utime + stime of a process and its threads, in seconds; peak RSS in MB. */
function procStats(pid: number): { cpu: number; rssMb: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, rssMb: Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024 };
  } catch {
    return { cpu: 0, rssMb: 0 };
  }
}

/** The node processes behind the lab's `sixpn up`s (nsenter execs node in place). */
function upPids(lab: SixpnLab): number[] {
  return lab.upProcs.map((p) => p.pid ?? 0).filter((p) => p > 0);
}

interface MeshRound { mesh: number; same: number; rtt: number; rssMb: number; cpuPerGbit: number }

async function sixpnRound(): Promise<MeshRound> {
  const lab = await SixpnLab.start({
    orgs: [{ name: 'acme', network: 0x18 }],
    apps: [{ name: 'web', org: 'acme' }],
    hosts: [{ key: 'h1', region: 'ams' }, { key: 'h2', region: 'ord' }],
    machines: [
      { key: 'a1', app: 'web', host: 'h1', instance: 0x101 },
      { key: 'a2', app: 'web', host: 'h1', instance: 0x102 },
      { key: 'b1', app: 'web', host: 'h2', instance: 0x201 },
    ],
    logLevel: 'error',
  });
  try {
    const addr = (k: string) => lab.machines.get(k)!.address;
    await lab.exec('a1', 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', addr('b1')]);
    const iperf = async (from: string, to: string): Promise<number> => {
      const server = lab.spawn(to, 'iperf3', ['-s', '-1']);
      await new Promise((r) => setTimeout(r, 300));
      const r = await lab.exec(from, 'iperf3', ['-c', addr(to), '-t', String(SECONDS), '-J'], { timeout: (SECONDS + 30) * 1000 });
      server.kill();
      if (!r.ok) throw new Error(`iperf3 ${from} → ${to}: ${r.out}`);
      return iperfGbps(r.out);
    };
    const pids = upPids(lab);
    const cpu0 = pids.reduce((s, p) => s + procStats(p).cpu, 0);
    const mesh = await iperf('a1', 'b1');
    const cpu1 = pids.reduce((s, p) => s + procStats(p).cpu, 0);
    const same = await iperf('a1', 'a2');
    const rtt = rttOf((await lab.exec('a1', 'ping', ['-6', '-c', '300', '-i', '0.01', '-q', addr('b1')], { timeout: 60_000 })).out);
    const rssMb = Math.max(...pids.map((p) => procStats(p).rssMb));
    const cpuPerGbit = (cpu1 - cpu0) / (mesh * SECONDS);
    console.log(`  sixpn  mesh ${mesh.toFixed(3)} Gbit/s, same host ${same.toFixed(3)}, rtt ${rtt.toFixed(3)} ms, peak RSS ${rssMb.toFixed(0)} MB, ${cpuPerGbit.toFixed(2)} CPU s/Gbit`);
    return { mesh, same, rtt, rssMb, cpuPerGbit };
  } finally {
    await lab.cleanup();
  }
}

async function refRound(): Promise<{ gbps: number; rtt: number }> {
  const lab = new Lab('bm');
  try {
    const hA = await lab.ns('hA');
    const hB = await lab.ns('hB');
    await lab.veth(hA, ['fd00:b2::1/64'], hB, ['fd00:b2::2/64']);
    const mA = await lab.ns('mA');
    const mB = await lab.ns('mB');
    await lab.veth(mA, ['fd77:1::2/64'], hA, ['fd77:1::1/64'], 1420);
    await lab.veth(mB, ['fd77:2::2/64'], hB, ['fd77:2::1/64'], 1420);
    const wA = lab.name('wa');
    const wB = lab.name('wb');
    await lab.wg(hA, 'wggo', wA);
    await lab.wg(hB, 'wggo', wB);
    const kA = await lab.genkey();
    const kB = await lab.genkey();
    await lab.exec(hA, 'wg', ['set', wA, 'private-key', kA.file, 'listen-port', '51820', 'peer', kB.pub, 'allowed-ips', 'fd77:2::/64', 'endpoint', '[fd00:b2::2]:51821']);
    await lab.exec(hB, 'wg', ['set', wB, 'private-key', kB.file, 'listen-port', '51821', 'peer', kA.pub, 'allowed-ips', 'fd77:1::/64', 'endpoint', '[fd00:b2::1]:51820']);
    for (const [h, w, peerNet] of [[hA, wA, 'fd77:2::/64'], [hB, wB, 'fd77:1::/64']] as const) {
      await lab.exec(h, 'ip', ['link', 'set', w, 'mtu', '1420', 'up']);
      await lab.exec(h, 'ip', ['-6', 'route', 'add', peerNet, 'dev', w]);
      await lab.exec(h, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    }
    await lab.exec(mA, 'ip', ['-6', 'route', 'add', 'default', 'via', 'fd77:1::1']);
    await lab.exec(mB, 'ip', ['-6', 'route', 'add', 'default', 'via', 'fd77:2::1']);
    await lab.exec(mA, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', 'fd77:2::2']);
    const server = lab.start(mB, 'iperf3', ['-s', '-1']);
    await new Promise((r) => setTimeout(r, 300));
    const gbps = iperfGbps(await lab.exec(mA, 'iperf3', ['-c', 'fd77:2::2', '-t', String(SECONDS), '-J'], { timeout: (SECONDS + 30) * 1000 }));
    server.kill();
    const rtt = rttOf(await lab.exec(mA, 'ping', ['-c', '300', '-i', '0.01', '-q', 'fd77:2::2'], { timeout: 60_000 }));
    console.log(`  ref    wireguard-go + kernel forwarding ${gbps.toFixed(3)} Gbit/s, rtt ${rtt.toFixed(3)} ms`);
    return { gbps, rtt };
  } finally {
    await lab.cleanup();
  }
}

console.log(machineDescription());
console.log(`iperf3 TCP ${SECONDS} s machine → machine, ping -i 0.01; ${RUNS} interleaved rounds (median)\n`);
const six: MeshRound[] = [];
const ref: Array<{ gbps: number; rtt: number }> = [];
for (let r = 0; r < RUNS; r++) {
  console.log(`round ${r + 1}`);
  six.push(await sixpnRound());
  ref.push(await refRound());
}
const m = (xs: number[]) => median(xs);
const summary = {
  bench: 'mesh',
  node: process.version,
  runs: RUNS,
  seconds: SECONDS,
  mesh_gbps: +m(six.map((x) => x.mesh)).toFixed(3),
  ref_gbps: +m(ref.map((x) => x.gbps)).toFixed(3),
  ratio: +(m(six.map((x) => x.mesh)) / m(ref.map((x) => x.gbps))).toFixed(3),
  same_host_gbps: +m(six.map((x) => x.same)).toFixed(3),
  mesh_rtt_ms: +m(six.map((x) => x.rtt)).toFixed(3),
  ref_rtt_ms: +m(ref.map((x) => x.rtt)).toFixed(3),
  peak_rss_mb: +Math.max(...six.map((x) => x.rssMb)).toFixed(1),
  cpu_s_per_gbit: +m(six.map((x) => x.cpuPerGbit)).toFixed(3),
};
console.log(`\nmesh ${summary.mesh_gbps} Gbit/s vs wireguard-go + forwarding ${summary.ref_gbps}: ratio ${summary.ratio}; same host ${summary.same_host_gbps}`);
console.log(JSON.stringify(summary));

// `npm run bench:dns` (root): dnsperf against sixpn's `.internal` DNS (fdaa::3, from inside a
// machine namespace: machine TUN → router → resolver → back) and, in the same run, against
// dnsmasq serving the same AAAA records from a hosts file on the loopback of that same namespace.
// Runs alternate, median of N (default 3); then one rate-limited run each (half of sixpn's
// median rate) whose per-query latencies give p99, and one DNS-over-TCP run each.
// Flags: --runs N (3), --seconds S per run (4), --clients C for dnsperf (4).
// The last line is one JSON object.
import { SixpnLab, run } from '../test/helpers/sixpn-lab.ts';
import { machineDescription, median } from './lib.ts';

const DNSPERF = '/usr/bin/dnsperf';
const DNSMASQ = '/usr/sbin/dnsmasq';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const RUNS = flag('runs', 3);
const SECONDS = flag('seconds', 4);
const CLIENTS = flag('clients', 4);
const APP_MACHINES = 8;

interface Perf {
  qps: number;
  lost: number;
  avgMs: number;
  latenciesMs: number[];
}

function parsePerf(out: string): Perf {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const latenciesMs: number[] = [];
  for (const m of out.matchAll(/^> \S+ .* ([0-9.]+)$/gm)) latenciesMs.push(Number(m[1]) * 1000);
  return {
    qps: num(/Queries per second:\s+([0-9.]+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    avgMs: num(/Average Latency \(s\):\s+([0-9.]+)/) * 1000,
    latenciesMs,
  };
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('bench:dns: run as root (namespaces, TUN devices)');
    return 1;
  }
  if ((await run(DNSPERF, ['-h'])).out.indexOf('dnsperf') < 0 || (await run(DNSMASQ, ['--version'])).ok === false) {
    console.error('bench:dns: needs dnsperf and dnsmasq (scripts/setup.sh installs them)');
    return 1;
  }
  console.log(machineDescription());
  console.log(`dnsperf ${/Version (\S+)/.exec((await run(DNSPERF, ['-h'])).out)?.[1] ?? '?'}, ${(await run(DNSMASQ, ['--version'])).out.split('\n')[0]}`);
  const web = Array.from({ length: APP_MACHINES }, (_, i) => ({ key: `w${i + 1}`, app: 'web', host: 'h1', instance: 0x100 + i }));
  const lab = await SixpnLab.start({
    orgs: [{ name: 'acme', network: 0x18 }],
    apps: [{ name: 'web', org: 'acme' }, { name: 'bench', org: 'acme' }],
    hosts: [{ key: 'h1', region: 'ams', dnsUpstream: ['[fd00:6f::54]:53'] }], // never asked: every name is .internal
    machines: [...web, { key: 'cli', app: 'bench', host: 'h1', instance: 0x200 }],
    logLevel: 'error',
  });
  try {
    // the same records for both servers
    const hosts: string[] = [];
    const queries: string[] = ['web.internal AAAA'];
    for (const w of web) {
      const m = lab.machines.get(w.key)!;
      hosts.push(`${m.address} web.internal`, `${m.address} ${m.id}.vm.web.internal`);
      queries.push(`${m.id}.vm.web.internal AAAA`);
    }
    const hostsFile = lab.file('bench.hosts', hosts.join('\n') + '\n');
    const queryFile = lab.file('bench.queries', queries.join('\n') + '\n');
    lab.spawn('cli', DNSMASQ, ['-k', '-C', '/dev/null', '--user=root', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`,
      '--listen-address=::1', '--bind-interfaces', '--pid-file', '--local=/internal/', '--local-ttl=5', '--log-facility=/dev/null']);
    for (let i = 0; ; i++) {
      const r = await lab.exec('cli', '/usr/bin/dig', ['+short', '+time=1', '+tries=1', '@::1', 'AAAA', 'web.internal']);
      if (r.out.trim().split('\n').length === APP_MACHINES) break;
      if (i > 50) throw new Error(`dnsmasq does not answer: ${r.out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const check = await lab.exec('cli', '/usr/bin/dig', ['+short', '+time=1', '+tries=1', '@fdaa::3', 'AAAA', 'web.internal']);
    if (check.out.trim().split('\n').length !== APP_MACHINES) throw new Error(`sixpn does not answer: ${check.out}`);

    const perf = async (server: string, extra: string[] = [], seconds = SECONDS): Promise<Perf> => {
      const r = await lab.exec('cli', DNSPERF, ['-s', server, '-d', queryFile, '-l', String(seconds), '-c', String(CLIENTS), '-q', '200', ...extra],
        { timeout: (seconds + 30) * 1000 });
      const p = parsePerf(r.out);
      if (!(p.qps > 0)) throw new Error(`dnsperf ${server}: ${r.out.slice(-400)}`);
      return p;
    };
    await perf('fdaa::3', [], 1); // warm-up (JIT)
    const sixpn: Perf[] = [];
    const dnsmasq: Perf[] = [];
    console.log(`\nUDP, ${CLIENTS} clients, ${SECONDS} s per run, ${queries.length} names (AAAA, 1 or ${APP_MACHINES} records)`);
    for (let i = 0; i < RUNS; i++) {
      sixpn.push(await perf('fdaa::3'));
      dnsmasq.push(await perf('::1'));
      console.log(`  run ${i + 1}: sixpn ${sixpn[i].qps.toFixed(0)} q/s (lost ${sixpn[i].lost}, avg ${sixpn[i].avgMs.toFixed(2)} ms)   dnsmasq ${dnsmasq[i].qps.toFixed(0)} q/s (lost ${dnsmasq[i].lost}, avg ${dnsmasq[i].avgMs.toFixed(2)} ms)`);
    }
    const sixpnQps = median(sixpn.map((p) => p.qps));
    const dnsmasqQps = median(dnsmasq.map((p) => p.qps));
    // latency under a load both can carry: half of sixpn's median rate, every query timed
    const rate = Math.max(1000, Math.round(sixpnQps / 2));
    const sl = await perf('fdaa::3', ['-Q', String(rate), '-v'], 3);
    const dl = await perf('::1', ['-Q', String(rate), '-v'], 3);
    console.log(`latency at ${rate} q/s: sixpn p99 ${p99(sl.latenciesMs).toFixed(3)} ms (${sl.latenciesMs.length} queries), dnsmasq p99 ${p99(dl.latenciesMs).toFixed(3)} ms`);
    // DNS over TCP (sixpn: through the host kernel's TCP stack and node:net)
    const st = await perf('fdaa::3', ['-m', 'tcp'], 3);
    const dt = await perf('::1', ['-m', 'tcp'], 3);
    console.log(`TCP, one run of 3 s: sixpn ${st.qps.toFixed(0)} q/s, dnsmasq ${dt.qps.toFixed(0)} q/s`);
    const result = {
      bench: 'dns',
      sixpn_qps: Math.round(sixpnQps),
      dnsmasq_qps: Math.round(dnsmasqQps),
      ratio: Number((sixpnQps / dnsmasqQps).toFixed(3)),
      p99_ms: Number(p99(sl.latenciesMs).toFixed(3)),
      dnsmasq_p99_ms: Number(p99(dl.latenciesMs).toFixed(3)),
      p99_at_qps: rate,
      sixpn_tcp_qps: Math.round(st.qps),
      dnsmasq_tcp_qps: Math.round(dt.qps),
      runs: RUNS,
      seconds: SECONDS,
      clients: CLIENTS,
      node: process.version,
      paths: 'sixpn: dnsperf in a machine netns → fdaa::3 (TUN, router, in-process resolver); dnsmasq: same netns, ::1',
    };
    console.log(JSON.stringify(result));
    return 0;
  } finally {
    await lab.cleanup();
  }
}

process.exitCode = await main();

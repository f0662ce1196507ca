// npm run soak -- --minutes N — three hosts running `sixpn up` (namespaces on one underlay bridge,
// test/helpers/sixpn-lab.ts) under continuous traffic (ping every 0.2 s and a 20 Mbit/s UDP
// iperf3 stream between stable machines on different hosts) while the topology is edited every
// second: churn machines stopped, started, migrated to another host and back, removed and added
// again. WireGuard rekeys on its own every 2 minutes. Every minute it prints, per host, RSS,
// V8 heap and open fds (from the host's /metrics, as an operator's Prometheus would see them),
// the traffic's loss, and checks that every started churn machine answers. It fails (exit 1) if a
// check fails, a `sixpn up` exits, or after the warm-up a figure keeps growing: fds above the
// warm-up value + 8, or RSS or heap more than 30 % above it with the last third of the run
// higher than the middle third. Not part of CI; needs root.
import type { ChildProcess } from 'node:child_process';
import { SixpnLab } from '../test/helpers/sixpn-lab.ts';
import { machineDescription } from './lib.ts';

const argMinutes = process.argv.indexOf('--minutes');
const MINUTES = Number(argMinutes > 0 ? process.argv[argMinutes + 1] : process.env.MINUTES ?? 5);
const EDIT_EVERY_MS = 1000;
const WARMUP_MIN = 2;
const METRICS = 'http://127.0.0.1:9586/metrics';

const HOSTS = [{ key: 'h1', region: 'ams' }, { key: 'h2', region: 'ord' }, { key: 'h3', region: 'syd' }];
// stable machines carry the traffic; churn machines are edited
const STABLE = [
  { key: 's1', app: 'web', host: 'h1', instance: 0x101 },
  { key: 's2', app: 'web', host: 'h2', instance: 0x201 },
  { key: 's3', app: 'db', host: 'h3', instance: 0x301 },
];
const CHURN = [
  { key: 'c1', app: 'web', host: 'h1', instance: 0x111 },
  { key: 'c2', app: 'web', host: 'h2', instance: 0x211 },
  { key: 'c3', app: 'db', host: 'h3', instance: 0x311 },
  { key: 'c4', app: 'db', host: 'h1', instance: 0x112 },
];

interface Sample { rssMb: number; heapMb: number; fds: number }
type Doc = { hosts: Array<{ name: string; region: string }>; machines: Array<Record<string, unknown>> };

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Counts ping's replies as they come (its stdout, line by line). */
function countReplies(p: ChildProcess): { replies: number } {
  const c = { replies: 0 };
  p.stdout!.removeAllListeners('data');
  p.stdout!.on('data', (d: Buffer) => { c.replies += d.toString().split('\n').filter((l) => /icmp_seq=/.test(l)).length; });
  return c;
}

console.log(machineDescription());
console.log(`soak: 3 hosts, ${STABLE.length} stable + ${CHURN.length} churn machines, an edit every ${EDIT_EVERY_MS} ms, ${MINUTES} minutes\n`);

const lab = await SixpnLab.start({
  orgs: [{ name: 'acme', network: 0x18 }],
  apps: [{ name: 'web', org: 'acme' }, { name: 'db', org: 'acme' }],
  hosts: HOSTS,
  machines: [...STABLE, ...CHURN],
  logLevel: 'error',
});
const failures: string[] = [];
let stop = false;
// interrupted (Ctrl-C, a timeout): the lab's namespaces, interfaces and processes go too
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.log(`\nsoak: ${sig}, cleaning up`);
    stop = true;
    void lab.cleanup().finally(() => process.exit(130));
  });
}
let paused = false; // the minute's checks run on a settled topology
let idle: Promise<void> = Promise.resolve(); // resolves when the edit loop is between edits
try {
  const addr = (k: string) => lab.machines.get(k)!.address;
  const hostName = (k: string) => lab.hosts.get(k)!.name;
  // continuous traffic between stable machines on different hosts
  const pings = [['s1', 's2'], ['s2', 's3'], ['s3', 's1']].map(([a, b]) => ({
    pair: `${a}→${b}`, counter: countReplies(lab.spawn(a, 'ping', ['-6', '-n', '-i', '0.2', addr(b)])),
  }));
  lab.spawn('s2', 'iperf3', ['-s']);
  await new Promise((r) => setTimeout(r, 500));
  lab.spawn('s1', 'iperf3', ['-c', addr('s2'), '-u', '-b', '20M', '-t', '0', '-l', '1200']);

  // the edit loop: one operation per second on the churn machines, in turn
  const ops = ['stop', 'start', 'migrate', 'remove', 'add', 'migrate-back'] as const;
  const removed = new Map<string, Record<string, unknown>>();
  const home = new Map(CHURN.map((m) => [lab.machineId(m.key), hostName(m.host)]));
  let edits = 0;
  let editErrors = 0;
  const editLoop = (async () => {
    for (let i = 0; !stop; i++) {
      while (paused && !stop) await new Promise((r) => setTimeout(r, 100));
      const t0 = performance.now();
      const m = CHURN[Math.floor(i / ops.length) % CHURN.length];
      const id = lab.machineId(m.key);
      const op = ops[i % ops.length];
      const d = lab.document() as Doc;
      const entry = d.machines.find((x) => x.id === id);
      const regionOf = (host: string) => d.hosts.find((h) => h.name === host)!.region;
      if (op === 'stop' && entry) entry.state = 'stopped';
      else if (op === 'start' && entry) entry.state = 'started';
      else if ((op === 'migrate' || op === 'migrate-back') && entry) {
        const from = entry.host as string;
        const to = op === 'migrate' ? lab.hosts.get(HOSTS[(HOSTS.findIndex((h) => hostName(h.key) === from) + 1) % HOSTS.length].key)!.name : home.get(id)!;
        if (to !== from) {
          entry.previous = [{ address: lab.machines.get(m.key)!.address, host: from }];
          entry.host = to;
          entry.region = regionOf(to);
        }
      } else if (op === 'remove' && entry) {
        removed.set(id, entry);
        d.machines = d.machines.filter((x) => x.id !== id);
      } else if (op === 'add' && !entry && removed.has(id)) {
        d.machines.push(removed.get(id)!);
        removed.delete(id);
      }
      try {
        await lab.edit(d, false); // the hosts apply it while the next one is prepared
        edits++;
      } catch (err) {
        editErrors++;
        failures.push(`edit ${op} ${id}: ${(err as Error).message.split('\n')[0]}`);
      }
      let done!: () => void;
      idle = new Promise((r) => (done = r));
      const wait = EDIT_EVERY_MS - (performance.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      done();
    }
  })();

  const samples = new Map<string, Sample[]>(HOSTS.map((h) => [h.key, []]));
  let lastReplies = pings.map((p) => p.counter.replies);
  for (let minute = 1; minute <= MINUTES; minute++) {
    await new Promise((r) => setTimeout(r, 60_000));
    const line: string[] = [];
    for (const h of HOSTS) {
      const r = await lab.exec(h.key, 'busybox', ['wget', '-qO-', METRICS], { timeout: 10_000 });
      const s: Sample = {
        rssMb: metric(r.out, 'process_resident_memory_bytes') / 2 ** 20,
        heapMb: metric(r.out, 'nodejs_heap_size_used_bytes') / 2 ** 20,
        fds: metric(r.out, 'process_open_fds'),
      };
      if (!r.ok || Number.isNaN(s.rssMb)) failures.push(`minute ${minute}: no metrics from ${h.key}`);
      samples.get(h.key)!.push(s);
      line.push(`${h.key} rss ${s.rssMb.toFixed(0)} MB heap ${s.heapMb.toFixed(1)} MB fds ${s.fds}`);
    }
    const now = pings.map((p) => p.counter.replies);
    const loss = pings.map((p, i) => `${p.pair} ${Math.max(0, 100 * (1 - (now[i] - lastReplies[i]) / 300)).toFixed(1)}%`);
    lastReplies = now;
    // every host has applied the last edit, and every started churn machine answers a stable one
    paused = true;
    await idle;
    const doc = lab.document() as Doc;
    try {
      await lab.edit(doc);
    } catch (err) {
      failures.push(`minute ${minute}: ${(err as Error).message.split('\n')[0]}`);
    }
    let answered = 0;
    let started = 0;
    for (const m of CHURN) {
      const e = doc.machines.find((x) => x.id === lab.machineId(m.key));
      if (!e || e.state === 'stopped') continue;
      started++;
      const to = lab.machines.get(m.key)!.address;
      const r = await lab.exec('s1', 'ping', ['-6', '-n', '-c', '3', '-i', '0.2', '-W', '2', to]);
      if (r.ok) {
        answered++;
        continue;
      }
      // what the machine's namespace looks like, and whether it answers a little later
      const routes = (await lab.exec(m.key, 'ip', ['-6', '-o', 'route'])).out.trim().replace(/\s+/g, ' ');
      const addrs = (await lab.exec(m.key, 'ip', ['-6', '-o', 'addr'])).out.trim().replace(/\s+/g, ' ');
      await new Promise((res) => setTimeout(res, 3000));
      const later = await lab.exec('s1', 'ping', ['-6', '-n', '-c', '3', '-i', '0.2', '-W', '2', to]);
      const failure = `minute ${minute}: churn machine ${m.key} (started, on ${e.host as string}, ${to}) did not answer` +
        ` (3 s later: ${later.ok ? 'answered' : 'still not'}; routes: ${routes}; addresses: ${addrs})`;
      failures.push(failure);
      console.log(`  ${failure}`); // as it happens, not only in the summary
    }
    paused = false;
    if (lab.upProcs.some((p) => p.exitCode !== null || p.signalCode !== null)) failures.push(`minute ${minute}: a sixpn up exited`);
    console.log(`min ${String(minute).padStart(3)}  ${line.join('  |  ')}  |  loss ${loss.join(', ')}  |  edits ${edits} (${editErrors} failed), churn answered ${answered}/${started}`);
  }
  stop = true;
  await editLoop;

  // growth: compare with the end of the warm-up
  const report: Record<string, unknown> = {};
  for (const [k, s] of samples) {
    if (s.length <= WARMUP_MIN) continue;
    const base = s[WARMUP_MIN - 1];
    const last = s[s.length - 1];
    const third = Math.max(1, Math.floor((s.length - WARMUP_MIN) / 3));
    const mean = (xs: Sample[], f: (x: Sample) => number) => xs.reduce((a, x) => a + f(x), 0) / xs.length;
    const mid = s.slice(WARMUP_MIN, WARMUP_MIN + 2 * third).slice(-third);
    const end = s.slice(-third);
    for (const [name, f] of [['rss', (x: Sample) => x.rssMb], ['heap', (x: Sample) => x.heapMb]] as const) {
      if (f(last) > f(base) * 1.3 && mean(end, f) > mean(mid, f)) failures.push(`${k}: ${name} grew ${f(base).toFixed(1)} → ${f(last).toFixed(1)} MB`);
    }
    if (last.fds > base.fds + 8) failures.push(`${k}: open fds grew ${base.fds} → ${last.fds}`);
    report[k] = { rss_mb: [base.rssMb, last.rssMb].map((x) => +x.toFixed(1)), heap_mb: [base.heapMb, last.heapMb].map((x) => +x.toFixed(1)), fds: [base.fds, last.fds] };
  }
  const peakRss = Math.max(...[...samples.values()].flat().map((x) => x.rssMb));
  console.log(failures.length === 0 ? '\nsoak: passed' : `\nsoak: FAILED\n  ${failures.join('\n  ')}`);
  console.log(JSON.stringify({ minutes: MINUTES, edits, edit_errors: editErrors, peak_rss_mb: +peakRss.toFixed(1), hosts: report, failures: failures.length }));
} finally {
  stop = true;
  await lab.cleanup();
}
process.exit(failures.length === 0 ? 0 : 1);

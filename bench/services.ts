// npm run bench:services — new TCP connections per second through a service address (issue 13)
// against the same machine addressed directly, in the same run: two hosts running `sixpn up`
// (test/helpers/sixpn-lab.ts), a client machine and a server machine on the first host, another
// server on the second (the service prefers the client's host, so both paths end at the same
// machine). The client and server are bench/services-peer.ts (node, no ncat). Also one bulk TCP
// stream each way. RUNS interleaved rounds (median); machine and Node printed; the last line is
// one JSON object: service_cps, direct_cps, ratio, service_gbps, direct_gbps. Needs root.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { SixpnLab } from '../test/helpers/sixpn-lab.ts';
import { machineDescription, median } from './lib.ts';

const RUNS = Number(process.env.RUNS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 5);
const CONC = Number(process.env.CONCURRENCY ?? 16);
const PEER = fileURLToPath(new URL('./services-peer.ts', import.meta.url));
const SERVICE = 'fdaa:0:18:0:1::3';
const CPS_PORT = 7000;
const BULK_PORT = 7001;

console.log(machineDescription());
console.log(`TCP connections (${CONC} at a time, ${SECONDS} s) and one bulk stream (${SECONDS} s), service address vs direct; ${RUNS} interleaved rounds (median)\n`);

const lab = await SixpnLab.start({
  orgs: [{ name: 'acme', network: 0x18 }],
  apps: [{ name: 'cli', org: 'acme' }, { name: 'web', org: 'acme' }],
  hosts: [{ key: 'h1', region: 'ams' }, { key: 'h2', region: 'ams' }],
  machines: [
    { key: 'c1', app: 'cli', host: 'h1', instance: 0x101 },
    { key: 'w1', app: 'web', host: 'h1', instance: 0x201 },
    { key: 'w2', app: 'web', host: 'h2', instance: 0x202 },
  ],
  logLevel: 'error',
});
const rounds: { scps: number; dcps: number; sg: number; dg: number }[] = [];
try {
  const doc = JSON.parse(readFileSync(lab.topologyFile, 'utf8'));
  doc.apps.find((a: { name: string }) => a.name === 'web').services = [{ address: SERVICE, ports: [`${CPS_PORT}/tcp`, `${BULK_PORT}/tcp`] }];
  await lab.edit(doc);
  for (const k of ['w1', 'w2']) lab.spawn(k, process.execPath, [PEER, 'server', String(CPS_PORT), String(BULK_PORT)]);
  await new Promise((r) => setTimeout(r, 800));
  const direct = lab.machines.get('w1')!.address;
  const peer = async (...args: string[]): Promise<Record<string, number>> => {
    const r = await lab.exec('c1', process.execPath, [PEER, ...args], { timeout: (SECONDS + 30) * 1000 });
    if (!r.ok) throw new Error(`services-peer ${args.join(' ')}: ${r.out}`);
    return JSON.parse(r.out.trim().split('\n').pop()!);
  };
  await peer('cps', SERVICE, String(CPS_PORT), '1', '4'); // warm up both paths
  await peer('cps', direct, String(CPS_PORT), '1', '4');
  for (let i = 0; i < RUNS; i++) {
    const s = await peer('cps', SERVICE, String(CPS_PORT), String(SECONDS), String(CONC));
    const d = await peer('cps', direct, String(CPS_PORT), String(SECONDS), String(CONC));
    const sg = await peer('bulk', SERVICE, String(BULK_PORT), String(SECONDS));
    const dg = await peer('bulk', direct, String(BULK_PORT), String(SECONDS));
    console.log(`round ${i + 1}: service ${s.cps.toFixed(0)} conn/s (${s.errors} errors), direct ${d.cps.toFixed(0)} conn/s (${d.errors} errors); bulk service ${sg.gbps.toFixed(3)} Gbit/s, direct ${dg.gbps.toFixed(3)}`);
    rounds.push({ scps: s.cps, dcps: d.cps, sg: sg.gbps, dg: dg.gbps });
  }
  const st = await lab.status('h1');
  const router = st?.router as Record<string, number>;
  console.log(`h1 router: ${router.service_flows} service flows, ${router.service_forwarded} packets to machines, ${router.service_replies} replies rewritten, ${router.service_flows_evicted} evicted`);
} finally {
  await lab.cleanup();
}
const m = (f: (x: (typeof rounds)[number]) => number) => median(rounds.map(f));
const summary = {
  bench: 'services',
  node: process.version,
  runs: RUNS,
  seconds: SECONDS,
  concurrency: CONC,
  service_cps: Math.round(m((x) => x.scps)),
  direct_cps: Math.round(m((x) => x.dcps)),
  ratio: +(m((x) => x.scps) / m((x) => x.dcps)).toFixed(3),
  service_gbps: +m((x) => x.sg).toFixed(3),
  direct_gbps: +m((x) => x.dg).toFixed(3),
};
console.log(`\nservice address ${summary.service_cps} conn/s vs direct ${summary.direct_cps}: ratio ${summary.ratio}; bulk ${summary.service_gbps} vs ${summary.direct_gbps} Gbit/s`);
console.log(JSON.stringify(summary));

// npm run bench:nat66 — SNAT66 end to end (issue 5), on the namespace lab of the tests
// (test/helpers/nat66.ts) with 1500-byte links:
//   1. iperf3 TCP machine → internet through sixpn (this process plays the router's part: the
//      machine's TUN fd and the Egress live here, one thread) and through the Linux kernel
//      (veth + nftables masquerade) in the same run, interleaved, median of RUNS. sixpn twice:
//      plain TUNs (one packet per read and write, as the router's machine TUNs are today) and
//      offload mode (vnet_hdr TUNs both sides: 64 KB TCP segments, Egress `vnetHdr: true`);
//      and through the real router: a `sixpn up` process with "offload": true (its own host
//      namespace on the provider router, one machine), the whole packet path of src/router;
//   2. new UDP flows per second: the core alone (bench/nat66-core.ts, a new mapping per flow,
//      table filling to 1,000,000 entries), and through Egress.send with the TUN writes and
//      the kernel's forwarding (each packet a new flow, dropped by the provider router);
//   3. bytes per table entry at 1,000,000 entries (bench/nat66-core.ts: the typed arrays).
// Prints the machine and Node version; the last line is one JSON object.
// Env: RUNS (3), SECONDS (3, per iperf3 run), FLOWS (200000, through Egress), ROUTER (1; 0 skips
// the `sixpn up` run).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { readStatus } from '../src/host/status.ts';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StaticIdentity, chosenBackend, generatePrivateKeyBytes, keyToBase64 } from '../src/noise/index.ts';
import { ip } from '../src/tun/index.ts';
import { addressBytes, writeU16, writeU32 } from '../src/ipv6/index.ts';
import { buildUdp } from '../test/helpers/packets.ts';
import { INET_A, Nat66Lab, sleep } from '../test/helpers/nat66.ts';
import { fmt, machineDescription, median } from './lib.ts';

const RUNS = Number(process.env.RUNS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 3);
const FLOWS = Number(process.env.FLOWS ?? 200_000);
const CORE = fileURLToPath(new URL('./nat66-core.ts', import.meta.url));
const BLACKHOLE = '2001:db8:dead::'; // the provider router discards it: flow packets go nowhere
const ROUTER = process.env.ROUTER !== '0';
const SIXPN_CLI = fileURLToPath(new URL('../src/cli/sixpn.ts', import.meta.url));
const ROUTER_EGRESS = '2001:db8:e::15';

if (process.getuid?.() !== 0) {
  console.error('bench:nat66 needs root (network namespaces, TUN devices)');
  process.exit(1);
}

function execOut(cmd: string, args: string[], env?: NodeJS.ProcessEnv, timeout = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout, env: env ?? process.env, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15) in clock ticks
}

const statusOf = readStatus;

/**
 * The real router on the lab: a host namespace on the provider router (2001:db8:5::/64, its
 * egress address routed to it like hostS's), a topology of that one host and one machine, and
 * `sixpn up` with "offload": true there. Returns the machine's namespace, the process and a
 * cleanup.
 */
async function routerSite(lab: Nat66Lab): Promise<{ ns: string; proc: ChildProcess; close: () => Promise<void> }> {
  const host = await lab.lab.ns('hr');
  const [, up] = await lab.lab.veth(lab.router, ['2001:db8:5::1/64'], host, ['2001:db8:5::2/64']);
  await ip(['-6', 'route', 'add', 'default', 'via', '2001:db8:5::1', 'dev', up], { netns: host });
  await ip(['-6', 'route', 'add', `${ROUTER_EGRESS}/128`, 'via', '2001:db8:5::2'], { netns: lab.router });
  const name = lab.lab.name('r');
  const machineId = `${name}m1`.replace(/[^a-z0-9]/gi, '').padEnd(14, '0').slice(0, 14).toLowerCase();
  const priv = generatePrivateKeyBytes();
  const keyFile = lab.lab.file(`${name}.key`, keyToBase64(priv) + '\n');
  const pub = keyToBase64(new StaticIdentity(chosenBackend, priv).publicKey);
  const topology = lab.lab.file(`${name}-topology.json`, JSON.stringify({
    version: 1,
    orgs: [{ name: 'acme', network: '0x18' }],
    hosts: [{ name, id: 0x0a7d0001, region: 'ams', publicKey: pub, endpoint: '[2001:db8:5::2]:51820' }],
    apps: [{ name: 'web', org: 'acme' }],
    machines: [{ id: machineId, app: 'web', region: 'ams', host: name, instance: '0x101' }],
  }));
  const mesh = `6pn${name}`.slice(0, 15);
  const config = lab.lab.file(`${name}.json`, JSON.stringify({
    host: name, privateKeyFile: keyFile, listenPort: 51820, topology, egress: ROUTER_EGRESS, uplink: up, meshInterface: mesh, // offload: the default
  }));
  const logFile = lab.lab.file(`${name}.log`, '');
  const log = openSync(logFile, 'a');
  const proc = spawn('/usr/bin/nsenter', [`--net=/run/netns/${host}`, process.execPath, SIXPN_CLI, 'up', '-c', config], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const sock = `/run/sixpn/${name}.sock`;
  const close = async (): Promise<void> => {
    if (proc.exitCode === null) proc.kill('SIGTERM');
    for (let i = 0; i < 40 && proc.exitCode === null && proc.signalCode === null; i++) await sleep(50);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await ip(['netns', 'del', machineId]).catch(() => undefined);
    rmSync(join('/etc/netns', machineId), { recursive: true, force: true });
    rmSync(sock, { force: true });
    for (const u of [mesh, `6pg${mesh.slice(3)}`]) rmSync(`/var/run/wireguard/${u}.sock`, { force: true });
  };
  const end = Date.now() + 30_000;
  for (;;) {
    const s = await statusOf(sock);
    if (s?.machinesReady === true && s.egress !== null) break;
    if (proc.exitCode !== null || Date.now() > end) {
      await close();
      throw new Error(`sixpn up did not come up:\n${readFileSync(logFile, 'utf8')}`);
    }
    await sleep(150);
  }
  return { ns: machineId, proc, close };
}

console.log(machineDescription());
console.log(`runs: ${RUNS} × ${SECONDS} s per side (median reported), iperf3 ${(await execOut('iperf3', ['--version'])).split('\n')[0]}\n`);

const lab = await Nat66Lab.create({ inetMtu: 1500, machines: 1, agents: false, offload: true });
let result: Record<string, unknown>;
let router: Awaited<ReturnType<typeof routerSite>> | null = null;
try {
  if (ROUTER) router = await routerSite(lab);
  lab.start(lab.inet, 'iperf3', ['-s', '-B', INET_A, '-p', '5201']);
  await lab.exec(lab.router, 'ip', ['-6', 'route', 'add', 'blackhole', `${BLACKHOLE}/48`]);
  await sleep(300);

  // 1. iperf3, interleaved
  const sixpnGbps: number[] = [];
  const offloadGbps: number[] = [];
  const kernelGbps: number[] = [];
  const routerGbps: number[] = [];
  const routerCpu: number[] = [];
  const cpu: number[] = [];
  const offloadCpu: number[] = [];
  const iperf = async (ns: string): Promise<number> => {
    const out = await lab.exec(ns, 'iperf3', ['-c', INET_A, '-p', '5201', '-t', String(SECONDS), '-O', '1', '-J'], 60_000);
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e9;
  };
  // the share of a core this process used during `body`
  const measured = async (body: () => Promise<number>, cpuOut: number[]): Promise<number> => {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const r = await body();
    const c = process.cpuUsage(c0);
    cpuOut.push((c.user + c.system) / 1000 / (performance.now() - w0));
    return r;
  };
  for (let run = 0; run < RUNS; run++) {
    sixpnGbps.push(await measured(() => iperf(lab.sixpn.machines[0].ns), cpu));
    offloadGbps.push(await measured(() => iperf(lab.offload!.machines[0].ns), offloadCpu));
    kernelGbps.push(await iperf(lab.linux!.machines[0].ns));
    if (router !== null) {
      const pid = router.proc.pid!;
      const c0 = cpuSeconds(pid);
      const w0 = performance.now();
      routerGbps.push(await iperf(router.ns));
      routerCpu.push((cpuSeconds(pid) - c0) / ((performance.now() - w0) / 1000));
    }
    console.log(
      `run ${run + 1}: sixpn ${sixpnGbps[run].toFixed(2)} Gbit/s (this process ${(cpu[run] * 100).toFixed(0)}% of a core), ` +
        `sixpn offload ${offloadGbps[run].toFixed(2)} Gbit/s (${(offloadCpu[run] * 100).toFixed(0)}%), kernel ${kernelGbps[run].toFixed(2)} Gbit/s` +
        (router !== null ? `, sixpn up offload ${routerGbps[run].toFixed(2)} Gbit/s (its process ${(routerCpu[run] * 100).toFixed(0)}%)` : ''),
    );
  }

  // 2b. new flows through Egress.send: TUN writes and kernel forwarding included
  const egress = lab.sixpn.engine;
  const before = egress.size;
  const pkt = new Uint8Array(256);
  const src = addressBytes(lab.sixpn.machines[0].addr);
  const dst = addressBytes(BLACKHOLE);
  const payload = new Uint8Array(64);
  const len = buildUdp(pkt, 0, src, 0, dst, 0, 1024, 9, payload, 0, payload.length);
  const slots = 64; // the per-machine limit (16,384 sessions) spread over 64 slots
  const t0 = performance.now();
  for (let i = 0; i < FLOWS; i++) {
    writeU16(pkt, 40, 1024 + (i % 60_000)); // source port (the UDP checksum is not checked on the way out)
    writeU32(pkt, 24 + 12, 0x10000 + Math.floor(i / 60_000) * 64 + (i & 63)); // destination, low 32 bits
    egress.send(i & (slots - 1), pkt, 0, len);
  }
  egress.flush();
  const flowSeconds = (performance.now() - t0) / 1000;
  const created = egress.size - before;
  const io = egress.status().io;
  console.log(`\nnew UDP flows through Egress.send + TUN + kernel forwarding: ${fmt(FLOWS / flowSeconds)}/s (${created} sessions created, ${io.tunWriteErrors} write errors)`);

  // 2a, 3. the core, in its own process (table filled to 1,000,000 entries)
  const coreOut = await execOut(process.execPath, [CORE], { ...process.env, RUNS: String(RUNS), ENTRIES: '1000000' }, 300_000);
  const core = JSON.parse(coreOut.trim().split('\n').at(-1)!) as Record<string, number>;
  console.log(`core (bench/nat66-core.ts): new flows/s ${fmt(core.newFlowsNewMappingPerS)} with a new mapping each, ${fmt(core.newFlowsExistingMappingPerS)} on existing mappings; ${core.tableBytesPerEntry} bytes per entry at 1,000,000`);

  const s = median(sixpnGbps);
  const o = median(offloadGbps);
  const k = median(kernelGbps);
  const r = router !== null ? median(routerGbps) : null;
  // sixpn_gbps / ratio: the product as configured by default — `sixpn up` (offloads on) — when
  // it ran (ROUTER=0 skips it); the NAT's own harness with plain and offload TUNs alongside
  const headline = r ?? s;
  result = {
    machine: machineDescription().split('\n')[0].replace(/^machine: /, ''),
    node: process.version,
    runs: RUNS,
    seconds: SECONDS,
    sixpn_path: r !== null ? 'sixpn up (default settings)' : 'NAT harness, plain TUNs',
    sixpn_gbps: Math.round(headline * 1000) / 1000,
    kernel_gbps: Math.round(k * 1000) / 1000,
    ratio: Math.round((headline / k) * 1000) / 1000,
    kernel_runs_gbps: kernelGbps.map((x) => Math.round(x * 1000) / 1000),
    ...(router !== null ? {
      sixpn_router_runs_gbps: routerGbps.map((x) => Math.round(x * 1000) / 1000),
      sixpn_router_process_cpu: Math.round(median(routerCpu) * 100) / 100,
    } : {}),
    sixpn_plain_gbps: Math.round(s * 1000) / 1000,
    ratio_plain: Math.round((s / k) * 1000) / 1000,
    sixpn_plain_runs_gbps: sixpnGbps.map((x) => Math.round(x * 1000) / 1000),
    sixpn_plain_process_cpu: Math.round(median(cpu) * 100) / 100,
    sixpn_harness_offload_gbps: Math.round(o * 1000) / 1000,
    ratio_harness_offload: Math.round((o / k) * 1000) / 1000,
    new_flows_per_s: core.newFlowsNewMappingPerS,
    new_flows_existing_mapping_per_s: core.newFlowsExistingMappingPerS,
    new_flows_per_s_through_tun: Math.round(FLOWS / flowSeconds),
    bytes_per_entry: core.tableBytesPerEntry,
    entries: 1_000_000,
  };
  console.log(`\nTCP machine → internet, MTU 1420 inside, 1500 outside, median of ${RUNS}:`);
  console.log(`  NAT harness, plain TUNs  ${s.toFixed(2)} Gbit/s  ratio ${(s / k).toFixed(3)}`);
  console.log(`  NAT harness, offloads    ${o.toFixed(2)} Gbit/s  ratio ${(o / k).toFixed(3)}`);
  if (r !== null) console.log(`  sixpn up (defaults)      ${r.toFixed(2)} Gbit/s  ratio ${(r / k).toFixed(3)}  (the real router, offloads on)`);
  console.log(`  kernel nft masquerade    ${k.toFixed(2)} Gbit/s`);
} finally {
  await router?.close();
  await lab.cleanup();
}
console.log(JSON.stringify(result));

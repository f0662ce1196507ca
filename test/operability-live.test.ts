// Operability of a live 6PN (issue 14): two hosts in namespaces, each a `sixpn up`; traffic
// across the mesh, a refused cross-org attempt and DNS queries, then what an operator sees:
// /metrics in the host's namespace (found through `sixpn status --json`, checked by promtool),
// the readable `sixpn status`, and the logs (JSON lines with no key in them).
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SIXPN, isRoot } from './helpers/netns.ts';
import { SixpnLab } from './helpers/sixpn-lab.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root
const run = promisify(execFile);

let lab: SixpnLab | undefined;
let ready: Promise<SixpnLab> | undefined;

test.after.always(async () => {
  await lab?.cleanup();
});

function setup(): Promise<SixpnLab> {
  ready ??= build();
  return ready;
}

async function build(): Promise<SixpnLab> {
  lab = await SixpnLab.start({
    orgs: [{ name: 'acme', network: 0x18 }, { name: 'initech', network: 0x19 }],
    apps: [{ name: 'web', org: 'acme' }, { name: 'db', org: 'acme' }, { name: 'tps', org: 'initech' }],
    hosts: [{ key: 'a', region: 'ord' }, { key: 'b', region: 'ams' }],
    machines: [
      { key: 'w1', app: 'web', host: 'a', instance: 1 },
      { key: 'd1', app: 'db', host: 'b', instance: 1 },
      { key: 't1', app: 'tps', host: 'b', instance: 2 },
    ],
    logLevel: 'debug',
  });
  const l = lab;
  await l.exec('w1', 'ping', ['-c', '3', '-i', '0.2', '-W', '3', l.machines.get('d1')!.address]);
  await l.exec('w1', 'ping', ['-c', '1', '-W', '1', l.machines.get('t1')!.address]); // cross-org: refused
  for (const q of [['AAAA', `${l.machineId('d1')}.vm.db.internal`], ['A', 'nothing.internal'], ['TXT', 'x.internal']]) {
    await l.exec('w1', 'dig', ['+tries=1', '+time=2', '@fdaa::3', q[0], q[1]]);
  }
  return l;
}

/** The exposition without the host label every series carries (shorter patterns). */
const withoutHost = (text: string) => text.replace(/,host="[^"]*"/g, '').replace(/\{host="[^"]*"\}/g, '');

async function statusJson(host: string): Promise<Record<string, unknown>> {
  const { stdout } = await run(SIXPN, ['status', '--json', host], { env: { ...process.env, SIXPN_NODE: process.execPath } });
  return JSON.parse(stdout) as Record<string, unknown>;
}

rootSerial('sixpn up serves /metrics in its namespace: named by status --json, promtool-clean, live values', async (t) => {
  t.timeout(120_000);
  const l = await setup();
  const a = l.hosts.get('a')!;
  const b = l.hosts.get('b')!;
  const s = await statusJson(a.name);
  const metrics = s.metrics as { url: string; namespace: string | null };
  t.is(metrics.url, 'http://127.0.0.1:9586/metrics');
  t.is(metrics.namespace, a.ns);
  const fetched = await l.exec('a', process.execPath, ['-e', `fetch(${JSON.stringify(metrics.url)}).then((r) => r.text()).then((x) => process.stdout.write(x))`]);
  t.true(fetched.ok, fetched.out);
  const text = withoutHost(fetched.out);
  const lint = await new Promise<{ ok: boolean; out: string }>((resolve) => {
    const c = execFile('promtool', ['check', 'metrics'], (err, so, se) => resolve({ ok: err === null, out: `${so}${se}` }));
    c.stdin!.end(fetched.out);
  });
  t.true(lint.ok, lint.out);
  t.is(lint.out.trim(), '');
  const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  t.true(value(new RegExp(`^sixpn_wg_peer_tx_bytes_total\\{device="mesh",peer="${b.name}"\\} (\\d+)$`, 'm')) > 0, 'bytes to the other host');
  t.true(value(new RegExp(`^sixpn_wg_peer_last_handshake_timestamp_seconds\\{device="mesh",peer="${b.name}"\\} ([\\d.e+]+)$`, 'm')) > Date.now() / 1000 - 120);
  t.true(value(/^sixpn_router_forwarded_packets_total\{to="mesh"\} (\d+)$/m) >= 3);
  t.true(value(/^sixpn_dns_answers_total\{qtype="AAAA",rcode="NOERROR"\} (\d+)$/m) >= 1, text.split('\n').filter((x) => x.includes('dns')).join('\n'));
  t.true(value(/^sixpn_dns_answers_total\{qtype="A",rcode="NXDOMAIN"\} (\d+)$/m) >= 1);
  t.true(value(/^sixpn_dns_answer_duration_seconds_count (\d+)$/m) >= 3);
  t.regex(text, new RegExp(`^sixpn_machine_info\\{machine="${l.machineId('w1')}",app="web",org="acme",state="started"`, 'm'));
  t.is(value(/^sixpn_topology_applies_total (\d+)$/m), 1);
  t.true(value(/^sixpn_topology_last_apply_timestamp_seconds ([\d.e+]+)$/m) > Date.now() / 1000 - 300);
  // the refused cross-org ping, on the host of the sender, and the other host's metrics in its own namespace
  t.true(value(/^sixpn_router_dropped_packets_total\{reason="cross_org"\} (\d+)$/m) >= 1);
  const fb = await l.exec('b', process.execPath, ['-e', `fetch("http://127.0.0.1:9586/metrics").then((r) => r.text()).then((x) => process.stdout.write(x))`]);
  t.regex(withoutHost(fb.out), new RegExp(`^sixpn_wg_peer_rx_bytes_total\\{device="mesh",peer="${a.name}"\\} [1-9]`, 'm'));
});

rootSerial('sixpn status: a readable page per host; --watch redraws', async (t) => {
  t.timeout(60_000);
  const l = await setup();
  const a = l.hosts.get('a')!;
  const b = l.hosts.get('b')!;
  const env = { ...process.env, SIXPN_NODE: process.execPath };
  const { stdout } = await run(SIXPN, ['status', a.name], { env });
  t.log(stdout);
  t.regex(stdout, new RegExp(`^host ${a.name} \\(mesh port 51820, gateway port 51821\\)$`, 'm'));
  t.regex(stdout, /^  topology [0-9a-f]{16}, applied \d+ s ago \(1 since start\)$/m);
  t.regex(stdout, /^  metrics http:\/\/127\.0\.0\.1:9586\/metrics \(network namespace sxh/m);
  t.regex(stdout, /^  machines \(1\):$/m);
  t.regex(stdout, new RegExp(`^    ${l.machineId('w1')}  web +acme +fdaa:`, 'm'));
  t.regex(stdout, new RegExp(`^    ${b.name}  \\[${b.addr}\\]:51820  \\d+ s ago +[\\d.]+ (B|KiB) +[\\d.]+ (B|KiB)$`, 'm'));
  t.regex(stdout, /^  gateway peers \(0\):$/m);
  t.regex(stdout, /^  egress: none/m);
  t.regex(stdout, /^    router: .*forwarded_mesh \d+/m);
  t.regex(stdout, /dropped_cross_org [1-9]/);
  t.notRegex(stdout, /[{}]/, 'no JSON dump');
  t.notRegex(stdout, / 0(,|$)/m, 'no zero counters');
  // --watch: redraws until SIGINT
  const c = execFile(SIXPN, ['status', '--watch=0.3', a.name], { env });
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 300 && (out.match(/^host /gm) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  c.kill('SIGINT');
  const code = await new Promise((r) => c.on('exit', r));
  t.is(code, 0);
  t.true((out.match(/^host /gm) ?? []).length >= 2, out);
  t.regex(out, /every 0\.3 s \(Ctrl-C to stop\)/);
});

rootSerial('the logs of the lab are JSON lines, and no private key is in them', async (t) => {
  const l = await setup();
  for (const h of l.hosts.values()) {
    const log = readFileSync(join(l.dir, `${h.name}.log`), 'utf8');
    const lines = log.split('\n').filter(Boolean);
    t.true(lines.length > 5, `${h.name} logged`);
    for (const line of lines) t.notThrows(() => JSON.parse(line), line);
    const records = lines.map((x) => JSON.parse(x) as Record<string, unknown>);
    // lines about a machine or a peer carry it as fields
    const other = [...l.hosts.values()].find((x) => x !== h)!;
    t.true(records.some((r) => r.device === 'mesh' && r.peer === other.name), `a line about mesh peer ${other.name}`);
    for (const r of records) if (/^machine \w+/.test(String(r.msg))) t.truthy(r.machine && r.app && r.org, JSON.stringify(r));
    for (const other of l.hosts.values()) {
      const key = readFileSync(join(l.dir, `${other.name}.key`), 'utf8').trim();
      const raw = Buffer.from(key, 'base64');
      for (const form of [key, raw.toString('hex'), raw.toString('base64url')]) t.false(log.includes(form), `${other.name}'s key in ${h.name}.log`);
    }
  }
});

// `sixpn demo --store etcd`: the live demo with the topology in etcd. A 3-member etcd cluster
// (src/cli/demo-etcd-cluster.ts) and three hosts, each a network namespace on one IPv6 underlay
// bridge; every edit is made with the operator CLI (`sixpn org|app|host|machine …`) from an
// "operator" namespace on the same underlay, and every host runs `sixpn up` with the etcd URL in
// its host config (as `sixpn host add` printed it). It checks forwarding, stop, start and
// migration through the CLI, then etcd failures: one member killed (an edit still commits and
// applies everywhere), all killed (every host keeps forwarding and says the store is
// disconnected), all started again (the hosts reconnect and edits apply). Everything it made is
// removed at the end, also after a failure, or left running with --keep (`sixpn demo down`).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asDocument, topologyDigest, topologyFromDocument } from '../topology/index.ts';
import { readStatus, statusSocketPath } from '../host/status.ts';
import { type DemoState, keptDemoRefusal, teardownDemo, writeDemoState } from './demo-state.ts';
import { DemoEtcdCluster, ETCD_BINARY } from './demo-etcd-cluster.ts';
import { SIXPN_NODE_FLAGS } from './node-flags.ts';

const SIXPN_CLI = fileURLToPath(new URL('./sixpn.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ ok: boolean; out: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ ok: err === null, out: stdout + stderr || (err?.message ?? ''), stdout });
    });
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.out.trim()}`);
  return r.out;
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await sleep(250);
  }
}

const rtt = (out: string) => /= [\d.]+\/([\d.]+)\//.exec(out)?.[1] ?? '?';
/** The line of a program's output that says why, for a check's detail. */
const why = (out: string) =>
  (out.split('\n').find((l) => /unreachable|denied|refused|prohibited|timeout|error/i.test(l)) ?? out.trim().split('\n')[0] ?? '')
    .replace(/^From \S+ icmp_seq=\d+ /, '').trim().slice(0, 70);

interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

interface DemoMachine {
  key: string;
  id: string;
  app: string;
  region: string;
  address: string;
}

export async function runEtcdDemo(argv: string[]): Promise<number> {
  const keep = argv.includes('--keep');
  if (process.getuid?.() !== 0) {
    console.error('sixpn demo --store etcd: run as root (it creates network namespaces and TUN devices)');
    return 1;
  }
  if (ETCD_BINARY === undefined) {
    console.error('sixpn demo --store etcd: etcd is not installed (Debian: apt-get install etcd-server etcd-client; scripts/setup.sh does it)');
    return 1;
  }
  // every name below carries the run's tag, so this demo runs beside any other; only the record
  // of a kept demo is one of a kind
  if (keep) {
    const refusal = keptDemoRefusal();
    if (refusal !== undefined) {
      console.error(refusal);
      return 1;
    }
  }
  const t0 = Date.now();
  const tag = (Date.now() % 46656).toString(36).padStart(3, '0') + (process.pid % 1296).toString(36).padStart(2, '0');
  const dir = mkdtempSync(join(tmpdir(), `sixpn-demo-etcd-${tag}-`));
  const underlay = `sxeu${tag}`;
  const operatorNs = `sxeo${tag}`;
  const procs: ChildProcess[] = [];
  const cluster = new DemoEtcdCluster(dir, `sixpn-demo-${tag}`, [1, 2, 3].map((i) => ({ name: `m${i}`, ns: `sxee${tag}${i}`, address: `fd00:6e::e${i}` })), (p) => procs.push(p));
  const hosts = [
    { label: 'ams1', name: `ams1-${tag}`, region: 'ams', ns: `sxeh${tag}1`, addr: 'fd00:6e::1', mesh: `6pn${tag}e1` },
    { label: 'ord1', name: `ord1-${tag}`, region: 'ord', ns: `sxeh${tag}2`, addr: 'fd00:6e::2', mesh: `6pn${tag}e2` },
    { label: 'syd1', name: `syd1-${tag}`, region: 'syd', ns: `sxeh${tag}3`, addr: 'fd00:6e::3', mesh: `6pn${tag}e3` },
  ];
  const storeUrl = `etcd://${cluster.endpoints.join(',')}`;
  const mid = (role: string) => `${tag}e${role}`.padEnd(14, '0').slice(0, 14);
  const machineIds = ['web1', 'web2', 'web3', 'web4', 'db1', 'led1'].map(mid);
  const m: Record<string, DemoMachine> = {};
  const checks: Check[] = [];
  const check = (what: string, ok: boolean, detail = '') => {
    checks.push({ what, ok, detail });
    console.log(`${ok ? ' ok ' : 'FAIL'}  ${what}${detail ? `  (${detail})` : ''}`);
  };
  const made = (): DemoState => ({
    tag, dir, startedUnixMs: t0,
    pids: procs.map((p) => p.pid).filter((p): p is number => p !== undefined),
    namespaces: [...hosts.map((h) => h.ns), ...cluster.members.map((x) => x.ns), operatorNs, underlay, ...machineIds],
    paths: hosts.flatMap((h) => [`/var/run/wireguard/${h.mesh}.sock`, `/var/run/wireguard/6pg${h.mesh.slice(3)}.sock`]),
    statusSockets: hosts.map((h) => statusSocketPath(h.name)),
  });

  /** The operator CLI, run in the operator's namespace against the cluster; its JSON answer. */
  const cli = async (...args: string[]): Promise<{ ok: boolean; json: any; out: string }> => {
    const r = await run('ip', ['netns', 'exec', operatorNs, process.execPath, SIXPN_CLI, ...args, '--store', storeUrl, '--json'], 30_000);
    let json: any;
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = undefined;
    }
    return { ok: r.ok, json, out: r.out };
  };
  const cliMust = async (...args: string[]): Promise<any> => {
    const r = await cli(...args);
    if (!r.ok) throw new Error(`sixpn ${args.join(' ')}: ${r.out.trim()}`);
    return r.json;
  };
  /** A host's status (what `sixpn status HOST --json` prints), read from its socket. */
  const status = (h: (typeof hosts)[number]): Promise<any> => readStatus(statusSocketPath(h.name));
  /** Waits until every host has applied what the store holds now and set up its machines. */
  const appliedEverywhere = async (ms = 15_000): Promise<boolean> => {
    const doc = await cliMust('topology', 'export');
    const want = topologyDigest(topologyFromDocument(asDocument(doc), 'export'));
    return waitFor(async () => {
      const all = await Promise.all(hosts.map(status));
      return all.every((s) => s?.topology === want && s.machinesReady === true);
    }, ms);
  };
  const ping = (from: string, to: string, count = 2) => run('ip', ['netns', 'exec', m[from].id, 'ping', '-6', '-c', String(count), '-i', '0.2', '-W', '2', to]);
  const hostOf = (x: any) => hosts.find((h) => h.name === x.host)?.label ?? String(x.host);
  const created = (key: string, row: any) => {
    m[key] = { key, id: row.id, app: row.app, region: row.region, address: row.address };
    return row;
  };
  const tails = () => hosts.map((h) => `--- ${h.name}.log\n${readFileSync(join(dir, `${h.name}.log`), 'utf8').split('\n').slice(-6).join('\n')}`).join('\n');

  // interrupted (Ctrl-C, a kill): nothing is left either
  const interrupted = (sig: NodeJS.Signals) => {
    console.log(`\n${sig}: removing what the demo made`);
    void teardownDemo(made()).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    // ---- the underlay: one bridge; a veth into it for each namespace ----
    await must('ip', ['netns', 'add', underlay]);
    await must('ip', ['-n', underlay, 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['-n', underlay, 'link', 'set', 'br0', 'up']);
    const onUnderlay = async (ns: string, address: string) => {
      await must('ip', ['netns', 'add', ns]);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await must('ip', ['link', 'add', `${ns}u`, 'type', 'veth', 'peer', 'name', `${ns}e`]);
      await must('ip', ['link', 'set', `${ns}u`, 'netns', underlay]);
      await must('ip', ['link', 'set', `${ns}e`, 'netns', ns]);
      await must('ip', ['-n', underlay, 'link', 'set', `${ns}u`, 'master', 'br0', 'up']);
      await must('ip', ['-n', ns, 'link', 'set', `${ns}e`, 'name', 'eth0']);
      await must('ip', ['-n', ns, 'addr', 'add', `${address}/64`, 'dev', 'eth0', 'nodad']);
      await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    };
    for (const x of cluster.members) await onUnderlay(x.ns, x.address);
    for (const h of hosts) await onUnderlay(h.ns, h.addr);
    await onUnderlay(operatorNs, 'fd00:6e::99');
    console.log(`sixpn demo --store etcd ${tag}: a 3-member etcd cluster, 3 hosts, 2 orgs, 3 apps; files in ${dir}\n`);

    // ---- etcd: three members, one cluster ----
    cluster.startAll();
    let leader = await cluster.waitHealthy(operatorNs, 20_000);
    if (leader === undefined) throw new Error(`the etcd cluster did not come up within 20 s (logs: ${dir}/etcd-m*.log)`);
    check(`etcd: a 3-member cluster (${cluster.members.map((x) => x.name).join(', ')}), in its own namespaces`, true, `leader ${leader}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // ---- the topology, through the CLI; the writes of each step run at once ----
    await Promise.all([cliMust('org', 'create', 'acme'), cliMust('org', 'create', 'initech')]);
    await Promise.all([cliMust('app', 'create', 'web', '--org', 'acme'), cliMust('app', 'create', 'db', '--org', 'acme'), cliMust('app', 'create', 'ledger', '--org', 'initech')]);
    const added = await Promise.all(hosts.map((h) => cliMust('host', 'add', h.name, '--region', h.region, '--endpoint', `[${h.addr}]:51820`, '--key-file', join(dir, `${h.name}.key`))));
    for (const [i, h] of hosts.entries()) {
      writeFileSync(join(dir, `${h.name}.json`), JSON.stringify({ ...added[i].config, meshInterface: h.mesh }, null, 2));
    }
    const hostIds = added.map((a) => a.id as string);
    check('`sixpn host add` ×3 at once: distinct host ids, each host config names the etcd cluster',
      new Set(hostIds).size === 3 && added.every((a) => String(a.config.store).startsWith(storeUrl)), `ids ${hostIds.join(' ')}`);
    const spec: Array<[string, string, string]> = [['web1', 'web', 'ams'], ['led1', 'ledger', 'ams'], ['web2', 'web', 'ord'], ['db1', 'db', 'syd']];
    const rows = await Promise.all(spec.map(([key, app, region]) => cliMust('machine', 'create', app, '--region', region, '--id', mid(key))));
    rows.forEach((row, i) => created(spec[i][0], row));
    check('`sixpn machine create` ×4 at once: distinct addresses (two on ams1)', new Set(rows.map((x) => x.address)).size === 4,
      rows.map((x, i) => `${spec[i][0]} ${hostOf(x)}`).join(', '));
    const v = await cliMust('topology', 'validate');
    check('`sixpn topology validate` on the cluster', v.valid === true && v.machines === 4, `revision ${v.revision}: ${v.orgs} orgs, ${v.apps} apps, ${v.hosts} hosts, ${v.machines} machines`);

    // ---- one `sixpn up` per host, its topology from etcd ----
    // nsenter --net keeps the shared mount namespace: the machines' namespaces are seen by all
    for (const h of hosts) {
      const log = openSync(join(dir, `${h.name}.log`), 'a');
      procs.push(spawn('nsenter', [`--net=/run/netns/${h.ns}`, process.execPath, ...SIXPN_NODE_FLAGS, SIXPN_CLI, 'up', '-c', join(dir, `${h.name}.json`)], {
        stdio: ['ignore', log, log], env: { ...process.env, LOG_LEVEL: 'info' },
      }));
      closeSync(log);
    }
    const upAt = Date.now();
    if (!(await appliedEverywhere(30_000))) throw new Error(`the hosts did not come up with the topology within 30 s\n${tails()}`);
    const st = await Promise.all(hosts.map(status));
    check('3 hosts up from etcd (store connected), 4 machines have their TUN and address', st.every((s) => s?.store?.kind === 'etcd' && s.store.connected === true),
      `${((Date.now() - upAt) / 1000).toFixed(1)} s`);

    // ---- forwarding and isolation ----
    let r = await ping('web1', m.web2.address);
    check('ping web1 (ams1) → web2 (ord1), across hosts', r.ok, `rtt ${rtt(r.out)} ms`);
    r = await ping('web2', m.db1.address);
    check('ping web2 (ord1) → db1 (syd1), across hosts', r.ok, `rtt ${rtt(r.out)} ms`);
    r = await ping('led1', m.web1.address, 1);
    check('ping led1 (initech) → web1 (acme) on the same host is refused', !r.ok && /prohibited/i.test(r.out), why(r.out));
    r = await run('ip', ['netns', 'exec', m.db1.id, 'dig', '+short', '+time=2', '+tries=1', 'AAAA', 'web.internal']);
    const names = r.out.trim().split('\n').filter(Boolean).sort();
    check('dig AAAA web.internal from db1 lists web1 and web2', names.join(' ') === [m.web1.address, m.web2.address].sort().join(' '), names.join(' '));

    // ---- stop, start, migrate: each a CLI edit ----
    await cliMust('machine', 'stop', m.web2.id);
    let ok = await appliedEverywhere();
    r = await ping('web1', m.web2.address, 1);
    check('`sixpn machine stop web2`: unreachable from web1', ok && !r.ok && /unreachable/i.test(r.out), why(r.out));
    await cliMust('machine', 'start', m.web2.id);
    ok = await appliedEverywhere();
    r = await ping('web1', m.web2.address);
    check('`sixpn machine start web2`: reachable again', ok && r.ok, `rtt ${rtt(r.out)} ms`);
    const oldDb1 = m.db1.address;
    created('db1', await cliMust('machine', 'migrate', m.db1.id, '--host', hosts[1].name));
    ok = await appliedEverywhere();
    r = await ping('web1', m.db1.address);
    check('`sixpn machine migrate db1 --host ord1`: reachable at its new address', ok && r.ok && m.db1.address !== oldDb1, m.db1.address);
    r = await ping('web1', oldDb1);
    check('… and at its old address (rewritten by the router)', r.ok, oldDb1);

    // ---- one etcd member killed: the leader ----
    const victim = leader;
    await cluster.kill(victim);
    const rest = cluster.members.map((x) => x.name).filter((x) => x !== victim);
    leader = await cluster.waitHealthy(operatorNs, 10_000, rest);
    created('web3', await cliMust('machine', 'create', 'web', '--region', 'syd', '--id', mid('web3')));
    ok = await appliedEverywhere();
    r = await ping('web1', m.web3.address);
    check(`etcd leader ${victim} killed: \`machine create web\` commits (new leader ${leader ?? '?'}) and applies on all 3 hosts`, ok && r.ok, `web3 on syd1 reachable from web1`);
    const pairs: Array<[string, string]> = [['web1', 'web2'], ['web2', 'web3'], ['web3', 'web1']];
    const forwarding = async () => {
      const res = await Promise.all(pairs.map(([a, b]) => ping(a, m[b].address)));
      return { ok: res.every((x) => x.ok), detail: pairs.map(([a, b], i) => `${a}→${b} ${res[i].ok ? rtt(res[i].out) + ' ms' : 'LOST'}`).join(', ') };
    };
    let f = await forwarding();
    check('… forwarding unchanged: ams1 → ord1 → syd1 → ams1', f.ok, f.detail);
    const stAfterOne = await Promise.all(hosts.map(status));
    check('… every host still says its store is connected', stAfterOne.every((s) => s?.store?.connected === true));

    // ---- every member killed ----
    for (const x of rest) await cluster.kill(x);
    const down = await waitFor(async () => (await Promise.all(hosts.map(status))).every((s) => s?.store?.connected === false), 30_000);
    const page = await run(process.execPath, [SIXPN_CLI, 'status', hosts[0].name]);
    const storeLine = page.out.split('\n').find((l) => /^\s*store /.test(l))?.trim() ?? '';
    check('all 3 etcd members killed: `sixpn status` on every host says the store is disconnected', down && /DISCONNECTED/.test(storeLine),
      `${hosts[0].label}: ${storeLine.replace(/^store \S+: /, '').replace(/ since \S+,/, ',')}`);
    f = await forwarding();
    check('… and every host keeps forwarding: ams1 → ord1 → syd1 → ams1', f.ok, f.detail);
    const logged = hosts.every((h) => /unreachable.*forwarding with the topology of revision/.test(readFileSync(join(dir, `${h.name}.log`), 'utf8')));
    check('… each host logged it (etcd unreachable, forwarding with the last applied revision)', logged);
    const refused = await cli('machine', 'stop', m.web1.id);
    const error = String(refused.json?.error ?? refused.out);
    check('… an edit meanwhile fails, naming the store', !refused.ok && /etcd unreachable/.test(error), error.replace(/^store \S+: /, '').slice(0, 70));
    r = await ping('web2', m.web1.address);
    check('… and changed nothing: web1 still reachable', r.ok);

    // ---- the members started again ----
    const back0 = Date.now();
    cluster.startAll();
    leader = await cluster.waitHealthy(operatorNs, 20_000);
    const again = leader !== undefined && await waitFor(async () => (await Promise.all(hosts.map(status))).every((s) => s?.store?.connected === true), 30_000);
    check('etcd members started again: the cluster has a leader, every host reconnects', again, `leader ${leader ?? '-'}, ${((Date.now() - back0) / 1000).toFixed(1)} s`);
    created('web4', await cliMust('machine', 'create', 'web', '--region', 'ams', '--id', mid('web4')));
    ok = await appliedEverywhere();
    const res = await Promise.all([ping('web2', m.web4.address), ping('web3', m.web4.address)]);
    check('… and a new edit applies on all 3: web4 (ams1) reachable from ord1 and syd1', ok && res.every((x) => x.ok), m.web4.address);
    await cliMust('machine', 'destroy', m.web4.id);
    ok = await appliedEverywhere();
    r = await run('ip', ['-n', m.web4.id, '-o', 'link', 'show']);
    check('… `sixpn machine destroy web4`: its interface is gone', ok && !/6pn/.test(r.out));
  } catch (err) {
    check('demo ran to the end', false, (err as Error).message);
  }

  process.off('SIGINT', interrupted);
  process.off('SIGTERM', interrupted);
  const failed = checks.filter((c) => !c.ok).length;
  console.log(`\n${checks.length - failed} passed, ${failed} failed  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (keep && failed === 0) {
    console.log(`\nleft running (--keep). Enter a machine:  ip netns exec ${m.web1.id} bash`);
    console.log(`the operator CLI:  ip netns exec ${operatorNs} bin/sixpn machine list --store '${storeUrl}'`);
    console.log(`status:  sixpn status     logs: ${dir}/*.log`);
    console.log('end it:  sixpn demo down');
    writeDemoState(made());
    for (const p of procs) p.unref();
    return 0;
  }
  await teardownDemo(made());
  return failed === 0 ? 0 : 1;
}

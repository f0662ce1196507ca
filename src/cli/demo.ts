// `sixpn demo`: a live 6PN on this machine. Three hosts (network namespaces on one IPv6
// underlay bridge), each running its own `sixpn up`; two orgs, three apps, seven machines in
// three regions. It checks what 6PN promises with real tools (ping, ncat, dig), prints a
// table, and tears everything down (or, with --keep, leaves it running).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { encodeSixpn, formatAddress, machineAddress } from '../ipv6/index.ts';
import { StaticIdentity, chosenBackend, generatePrivateKeyBytes, keyToBase64 } from '../noise/index.ts';
import { moveMachine, parseTopology, setMachineState, topologyDigest } from '../topology/index.ts';
import { writeFileAtomic } from '../store/index.ts';
import { statusSocketPath } from '../host/status.ts';
import { type DemoState, keptDemoRefusal, teardownDemo, writeDemoState } from './demo-state.ts';
import { SIXPN_NODE_FLAGS } from './node-flags.ts';

const pexec = promisify(execFile);
const SIXPN_CLI = fileURLToPath(new URL('./sixpn.ts', import.meta.url));

interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

async function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await pexec(cmd, args, { timeout: timeoutMs });
    return { ok: true, out: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: (e.stdout ?? '') + (e.stderr ?? '') || e.message };
  }
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.out.trim()}`);
  return r.out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** ping's line for an ICMPv6 destination unreachable, code 1, from the router. */
const PROHIBITED = /Destination unreachable: Administratively prohibited/i;
/** The first line of a program's output that says something, for the check's detail. */
const firstLine = (out: string) =>
  (out.split('\n').find((l) => /unreachable|denied|refused|timeout|reset/i.test(l)) ?? out.trim().split('\n')[0] ?? '')
    .replace(/^From \S+ icmp_seq=\d+ /, '').trim().slice(0, 60);

export async function runDemo(argv: string[]): Promise<number> {
  const keep = argv.includes('--keep');
  if (process.getuid?.() !== 0) {
    console.error('sixpn demo: run as root (it creates network namespaces and TUN devices)');
    return 1;
  }
  // a second demo would take the kept one's status sockets (its hosts have the same names)
  const refusal = keptDemoRefusal();
  if (refusal !== undefined) {
    console.error(refusal);
    return 1;
  }
  const t0 = Date.now();
  const tag = (Date.now() % 46656).toString(36).padStart(3, '0') + (process.pid % 1296).toString(36).padStart(2, '0');
  const dir = mkdtempSync(join(tmpdir(), `sixpn-demo-${tag}-`));
  const underlay = `sxu${tag}`;
  const hosts = [
    { name: 'ams1', id: 0x0a7b0001, region: 'ams', ns: `sxh${tag}1`, addr: 'fd00:6e::1' },
    { name: 'ord1', id: 0x0a7b0002, region: 'ord', ns: `sxh${tag}2`, addr: 'fd00:6e::2' },
    { name: 'syd1', id: 0x0a7b0003, region: 'syd', ns: `sxh${tag}3`, addr: 'fd00:6e::3' },
  ];
  const id = (role: string) => `${tag}${role}`.padEnd(14, '0').slice(0, 14);
  const machines = [
    { key: 'web1', id: id('web1'), app: 'web', host: 'ams1', region: 'ams', instance: 0x101 },
    { key: 'web2', id: id('web2'), app: 'web', host: 'ord1', region: 'ord', instance: 0x102 },
    { key: 'web3', id: id('web3'), app: 'web', host: 'syd1', region: 'syd', instance: 0x103 },
    { key: 'db1', id: id('db1'), app: 'db', host: 'ams1', region: 'ams', instance: 0x201 },
    { key: 'db2', id: id('db2'), app: 'db', host: 'ord1', region: 'ord', instance: 0x202 },
    { key: 'led1', id: id('led1'), app: 'ledger', host: 'ams1', region: 'ams', instance: 0x301 },
    { key: 'led2', id: id('led2'), app: 'ledger', host: 'syd1', region: 'syd', instance: 0x302 },
    { key: 'job1', id: id('job1'), app: 'jobs', host: 'ord1', region: 'ord', instance: 0x401, state: 'stopped' },
  ];
  const m = Object.fromEntries(machines.map((x) => [x.key, x]));
  const laptopNs = `sxl${tag}`;
  const internetNs = `sxi${tag}`;
  const SERVER = '2001:db8:f::1'; // an "Internet" server (documentation prefix, inside our namespaces)
  const egressOf = (i: number) => `2001:db8:e::${i + 1}`;
  // service addresses (issue 13): web's in acme, initech's ledger exposed in acme, jobs autostarted
  const WEB_SERVICE = 'fdaa:0:18:0:1::3';
  const LEDGER_SERVICE = 'fdaa:0:18:0:1::4';
  const JOBS_SERVICE = 'fdaa:0:18:0:1::5';
  const DB_EGRESS = '2001:db8:e::a'; // db's static egress in ams
  const laptopIf = `sxl${tag}wg`;
  const procs: ChildProcess[] = [];
  const checks: Check[] = [];
  const check = (what: string, ok: boolean, detail = '') => {
    checks.push({ what, ok, detail });
    console.log(`${ok ? ' ok ' : 'FAIL'}  ${what}${detail ? `  (${detail})` : ''}`);
  };

  // everything it makes, for its cleanup and for `sixpn demo down` (src/cli/demo-state.ts)
  const made = (): DemoState => ({
    tag, dir, startedUnixMs: t0,
    pids: procs.map((p) => p.pid).filter((p): p is number => p !== undefined),
    namespaces: [...hosts.map((h) => h.ns), underlay, laptopNs, internetNs, ...machines.map((x) => x.id), id('web4')],
    paths: [
      ...hosts.flatMap((_h, i) => [`/var/run/wireguard/6pn${tag}${i + 1}.sock`, `/var/run/wireguard/6pg${tag}${i + 1}.sock`]),
      `/var/run/wireguard/${laptopIf}.sock`,
    ],
    statusSockets: hosts.map((h) => statusSocketPath(h.name)),
  });
  const cleanup = () => teardownDemo(made());

  try {
    // ---- the underlay: one bridge, a veth per host ----
    await must('ip', ['netns', 'add', underlay]);
    await must('ip', ['-n', underlay, 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['-n', underlay, 'link', 'set', 'br0', 'up']);
    /** A new namespace with a veth on the underlay bridge (named `dev` inside) at `address`/64. */
    const onUnderlay = async (ns: string, address: string, dev: string) => {
      await must('ip', ['netns', 'add', ns]);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await must('ip', ['link', 'add', `${ns}u`, 'type', 'veth', 'peer', 'name', `${ns}e`]);
      await must('ip', ['link', 'set', `${ns}u`, 'netns', underlay]);
      await must('ip', ['link', 'set', `${ns}e`, 'netns', ns]);
      await must('ip', ['-n', underlay, 'link', 'set', `${ns}u`, 'master', 'br0', 'up']);
      if (dev !== `${ns}e`) await must('ip', ['-n', ns, 'link', 'set', `${ns}e`, 'name', dev]);
      await must('ip', ['-n', ns, 'addr', 'add', `${address}/64`, 'dev', dev, 'nodad']);
      await must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    };
    const keys: Record<string, string> = {};
    for (const [i, h] of hosts.entries()) {
      await onUnderlay(h.ns, h.addr, 'eth0');
      await must('ip', ['-n', h.ns, '-6', 'route', 'add', 'default', 'via', 'fd00:6e::99', 'dev', 'eth0']);
      const priv = generatePrivateKeyBytes();
      writeFileSync(join(dir, `${h.name}.key`), keyToBase64(priv) + '\n', { mode: 0o600 });
      keys[h.name] = keyToBase64(new StaticIdentity(chosenBackend, priv).publicKey);
      writeFileSync(join(dir, `${h.name}.json`), JSON.stringify({ host: h.name, privateKeyFile: `${h.name}.key`, listenPort: 51820, topology: 'topology.json', meshInterface: `6pn${tag}${i + 1}` }));
    }

    // an external computer ("laptop") joins acme as a standard WireGuard peer of ams1's gateway
    const laptopKey = generatePrivateKeyBytes();
    writeFileSync(join(dir, 'laptop.key'), keyToBase64(laptopKey) + '\n', { mode: 0o600 });
    const laptopAddr = new Uint8Array(16);
    encodeSixpn(laptopAddr, 0, 0x18, hosts[0].id, 0xa, 2);
    const laptopText = formatAddress(laptopAddr, 0);

    // ---- the topology every host reads ----
    const doc = {
      version: 1,
      orgs: [{ name: 'acme', network: '0x18' }, { name: 'initech', network: '0x863' }],
      hosts: hosts.map((h, i) => ({ name: h.name, id: h.id, region: h.region, publicKey: keys[h.name], endpoint: `[${h.addr}]:51820`, egress: egressOf(i) })),
      apps: [
        { name: 'web', org: 'acme', services: [{ address: WEB_SERVICE, ports: ['8080/tcp'] }] },
        { name: 'db', org: 'acme', egress: { ams: DB_EGRESS } },
        { name: 'ledger', org: 'initech', services: [{ address: LEDGER_SERVICE, ports: ['7100/tcp'] }] },
        { name: 'jobs', org: 'acme', services: [{ address: JOBS_SERVICE, ports: ['8080/tcp'], autostart: true }] },
      ],
      machines: machines.map((x) => ({ id: x.id, app: x.app, region: x.region, host: x.host, instance: x.instance, state: x.state ?? 'started' })),
      peers: [{ name: 'laptop', org: 'acme', gateway: 'ams1', publicKey: keyToBase64(new StaticIdentity(chosenBackend, laptopKey).publicKey), address: `${laptopText}/120` }],
    };
    const topoFile = join(dir, 'topology.json');
    writeFileAtomic(topoFile, JSON.stringify(doc, null, 2));
    const addr = (key: string, network: number = m[key].app === 'ledger' ? 0x863 : 0x18, hostName = m[key].host) => {
      const b = new Uint8Array(16);
      machineAddress(b, 0, network, hosts.find((x) => x.name === hostName)!.id, m[key].instance);
      return formatAddress(b, 0);
    };
    console.log(`sixpn demo ${tag}: 3 hosts, 2 orgs (acme, initech), 4 apps, 8 machines; files in ${dir}\n`);

    // ---- the "Internet": a server behind the underlay, routing each host's egress address to it ----
    await onUnderlay(internetNs, 'fd00:6e::99', `${internetNs}e`);
    await must('ip', ['-n', internetNs, 'addr', 'add', `${SERVER}/128`, 'dev', 'lo']);
    for (const [i, h] of hosts.entries()) await must('ip', ['-n', internetNs, '-6', 'route', 'add', `${egressOf(i)}/128`, 'via', h.addr]);
    await must('ip', ['-n', internetNs, '-6', 'route', 'add', `${DB_EGRESS}/128`, 'via', hosts[0].addr]);

    // ---- one `sixpn up` per host ----
    // nsenter --net, not `ip netns exec`: the host joins its network namespace but keeps the
    // shared mount namespace, so the machine namespaces it creates are visible to everyone
    // (as they are when `sixpn up` runs on a real host).
    for (const h of hosts) {
      const log = openSync(join(dir, `${h.name}.log`), 'a');
      procs.push(spawn('nsenter', [`--net=/run/netns/${h.ns}`, process.execPath, ...SIXPN_NODE_FLAGS, SIXPN_CLI, 'up', '-c', join(dir, `${h.name}.json`)], {
        stdio: ['ignore', log, log],
        env: { ...process.env, LOG_LEVEL: 'info' },
      }));
    }
    // wait for every machine's interface to have its address
    const deadline = Date.now() + 30_000;
    for (const x of machines) {
      for (;;) {
        const r = await run('ip', ['-n', x.id, '-6', 'addr', 'show', 'scope', 'global']);
        if (r.ok && r.out.includes('inet6 fdaa')) break;
        if (Date.now() > deadline) {
          const tails = hosts.map((h) => `--- ${h.name}.log\n${readFileSync(join(dir, `${h.name}.log`), 'utf8').split('\n').slice(-8).join('\n')}`);
          throw new Error(`machine ${x.id} did not come up\n${tails.join('\n')}`);
        }
        await sleep(200);
      }
    }
    check('3 hosts up, 8 machines have their TUN, address and routes', true, `${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const ping = (from: string, to: string, count = 2) => run('ip', ['netns', 'exec', m[from].id, 'ping', '-6', '-c', String(count), '-i', '0.2', '-W', '2', to]);
    const rtt = (out: string) => /= [\d.]+\/([\d.]+)\//.exec(out)?.[1] ?? '?';

    // ---- same org, same host and across hosts ----
    let r = await ping('web1', addr('db1'));
    check('ping web1 → db1, same org, same host (ams1)', r.ok, `rtt ${rtt(r.out)} ms`);
    r = await ping('web1', addr('web2'));
    check('ping web1 (ams1) → web2 (ord1), across hosts', r.ok, `rtt ${rtt(r.out)} ms`);
    r = await ping('led2', addr('led1'));
    check('ping led2 (syd1) → led1 (ams1), the other org, across hosts', r.ok, `rtt ${rtt(r.out)} ms`);
    // TCP: an echo server on db2, a client on web1
    const server = spawn('ip', ['netns', 'exec', m.db2.id, 'ncat', '-6', '-l', '-k', '7000', '--exec', '/bin/cat'], { stdio: 'ignore' });
    procs.push(server);
    await sleep(400);
    // the client keeps its input open a moment so the echo can come back before it closes
    const tcp = async (from: string, to: string) => run('sh', ['-c', `(echo hello-6pn; sleep 1) | ip netns exec ${m[from].id} ncat -6 -w 3 ${to} 7000`]);
    r = await tcp('web1', addr('db2'));
    check('TCP web1 (ams1) → db2 (ord1):7000 echoes', r.ok && r.out.includes('hello-6pn'), r.ok ? 'ncat' : r.out.trim().slice(0, 60));

    // ---- isolation ----
    // each refusal is the router's own answer (ICMPv6 destination unreachable, code 1
    // "administratively prohibited"), not a timeout or some other failure
    r = await ping('led1', addr('web1'), 1);
    check('ping led1 (initech) → web1 (acme) on the same host is refused', !r.ok && PROHIBITED.test(r.out), firstLine(r.out));
    r = await tcp('led2', addr('db2'));
    // Linux turns "administratively prohibited" into EACCES for a connecting socket
    check('TCP led2 (initech) → db2 (acme) across hosts is refused', !r.out.includes('hello-6pn') && /Permission denied/i.test(r.out), firstLine(r.out));
    r = await ping('led1', addr('led2', 0x18, 'syd1'), 1);
    check('initech cannot reach into acme by forging acme\'s prefix', !r.ok && PROHIBITED.test(r.out), firstLine(r.out));
    // a spoofed source: web1 claims web2's address
    const ifname = (await must('ip', ['-n', m.web1.id, '-o', 'link', 'show'])).match(/\d+: (6pn[0-9a-f]+)/)?.[1] ?? '';
    await must('ip', ['-n', m.web1.id, 'addr', 'add', `${addr('web2')}/128`, 'dev', ifname, 'nodad']);
    const spoofedBefore = await counter('ams1', 'dropped_spoofed');
    r = await run('ip', ['netns', 'exec', m.web1.id, 'ping', '-6', '-c', '1', '-W', '1', '-I', addr('web2'), addr('db1')]);
    const spoofedAfter = await counter('ams1', 'dropped_spoofed');
    check('a packet from web1 with web2\'s source address is dropped', !r.ok && spoofedAfter > spoofedBefore, `dropped_spoofed ${spoofedBefore} → ${spoofedAfter}`);
    await must('ip', ['-n', m.web1.id, 'addr', 'del', `${addr('web2')}/128`, 'dev', ifname]);

    // ---- DNS at fdaa::3 ----
    const dig = (from: string, ...q: string[]) => run('ip', ['netns', 'exec', m[from].id, 'dig', '+short', '+time=2', '+tries=1', ...q]);
    r = await dig('web1', 'AAAA', 'web.internal');
    const webAddrs = r.out.trim().split('\n').filter(Boolean);
    check('dig AAAA web.internal from web1 lists the 3 web machines', r.ok && webAddrs.length === 3, webAddrs.join(' '));
    r = await run('ip', ['netns', 'exec', m.led1.id, 'dig', '+time=2', '+tries=1', 'AAAA', 'web.internal']);
    check('the same question from led1 (initech) gets NXDOMAIN', /status: NXDOMAIN/.test(r.out));
    r = await dig('web2', '+tcp', 'AAAA', `${m.db2.id}.vm.db.internal`);
    check('dig +tcp (DNS over TCP) from web2 finds db2 by machine id', r.ok && r.out.trim() === addr('db2'), r.out.trim());
    r = await dig('db1', 'TXT', '_apps.internal');
    check('dig TXT _apps.internal from db1 lists acme\'s apps', /db,jobs,web/.test(r.out), r.out.trim());

    // ---- an external WireGuard peer (wireguard-go) through ams1's gateway ----
    await onUnderlay(laptopNs, 'fd00:6e::100', `${laptopNs}e`);
    await must('ip', ['netns', 'exec', laptopNs, 'wireguard-go', laptopIf]);
    await must('ip', ['netns', 'exec', laptopNs, 'wg', 'set', laptopIf, 'private-key', join(dir, 'laptop.key'), 'peer', keys.ams1,
      'endpoint', '[fd00:6e::1]:51821', 'allowed-ips', 'fdaa::/16', 'persistent-keepalive', '15']);
    await must('ip', ['-n', laptopNs, 'addr', 'add', `${laptopText}/120`, 'dev', laptopIf, 'nodad']);
    await must('ip', ['-n', laptopNs, 'link', 'set', laptopIf, 'up']);
    // all of fdaa::/16 into the tunnel: what the laptop may not reach, the gateway refuses
    await must('ip', ['-n', laptopNs, 'route', 'add', 'fdaa::/16', 'dev', laptopIf]);
    r = await run('ip', ['netns', 'exec', laptopNs, 'ping', '-6', '-c', '2', '-i', '0.2', '-W', '3', addr('web2')]);
    check('an external WireGuard peer (wireguard-go) reaches web2 (ord1) through ams1\'s gateway', r.ok, `rtt ${rtt(r.out)} ms`);
    r = await run('ip', ['netns', 'exec', laptopNs, 'dig', '+short', '+time=2', '+tries=1', '@fdaa:0:18::3', 'AAAA', 'db.internal']);
    check('… resolves db.internal at its org\'s fdaa:0:18::3', r.ok && r.out.trim().split('\n').filter(Boolean).length === 2, r.out.trim().replace(/\n/g, ' '));
    r = await run('ip', ['netns', 'exec', laptopNs, 'ping', '-6', '-c', '1', '-W', '1', addr('led1', 0x863)]);
    check('… and cannot reach initech', !r.ok && PROHIBITED.test(r.out), firstLine(r.out));

    // ---- SNAT66: machines reach the Internet from their host's egress address ----
    const whoami = spawn('ip', ['netns', 'exec', internetNs, 'ncat', '-6', '-l', '-k', '8000', '--sh-exec', 'echo $NCAT_REMOTE_ADDR'], { stdio: 'ignore' });
    procs.push(whoami);
    await sleep(400);
    r = await ping('web1', SERVER);
    check(`ping web1 → ${SERVER} on the Internet, through ams1's SNAT66`, r.ok, `rtt ${rtt(r.out)} ms`);
    r = await run('ip', ['netns', 'exec', m.led2.id, 'ncat', '-6', '-w', '3', '--recv-only', SERVER, '8000']);
    check('TCP from led2 (syd1): the server sees syd1\'s egress address', r.ok && r.out.trim() === egressOf(2), r.out.trim());
    r = await run('ip', ['netns', 'exec', internetNs, 'ncat', '-6', '-w', '1', egressOf(0), '8000']);
    // dropped without an answer (no reset from a machine or the host kernel, no ICMPv6)
    check('nothing from the Internet reaches a machine unsolicited', !r.ok && /TIMEOUT/i.test(r.out), 'no answer to an inbound SYN: ' + firstLine(r.out));
    r = await run(process.execPath, [SIXPN_CLI, 'conntrack', 'ams1']);
    check('`sixpn conntrack ams1` lists web1\'s flow', r.ok && r.out.includes(`src=${addr('web1')}`), r.out.trim().split('\n')[0]?.slice(0, 70) ?? '');

    // ---- service addresses, static egress, the machine's own name (issue 13) ----
    const serve = (key: string, port: number, say: string) => {
      procs.push(spawn('ip', ['netns', 'exec', m[key].id, 'ncat', '-6', '-l', '-k', String(port), '--sh-exec', `echo ${say}`], { stdio: 'ignore' }));
    };
    for (const k of ['web1', 'web2', 'web3']) serve(k, 8080, k);
    serve('led1', 7100, 'led1 $NCAT_REMOTE_ADDR');
    serve('led2', 7100, 'led2 $NCAT_REMOTE_ADDR');
    serve('job1', 8080, 'job1');
    await sleep(400);
    const connect = async (from: string, to: string, port: number) =>
      (await run('ip', ['netns', 'exec', m[from].id, 'ncat', '-6', '-w', '3', '--recv-only', to, String(port)])).out.trim();
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push(await connect('db1', WEB_SERVICE, 8080));
    check(`TCP db1 (ams1) → web's service address ${WEB_SERVICE}: the machine on the same host answers`, seen.every((x) => x === 'web1'), seen.join(' '));
    let d = JSON.parse(readFileSync(topoFile, 'utf8'));
    d = setMachineState(d, m.web1.id, 'stopped');
    await edit(d);
    seen.length = 0;
    for (let i = 0; i < 6; i++) seen.push(await connect('db1', WEB_SERVICE, 8080));
    check('… web1 stopped: skipped, connections spread over web2 (ord1) and web3 (syd1)', seen.includes('web2') && seen.includes('web3') && !seen.some((x) => !/^web[23]$/.test(x)), seen.join(' '));
    d = setMachineState(JSON.parse(readFileSync(topoFile, 'utf8')), m.web1.id, 'started');
    await edit(d);
    let line = await connect('db1', LEDGER_SERVICE, 7100);
    check('initech\'s ledger exposed in acme: db1 reaches its port, the machine sees an initech source', /^led[12] fdaa:0:863:/.test(line), line);
    line = await connect('db1', LEDGER_SERVICE, 7101);
    check('… and only that port: another is refused (TCP reset)', /refused/i.test(line), firstLine(line));
    line = await connect('led1', addr('db1'), 7100);
    check('… while initech still reaches nothing of acme', /denied|unreachable/i.test(line), firstLine(line));
    line = await connect('db1', JOBS_SERVICE, 8080);
    const jobs = JSON.parse(readFileSync(topoFile, 'utf8')).machines.find((x: { id: string }) => x.id === m.job1.id);
    check('autostart: a connection to jobs (no machine started) wakes job1 through the topology', line === 'job1' && jobs.state === 'started', `${line}, job1 ${jobs.state}`);
    r = await dig('db1', 'AAAA', 'ledger.sixpn');
    const fromInitech = await run('ip', ['netns', 'exec', m.led1.id, 'dig', '+time=2', '+tries=1', 'AAAA', 'ledger.sixpn']);
    check('dig AAAA ledger.sixpn: the service address for acme, NXDOMAIN for initech', r.out.trim() === LEDGER_SERVICE && /NXDOMAIN/.test(fromInitech.out), r.out.trim());
    r = await run('ip', ['netns', 'exec', m.web1.id, 'getent', 'hosts', 'local-6pn']);
    check('web1\'s /etc/hosts names its own 6PN address local-6pn', r.out.trim().split(/\s+/)[0] === addr('web1'), r.out.trim());
    line = await connect('db1', SERVER, 8000);
    check(`static egress: TCP from db1 (ams1): the server sees db's own address ${DB_EGRESS}`, line === DB_EGRESS, line);

    // ---- stop a machine ----
    d = JSON.parse(readFileSync(topoFile, 'utf8'));
    d = setMachineState(d, m.web3.id, 'stopped');
    await edit(d);
    r = await ping('web1', addr('web3'), 1);
    check('web3 stopped (topology edited live): unreachable from web1', !r.ok && /Address unreachable/i.test(r.out), firstLine(r.out));

    // ---- migrate a machine ----
    const oldDb2 = addr('db2');
    d = JSON.parse(readFileSync(topoFile, 'utf8'));
    d = moveMachine(d, m.db2.id, 'syd1');
    await edit(d);
    m.db2.host = 'syd1';
    const newDb2 = addr('db2');
    r = await ping('web1', newDb2);
    check(`db2 migrated ord1 → syd1: reachable at its new address`, r.ok, newDb2);
    r = await ping('web1', oldDb2);
    check('… and still at its old address (rewritten by the router)', r.ok, oldDb2);
    r = await tcp('web1', oldDb2);
    check('… TCP to the old address reaches the echo server', r.ok && r.out.includes('hello-6pn'));

    // ---- machines added and removed, and a bad edit, while everything runs ----
    const newId = id('web4');
    d = JSON.parse(readFileSync(topoFile, 'utf8'));
    d.machines.push({ id: newId, app: 'web', region: 'ord', host: 'ord1', instance: 0x104, state: 'started' });
    await edit(d);
    const web4 = new Uint8Array(16);
    machineAddress(web4, 0, 0x18, hosts[1].id, 0x104);
    r = await ping('web1', formatAddress(web4, 0));
    check('a machine added to the topology comes up on ord1 and is reachable', r.ok, formatAddress(web4, 0));
    d = JSON.parse(readFileSync(topoFile, 'utf8'));
    d.machines = d.machines.filter((x: { id: string }) => x.id !== newId);
    await edit(d);
    r = await run('ip', ['-n', newId, '-o', 'link', 'show']);
    check('… and removed again: its interface is gone', !/6pn/.test(r.out));
    await run('ip', ['netns', 'del', newId]);
    writeFileAtomic(topoFile, readFileSync(topoFile, 'utf8').replace('"acme"', '"acme", "network": "not a number", "x"'));
    await sleep(2500);
    r = await ping('web1', addr('web2'), 1);
    const refused = hosts.every((h) => /topology edit refused/.test(readFileSync(join(dir, `${h.name}.log`), 'utf8')));
    check('a broken topology edit is refused by every host, which keep forwarding', r.ok && refused);
    writeFileAtomic(topoFile, JSON.stringify(d, null, 2));

    // ---- a machine's interface deleted from inside its namespace is recreated ----
    const dbIf = (await must('ip', ['-n', m.db1.id, '-o', 'link', 'show'])).match(/\d+: (6pn[0-9a-f]+)/)?.[1] ?? '';
    await must('ip', ['-n', m.db1.id, 'link', 'del', dbIf]);
    const back = await waitFor(async () => (await run('ip', ['-n', m.db1.id, '-6', 'addr', 'show', 'scope', 'global'])).out.includes(addr('db1')), 10_000);
    r = back ? await ping('web1', addr('db1')) : { ok: false, out: '' };
    check('db1\'s interface deleted inside its namespace: ams1 recreates it, db1 is reachable again', back && r.ok);

    // ---- the mesh through the stock wg tool ----
    r = await run('wg', ['show', `6pn${tag}1`, 'latest-handshakes']);
    const shaken = r.out.trim().split('\n').filter((l) => Number(l.split(/\s+/)[1]) > 0).length;
    check('`wg show` on ams1\'s mesh: handshakes with both other hosts', r.ok && shaken === 2, `${shaken} peers`);

    // ---- counters ----
    const cross = (await counter('ams1', 'dropped_cross_org')) + (await counter('syd1', 'dropped_cross_org'));
    check('`sixpn status` counts the cross-org drops', cross >= 2, `dropped_cross_org ${cross}`);
  } catch (err) {
    check('demo ran to the end', false, (err as Error).message);
  }

  const failed = checks.filter((c) => !c.ok).length;
  console.log(`\n${checks.length - failed} passed, ${failed} failed  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (keep && failed === 0) {
    console.log(`\nleft running (--keep). Enter a machine:  ip netns exec ${m.web1.id} bash`);
    console.log(`status:  sixpn status     mesh:  wg show 6pn${tag}1     logs: ${dir}/*.log`);
    console.log(`machines: ${machines.map((x) => `${x.key}=${x.id}`).join(' ')}`);
    console.log('end it:  sixpn demo down');
    writeDemoState(made());
    for (const p of procs) p.unref();
    return 0;
  }
  await cleanup();
  return failed === 0 ? 0 : 1;

  /** Saves a topology edit and waits until every host has applied it and set up its machines. */
  async function edit(doc: unknown): Promise<void> {
    const text = JSON.stringify(doc, null, 2);
    const want = topologyDigest(parseTopology(text, 'edit'));
    writeFileAtomic(join(dir, 'topology.json'), text);
    const ok = await waitFor(async () => {
      for (const h of hosts) {
        const r = await run(process.execPath, [SIXPN_CLI, 'status', h.name, '--json']);
        try {
          const s = JSON.parse(r.out) as { topology: string; machinesReady: boolean };
          if (s.topology !== want || !s.machinesReady) return false;
        } catch {
          return false;
        }
      }
      return true;
    }, 15_000);
    if (!ok) throw new Error('the hosts did not apply the topology edit within 15 s');
  }

  async function counter(host: string, name: string): Promise<number> {
    const r = await run(process.execPath, [SIXPN_CLI, 'status', host, '--json']);
    try {
      return (JSON.parse(r.out) as { router: Record<string, number> }).router[name] ?? 0;
    } catch {
      return -1;
    }
  }
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(250);
  }
  return false;
}

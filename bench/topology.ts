// npm run bench:topology (root) — the control plane at scale (issue 12). Four figures on a
// synthetic topology of 1,000 hosts, 100 orgs (5 apps each), 50,000 machines and 2,000 peers
// written into a real etcd (Debian's, in a network namespace made here):
//   load       a separate process (its RSS is its own), run with the node flags bin/sixpn gives
//              `sixpn up`, opens the store and watches it as a host does (read every key, build
//              the topology): wall time and RSS once it is loaded;
//   edit       EDITS machine stops/starts written by another process through the store's update
//              path (store.update with setMachineStateIn, as `sixpn machine stop|start` does),
//              timed in the watching process from the watch response's arrival to the end of its
//              handling (the change callback included): the watcher's own 'data' listener runs
//              between two listeners added here, one in front and one behind; then, timed the same
//              way, edits of other sections, each applied in place at the cost of the edit too
//              (src/topology/patch.ts): PEER_EDITS peers created and removed (`sixpn peer create`,
//              `peer remove`), APP_EDITS apps created and removed (`sixpn app create`, `app remove`),
//              ORG_EDITS orgs added;
//   dns        the `.internal` resolver of that process over that topology (dnsView, as
//              src/host/dns-service.ts builds it) answering `<app>.internal` AAAA and
//              `_instances.internal` TXT for a machine of org0, 1,000 queries each;
//   propagation three `sixpn up` hosts in namespaces (test/helpers/sixpn-lab.ts, store: 'etcd')
//              on a small topology; EDITS machine stops/starts written by an EtcdStore client in
//              the etcd namespace; from the commit to all three hosts' status sockets showing the
//              new store revision (and, from the hosts' clocks, to their last apply).
// Environment: EDITS (200), PEER_EDITS (10), APP_EDITS (10), ORG_EDITS (3), DNS_QUERIES (1000),
// PHASES (load,edit,dns,propagation).
// The last line is one JSON object.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { InternalResolver, TCP_MESSAGE_MAX } from '../src/dns/index.ts';
import { encodeSixpn, formatAddress } from '../src/ipv6/index.ts';
import { ETCD_MAX_TXN_OPS, EtcdStore } from '../src/store/etcd.ts';
import { openStore } from '../src/store/index.ts';
import { createApp, createOrg, createPeer, dnsView, parseStoreSpec, removeApp, removePeer, setMachineStateIn } from '../src/topology/index.ts';
import type { Topology, TopologyStore } from '../src/topology/index.ts';
import { EtcdServer, HAVE_ETCD } from '../test/helpers/etcd.ts';
import { IP, SixpnLab, run } from '../test/helpers/sixpn-lab.ts';
import { machineDescription, median } from './lib.ts';
import { SIXPN_NODE_FLAGS } from '../src/cli/node-flags.ts'; // the host role runs as `sixpn up` does

const SELF = fileURLToPath(import.meta.url);
const EDITS = Number(process.env.EDITS ?? 200);
const ORG_EDITS = Number(process.env.ORG_EDITS ?? 3);
const PEER_EDITS = Number(process.env.PEER_EDITS ?? 10);
const APP_EDITS = Number(process.env.APP_EDITS ?? 10);
const DNS_QUERIES = Number(process.env.DNS_QUERIES ?? 1000);
const PHASES = new Set((process.env.PHASES ?? 'load,edit,dns,propagation').split(','));
const HOSTS = 1000;
const ORGS = 100;
const APPS_PER_ORG = 5;
const MACHINES = 50_000;
const PEERS = 2000;
const REGIONS = ['ams', 'ord', 'syd', 'fra', 'sin', 'iad', 'lhr', 'nrt', 'gru', 'jnb'];

type Msg = { type: string; [k: string]: unknown };
const wall = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}
const r3 = (x: number) => +x.toFixed(3);

// ---- the synthetic topology --------------------------------------------------------------------

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
const machineId = (i: number) => (0x10000000000000 + i).toString(16); // 14 hex digits
const hostId = (i: number) => 0x0a000001 + i;
const network = (o: number) => 0x100 + o;

/** key (under the prefix) → entry: 1,000 hosts, 100 orgs, 500 apps, 50,000 machines, 2,000 peers. */
function syntheticEntries(): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  const key = () => randomBytes(32).toString('base64');
  for (let o = 0; o < ORGS; o++) out.set(`orgs/org${o}`, { name: `org${o}`, network: hex32(network(o)) });
  for (let h = 0; h < HOSTS; h++) {
    const v6 = `fd00:6f:1::${(h + 1).toString(16)}`;
    out.set(`hosts/h${h}`, { name: `h${h}`, id: hex32(hostId(h)), region: REGIONS[h % REGIONS.length], publicKey: key(), endpoint: `[${v6}]:51820` });
  }
  for (let a = 0; a < ORGS * APPS_PER_ORG; a++) out.set(`apps/app${a}`, { name: `app${a}`, org: `org${a % ORGS}` });
  // Machine i: app i % 500, on host (i + 507·⌊i/500⌋) mod 1000, so an app's 100 machines are on
  // 100 hosts (all regions); instances counted per host from 0x100.
  const next = new Array<number>(HOSTS).fill(0x100);
  const apps = ORGS * APPS_PER_ORG;
  for (let i = 0; i < MACHINES; i++) {
    const h = (i + 507 * Math.floor(i / apps)) % HOSTS;
    const id = machineId(i);
    out.set(`machines/${id}`, {
      id, app: `app${i % apps}`, region: REGIONS[h % REGIONS.length], host: `h${h}`, instance: hex32(next[h]++),
      state: i % 7 === 0 ? 'stopped' : 'started',
    });
  }
  // Peers: /120s in their org's /48 with the gateway's host id, instances from 0xa0 per gateway
  // (below every machine's 0x100).
  const peerNext = new Array<number>(HOSTS).fill(0xa0);
  const a = new Uint8Array(16);
  for (let p = 0; p < PEERS; p++) {
    const o = p % ORGS;
    const g = (p * 13) % HOSTS;
    encodeSixpn(a, 0, network(o), hostId(g), peerNext[g]++, 2);
    out.set(`peers/org${o}/peer${p}`, { name: `peer${p}`, org: `org${o}`, gateway: `h${g}`, publicKey: key(), address: `${formatAddress(a, 0)}/120` });
  }
  return out;
}

// ---- child roles (each runs in the etcd's namespace) ------------------------------------------

function send(m: Msg): void {
  process.send!(m);
}

function onMessage(handler: (m: Msg) => Promise<void> | void): void {
  process.on('message', (m: Msg) => {
    Promise.resolve(handler(m)).catch((err: Error) => send({ type: 'error', message: err.stack ?? err.message }));
  });
}

/** Writes the synthetic topology in transactions of ETCD_MAX_TXN_OPS puts (4 in flight), meta last. */
async function populateRole(url: string): Promise<void> {
  const spec = parseStoreSpec(url);
  const store = (await openStore(spec)) as EtcdStore;
  const t0 = performance.now();
  const entries = [...syntheticEntries()].map(([k, v]) => [store.prefix + k, JSON.stringify(v)] as const);
  const genMs = performance.now() - t0;
  let bytes = 0;
  for (const [k, v] of entries) bytes += k.length + v.length;
  const batches: (typeof entries)[] = [];
  for (let i = 0; i < entries.length; i += ETCD_MAX_TXN_OPS) batches.push(entries.slice(i, i + ETCD_MAX_TXN_OPS));
  let at = 0;
  const t1 = performance.now();
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (at < batches.length) {
      const b = batches[at++];
      await store.client.kv.txn({ compare: [], success: b.map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } })), failure: [] });
    }
  }));
  const meta = { version: 1, serial: 1, updated: new Date().toISOString(), by: 'bench:topology' };
  const res = await store.ns.put('meta').value(JSON.stringify(meta)).exec();
  await store.close();
  process.send!({ type: 'populated', keys: entries.length + 1, mb: bytes / 2 ** 20, genMs, writeMs: performance.now() - t1, revision: Number(res.header.revision), batches: batches.length }, () => process.exit(0));
}

/** process.memoryUsage in MB, and again after a full GC (the child runs with --expose-gc). */
function memory(): Record<string, number> {
  const mb = (x: number) => +(x / 2 ** 20).toFixed(1);
  const u = process.memoryUsage();
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const g = process.memoryUsage();
  return { rssMb: mb(u.rss), heapMb: mb(u.heapUsed), heapTotalMb: mb(u.heapTotal), externalMb: mb(u.external), rssGcMb: mb(g.rss), heapGcMb: mb(g.heapUsed), heapTotalGcMb: mb(g.heapTotal), arrayBuffersGcMb: mb(g.arrayBuffers) };
}

/** A host's view of the store: load, then time every watch response; DNS on request. */
async function hostRole(url: string): Promise<void> {
  // GC pauses, to tell which slow applies had one inside them
  const gcs: Array<[number, number]> = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration]);
  }).observe({ entryTypes: ['gc'] });
  // each patch's [start, end, involuntary context switches during it]: preempted by another process
  const windows: Array<[number, number, number]> = [];
  let switches = 0;
  const t0 = performance.now();
  const store = await openStore(parseStoreSpec(url));
  let changeMs = 0;
  let changed = false;
  let rebuilt = false; // a new Topology (the whole document), not a patch in place
  const source = await store.watch(
    (next, diff, previous) => {
      const c0 = performance.now();
      changed = !diff.empty;
      rebuilt = next !== previous;
      changeMs = performance.now() - c0;
    },
    (err) => send({ type: 'error', message: err.message }),
  );
  const loadMs = performance.now() - t0;
  const mem = memory();
  const topo = source.current;
  send({
    type: 'loaded', loadMs, ...mem,
    machines: topo.machines.length, hosts: topo.hosts.length, peers: topo.peers.length, orgs: topo.orgs.length,
    revision: (source.status() as { revision: number }).revision,
  });
  // The watcher of EtcdWatch (a private field at compile time only): a listener in front of its
  // own 'data' listener and one behind it bracket the whole handling of a response.
  const watcher = (source as unknown as { watcher: EventEmitter | null }).watcher;
  if (watcher === null) throw new Error('no watcher on the etcd source');
  let arrived = 0;
  let arrivedWall = 0;
  watcher.prependListener('data', () => {
    switches = process.resourceUsage().involuntaryContextSwitches;
    arrived = performance.now();
    arrivedWall = wall();
    changed = false;
    rebuilt = false;
    changeMs = 0;
  });
  watcher.on('data', (res: { header: { revision: string }; events: unknown[] }) => {
    const end = performance.now();
    const ms = end - arrived;
    if (!rebuilt) windows.push([arrived, end, process.resourceUsage().involuntaryContextSwitches - switches]); // the slow-apply statistics are of patches
    send({ type: 'applied', revision: Number(res.header.revision), ms, changeMs, changed, rebuilt, events: res.events.length, arrivedWall });
  });
  onMessage(async (m) => {
    if (m.type === 'dns') send({ type: 'dns', ...dnsBench(source.current) });
    else if (m.type === 'memory') {
      await sleep(100); // the last GC entries are delivered
      // applies over 5 ms, and how many of them had a GC pause inside
      const slow = windows.filter(([a, b]) => b - a > 5);
      const withGc = slow.filter(([a, b]) => gcs.some(([x, y]) => x < b && y > a));
      const gcMsInSlow = withGc.reduce((sum, [a, b]) => sum + gcs.filter(([x, y]) => x < b && y > a).reduce((z, [x, y]) => z + Math.min(y, b) - Math.max(x, a), 0), 0);
      const inAny = windows.filter(([a, b]) => gcs.some(([x, y]) => x < b && y > a)).length;
      const preempted = slow.filter((w) => w[2] > 0).length;
      send({ type: 'memory', ...memory(), applies: windows.length, slow: slow.length, slowWithGc: withGc.length, gcMsInSlow, appliesWithGc: inAny, slowPreempted: preempted, appliesPreempted: windows.filter((w) => w[2] > 0).length });
    } else if (m.type === 'close') {
      source.close();
      await store.close();
      process.exit(0);
    }
  });
}

/** Writes edits through store.update, as the operator CLI does. */
async function writerRole(url: string): Promise<void> {
  const store: TopologyStore = await openStore(parseStoreSpec(url));
  onMessage(async (m) => {
    const t0 = performance.now();
    if (m.type === 'machine') {
      const id = m.id as string;
      const state = m.state as 'started' | 'stopped';
      const r = await store.update(`machine ${state === 'started' ? 'start' : 'stop'} ${id}`, (d) => setMachineStateIn(d, id, state));
      send({ type: 'written', revision: r.revision, ms: performance.now() - t0, committedWall: wall(), changed: r.changed, conflicts: r.conflicts });
    } else if (m.type === 'org') {
      const r = await store.update(`org create ${m.name as string}`, (d) => createOrg(d, m.name as string));
      send({ type: 'written', revision: r.revision, ms: performance.now() - t0, committedWall: wall(), changed: r.changed, conflicts: r.conflicts });
    } else if (m.type === 'peer' || m.type === 'app') {
      const name = m.name as string;
      const what = `${m.type} ${m.remove ? 'remove' : 'create'} ${name}`;
      const r = await store.update(what, (d) => {
        if (m.type === 'app') return m.remove ? removeApp(d, name) : void createApp(d, name, 'org1');
        if (m.remove) return void removePeer(d, 'org1', name);
        return void createPeer(d, { org: 'org1', region: REGIONS[1], name, publicKey: randomBytes(32).toString('base64') });
      });
      send({ type: 'written', revision: r.revision, ms: performance.now() - t0, committedWall: wall(), changed: r.changed, conflicts: r.conflicts });
    } else if (m.type === 'close') {
      await store.close();
      process.exit(0);
    }
  });
  send({ type: 'ready' });
}

// ---- DNS ----------------------------------------------------------------------------------------

const TYPE_AAAA = 28;
const TYPE_TXT = 16;

/** A DNS query with an EDNS OPT record (payload 1232), recursion desired. */
function dnsQuery(id: number, name: string, qtype: number): Uint8Array {
  const b = [id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
  for (const l of name.split('.')) b.push(l.length, ...Array.from(l, (c) => c.charCodeAt(0)));
  b.push(0, qtype >> 8, qtype & 0xff, 0, 1);
  b.push(0, 0, 41, 1232 >> 8, 1232 & 0xff, 0, 0, 0, 0, 0, 0);
  return Uint8Array.from(b);
}

function dnsBench(t: Topology): Record<string, unknown> {
  const resolver = new InternalResolver(dnsView(() => t));
  const org = 'org0';
  const asker = t.machinesOfOrg(org).find((m) => m.started)!.address;
  const apps = t.appsOfOrg(org).map((a) => a.name);
  const out = new Uint8Array(TCP_MESSAGE_MAX);
  const result: Record<string, unknown> = { asker: formatAddress(asker, 0), orgMachines: t.machinesOfOrg(org).length };
  const cases: Array<[string, (i: number) => Uint8Array, 'udp' | 'tcp']> = [
    ['app_aaaa', (i) => dnsQuery(i & 0xffff, `${apps[i % apps.length]}.internal`, TYPE_AAAA), 'udp'],
    ['instances_txt', (i) => dnsQuery(i & 0xffff, '_instances.internal', TYPE_TXT), 'udp'],
    ['instances_txt_tcp', (i) => dnsQuery(i & 0xffff, '_instances.internal', TYPE_TXT), 'tcp'],
  ];
  for (const [name, make, transport] of cases) {
    const queries = Array.from({ length: DNS_QUERIES }, (_, i) => make(i));
    for (let i = 0; i < 50; i++) resolver.answer(queries[i % queries.length], asker, transport, out); // warm up
    const times: number[] = [];
    let n = 0;
    for (const q of queries) {
      const t0 = performance.now();
      n = resolver.answer(q, asker, transport, out);
      times.push(performance.now() - t0);
    }
    // the last answer: rcode, TC flag, answer count, size
    result[name] = {
      p50_ms: r3(quantile(times, 0.5)), p99_ms: r3(quantile(times, 0.99)), max_ms: r3(Math.max(...times)),
      bytes: n, rcode: out[3] & 0x0f, tc: (out[2] & 0x02) !== 0, answers: (out[6] << 8) | out[7],
    };
  }
  return result;
}

// ---- the parent ---------------------------------------------------------------------------------

/** A child process in a namespace, spoken to by IPC messages. */
class Child {
  private readonly queue: Msg[] = [];
  private readonly waiters: Array<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void; reject: (e: Error) => void }> = [];
  private exited: string | undefined;
  readonly proc: ChildProcess;
  readonly name: string;

  constructor(name: string, ns: string, role: string, url: string, extra: string[]) {
    this.name = name;
    const flags = role === 'host' ? ['--expose-gc', ...SIXPN_NODE_FLAGS] : [];
    this.proc = spawn('/usr/bin/nsenter', [`--net=/run/netns/${ns}`, process.execPath, ...flags, SELF, '--role', role, '--store', url, ...extra], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: Msg) => {
      if (m.type === 'error') console.error(`  ${name}: ${m.message as string}`);
      const i = this.waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      else this.queue.push(m);
    });
    this.proc.on('exit', (code, sig) => {
      this.exited = `${name} exited (${code ?? sig})`;
      for (const w of this.waiters.splice(0)) w.reject(new Error(this.exited));
    });
  }

  send(m: Msg): void {
    this.proc.send(m);
  }

  wait(pred: (m: Msg) => boolean, ms = 120_000): Promise<Msg> {
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m: Msg) => (clearTimeout(timer), resolve(m)), reject: (e: Error) => (clearTimeout(timer), reject(e)) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: no answer within ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

const children: Child[] = [];
function child(name: string, ns: string, role: string, url: string, extra: string[] = []): Child {
  const c = new Child(name, ns, role, url, extra);
  children.push(c);
  return c;
}

/** The load average and the busiest other processes, for the report. */
async function machineLoad(): Promise<string> {
  const top = await run('/usr/bin/ps', ['-eo', 'pcpu,comm', '--sort=-pcpu', '--no-headers']);
  const busy = top.out.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 4).join(', ');
  return `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; busiest (%cpu since start): ${busy}`;
}

async function scaleBench(summary: Record<string, unknown>): Promise<void> {
  const tag = `${(Date.now() % 46656).toString(36)}${(process.pid % 1296).toString(36)}`.padStart(5, '0');
  const ns = `sxtb${tag}`;
  let etcd: EtcdServer | undefined;
  let made = false;
  try {
    const add = await run(IP, ['netns', 'add', ns]);
    if (!add.ok) throw new Error(`ip netns add ${ns}: ${add.out}`);
    made = true;
    await run(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
    etcd = await EtcdServer.start(ns);
    const url = `etcd://127.0.0.1:2379/bench${tag}`;
    console.log(`etcd ${etcd.ctl('version').split('\n')[0]} in namespace ${ns}; store ${url}`);

    const pop = child('populate', ns, 'populate', url);
    const p = await pop.wait((m) => m.type === 'populated', 600_000);
    console.log(`populate: ${p.keys as number} keys (${(p.mb as number).toFixed(1)} MB of keys and values) in ${p.batches as number} transactions, ${((p.writeMs as number) / 1000).toFixed(1)} s; revision ${p.revision as number}`);

    const host = child('host', ns, 'host', url);
    const l = await host.wait((m) => m.type === 'loaded', 300_000);
    summary.load_s = r3((l.loadMs as number) / 1000);
    summary.load_rss_mb = +(l.rssMb as number).toFixed(1);
    summary.load_heap_mb = +(l.heapMb as number).toFixed(1);
    summary.load_rss_after_gc_mb = l.rssGcMb;
    summary.load_heap_after_gc_mb = l.heapGcMb;
    console.log(`load: ${l.machines as number} machines, ${l.hosts as number} hosts, ${l.orgs as number} orgs, ${l.peers as number} peers in ${(summary.load_s as number).toFixed(2)} s; RSS ${summary.load_rss_mb as number} MB (heap used ${summary.load_heap_mb as number} of ${l.heapTotalMb as number} MB, external ${l.externalMb as number} MB)  [${await machineLoad()}]`);
    console.log(`  after a full GC: RSS ${l.rssGcMb as number} MB, heap used ${l.heapGcMb as number} of ${l.heapTotalGcMb as number} MB, array buffers ${l.arrayBuffersGcMb as number} MB`);

    if (PHASES.has('edit')) {
      const writer = child('writer', ns, 'writer', url);
      await writer.wait((m) => m.type === 'ready');
      const apply: number[] = [];
      const writes: number[] = [];
      const delays: number[] = [];
      for (let k = 0; k < EDITS; k++) {
        const i = (k * 241) % MACHINES; // distinct machines, all over the table
        const state = i % 7 === 0 ? 'started' : 'stopped'; // the opposite of its generated state
        writer.send({ type: 'machine', id: machineId(i), state });
        const w = await writer.wait((m) => m.type === 'written', 120_000);
        const a = await host.wait((m) => m.type === 'applied' && m.revision === w.revision, 30_000);
        if (!a.changed || a.rebuilt) throw new Error(`edit ${k}: revision ${w.revision as number} was not applied as a patch (changed ${a.changed as boolean}, rebuilt ${a.rebuilt as boolean})`);
        apply.push(a.ms as number);
        writes.push(w.ms as number);
        delays.push((a.arrivedWall as number) - (w.committedWall as number));
        if ((k + 1) % 50 === 0) console.log(`  edit ${k + 1}/${EDITS}: apply median ${median(apply).toFixed(3)} ms, write (store.update) median ${median(writes).toFixed(0)} ms`);
      }
      summary.edit_apply_ms = r3(median(apply));
      summary.edit_apply_p99_ms = r3(quantile(apply, 0.99));
      summary.edit_apply_max_ms = r3(Math.max(...apply));
      summary.edit_write_ms = +median(writes).toFixed(1);
      summary.edit_commit_to_watch_ms = +median(delays).toFixed(1);
      console.log(`edit: ${EDITS} machine stop/start, applied in the watching process: median ${summary.edit_apply_ms as number} ms, p99 ${summary.edit_apply_p99_ms as number} ms, max ${summary.edit_apply_max_ms as number} ms; the writer's store.update ${summary.edit_write_ms as number} ms median; commit → watch response ${summary.edit_commit_to_watch_ms as number} ms median`);
      // Edits of other sections: each must be applied in place (patch.ts), not by a rebuild.
      const other = async (kind: string, n: number, msg: (k: number) => Msg): Promise<number[]> => {
        const ms: number[] = [];
        for (let k = 0; k < n; k++) {
          writer.send(msg(k));
          const w = await writer.wait((m) => m.type === 'written', 120_000);
          const a = await host.wait((m) => m.type === 'applied' && m.revision === w.revision, 60_000);
          if (!a.changed || a.rebuilt) throw new Error(`${kind} edit ${k}: revision ${w.revision as number} was not applied as a patch (changed ${a.changed as boolean}, rebuilt ${a.rebuilt as boolean})`);
          ms.push(a.ms as number);
        }
        if (ms.length > 0) console.log(`${kind} edits (×${n}), applied in place: median ${median(ms).toFixed(3)} ms, max ${Math.max(...ms).toFixed(3)} ms`);
        return ms;
      };
      // create and remove, alternately: peer0 created, peer0 removed, peer1 created, …
      const peers = await other('peer create/remove', PEER_EDITS, (k) => ({ type: 'peer', name: `bench${tag}p${k >> 1}`, remove: k % 2 === 1 }));
      const apps = await other('app create/remove', APP_EDITS, (k) => ({ type: 'app', name: `bench${tag}a${k >> 1}`, remove: k % 2 === 1 }));
      const orgs = await other('org create', ORG_EDITS, (k) => ({ type: 'org', name: `bench${tag}${k}` }));
      if (peers.length > 0) summary.peer_edit_apply_ms = r3(median(peers));
      if (apps.length > 0) summary.app_edit_apply_ms = r3(median(apps));
      if (orgs.length > 0) summary.org_edit_apply_ms = r3(median(orgs));
      writer.send({ type: 'close' });
      host.send({ type: 'memory' });
      const mem = await host.wait((m) => m.type === 'memory');
      summary.rss_after_edits_mb = mem.rssMb;
      summary.rss_after_edits_gc_mb = mem.rssGcMb;
      summary.heap_after_edits_gc_mb = mem.heapGcMb;
      summary.edit_apply_over_5ms = mem.slow;
      summary.edit_apply_over_5ms_with_gc = mem.slowWithGc;
      summary.edit_apply_over_5ms_preempted = mem.slowPreempted;
      console.log(`  applies over 5 ms: ${mem.slow as number} of ${mem.applies as number}: ${mem.slowWithGc as number} with a GC pause inside (${(mem.gcMsInSlow as number).toFixed(1)} ms of GC in them), ${mem.slowPreempted as number} preempted (involuntary context switches during the apply); of all applies ${mem.appliesWithGc as number} had a GC inside, ${mem.appliesPreempted as number} were preempted`);
      console.log(`  watching process after the edits: RSS ${mem.rssMb as number} MB, heap used ${mem.heapMb as number} MB; after a full GC: RSS ${mem.rssGcMb as number} MB, heap used ${mem.heapGcMb as number} of ${mem.heapTotalGcMb as number} MB  [${await machineLoad()}]`);
    }

    if (PHASES.has('dns')) {
      host.send({ type: 'dns' });
      const d = await host.wait((m) => m.type === 'dns', 300_000);
      const c = (k: string) => d[k] as { p50_ms: number; p99_ms: number; max_ms: number; bytes: number; tc: boolean; answers: number; rcode: number };
      for (const k of ['app_aaaa', 'instances_txt', 'instances_txt_tcp']) {
        const x = c(k);
        console.log(`dns ${k}: ${DNS_QUERIES} queries, p50 ${x.p50_ms} ms, p99 ${x.p99_ms} ms, max ${x.max_ms} ms; answer ${x.bytes} bytes, ${x.answers} records, rcode ${x.rcode}${x.tc ? ', truncated' : ''}`);
      }
      summary.dns_p99_ms = Math.max(c('app_aaaa').p99_ms, c('instances_txt').p99_ms, c('instances_txt_tcp').p99_ms);
      summary.dns_app_aaaa_p99_ms = c('app_aaaa').p99_ms;
      summary.dns_instances_txt_p99_ms = c('instances_txt').p99_ms;
      summary.dns_instances_txt_tcp_p99_ms = c('instances_txt_tcp').p99_ms;
      console.log(`  (asker ${d.asker as string}, a machine of org0: ${d.orgMachines as number} machines in its org)`);
    }
    host.send({ type: 'close' });
    await host.wait(() => false, 5000).catch(() => undefined);
  } finally {
    for (const c of children.splice(0)) c.kill();
    await etcd?.stop();
    if (made) {
      const pids = (await run(IP, ['netns', 'pids', ns])).out.split(/\s+/).filter((x) => /^\d+$/.test(x));
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      await run(IP, ['netns', 'del', ns]);
    }
  }
}

async function propagationBench(summary: Record<string, unknown>): Promise<void> {
  const lab = await SixpnLab.start({
    orgs: [{ name: 'acme', network: 0x18 }],
    apps: [{ name: 'web', org: 'acme' }, { name: 'db', org: 'acme' }],
    hosts: [{ key: 'h1', region: 'ams' }, { key: 'h2', region: 'ord' }, { key: 'h3', region: 'syd' }],
    machines: [
      { key: 'a1', app: 'web', host: 'h1', instance: 0x101 },
      { key: 'a2', app: 'db', host: 'h1', instance: 0x102 },
      { key: 'b1', app: 'web', host: 'h2', instance: 0x201 },
      { key: 'c1', app: 'db', host: 'h3', instance: 0x301 },
    ],
    store: 'etcd',
    logLevel: 'error',
  });
  try {
    console.log(`propagation: 3 hosts (sixpn up --store ${lab.storeUrl!}), etcd in namespace ${lab.ns('etcd')}`);
    const writer = child('lab-writer', lab.ns('etcd'), 'writer', lab.storeUrl!);
    await writer.wait((m) => m.type === 'ready');
    const keys = ['a1', 'a2', 'b1', 'c1'];
    const state = new Map(keys.map((k) => [k, 'started']));
    const polled: number[] = [];
    const applied: number[] = [];
    const writes: number[] = [];
    let statusCalls = 0;
    for (let k = 0; k < EDITS; k++) {
      const key = keys[k % keys.length];
      const next = state.get(key) === 'started' ? 'stopped' : 'started';
      state.set(key, next);
      writer.send({ type: 'machine', id: lab.machineId(key), state: next });
      const w = await writer.wait((m) => m.type === 'written', 30_000);
      const rev = w.revision as number;
      const commit = w.committedWall as number;
      const pending = new Set(lab.hosts.keys());
      const lastApply: number[] = [];
      const end = Date.now() + 30_000;
      while (pending.size > 0) {
        // the hosts still behind, read at once
        await Promise.all([...pending].map(async (h) => {
          const s = await lab.status(h);
          statusCalls++;
          const st = s?.store as { revision?: number } | undefined;
          if (st?.revision !== undefined && st.revision >= rev) {
            pending.delete(h);
            lastApply.push((s!.applied as { lastUnixMs: number }).lastUnixMs);
          }
        }));
        if (Date.now() > end) throw new Error(`edit ${k}: revision ${rev} not applied by ${[...pending].join(', ')} within 30 s\n${lab.logs()}`);
      }
      polled.push(wall() - commit);
      applied.push(Math.max(...lastApply) - commit);
      writes.push(w.ms as number);
      if ((k + 1) % 50 === 0) console.log(`  edit ${k + 1}/${EDITS}: propagation median ${median(polled).toFixed(1)} ms`);
      await sleep(20);
    }
    writer.send({ type: 'close' });
    summary.propagation_p50_ms = +quantile(polled, 0.5).toFixed(1);
    summary.propagation_p99_ms = +quantile(polled, 0.99).toFixed(1);
    summary.propagation_max_ms = +Math.max(...polled).toFixed(1);
    summary.propagation_apply_p50_ms = +quantile(applied, 0.5).toFixed(1);
    summary.propagation_apply_p99_ms = +quantile(applied, 0.99).toFixed(1);
    summary.propagation_write_ms = +median(writes).toFixed(1);
    console.log(`propagation: ${EDITS} edits, commit → all 3 status sockets at the new revision: p50 ${summary.propagation_p50_ms as number} ms, p99 ${summary.propagation_p99_ms as number} ms, max ${summary.propagation_max_ms as number} ms (${(statusCalls / EDITS).toFixed(1)} status reads per edit)`);
    console.log(`  commit → the last host's apply (its own clock): p50 ${summary.propagation_apply_p50_ms as number} ms, p99 ${summary.propagation_apply_p99_ms as number} ms; store.update ${summary.propagation_write_ms as number} ms median  [${await machineLoad()}]`);
  } finally {
    for (const c of children.splice(0)) c.kill();
    await lab.cleanup();
  }
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('bench:topology: run as root (network namespaces)');
    return 1;
  }
  if (!HAVE_ETCD) {
    console.error('bench:topology: needs etcd (scripts/setup.sh installs etcd-server)');
    return 1;
  }
  console.log(machineDescription());
  console.log(`topology: ${HOSTS} hosts, ${ORGS} orgs, ${ORGS * APPS_PER_ORG} apps, ${MACHINES} machines, ${PEERS} peers; ${EDITS} edits; ${DNS_QUERIES} DNS queries per name`);
  console.log(`${await machineLoad()}\n`);
  const summary: Record<string, unknown> = { bench: 'topology', node: process.version, host_node_flags: SIXPN_NODE_FLAGS.join(' ') };
  const stop = () => {
    for (const c of children) c.kill();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (PHASES.has('load') || PHASES.has('edit') || PHASES.has('dns')) await scaleBench(summary);
  if (PHASES.has('propagation')) await propagationBench(summary);
  summary.loadavg = loadavg().map((x) => +x.toFixed(2));
  console.log(JSON.stringify(summary));
  return 0;
}

const role = process.argv.indexOf('--role');
if (role > 0) {
  const url = process.argv[process.argv.indexOf('--store') + 1];
  const name = process.argv[role + 1];
  const go = name === 'populate' ? populateRole : name === 'host' ? hostRole : writerRole;
  go(url).catch((err: Error) => {
    send({ type: 'error', message: err.stack ?? err.message });
    process.exit(1);
  });
} else {
  process.exitCode = await main();
}

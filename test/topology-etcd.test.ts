// The etcd topology store against a real etcd (Debian's, started here on loopback with its own
// data dir and ports; skipped when etcd is not installed): round trip, incremental watch,
// concurrent writers, refused writes, etcd killed and restarted, compaction.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { EditError, TopologyError, addHost, createApp, createMachine, createOrg, createPeer, parseStoreSpec, replaceDocument, asDocument, setMachineStateIn, topologyDigest, topologyFromDocument } from '../src/topology/index.ts';
import { openStore } from '../src/store/index.ts';
import type { StoreStatus, Topology, TopologyDiff, TopologyStore, WatchedSource } from '../src/topology/index.ts';
import type { EtcdStore } from '../src/store/etcd.ts';
import { EtcdServer, HAVE_ETCD, freePort } from './helpers/etcd.ts';

const EXAMPLE = fileURLToPath(new URL('../examples/topology.example.json', import.meta.url));
const example = () => asDocument(JSON.parse(readFileSync(EXAMPLE, 'utf8')));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const maybe = HAVE_ETCD ? test.serial : test.skip;

let etcd: EtcdServer | undefined;
const stores: TopologyStore[] = [];
const sources: WatchedSource[] = [];
let prefixes = 0;

async function store(prefix: string, endpoint = etcd!.endpoint): Promise<EtcdStore> {
  const s = (await openStore(parseStoreSpec(`etcd://${endpoint}/${prefix}`))) as EtcdStore;
  stores.push(s);
  return s;
}
const freshPrefix = () => `t${process.pid}-${++prefixes}`;

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Seen {
  changes: TopologyDiff[];
  errors: Error[];
  statuses: StoreStatus[];
  source: WatchedSource;
}
async function watch(s: TopologyStore): Promise<Seen> {
  const seen = { changes: [] as TopologyDiff[], errors: [] as Error[], statuses: [] as StoreStatus[] } as Seen;
  seen.source = await s.watch((_n, d) => seen.changes.push(d), (e) => seen.errors.push(e), { onStatus: (st) => seen.statuses.push(st) });
  sources.push(seen.source);
  return seen;
}

test.before(async () => {
  if (HAVE_ETCD) etcd = await EtcdServer.start();
});
test.after.always(async () => {
  for (const w of sources) w.close();
  for (const s of stores) await s.close();
  await etcd?.stop();
});

maybe('round trip: the example imported in one transaction reads back the same, one key per entry', async (t) => {
  const p = freshPrefix();
  const s = await store(p);
  const r = await s.update('topology import', (doc) => replaceDocument(doc, example()));
  t.true(r.changed);
  const back = await s.read();
  const want = topologyFromDocument(example(), 'example');
  t.is(topologyDigest(topologyFromDocument(back.doc, 'etcd')), topologyDigest(want));
  const keys = etcd!.ctl('get', '--prefix', '--keys-only', `/${p}/`).split('\n').filter(Boolean).sort();
  t.deepEqual(keys, [
    `/${p}/apps/ledger`, `/${p}/apps/shop-db`, `/${p}/apps/shop-web`,
    `/${p}/hosts/ams1`, `/${p}/hosts/ord1`, `/${p}/hosts/syd1`,
    ...want.machines.map((m) => `/${p}/machines/${m.id}`).sort(),
    `/${p}/meta`, `/${p}/orgs/acme`, `/${p}/orgs/initech`,
    `/${p}/peers/acme/ops-laptop`, `/${p}/peers/initech/ci-runner`,
  ].sort());
  // the same document again changes nothing and writes nothing
  const again = await s.update('topology import', (doc) => replaceDocument(doc, back.doc));
  t.false(again.changed);
});

maybe('a watching host applies each edit incrementally, from the revision it loaded', async (t) => {
  const p = freshPrefix();
  const writer = await store(p);
  await writer.update('import', (doc) => replaceDocument(doc, example()));
  const seen = await watch(await store(p));
  const before = seen.source.current;
  const { result: m } = await writer.update('machine create', (doc) => createMachine(doc, { app: 'ledger', region: 'ord' }));
  await until('the new machine', () => seen.changes.length === 1);
  t.deepEqual(seen.changes[0].machines.added.map((x) => x.id), [m.id as string]);
  t.is(seen.changes[0].machines.removed.length + seen.changes[0].hosts.added.length, 0);
  const added = seen.source.current.machine(m.id as string)!;
  t.is(added.host, 0x0a7b0d6b, 'on ord1, the only host in ord');
  t.is(added.instance, 1, 'the lowest instance free on ord1 (2 is taken)');
  t.is(seen.source.current, before, 'a machine edit changes the topology in force in place (patch.ts), not a rebuilt one');
  t.is(before.machinesOnHost(0x0a7b0d6b).filter((x) => x.id === m.id).length, 1, 'indexed on its host');
  await writer.update('machine stop', (doc) => setMachineStateIn(doc, m.id as string, 'stopped'));
  await until('the stop', () => seen.changes.length === 2);
  t.deepEqual(seen.changes[1].machines.stopped.map((x) => x.id), [m.id as string]);
  t.false(before.machine(m.id as string)!.started);
  // other sections too, in place (patch.ts)
  await writer.update('org create', (doc) => createOrg(doc, 'umbrella'));
  await until('the org', () => seen.changes.length === 3);
  t.deepEqual(seen.changes[2].orgs.added.map((o) => o.name), ['umbrella']);
  t.is(seen.source.current, before);
  t.is(before.org('umbrella')?.name, 'umbrella');
  await writer.update('app create', (doc) => createApp(doc, 'uapp', 'umbrella'));
  await writer.update('machine create', (doc) => createMachine(doc, { app: 'uapp', region: 'ord' }));
  await writer.update('peer create', (doc) => createPeer(doc, { org: 'acme', region: 'ord', name: 'p1', publicKey: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=' }));
  await until('the peer', () => seen.changes.length === 6);
  t.deepEqual(seen.changes[5].peers.added.map((p) => p.name), ['p1']);
  t.is(seen.source.current, before);
  t.is(before.peersOnGateway(0x0a7b0d6b).filter((p) => p.name === 'p1').length, 1);
  // an org's network changed: its machines' addresses derive from it, the whole document is built
  await writer.update('org renumber', (doc) => {
    doc.orgs.find((o) => o.name === 'umbrella')!.network = '0x864';
  });
  await until('the renumbering', () => seen.changes.length === 7);
  t.not(seen.source.current, before);
  t.is(seen.changes[6].machines.moved.length, 1);
  t.is(topologyDigest(seen.source.current), topologyDigest(topologyFromDocument((await writer.read()).doc, 'etcd')));
  t.is(seen.source.status().revision, (await writer.read()).revision);
  t.true(seen.source.status().connected);
  t.deepEqual(seen.errors, []);
});

maybe('concurrent writers: two clients racing allocations get unique ids and lose no edit', async (t) => {
  const p = freshPrefix();
  const a = await store(p);
  const b = await store(p);
  await a.update('import', (doc) => replaceDocument(doc, example()));
  const create = (s: TopologyStore, i: number) => s.update(`machine create ${i}`, (doc) => createMachine(doc, { app: 'shop-web', region: 'ams' }));
  const orgs = (s: TopologyStore, i: number) => s.update(`org create ${i}`, (doc) => createOrg(doc, `org${i}`));
  const results = await Promise.all([
    ...Array.from({ length: 12 }, (_, i) => create(i % 2 ? a : b, i)),
    ...Array.from({ length: 6 }, (_, i) => orgs(i % 2 ? a : b, i)),
  ]);
  const conflicts = results.reduce((n, r) => n + r.conflicts, 0);
  t.log(`${conflicts} conflicts retried`);
  t.true(conflicts > 0, 'the writers did collide');
  const topo = topologyFromDocument((await a.read()).doc, 'etcd');
  t.is(topo.machines.length, 7 + 12, 'no machine lost');
  const ams1 = topo.machinesOnHost(0x0a7b007d);
  t.is(new Set(ams1.map((m) => m.instance)).size, ams1.length, 'instances unique on the host');
  t.is(new Set(topo.machines.map((m) => m.id)).size, topo.machines.length);
  t.is(topo.orgs.length, 2 + 6);
  t.is(new Set(topo.orgs.map((o) => o.network)).size, topo.orgs.length, 'network ids unique');
});

maybe('a write that would make the topology invalid is refused before commit, naming the entry and the rule', async (t) => {
  const p = freshPrefix();
  const s = await store(p);
  await s.update('import', (doc) => replaceDocument(doc, example()));
  const before = await s.read();
  const err = await t.throwsAsync(s.update('bad edit', (doc) => {
    doc.machines.push({ id: 'zzzzzzzzzzzzzz', app: 'no-such-app', region: 'ams', host: 'ams1', instance: 99 });
  }), { instanceOf: TopologyError });
  t.regex(err!.message, /machines\[7\] "zzzzzzzzzzzzzz": app: unknown app "no-such-app"/);
  const dup = await t.throwsAsync(s.update('host add', (doc) => addHost(doc, {
    name: 'ams2', region: 'ams', endpoint: '192.0.2.11:51820', publicKey: 'mxVLM6Q/ZCB4ugOaHLdmb2kTSRnMJJSnmb/pgjFHjXo=',
  })), { instanceOf: TopologyError });
  t.regex(dup!.message, /hosts\[3\] "ams2": publicKey: the same key as host "ams1"/);
  const e = await t.throwsAsync(s.update('app create', (doc) => createApp(doc, 'x', 'nope')), { instanceOf: EditError });
  t.is(e!.message, 'app "x": org "nope" does not exist');
  t.is((await s.read()).revision, before.revision, 'nothing was written');
});

maybe('a host refuses an invalid state written behind the CLI (etcdctl) and keeps the running one', async (t) => {
  const p = freshPrefix();
  const s = await store(p);
  await s.update('import', (doc) => replaceDocument(doc, example()));
  const seen = await watch(await store(p));
  const digest = topologyDigest(seen.source.current);
  etcd!.ctl('put', `/${p}/apps/broken`, '{"name":"broken","org":"ghost"}');
  await until('the refusal', () => seen.errors.length === 1);
  t.regex(seen.errors[0].message, /apps "broken": org: unknown org "ghost"/);
  t.is(topologyDigest(seen.source.current), digest);
  t.regex(seen.source.status().lastError ?? '', /unknown org/);
  etcd!.ctl('del', `/${p}/apps/broken`);
  etcd!.ctl('put', `/${p}/orgs/third`, '{"name":"third","network":"0x99"}');
  await until('the next valid state', () => seen.changes.length === 1);
  t.deepEqual(seen.changes[0].orgs.added.map((o) => o.name), ['third']);
});

maybe('a machine entry written behind the CLI that takes another machine\'s instance is refused by the incremental path; the next valid edit applies', async (t) => {
  const p = freshPrefix();
  const s = await store(p);
  const doc = example();
  await s.update('import', (d) => replaceDocument(d, doc));
  const seen = await watch(await store(p));
  const digest = topologyDigest(seen.source.current);
  const taken = doc.machines[0] as { id: string; host: string; instance: unknown; app: string };
  const clash = { id: 'zz0000000000aa', app: taken.app, host: taken.host, instance: taken.instance };
  etcd!.ctl('put', `/${p}/machines/${clash.id}`, JSON.stringify(clash));
  await until('the refusal', () => seen.errors.length === 1);
  t.regex(seen.errors[0].message, new RegExp(`machines "zz0000000000aa": instance: .* is already used on host .* by machine "${taken.id}"`));
  t.is(topologyDigest(seen.source.current), digest, 'nothing of it applied');
  t.is(seen.source.current.machine(clash.id), undefined);
  etcd!.ctl('del', `/${p}/machines/${clash.id}`);
  const { result: m } = await s.update('machine create', (d) => createMachine(d, { app: 'ledger', region: 'ord' }));
  await until('the next valid state', () => seen.source.current.machine(m.id as string) !== undefined);
  t.is(seen.errors.length, 1);
  t.is(topologyDigest(seen.source.current), topologyDigest(topologyFromDocument((await s.read()).doc, 'etcd')));
});

maybe('a topology larger than gRPC\'s default 4 MiB message loads and watches (one range read of every key)', async (t) => {
  const p = freshPrefix();
  const s = await store(p);
  const doc = example();
  await s.update('import', (d) => replaceDocument(d, doc));
  // six machine entries with a 900 KB comment each: 5.4 MB in one range response
  const pad = 'x'.repeat(900_000);
  for (const m of (doc.machines as Array<Record<string, unknown>>).slice(0, 6)) {
    await s.ns.put(`machines/${m.id as string}`).value(JSON.stringify({ ...m, comment: pad }));
  }
  const seen = await watch(await store(p));
  t.is(seen.source.current.machines.length, doc.machines.length);
  t.true((await s.read()).doc.machines.length === doc.machines.length, 'the CLI\'s read too');
});

maybe('etcd killed: the host keeps its topology and says disconnected; restarted: it reconnects and resumes', async (t) => {
  t.timeout(60_000);
  const p = freshPrefix();
  const writer = await store(p);
  await writer.update('import', (doc) => replaceDocument(doc, example()));
  const seen = await watch(await store(p));
  const kept: Topology = seen.source.current;
  await etcd!.kill();
  await until('disconnected', () => !seen.source.status().connected, 20_000);
  t.is(seen.source.current, kept, 'the last applied state stays');
  t.regex(seen.source.status().lastError ?? '', /unreachable/);
  t.false(seen.statuses.at(-1)!.connected);
  await t.throwsAsync(writer.update('org create', (doc) => createOrg(doc, 'late')), { message: /etcd unreachable/ });
  await etcd!.run();
  await until('reconnected', () => seen.source.status().connected, 30_000);
  await writer.update('org create', (doc) => createOrg(doc, 'late'));
  await until('the edit after the restart', () => seen.changes.length === 1, 20_000);
  t.deepEqual(seen.changes[0].orgs.added.map((o) => o.name), ['late']);
  t.is(seen.source.status().reloads, 0, 'resumed from its revision, no reload');
});

/** A TCP proxy to etcd that can be cut and restored (a host losing its network). */
class Proxy {
  server: Server | null = null;
  readonly sockets = new Set<Socket>();
  port = 0;
  target = 0;
  async listen(): Promise<void> {
    this.port ||= await freePort();
    this.server = createServer((c) => {
      const u = connect(this.target, '127.0.0.1');
      this.sockets.add(c).add(u);
      c.pipe(u).pipe(c);
      const end = () => {
        c.destroy();
        u.destroy();
        this.sockets.delete(c);
        this.sockets.delete(u);
      };
      c.on('error', end).on('close', end);
      u.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }
  async cut(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const x of this.sockets) x.destroy();
    await new Promise((r) => s?.close(r));
  }
}

maybe('a whole read comes in pages at one revision; a page whose revision was compacted starts it over', async (t) => {
  const p = freshPrefix();
  const s = await store(p);
  await s.update('import', (d) => replaceDocument(d, example()));
  for (let i = 0; i < 3; i++) await s.update('org create', (d) => createOrg(d, `pg${i}`));
  const whole = (await s.read()).doc;
  const reader = await store(p);
  reader.readPageKeys = 4; // 21 keys (the example's 17 entries, 3 orgs, meta): 6 pages
  let pages = 0;
  let starts = 0;
  await reader.readPages(() => starts++, () => void pages++);
  t.is(pages, 6);
  t.deepEqual((await reader.read()).doc, whole);
  const seen = await watch(reader);
  t.is(topologyDigest(seen.source.current), topologyDigest(topologyFromDocument(whole, 'whole')));
  // a write and a compaction after the first page: that read starts over, at the new revision
  starts = 0;
  const keys: string[] = [];
  const revision = await reader.readPages(() => {
    starts++;
    keys.length = 0;
  }, async (kvs) => {
    keys.push(...kvs.map((kv) => kv.key.toString()));
    if (starts === 1 && keys.length === 4) {
      await s.update('org create', (d) => createOrg(d, 'late'));
      await s.compact((await s.read()).revision);
    }
  });
  t.is(starts, 2);
  t.true(keys.includes('orgs/late'));
  t.is(revision, (await s.read()).revision);
});
maybe('a host that was away past a compaction reloads the whole topology and watches on', async (t) => {
  t.timeout(60_000);
  const p = freshPrefix();
  const writer = await store(p);
  await writer.update('import', (doc) => replaceDocument(doc, example()));
  const proxy = new Proxy();
  proxy.target = etcd!.clientPort;
  await proxy.listen();
  const seen = await watch(await store(p, `127.0.0.1:${proxy.port}`));
  await proxy.cut();
  await until('disconnected', () => !seen.source.status().connected, 20_000);
  for (const name of ['c1', 'c2', 'c3']) await writer.update('org create', (doc) => createOrg(doc, name));
  const { revision } = await writer.read();
  await writer.compact(revision);
  await proxy.listen();
  await until('reloaded', () => seen.source.status().reloads === 1 && seen.source.status().connected, 30_000);
  t.deepEqual(seen.source.current.orgs.map((o) => o.name).sort(), ['acme', 'c1', 'c2', 'c3', 'initech']);
  t.deepEqual(seen.changes.flatMap((d) => d.orgs.added.map((o) => o.name)).sort(), ['c1', 'c2', 'c3'], 'the reload applied as a diff');
  await writer.update('org create', (doc) => createOrg(doc, 'c4'));
  await until('the watch after the reload', () => seen.source.current.org('c4') !== undefined, 20_000);
  t.true(seen.errors.some((e) => /reloading/.test(e.message)));
  await proxy.cut();
});

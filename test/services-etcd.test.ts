// Autostart and autostop through an etcd store (issue 13; skipped without etcd): the host-side
// glue (src/host/services.ts) writes to the same etcd the hosts watch, and a second writer
// racing it never takes an app below minRunning.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { HostServices } from '../src/host/services.ts';
import { Router } from '../src/router/router.ts';
import { openStore } from '../src/store/index.ts';
import { asDocument, autostopIn, parseStoreSpec, replaceDocument } from '../src/topology/index.ts';
import type { Topology, TopologyStore } from '../src/topology/index.ts';
import { EtcdServer, HAVE_ETCD } from './helpers/etcd.ts';
import { addr, packet } from './helpers/router-gen.ts';

const maybe = HAVE_ETCD ? test.serial : test.skip;
const quiet = { info() {}, error() {}, warn() {}, debug() {} } as unknown as import('../src/log.ts').Logger;
const example = () => asDocument(JSON.parse(readFileSync(new URL('../examples/topology.example.json', import.meta.url), 'utf8')));
let etcd: EtcdServer | undefined;
const stores: TopologyStore[] = [];
test.before(async () => {
  if (HAVE_ETCD) etcd = await EtcdServer.start();
});
test.after.always(async () => {
  for (const s of stores) await s.close();
  await etcd?.stop();
});

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

maybe('a held flow starts a machine in etcd; the watching router releases the flow; autostop keeps minRunning under a racing writer', async (t) => {
  const store = await openStore(parseStoreSpec(`etcd://${etcd!.endpoint}/svc${process.pid}`));
  stores.push(store);
  const doc = example();
  for (const m of doc.machines) if (m.app === 'shop-web') m.state = 'stopped';
  const web = doc.apps.find((a) => a.name === 'shop-web')!;
  (web.services as Record<string, unknown>[])[0].autostop = 1;
  (web.services as Record<string, unknown>[])[0].minRunning = 1;
  await store.update('seed', (d) => replaceDocument(d, doc));
  let topo: Topology | undefined;
  const host = () => topo!.hostByName('ams1')!;
  let router: Router | undefined;
  const source = await store.watch((next) => {
    topo = next;
    router?.setTopology(next);
  }, () => {});
  topo = source.current;
  let clock = 0;
  router = new Router(topo, host().id, { toMachine() {}, toMesh() {}, toPeer() {}, toDns() {}, toEgress: () => false }, { now: () => clock });
  const services = new HostServices({ host: host(), log: quiet, router, store, egress: () => null });
  const client = topo.machine('e2865071b9d412')!;
  const p = packet({ src: client.address, dst: addr('fdaa:0:18:0:1::3'), proto: 'tcp', id: 41000, port: 80, tcpFlags: 2 });
  const buf = new Uint8Array(256);
  buf.set(p, 16);
  router.fromMachine(client, buf, 16, p.length);
  t.is(router.services.heldPackets, 1);
  t.true(await until(() => topo!.machine('148e21ea235a89')!.started), 'started in etcd and seen through the watch');
  t.true(await until(() => router!.services.heldPackets === 0), 'the held SYN went on');
  t.is(router.counters.service_flows, 1);
  // both shop-web machines started by hand; autostop (this host: 148e…) races a writer stopping the other
  await store.update('start both', (d) => {
    for (const m of d.machines) if (m.app === 'shop-web' && m.id !== '9080e4d1f2c347') m.state = 'started';
  });
  t.true(await until(() => topo!.machinesOfApp('shop-web').filter((m) => m.started).length === 2));
  router.services.expire();
  services.autostop(); // first look
  clock += 400_000; // past the SYN's flow and the idle time
  router.services.expire();
  const other = store.update('stop the other', (d) => autostopIn(d, 'shop-web', ['3d8e0c71a2b95f'], 1));
  services.autostop();
  await other;
  t.true(await until(async () => (await store.read()).doc.machines.filter((m) => m.app === 'shop-web' && m.state === 'started').length === 1));
  await new Promise((r) => setTimeout(r, 300));
  t.is((await store.read()).doc.machines.filter((m) => m.app === 'shop-web' && m.state === 'started').length, 1, 'never below minRunning');
  source.close();
});

// src/host/services.ts without root: static egress per app set and cleared on the egress as the
// topology changes, autostart and autostop as store updates (a fake store over a document).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { HostServices } from '../src/host/services.ts';
import type { Egress } from '../src/host/egress.ts';
import { Router } from '../src/router/router.ts';
import { asDocument, parseTopology } from '../src/topology/index.ts';
import type { TopologyDocument, TopologyStore } from '../src/topology/index.ts';
import { addr, packet } from './helpers/router-gen.ts';

const EXAMPLE = new URL('../examples/topology.example.json', import.meta.url);
const quiet = { info() {}, error() {}, warn() {}, debug() {} } as unknown as import('../src/log.ts').Logger;

function setup(edit: (d: TopologyDocument) => void = () => {}) {
  const doc = asDocument(JSON.parse(readFileSync(EXAMPLE, 'utf8')));
  edit(doc);
  let topo = parseTopology(JSON.stringify(doc), 'x');
  const host = topo.hostByName('ams1')!;
  let clock = 0;
  const router = new Router(topo, host.id, { toMachine() {}, toMesh() {}, toPeer() {}, toDns() {}, toEgress: () => false }, { now: () => clock });
  const calls: string[] = [];
  const egress = {
    setAppAddress: async (app: string, a: string) => void calls.push(`set ${app} ${a}`),
    clearAppAddress: (app: string) => void calls.push(`clear ${app}`),
  } as unknown as Egress;
  const store = {
    update: async <T>(what: string, f: (d: TopologyDocument) => T) => {
      await new Promise((r) => setTimeout(r, 1)); // a store answers later
      const result = f(doc);
      topo = parseTopology(JSON.stringify(doc), what);
      router.setTopology(topo);
      return { result, topology: topo, revision: 1, changed: true, conflicts: 0 };
    },
  } as unknown as TopologyStore;
  const services = new HostServices({ host, log: quiet, router, store, egress: () => egress });
  return { doc, router, services, calls, topo: () => topo, tick: (ms: number) => (clock += ms) };
}

test('static egress: the app\'s address for this host\'s region is set, a change replaces it, a removal clears it', async (t) => {
  const s = setup();
  await s.services.syncEgress(s.topo());
  t.deepEqual(s.calls, ['set shop-web 2001:db8:e::100']);
  const d = structuredClone(s.doc);
  (d.apps[0] as Record<string, unknown>).egress = { ams: '2001:db8:e::101', ord: '2001:db8:e::102' };
  await s.services.syncEgress(parseTopology(JSON.stringify(d), 'x'));
  t.deepEqual(s.calls.slice(1), ['clear shop-web', 'set shop-web 2001:db8:e::101'], 'ord\'s is not this host\'s');
  delete (d.apps[0] as Record<string, unknown>).egress;
  await s.services.syncEgress(parseTopology(JSON.stringify(d), 'x'));
  t.deepEqual(s.calls.slice(3), ['clear shop-web']);
  t.deepEqual(s.services.egressOfApps(), {});
});

test('autostart: the router\'s request starts the app\'s machine on this host through the store, once per hold', async (t) => {
  const s = setup((d) => { for (const m of d.machines) if (m.app === 'shop-web') m.state = 'stopped'; });
  const client = s.topo().machine('e2865071b9d412')!; // shop-db on ams1
  const buf = new Uint8Array(256);
  for (const port of [40000, 40001]) { // a second flow while the first edit runs: no second edit
    const p = packet({ src: client.address, dst: addr('fdaa:0:18:0:1::3'), proto: 'tcp', id: port, port: 80, tcpFlags: 0x02 });
    buf.set(p, 16);
    s.router.fromMachine(client, buf, 16, p.length);
  }
  t.is(s.router.services.heldPackets, 2);
  await new Promise((r) => setTimeout(r, 20));
  t.is(s.router.services.heldPackets, 0, 'released once the topology has it started');
  t.is(s.topo().machine('148e21ea235a89')!.state, 'started', 'the one on ams1');
  t.is(s.topo().machine('3d8e0c71a2b95f')!.state, 'stopped');
  t.is(s.services.counts.autostarted, 1);
});

test('autostop: idle machines of this host are stopped through the store, keeping minRunning', async (t) => {
  const s = setup((d) => {
    const web = d.apps.find((a) => a.name === 'shop-web')!;
    (web.services as Record<string, unknown>[])[0].autostop = 60;
    (web.services as Record<string, unknown>[])[0].minRunning = 1;
  });
  s.services.autostop(); // first look: counts from now
  s.tick(61_000);
  s.services.autostop();
  await new Promise((r) => setTimeout(r, 20));
  t.is(s.topo().machine('148e21ea235a89')!.state, 'stopped', 'ams1\'s idle shop-web machine');
  t.is(s.topo().machine('3d8e0c71a2b95f')!.state, 'started', 'ord1\'s is not this host\'s to stop');
  t.is(s.services.counts.autostopped, 1);
  t.like(s.services.status(), { flows: 0, held: 0, autostopped: 1 });
});

// sixpn up follows an edit applied in place from its diff (src/host/sixpn-host.ts): the mesh and
// gateway WireGuard devices (HostWireGuard.apply) and the static egress (HostServices.applyEgress)
// end up as a whole sync of the rebuilt topology leaves them, edit after edit (hosts added,
// changed and removed; this gateway's peers added, re-keyed and removed; apps' egress changed).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { HostServices } from '../src/host/services.ts';
import { HostWireGuard } from '../src/host/wireguard.ts';
import type { Egress } from '../src/host/egress.ts';
import { Router } from '../src/router/router.ts';
import { patchTopology, topologyFromDocument } from '../src/topology/index.ts';
import type { EntryChange, Topology, TopologyStore } from '../src/topology/index.ts';
import { freePort } from './helpers/etcd.ts';

const EXAMPLE = JSON.parse(readFileSync(new URL('../examples/topology.example.json', import.meta.url), 'utf8'));
const quiet = { info() {}, error() {}, warn() {}, debug() {}, child() { return quiet; } } as unknown as import('../src/log.ts').Logger;
const KEY = (i: number) => Buffer.alloc(32, i).toString('base64');

const edits: EntryChange[][] = [
  [{ section: 'hosts', id: 'fra1', entry: { name: 'fra1', id: '0x40', region: 'fra', publicKey: KEY(1), endpoint: '192.0.2.40:51820' } }],
  [{ section: 'hosts', id: 'ord1', entry: { ...EXAMPLE.hosts[1], endpoint: '192.0.2.12:51821' } }],
  [{ section: 'hosts', id: 'fra1', entry: { name: 'fra1', id: '0x40', region: 'fra', publicKey: KEY(2), endpoint: '192.0.2.40:51820' } }],
  [{ section: 'peers', id: 'acme/p1', entry: { name: 'p1', org: 'acme', gateway: 'ams1', publicKey: KEY(3), address: 'fdaa:0:18:a7b:7d:0:b:2/120' } }],
  [{ section: 'peers', id: 'acme/ops-laptop', entry: { ...EXAMPLE.peers[0], publicKey: KEY(4) } }],
  [{ section: 'peers', id: 'acme/p1', entry: undefined }, { section: 'hosts', id: 'fra1', entry: undefined }],
  [{ section: 'apps', id: 'shop-web', entry: { ...EXAMPLE.apps[0], egress: { ams: '2001:db8:e::101' } } }],
  [{ section: 'apps', id: 'shop-db', entry: { ...EXAMPLE.apps[1], egress: { ams: '2001:db8:e::102' } } }, { section: 'apps', id: 'shop-web', entry: undefined }, ...EXAMPLE.machines.filter((m: { app: string }) => m.app === 'shop-web').map((m: { id: string }) => ({ section: 'machines', id: m.id, entry: undefined }))],
];

function wireGuard(t: Topology, port: number): HostWireGuard {
  const host = t.hostByName('ams1')!;
  return new HostWireGuard({
    log: quiet, host, privateKey: new Uint8Array(32).fill(7), listenPort: port,
    fromMesh() {}, fromPeer() {}, afterRound() {},
  });
}

/** What the devices hold: mesh peers (host, endpoint, allowed IPs) and gateway peers (key, /120). */
function devices(wg: HostWireGuard, t: Topology): unknown {
  const mesh = [...wg.meshPeers(t)].map(({ peer, name }) => [name, Buffer.from(peer.publicKey).toString('base64'), peer.endpoint?.toString(), wg.mesh.device.allowedIps.prefixesOf(peer).map((x) => `${Buffer.from(x.addr).toString('hex')}/${x.prefixLen}`)]);
  const gateway = [...wg.gatewayPeers()].map(({ peer, name, org }) => [org, name, Buffer.from(peer.publicKey).toString('base64'), wg.gateway.device.allowedIps.prefixesOf(peer).map((x) => `${Buffer.from(x.addr).toString('hex')}/${x.prefixLen}`)]);
  return { mesh: mesh.map((x) => JSON.stringify(x)).sort(), gateway: gateway.map((x) => JSON.stringify(x)).sort(), devicePeers: [wg.mesh.device.peers.size, wg.gateway.device.peers.size] };
}

test('an edit applied in place leaves the WireGuard devices and the static egress as a whole sync would', async (t) => {
  const doc = structuredClone(EXAMPLE);
  const live = topologyFromDocument(structuredClone(doc), 'live');
  const ports = [await freePort(), await freePort()];
  const incremental = wireGuard(live, ports[0]);
  const calls: string[][] = [[], []];
  const egress = (i: number) => ({
    setAppAddress: async (app: string, a: string) => void calls[i].push(`set ${app} ${a}`),
    clearAppAddress: (app: string) => void calls[i].push(`clear ${app}`),
  }) as unknown as Egress;
  const host = live.hostByName('ams1')!;
  const router = new Router(live, host.id, { toMachine() {}, toMesh() {}, toPeer() {}, toDns() {}, toEgress: () => false });
  const services = [0, 1].map((i) => new HostServices({ host, log: quiet, router, store: {} as TopologyStore, egress: () => egress(i) }));
  incremental.sync(live);
  await services[0].syncEgress(live);
  await services[1].syncEgress(live);
  try {
    for (const batch of edits) {
      for (const c of batch) {
        const list = doc[c.section] as Record<string, unknown>[];
        const at = list.findIndex((e) => (c.section === 'peers' ? `${e.org as string}/${e.name as string}` : (e.name ?? e.id)) === c.id);
        if (c.entry === undefined) list.splice(at, 1);
        else if (at >= 0) list[at] = c.entry as Record<string, unknown>;
        else list.push(c.entry as Record<string, unknown>);
      }
      const r = patchTopology(live, batch, 'p');
      if (!('diff' in r)) return t.fail(`${JSON.stringify(batch)}: ${JSON.stringify(r)}`);
      incremental.apply(r.diff);
      await services[0].applyEgress(r.diff);
      const whole = topologyFromDocument(structuredClone(doc), 'whole');
      const fresh = wireGuard(whole, await freePort());
      try {
        fresh.sync(whole);
        t.deepEqual(devices(incremental, live), devices(fresh, whole), JSON.stringify(batch));
      } finally {
        fresh.closeDevices();
      }
      await services[1].syncEgress(whole);
      t.deepEqual(services[0].egressOfApps(), services[1].egressOfApps(), JSON.stringify(batch));
    }
    t.deepEqual(calls[0], calls[1]);
  } finally {
    incremental.closeDevices();
  }
});

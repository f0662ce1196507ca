// The Topology indexes the router and the DNS server use, checked against a plain scan of the
// example and against random addresses.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { addressBytes } from '../src/ipv6/index.ts';
import { dnsView } from '../src/topology/index.ts';
import { loadTopology } from '../src/store/index.ts';
import type { Topology } from '../src/topology/index.ts';

const EXAMPLE = fileURLToPath(new URL('../examples/topology.example.json', import.meta.url));
const topo = loadTopology(EXAMPLE);
const ids = (ms: readonly { id: string }[]) => ms.map((m) => m.id).sort();

test('by org and by app', (t) => {
  t.deepEqual(topo.appsOfOrg('acme').map((a) => a.name), ['shop-web', 'shop-db']);
  t.deepEqual(topo.appsOfOrg('initech').map((a) => a.name), ['ledger']);
  t.deepEqual(topo.appsOfOrg('nobody'), []);
  t.is(topo.app('ledger')!.org, 'initech');
  t.is(topo.org('acme')!.network, 0x18);
  t.is(topo.orgByNetwork(0x863)!.name, 'initech');
  t.deepEqual(ids(topo.machinesOfApp('shop-web')), ['148e21ea235a89', '3d8e0c71a2b95f', '9080e4d1f2c347']);
  t.is(topo.machinesOfOrg('acme').length, 5);
  t.is(topo.machinesOfOrg('initech').length, 2);
  t.deepEqual(topo.machinesOfApp('nope'), []);
});

test('machines and peers by host', (t) => {
  const ams = topo.hostByName('ams1')!;
  t.deepEqual(ids(topo.machinesOnHost(ams.id)), ['148e21ea235a89', '17811a3b4c5d6e', 'e2865071b9d412']);
  t.is(topo.host(0x0a7b0d6b)!.name, 'ord1');
  t.is(topo.hostByKey(ams.publicKeyBase64), ams);
  t.deepEqual(topo.peersOnGateway(ams.id).map((p) => p.name), ['ops-laptop']);
  t.deepEqual(topo.machinesOnHost(12345), []);
  t.is(topo.machine('148e21ea235a89')!.app, 'shop-web');
  t.is(topo.machine('nope'), undefined);
});

test('machine by address: any address of its /112, current only, network checked', (t) => {
  const m = topo.machine('148e21ea235a89')!;
  t.is(topo.machineAt(m.address), m);
  t.is(topo.machineAt(addressBytes('fdaa:0:18:a7b:7d:f066:b83b:ffff')), m); // same /112
  t.is(topo.machineAt(addressBytes('fdaa:0:863:a7b:7d:f066:b83b:2')), undefined); // other org
  t.is(topo.machineAt(addressBytes('fdab:0:18:a7b:7d:f066:b83b:2')), undefined); // not 6PN
  // At an offset inside a packet buffer.
  const buf = new Uint8Array(40);
  buf.set(m.address, 24);
  t.is(topo.machineAt(buf, 24), m);
  // The old address of the migrated machine is not a current one…
  t.is(topo.machineAt(addressBytes('fdaa:0:18:a7b:bea:0:2:2')), undefined);
  // …but is found as a previous one, with its entry.
  const moved = topo.movedFrom(addressBytes('fdaa:0:18:a7b:bea:0:2:2'))!;
  t.is(moved.machine.id, '5683d920c7e418');
  t.is(moved.previous.host, 0x0a7b0bea);
  t.is(topo.movedFrom(addressBytes('fdaa:0:863:a7b:bea:0:2:2')), undefined);
  t.is(topo.movedFrom(m.address), undefined);
});

test('peer by address: any address in its /120', (t) => {
  const p = topo.peer('acme', 'ops-laptop')!;
  t.is(topo.peerAt(addressBytes('fdaa:0:18:a7b:7d:0:a:2')), p);
  t.is(topo.peerAt(addressBytes('fdaa:0:18:a7b:7d:0:a:ff')), p);
  t.is(topo.peerAt(addressBytes('fdaa:0:18:a7b:7d:0:a:100')), undefined); // next /120
  t.is(topo.peerAt(addressBytes('fdaa:0:863:a7b:7d:0:a:2')), undefined); // other org
  t.is(topo.peerAt(addressBytes('fdaa:0:863:a7b:bea:0:a:1ff'))!.name, 'ci-runner');
  t.deepEqual(topo.peersOfOrg('initech').map((x) => x.name), ['ci-runner']);
  t.is(topo.peer('initech', 'ops-laptop'), undefined);
});

test('org of an address', (t) => {
  t.is(topo.orgOfAddress(addressBytes('fdaa:0:18::3'))!.name, 'acme');
  t.is(topo.orgOfAddress(addressBytes('fdaa:0:863:1:2:3:4:5'))!.name, 'initech');
  t.is(topo.orgOfAddress(addressBytes('fdaa::3')), undefined);
  t.is(topo.orgOfAddress(addressBytes('2001:db8::1')), undefined);
});

// A naive model: scan every machine for the one whose /112 (first 14 bytes) holds the address.
function naiveMachine(t: Topology, a: Uint8Array) {
  return t.machines.find((m) => m.address.subarray(0, 14).every((b, j) => b === a[j]));
}

test('machineAt and peerAt agree with a scan over random addresses near the example', (t) => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const bases = [...topo.machines.map((m) => m.address), ...topo.peers.map((p) => p.address)];
  for (let i = 0; i < 5000; i++) {
    const a = bases[rnd(bases.length)].slice();
    const k = rnd(4);
    if (k === 0) a[rnd(16)] ^= 1 << rnd(8); // flip a bit anywhere
    else if (k === 1) a[15] = rnd(256); // stay in the /112 (or leave a /120)
    else if (k === 2) a[14] = rnd(256);
    const m = topo.machineAt(a);
    t.is(m, naiveMachine(topo, a));
    const p = topo.peerAt(a);
    const np = topo.peers.find((x) => x.prefix.subarray(0, 15).every((b, j) => b === a[j]));
    t.is(p, np);
  }
});

test('the DNS view: asker by source, apps, machines of an app in the asker\'s org only, peers', (t) => {
  const view = dnsView(() => topo);
  t.deepEqual(view.askerOf(addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2')), { org: 'acme', region: 'ams' });
  t.deepEqual(view.askerOf(addressBytes('fdaa:0:863:a7b:bea:0:a:102')), { org: 'initech', region: 'syd' });
  t.is(view.askerOf(addressBytes('fdaa:0:18:a7b:7d:0:99:2')), undefined);
  t.deepEqual([...view.apps('acme')], ['shop-web', 'shop-db']);
  t.is([...view.machines('acme', 'shop-web')].length, 3);
  t.deepEqual([...view.machines('initech', 'shop-web')], []); // not across orgs
  const stopped = [...view.machines('acme', 'shop-web')].find((m) => m.id === '9080e4d1f2c347')!;
  t.false(stopped.started);
  t.deepEqual([...view.peers('acme')].map((p) => p.name), ['ops-laptop']);
});

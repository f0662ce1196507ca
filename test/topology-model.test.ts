// The example topology loads, and the addresses derived from it follow the 6PN layout
// fdaa | network 32 | host 32 | instance 32 | ::2 (DESIGN.md "Addresses", seeds 003, 004).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deriveMachineAddress, formatEndpoint, formatId32, parseEndpoint, parseId32 } from '../src/topology/index.ts';
import { loadTopology } from '../src/store/index.ts';

const EXAMPLE = fileURLToPath(new URL('../examples/topology.example.json', import.meta.url));

// 16 bytes from 8 hex words, written out by hand.
function words(...w: number[]): Uint8Array {
  const b = new Uint8Array(16);
  w.forEach((x, i) => {
    b[2 * i] = x >>> 8;
    b[2 * i + 1] = x & 0xff;
  });
  return b;
}

test('the example file loads: 3 hosts, 2 orgs, 3 apps, 7 machines, 2 peers', (t) => {
  const topo = loadTopology(EXAMPLE);
  t.is(topo.hosts.length, 3);
  t.is(topo.orgs.length, 2);
  t.is(topo.apps.length, 3);
  t.is(topo.machines.length, 7);
  t.is(topo.peers.length, 2);
  t.true(new Set(topo.machines.map((m) => m.region)).size >= 3);
  t.is(topo.source, EXAMPLE);
});

test('machine addresses are fdaa | network | host | instance | ::2, checked by hand', (t) => {
  const topo = loadTopology(EXAMPLE);
  // acme is network 0x18; ams1 is host 0x0a7b007d; the machine has instance 0xf066b83b.
  const a = topo.machine('148e21ea235a89')!;
  t.is(a.network, 0x18);
  t.is(a.host, 0x0a7b007d);
  t.is(a.instance, 0xf066b83b);
  t.deepEqual(a.address, words(0xfdaa, 0x0000, 0x0018, 0x0a7b, 0x007d, 0xf066, 0xb83b, 0x0002));
  t.is(a.addressText, 'fdaa:0:18:a7b:7d:f066:b83b:2'); // the seeds' own example
  // initech is network 0x863 ("0:863"), syd1 is 0x0a7b0bea, instance 0x11.
  const b = topo.machine('6e825d0f1a9c3b')!;
  t.deepEqual(b.address, words(0xfdaa, 0x0000, 0x0863, 0x0a7b, 0x0bea, 0x0000, 0x0011, 0x0002));
  t.is(b.addressText, 'fdaa:0:863:a7b:bea:0:11:2');
  t.is(b.org, 'initech');
});

test('a migrated machine has a new address and keeps the old one with its old host', (t) => {
  const topo = loadTopology(EXAMPLE);
  const m = topo.machine('5683d920c7e418')!;
  t.is(m.addressText, 'fdaa:0:18:a7b:d6b:0:2:2'); // now on ord1 (a7b:d6b)
  t.is(m.previous.length, 1);
  t.is(m.previous[0].text, 'fdaa:0:18:a7b:bea:0:2:2');
  t.is(m.previous[0].host, 0x0a7b0bea); // syd1
  t.deepEqual(m.previous[0].address, words(0xfdaa, 0, 0x18, 0x0a7b, 0x0bea, 0, 2, 2));
});

test('peers: the /120 and the interface address as written', (t) => {
  const topo = loadTopology(EXAMPLE);
  const p = topo.peer('initech', 'ci-runner')!;
  t.is(p.addressText, 'fdaa:0:863:a7b:bea:0:a:102');
  t.is(p.prefixText, 'fdaa:0:863:a7b:bea:0:a:100/120');
  t.is(p.gateway, 0x0a7b0bea);
  t.is(p.publicKey.length, 32);
});

test('host fields: key bytes, endpoints of both families, optional egress', (t) => {
  const topo = loadTopology(EXAMPLE);
  const ams = topo.hostByName('ams1')!;
  t.is(ams.id, 0x0a7b007d);
  t.is(ams.publicKey.length, 32);
  t.is(Buffer.from(ams.publicKey).toString('base64'), ams.publicKeyBase64);
  t.deepEqual(ams.endpoint, { address: '192.0.2.11', port: 51820, family: 4 });
  t.deepEqual(topo.hostByName('ord1')!.endpoint, { address: '2001:db8::12', port: 51820, family: 6 });
  t.truthy(ams.egress);
  t.is(topo.hostByName('syd1')!.egress, undefined);
  // Every JSON machine entry in the file is as the loaded one: the file really is the source.
  const doc = JSON.parse(readFileSync(EXAMPLE, 'utf8'));
  t.deepEqual(doc.machines.map((m: { id: string }) => m.id), topo.machines.map((m) => m.id));
});

test('deriveMachineAddress agrees with the hand layout at the extremes', (t) => {
  t.deepEqual(deriveMachineAddress(0xffffffff, 1, 0), words(0xfdaa, 0xffff, 0xffff, 0, 1, 0, 0, 2));
  t.deepEqual(deriveMachineAddress(1, 0xffffffff, 0x12345678), words(0xfdaa, 0, 1, 0xffff, 0xffff, 0x1234, 0x5678, 2));
});

test('32-bit ids: integers, 0x hex and address groups', (t) => {
  t.is(parseId32(24), 24);
  t.is(parseId32('0x18'), 0x18);
  t.is(parseId32('0:18'), 0x18);
  t.is(parseId32('a7b:7d'), 0x0a7b007d);
  t.is(parseId32('ffff:ffff'), 0xffffffff);
  t.is(parseId32('0xFFFFFFFF'), 0xffffffff);
  for (const bad of [-1, 2 ** 32, 1.5, '18', '0x', '0x123456789', 'a7b:7d:1', '10000:1', null, true]) {
    t.is(parseId32(bad), undefined, String(bad));
  }
  t.is(formatId32(0x0a7b007d), 'a7b:7d');
  t.is(formatId32(0x18), '0:18');
});

test('endpoints: ip:port and [ipv6]:port, with and without a default port', (t) => {
  t.deepEqual(parseEndpoint('192.0.2.1:51820'), { address: '192.0.2.1', port: 51820, family: 4 });
  t.deepEqual(parseEndpoint('[2001:DB8:0::1]:1'), { address: '2001:db8::1', port: 1, family: 6 });
  t.deepEqual(parseEndpoint('2001:db8::53', 53), { address: '2001:db8::53', port: 53, family: 6 });
  t.deepEqual(parseEndpoint('192.0.2.53', 53), { address: '192.0.2.53', port: 53, family: 4 });
  t.is(formatEndpoint({ address: '2001:db8::1', port: 7, family: 6 }), '[2001:db8::1]:7');
  for (const bad of ['192.0.2.1', '192.0.2.1:0', '192.0.2.1:65536', '192.0.2.1:080', '256.0.2.1:1',
    '[2001:db8::1]', '2001:db8::1', 'host:51820', '[192.0.2.1]:1', '[fe80::1%eth0]:1']) {
    t.is(typeof parseEndpoint(bad), 'string', bad);
  }
});

// Validation: every kind of problem is reported with the file, the entry and what is wrong,
// all problems are collected, and one broken entry does not cascade into its references.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TopologyError, parseTopology, topologyFromDocument, validateTopology } from '../src/topology/index.ts';

const EXAMPLE = fileURLToPath(new URL('../examples/topology.example.json', import.meta.url));
const FILE = '/etc/sixpn/topology.json';
type Doc = Record<string, any>;
const example = (): Doc => JSON.parse(readFileSync(EXAMPLE, 'utf8'));
const KEY = 'Z3+s6NvJ8m2n8D0oY0nGjqN8lqQm4QmM2rRr2m0kT3o='; // a key no entry uses

function refuse(edit: (d: Doc) => void): TopologyError {
  const d = example();
  edit(d);
  const err = (() => {
    try {
      topologyFromDocument(d, FILE);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  if (!(err instanceof TopologyError)) throw new Error('the edit was accepted');
  return err;
}

// [what, edit, entry, problem]: exactly one problem, naming the entry and matching the text.
const CASES: [string, (d: Doc) => void, string, RegExp][] = [
  ['duplicate org name', (d) => d.orgs.push({ name: 'acme', network: 99 }), 'orgs[2] "acme"', /duplicate org name "acme"/],
  ['duplicate network id', (d) => d.orgs.push({ name: 'umbrella', network: 24 }), 'orgs[2] "umbrella"', /network: 0:18 is already the network of org "acme"/],
  ['reserved network 0', (d) => d.orgs.push({ name: 'umbrella', network: '0x0' }), 'orgs[2] "umbrella"', /network: 0 is reserved/],
  ['bad network id', (d) => d.orgs.push({ name: 'umbrella', network: '18' }), 'orgs[2] "umbrella"', /network: "18" is not a 32-bit id/],
  ['bad org name', (d) => d.orgs.push({ name: 'Umbrella', network: 99 }), 'orgs[2] "Umbrella"', /name: "Umbrella" is not a lower-case DNS label/],
  ['duplicate host id', (d) => (d.hosts[1].id = '0x0a7b007d'), 'hosts[1] "ord1"', /id: a7b:7d is already the id of host "ams1"/],
  ['duplicate host name', (d) => d.hosts.push({ ...d.hosts[2], id: 99, publicKey: KEY, endpoint: '192.0.2.99:1', name: 'ord1' }), 'hosts[3] "ord1"', /duplicate host name "ord1"/],
  ['host id 0', (d) => d.hosts.push({ ...d.hosts[0], name: 'lhr1', id: 0, publicKey: KEY, endpoint: '192.0.2.99:1', egress: undefined }), 'hosts[3] "lhr1"', /id: 0 is reserved/],
  ['bad key', (d) => (d.hosts[0].publicKey = 'not-a-key'), 'hosts[0] "ams1"', /publicKey: key is not 32 bytes of base64/],
  ['reused key', (d) => (d.peers[0].publicKey = d.hosts[1].publicKey), 'peers[0] "ops-laptop"', /publicKey: the same key as host "ord1"/],
  ['endpoint without port', (d) => (d.hosts[0].endpoint = '192.0.2.11'), 'hosts[0] "ams1"', /endpoint: "192.0.2.11" has no port/],
  ['endpoint bad port', (d) => (d.hosts[0].endpoint = '192.0.2.11:99999'), 'hosts[0] "ams1"', /endpoint: .* bad port/],
  ['endpoint bad address', (d) => (d.hosts[1].endpoint = '[2001:db8::zz]:51820'), 'hosts[1] "ord1"', /endpoint: .* not an IPv4 or \[IPv6\] address/],
  ['duplicate endpoint', (d) => (d.hosts[2].endpoint = '192.0.2.11:51820'), 'hosts[2] "syd1"', /endpoint: 192.0.2.11:51820 is also the endpoint of host "ams1"/],
  ['6PN egress', (d) => (d.hosts[0].egress = 'fdaa::11'), 'hosts[0] "ams1"', /egress: "fdaa::11" is a 6PN address/],
  ['bad egress', (d) => (d.hosts[0].egress = '2001:db8:::1'), 'hosts[0] "ams1"', /egress: "2001:db8:::1" is not an IPv6 address/],
  ['bad region', (d) => (d.hosts[0].region = 'amsterdam'), 'hosts[0] "ams1"', /region: "amsterdam" is not a three-letter region code/],
  ['app of an unknown org', (d) => (d.apps[2].org = 'umbrella'), 'apps[2] "ledger"', /org: unknown org "umbrella"/],
  ['duplicate app name', (d) => d.apps.push({ name: 'shop-web', org: 'initech' }), 'apps[3] "shop-web"', /duplicate app name "shop-web"/],
  ['bad machine id', (d) => (d.machines[0].id = '148E21EA235A89'), 'machines[0] "148E21EA235A89"', /id: "148E21EA235A89" is not a machine id/],
  ['short machine id', (d) => (d.machines[0].id = '148e21'), 'machines[0] "148e21"', /is not a machine id \(14 characters/],
  ['duplicate machine id', (d) => (d.machines[1].id = d.machines[0].id), 'machines[1] "148e21ea235a89"', /duplicate machine id "148e21ea235a89"/],
  ['unknown app', (d) => (d.machines[0].app = 'shop-api'), 'machines[0] "148e21ea235a89"', /app: unknown app "shop-api"/],
  ['unknown host', (d) => (d.machines[0].host = 'lhr1'), 'machines[0] "148e21ea235a89"', /host: unknown host "lhr1"/],
  ['instance collision on a host', (d) => (d.machines[3].instance = '0xf066b83b'), 'machines[3] "e2865071b9d412"', /instance: f066:b83b is already used on host "ams1" by machine "148e21ea235a89"/],
  ['instance collision across orgs', (d) => (d.machines[5].instance = 1), 'machines[5] "17811a3b4c5d6e"', /instance: 0:1 is already used on host "ams1" by machine "e2865071b9d412"/],
  ['bad instance', (d) => (d.machines[0].instance = -1), 'machines[0] "148e21ea235a89"', /instance: -1 is not a 32-bit id/],
  ['region not its host\'s', (d) => (d.machines[0].region = 'syd'), 'machines[0] "148e21ea235a89"', /region: "syd" is not the region of its host "ams1" \("ams"\)/],
  ['host id 0:1 (the service block)', (d) => (d.hosts[2].id = '0:1'), 'hosts[2] "syd1"', /id: 0:1 is reserved \(service addresses/],
  ['previous address in the service block', (d) => (d.machines[0].previous = ['fdaa:0:18:0:1:0:0:2']), 'machines[0] "148e21ea235a89"', /previous\[0\]: fdaa:0:18:0:1::2 is not a machine address/],
  ['peer instance 0', (d) => (d.peers[0].address = 'fdaa:0:18:a7b:7d:0:0:2/120'), 'peers[0] "ops-laptop"', /address: fdaa:0:18:a7b:7d::2\/120 has instance 0, reserved/],
  ['machine instance 0', (d) => (d.machines[0].instance = 0), 'machines[0] "148e21ea235a89"', /instance: 0 is reserved/],
  ['service outside every org', (d) => (d.apps[0].services[0].address = 'fdaa:0:99:0:1::3'), 'apps[0] "shop-web"', /services\[0\]: address: fdaa:0:99:0:1::3 is not in the \/48 of any org/],
  ['service outside the block', (d) => (d.apps[0].services[0].address = 'fdaa:0:18:a7b:7d:f066:b83b:2'), 'apps[0] "shop-web"', /services\[0\]: address: .* is not a service address \(fdaa:0:18:0:1::N/],
  ['service N 0', (d) => (d.apps[0].services[0].address = 'fdaa:0:18:0:1::'), 'apps[0] "shop-web"', /is not a service address/],
  ['service address twice', (d) => (d.apps[2].services[0].address = 'fdaa:0:18:0:1::3'), 'apps[2] "ledger"', /address: fdaa:0:18:0:1::3 is also a service address of app "shop-web"/],
  ['service bad port', (d) => (d.apps[0].services[0].ports = ['80/sctp']), 'apps[0] "shop-web"', /ports: "80\/sctp" is not "PORT\/tcp" or "PORT\/udp"/],
  ['service port twice', (d) => (d.apps[0].services[0].ports = ['80/tcp', '80/tcp']), 'apps[0] "shop-web"', /ports: 80\/tcp is listed twice/],
  ['service no ports', (d) => (d.apps[0].services[0].ports = []), 'apps[0] "shop-web"', /ports: \[\] is not a non-empty array/],
  ['service bad autostop', (d) => (d.apps[0].services[0].autostop = -5), 'apps[0] "shop-web"', /autostop: -5 is not 0-86400 seconds/],
  ['service unknown field', (d) => (d.apps[0].services[0].proxy = true), 'apps[0] "shop-web"', /services\[0\]: unknown field "proxy"/],
  ['app egress is a host\'s', (d) => (d.apps[0].egress.ams = '2001:db8:e::11'), 'apps[0] "shop-web"', /egress: "ams": "2001:db8:e::11" is also the egress address of host "ams1"/],
  ['app egress 6PN', (d) => (d.apps[1].egress = { ord: 'fdaa::9' }), 'apps[1] "shop-db"', /egress: "ord": "fdaa::9" is a 6PN address/],
  ['bad state', (d) => (d.machines[0].state = 'running'), 'machines[0] "148e21ea235a89"', /state: "running" is not "started" or "stopped"/],
  ['bad process group', (d) => (d.machines[0].processGroup = 'Web_1'), 'machines[0] "148e21ea235a89"', /processGroup: "Web_1" is not a lower-case DNS label/],
  ['bad metadata', (d) => (d.machines[3].metadata = { role: 5 }), 'machines[3] "e2865071b9d412"', /metadata: value of "role" must be a string/],
  ['previous outside the org', (d) => (d.machines[4].previous[0].address = 'fdaa:0:863:a7b:bea:0:2:2'), 'machines[4] "5683d920c7e418"', /previous\[0\]: fdaa:0:863:a7b:bea:0:2:2 is outside org "acme" \(fdaa:0:18::\/48\)/],
  ['previous on another host', (d) => (d.machines[4].previous[0].host = 'ams1'), 'machines[4] "5683d920c7e418"', /previous\[0\]: fdaa:0:18:a7b:bea:0:2:2 was not on host "ams1" \(a7b:7d\); its host field is a7b:bea/],
  ['previous not a ::2', (d) => (d.machines[4].previous[0].address = 'fdaa:0:18:a7b:bea:0:2:7'), 'machines[4] "5683d920c7e418"', /is not a machine address/],
  ['previous is its current address', (d) => d.machines[4].previous.push('fdaa:0:18:a7b:d6b:0:2:2'), 'machines[4] "5683d920c7e418"', /previous\[1\]: fdaa:0:18:a7b:d6b:0:2:2 is the machine's current address/],
  ['previous is another machine\'s address', (d) => (d.machines[4].previous[0] = 'fdaa:0:18:a7b:7d:f066:b83b:2'), 'machines[4] "5683d920c7e418"', /previous\[0\]: fdaa:0:18:a7b:7d:f066:b83b:2 is the current address of machine "148e21ea235a89"/],
  ['previous of two machines', (d) => (d.machines[0].previous = ['fdaa:0:18:a7b:bea:0:2:2']), 'machines[4] "5683d920c7e418"', /is a previous address of machine "148e21ea235a89"/],
  ['peer /120 outside its org', (d) => (d.peers[0].address = 'fdaa:0:863:a7b:7d:0:a:2/120'), 'peers[0] "ops-laptop"', /address: fdaa:0:863:a7b:7d:0:a:2\/120 is outside org "acme"/],
  ['peer not a /120', (d) => (d.peers[0].address = 'fdaa:0:18:a7b:7d:0:a:2/112'), 'peers[0] "ops-laptop"', /address: .* must be a \/120/],
  ['peer address not a CIDR', (d) => (d.peers[0].address = 'fdaa:0:18:a7b:7d:0:a:2'), 'peers[0] "ops-laptop"', /is not an IPv6 address\/length/],
  ['peer /120 not on its gateway', (d) => (d.peers[0].gateway = 'syd1'), 'peers[0] "ops-laptop"', /its host field is a7b:7d, the gateway's id a7b:bea/],
  ['overlapping /120s', (d) => d.peers.push({ ...d.peers[0], name: 'ops-2', publicKey: KEY, address: 'fdaa:0:18:a7b:7d:0:a:42/120' }), 'peers[2] "ops-2"', /overlaps fdaa:0:18:a7b:7d:0:a:0\/120 of peer "ops-laptop"/],
  ['/120 in a machine\'s /112', (d) => (d.peers[0].address = 'fdaa:0:18:a7b:7d:0:1:102/120'), 'peers[0] "ops-laptop"', /lies in the \/112 of machine "e2865071b9d412"/],
  ['/120 on an instance of another org', (d) => (d.peers[0].address = 'fdaa:0:18:a7b:7d:0:10:2/120'), 'peers[0] "ops-laptop"', /instance 0:10 .* already used on host "ams1" by machine "17811a3b4c5d6e"/],
  ['bad peer name', (d) => (d.peers[0].name = 'ops_laptop'), 'peers[0] "ops_laptop"', /name: "ops_laptop" is not a peer name/],
  ['duplicate peer name in an org', (d) => d.peers.push({ ...d.peers[0], publicKey: KEY, address: 'fdaa:0:18:a7b:7d:0:b:2/120' }), 'peers[2] "ops-laptop"', /duplicate peer name "ops-laptop" in org "acme"/],
  ['peer of an unknown org', (d) => (d.peers[1].org = 'umbrella'), 'peers[1] "ci-runner"', /org: unknown org "umbrella"/],
  ['peer on an unknown gateway', (d) => (d.peers[1].gateway = 'lhr1'), 'peers[1] "ci-runner"', /gateway: unknown host "lhr1"/],
  ['unknown field', (d) => (d.machines[2].stat = 'stopped'), 'machines[2] "9080e4d1f2c347"', /unknown field "stat"/],
  ['missing field', (d) => delete d.machines[2].instance, 'machines[2] "9080e4d1f2c347"', /missing "instance"/],
  ['entry not an object', (d) => d.apps.push('web'), 'apps[3]', /must be a JSON object/],
  ['section not an array', (d) => (d.peers = {}), 'peers', /must be an array/],
  ['wrong version', (d) => (d.version = 2), 'version', /must be 1, found 2/],
  ['unknown top-level key', (d) => (d.machine = []), '(document)', /unknown key "machine"/],
];

for (const [what, edit, entry, problem] of CASES) {
  test(`refused: ${what}`, (t) => {
    const err = refuse(edit);
    t.is(err.problems.length, 1, err.message);
    const p = err.problems[0];
    t.is(p.file, FILE);
    t.is(p.entry, entry);
    t.regex(p.message, problem);
    // The message names the file, the entry and the problem on one line.
    t.true(err.message.includes(`${FILE}: ${entry}: ${p.message}`), err.message);
    t.is(err.code, 'ETOPOLOGY');
  });
}

test('every problem is collected, in file order', (t) => {
  const err = refuse((d) => {
    d.hosts[0].publicKey = 'x';
    d.apps[0].org = 'umbrella';
    d.machines[0].host = 'lhr1';
    d.machines[1].state = 'up';
    d.machines[6].instance = 'zz';
    d.peers[1].address = 'fdaa:0:18:a7b:bea:0:a:102/120';
  });
  t.deepEqual(err.problems.map((p) => p.entry), [
    'hosts[0] "ams1"',
    'apps[0] "shop-web"',
    'machines[0] "148e21ea235a89"', // unknown host (its app is broken: not reported again)
    'machines[1] "3d8e0c71a2b95f"',
    'machines[6] "6e825d0f1a9c3b"',
    'peers[1] "ci-runner"',
  ]);
  t.regex(err.message, /refused, 6 problems/);
  t.is(err.message.split('\n').length, 7);
});

test('a broken entry is not reported again by the entries that refer to it', (t) => {
  // The org is invalid: its apps, machines and peers are not "unknown org" errors.
  const err = refuse((d) => (d.orgs[0].network = 'zz'));
  t.is(err.problems.length, 1, err.message);
  t.is(err.problems[0].entry, 'orgs[0] "acme"');
  const err2 = refuse((d) => (d.hosts[0].region = 'x'));
  t.is(err2.problems.length, 1, err2.message);
});

test('not JSON, or half a file, is one problem naming the document', (t) => {
  const text = readFileSync(EXAMPLE, 'utf8');
  for (const bad of [text.slice(0, text.length / 2), '', '[1, 2]']) {
    const err = t.throws(() => parseTopology(bad, FILE), { instanceOf: TopologyError })!;
    t.is(err.problems.length, 1);
    t.is(err.problems[0].entry, '(document)');
    t.regex(err.message, new RegExp(`${FILE}: \\(document\\): (not valid JSON|the file is empty|the top level)`));
  }
});

test('an empty topology is valid; the example is accepted as is', (t) => {
  t.deepEqual(validateTopology({ version: 1 }, FILE).problems, []);
  t.deepEqual(validateTopology(example(), FILE).problems, []);
});

test('a machine\'s region is its host\'s: left out, it is taken from the host; a move brings the new host\'s', async (t) => {
  const d = example();
  delete d.machines[0].region;
  const topo = topologyFromDocument(d, FILE);
  t.is(topo.machine('148e21ea235a89')!.region, 'ams');
  const { moveMachine } = await import('../src/topology/index.ts');
  const moved = topologyFromDocument(moveMachine(example(), '148e21ea235a89', 'syd1'), FILE);
  t.is(moved.machine('148e21ea235a89')!.region, 'syd');
});

test('service addresses: indexed by address and by the org that reaches them', (t) => {
  const topo = topologyFromDocument(example(), FILE);
  const a = new Uint8Array(16);
  a.set(Buffer.from('fdaa0000001800000001000000000003', 'hex'));
  t.is(topo.serviceAt(a)!.app, 'shop-web');
  t.deepEqual(topo.serviceAt(a)!.ports, [{ port: 80, protocol: 'tcp' }]);
  a[15] = 4;
  const ledger = topo.serviceAt(a)!;
  t.deepEqual([ledger.app, ledger.org, ledger.clientOrg, ledger.autostart], ['ledger', 'initech', 'acme', false]);
  t.deepEqual(topo.servicesForOrg('acme').map((s) => s.app), ['shop-web', 'ledger']);
  t.deepEqual(topo.servicesForOrg('initech'), []);
  t.deepEqual(topo.app('shop-web')!.egress.map((e) => [e.region, e.text]), [['ams', '2001:db8:e::100']]);
});

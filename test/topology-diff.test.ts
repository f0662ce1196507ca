// Diffs between topologies for the edits the router acts on, made with the document edit
// helpers: machine added, stopped, started, moved, removed; host added and removed.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  describeDiff,
  diffTopology,
  moveMachine,
  removeMachine,
  setMachineState,
  topologyFromDocument,
} from '../src/topology/index.ts';
import type { TopologyDiff } from '../src/topology/index.ts';

const EXAMPLE = fileURLToPath(new URL('../examples/topology.example.json', import.meta.url));
type Doc = Record<string, any>;
const example = (): Doc => JSON.parse(readFileSync(EXAMPLE, 'utf8'));
const load = (d: Doc) => topologyFromDocument(d, 'test.json');

// The counts of every list of a diff, flat, for exact comparisons.
function counts(d: TopologyDiff): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [kind, e] of Object.entries(d)) {
    if (typeof e !== 'object') continue;
    for (const [k, v] of Object.entries(e as object)) if ((v as unknown[]).length) out[`${kind}.${k}`] = (v as unknown[]).length;
  }
  return out;
}

test('no change, no diff', (t) => {
  const d = diffTopology(load(example()), load(example()));
  t.true(d.empty);
  t.deepEqual(counts(d), {});
  t.deepEqual(describeDiff(d), []);
});

test('machine added', (t) => {
  const doc = example();
  doc.machines.push({ id: 'aaaaaaaaaaaaaa', app: 'ledger', region: 'ord', host: 'ord1', instance: 5 });
  const d = diffTopology(load(example()), load(doc));
  t.deepEqual(counts(d), { 'machines.added': 1 });
  t.is(d.machines.added[0].addressText, 'fdaa:0:863:a7b:d6b:0:5:2');
  t.false(d.empty);
  t.deepEqual(describeDiff(d), ['machine aaaaaaaaaaaaaa added (ledger, fdaa:0:863:a7b:d6b:0:5:2, started)']);
});

test('machine stopped, then started', (t) => {
  const a = example();
  const b = setMachineState(a, '148e21ea235a89', 'stopped');
  const d1 = diffTopology(load(a), load(b));
  t.deepEqual(counts(d1), { 'machines.stopped': 1 });
  t.false(d1.machines.stopped[0].started);
  const d2 = diffTopology(load(b), load(setMachineState(b, '148e21ea235a89', 'started')));
  t.deepEqual(counts(d2), { 'machines.started': 1 });
  t.is(d2.machines.started[0].id, '148e21ea235a89');
  t.is(a.machines[0].state, 'started'); // the edits copy the document
});

test('machine moved to another host: new address, the old one kept in previous', (t) => {
  const a = example();
  const b = moveMachine(a, '148e21ea235a89', 'syd1');
  const before = load(a);
  const after = load(b);
  const d = diffTopology(before, after);
  t.deepEqual(counts(d), { 'machines.moved': 1 });
  const { before: m0, after: m1 } = d.machines.moved[0];
  t.is(m0.addressText, 'fdaa:0:18:a7b:7d:f066:b83b:2');
  t.is(m1.addressText, 'fdaa:0:18:a7b:bea:f066:b83b:2'); // same instance, host field now syd1
  t.deepEqual(m1.previous.map((p) => [p.text, p.host]), [['fdaa:0:18:a7b:7d:f066:b83b:2', 0x0a7b007d]]);
  // The router finds it under both addresses.
  t.is(after.machineAt(m1.address)!.id, m1.id);
  t.is(after.movedFrom(m0.address)!.machine.id, m1.id);
  t.regex(describeDiff(d)[0], /machine 148e21ea235a89 moved fdaa:0:18:a7b:7d:f066:b83b:2 → fdaa:0:18:a7b:bea:f066:b83b:2/);
});

test('a move picks a free instance on a host where the old one is taken, and moving back drops the entry', (t) => {
  const a = example();
  // e2865071b9d412 is instance 1 on ams1; ord1 has instances 0x7d01 and 2, so 1 stays free there…
  const b = moveMachine(a, 'e2865071b9d412', 'ord1');
  t.is(load(b).machine('e2865071b9d412')!.addressText, 'fdaa:0:18:a7b:d6b:0:1:2');
  // …while 5683d920c7e418 (instance 2 on ord1) moving to syd1 finds 2 used by its own previous
  // address there: that is the address it returns to, so it takes it and the entry goes.
  const c = moveMachine(a, '5683d920c7e418', 'syd1');
  const m = load(c).machine('5683d920c7e418')!;
  t.is(m.addressText, 'fdaa:0:18:a7b:bea:0:2:2');
  t.deepEqual(m.previous.map((p) => p.text), ['fdaa:0:18:a7b:d6b:0:2:2']);
  // An instance already used on the target host is replaced by the lowest free one: on syd1,
  // 1 is taken by a new machine and 2 by the previous address of 5683d920c7e418.
  const x = structuredClone(a);
  x.machines.push({ id: 'bbbbbbbbbbbbbb', app: 'ledger', region: 'syd', host: 'syd1', instance: 1 });
  t.is(load(moveMachine(x, 'e2865071b9d412', 'syd1')).machine('e2865071b9d412')!.instance, 3);
  // An explicit instance that is taken is refused, naming the problem.
  t.throws(() => moveMachine(a, '3d8e0c71a2b95f', 'ams1', 1), { message: /already used on host "ams1"/ });
  t.throws(() => moveMachine(a, '3d8e0c71a2b95f', 'ord1'), { message: /already on host "ord1"/ });
  t.throws(() => moveMachine(a, 'zzzzzzzzzzzzzz', 'ord1'), { message: /no machine/ });
});

test('machine removed, updated and moved across orgs', (t) => {
  const a = example();
  const d1 = diffTopology(load(a), load(removeMachine(a, '9080e4d1f2c347')));
  t.deepEqual(counts(d1), { 'machines.removed': 1 });
  t.is(d1.machines.removed[0].id, '9080e4d1f2c347');
  const b = structuredClone(a);
  b.machines[3].metadata = { role: 'replica' };
  b.machines[0].state = 'stopped';
  const d2 = diffTopology(load(a), load(b));
  t.deepEqual(counts(d2), { 'machines.updated': 1, 'machines.stopped': 1 });
  t.is(d2.machines.updated[0].before.metadata.role, 'primary');
  t.is(d2.machines.updated[0].after.metadata.role, 'replica');
  // Dropping an old address (the rewrite ends) is an update.
  const b2 = structuredClone(a);
  b2.machines[4].previous = [];
  const d4 = diffTopology(load(a), load(b2));
  t.deepEqual(counts(d4), { 'machines.updated': 1 });
  t.is(d4.machines.updated[0].before.previous.length, 1);
  // An app moved to another org: its machines change address (and the app is updated).
  // Old addresses stay in their org (no rewriting across orgs), so the migrated one is dropped.
  const c = structuredClone(a);
  c.apps[1].org = 'initech';
  t.throws(() => load(c), { message: /previous\[0\]: .* is outside org "initech"/ });
  delete c.machines[4].previous;
  const d3 = diffTopology(load(a), load(c));
  t.deepEqual(counts(d3), { 'machines.moved': 2, 'apps.updated': 1 });
  t.is(d3.machines.moved[0].after.org, 'initech');
});

test('host added, host removed (with what ran on it)', (t) => {
  const a = example();
  const b = structuredClone(a);
  b.hosts.push({ name: 'lhr1', id: 'a7b:1', region: 'lhr', endpoint: '192.0.2.14:51820',
    publicKey: 'Z3+s6NvJ8m2n8D0oY0nGjqN8lqQm4QmM2rRr2m0kT3o=' });
  const d1 = diffTopology(load(a), load(b));
  t.deepEqual(counts(d1), { 'hosts.added': 1 });
  t.is(d1.hosts.added[0].id, 0x0a7b0001);
  t.deepEqual(describeDiff(d1), ['host lhr1 added']);

  // syd1 goes: its machines and its gateway peer go with it; the previous entry naming syd1
  // switches to the host id, which stays valid without the host.
  const c = structuredClone(a);
  c.hosts = c.hosts.filter((h: Doc) => h.name !== 'syd1');
  c.machines = c.machines.filter((m: Doc) => m.host !== 'syd1');
  c.peers = c.peers.filter((p: Doc) => p.gateway !== 'syd1');
  c.machines.find((m: Doc) => m.id === '5683d920c7e418').previous[0].host = 'a7b:bea';
  const d2 = diffTopology(load(a), load(c));
  t.deepEqual(counts(d2), { 'hosts.removed': 1, 'machines.removed': 2, 'peers.removed': 1 });
  t.is(d2.hosts.removed[0].name, 'syd1');

  // A host whose key or endpoint changes is updated, not removed and added.
  const e = structuredClone(a);
  e.hosts[0].endpoint = '192.0.2.111:51820';
  t.deepEqual(counts(diffTopology(load(a), load(e))), { 'hosts.updated': 1 });
});

// Incremental machine edits (src/topology/patch.ts) against the whole-document path: on random
// sequences of edits of the example (start, stop, move to another host with the old address
// in `previous`, a new instance (some a peer's), removal, additions with random host and instance,
// previous addresses that are someone else's current or previous one), the patch accepts exactly what the whole validation accepts,
// then the patched topology equals the rebuilt one (digest and every index the router and DNS
// use), and a refused patch leaves it unchanged.
import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { patchTopology, topologyDigest, topologyFromDocument } from '../src/topology/index.ts';
import type { Topology } from '../src/topology/index.ts';

/** patchTopology of machine entries only (`entry` undefined: removed); an edit of machines never needs the whole document. */
function patchMachines(t: Topology, changes: ReadonlyArray<{ id: string; entry: unknown }>, file: string) {
  const r = patchTopology(t, changes.map((c) => ({ section: 'machines' as const, id: c.id, entry: c.entry })), file);
  if ('whole' in r) throw new Error(`an edit of machines needs the whole document: ${r.whole}`);
  return r;
}

const EXAMPLE = JSON.parse(readFileSync(fileURLToPath(new URL('../examples/topology.example.json', import.meta.url)), 'utf8'));
type Entry = Record<string, unknown>;
type Doc = { hosts: Entry[]; machines: Entry[] } & Entry;

const build = (doc: Doc): Topology | undefined => {
  try {
    return topologyFromDocument(structuredClone(doc), 'whole');
  } catch {
    return undefined;
  }
};

/** Everything the packet path and DNS ask a topology about machines, as plain data. */
function view(t: Topology): unknown {
  const ids = (ms: readonly { id: string }[]) => ms.map((m) => m.id).sort();
  return {
    digest: topologyDigest(t),
    byHost: t.hosts.map((h) => [h.name, ids(t.machinesOnHost(h.id))]),
    byApp: t.apps.map((a) => [a.name, ids(t.machinesOfApp(a.name))]),
    byOrg: t.orgs.map((o) => [o.name, ids(t.machinesOfOrg(o.name))]),
    at: t.machines.map((m) => [m.id, t.machineAt(m.address, 0)?.id, m.previous.map((p) => t.movedFrom(p.address, 0)?.machine.id)]).sort(),
    ids: ids(t.machines),
  };
}

const op = fc.oneof(
  fc.record({ kind: fc.constant('state' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('move' as const), pick: fc.nat(), host: fc.nat() }),
  fc.record({ kind: fc.constant('instance' as const), pick: fc.nat(), instance: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 0xa, 0xb) }), // 0xa, 0xb: peers' /120s
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), app: fc.nat(), host: fc.nat(), instance: fc.constantFrom(1, 2, 3, 4, 5, 6, 0xa, 0xb) }),
  fc.record({ kind: fc.constant('steal-previous' as const), pick: fc.nat(), victim: fc.nat() }),
  fc.record({ kind: fc.constant('share-previous' as const), pick: fc.nat(), victim: fc.nat() }),
);

/** Applies one edit to the document; returns the ids it touched. */
function edit(doc: Doc, t: Topology, o: { kind: string }, serial: number): string[] {
  const ms = doc.machines;
  const at = (i: number) => ms[i % Math.max(1, ms.length)];
  const apps = (doc.apps as Entry[]).map((a) => a.name as string);
  const hostOf = (i: number) => doc.hosts[i % doc.hosts.length];
  const x = o as { kind: string; pick: number; host: number; instance: number; app: number; victim: number };
  if (x.kind === 'add') {
    const h = hostOf(x.host);
    const id = `ad${serial.toString(36).padStart(12, '0')}`;
    ms.push({ id, app: apps[x.app % apps.length], host: h.name, instance: x.instance });
    return [id];
  }
  if (ms.length === 0) return [];
  const m = at(x.pick);
  const id = m.id as string;
  if (x.kind === 'state') m.state = m.state === 'stopped' ? 'started' : 'stopped';
  else if (x.kind === 'move') {
    const now = t.machine(id);
    const h = hostOf(x.host);
    if (now) m.previous = [...((m.previous as unknown[]) ?? []), now.addressText];
    m.host = h.name;
    delete m.region; // a machine's region is its host's
  } else if (x.kind === 'instance') m.instance = x.instance;
  else if (x.kind === 'remove') doc.machines = ms.filter((e) => e !== m);
  else if (x.kind === 'steal-previous') {
    const v = t.machines[x.victim % t.machines.length];
    if (v) m.previous = [v.addressText];
  } else if (x.kind === 'share-previous') {
    const v = t.machines.filter((y) => y.previous.length > 0)[x.victim % Math.max(1, t.machines.length)];
    if (v) m.previous = [v.previous[0].text];
  }
  return [id];
}

test('patchMachines accepts what the whole validation accepts and builds the same topology', (t) => {
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
    let doc = structuredClone(EXAMPLE) as Doc;
    const live = build(doc)!;
    let serial = 0;
    for (const o of ops) {
      const next = structuredClone(doc);
      const touched = edit(next, live, o, serial++);
      if (touched.length === 0) continue;
      const whole = build(next);
      const before = view(live);
      const changes = touched.map((id) => ({ id, entry: next.machines.find((e) => e.id === id) }));
      const r = patchMachines(live, changes, 'patch');
      if (whole === undefined) {
        if (!('problems' in r)) return false; // accepted what the whole document refuses
        if (JSON.stringify(view(live)) !== JSON.stringify(before)) return false; // a refusal changed something
        continue;
      }
      if ('problems' in r) throw new Error(`refused a valid edit ${JSON.stringify(o)}: ${r.problems.map((p) => p.message).join('; ')}`);
      if (JSON.stringify(view(live)) !== JSON.stringify(view(whole))) return false;
      doc = next;
    }
    return true;
  }), { numRuns: 300 });
  t.pass();
});

test('the diff of a patch names what changed, with the before-values', (t) => {
  const doc = structuredClone(EXAMPLE) as Doc;
  const live = build(doc)!;
  const m = doc.machines[0];
  const id = m.id as string;
  const old = live.machine(id)!;
  m.state = 'stopped';
  let r = patchMachines(live, [{ id, entry: m }], 'p');
  t.false('problems' in r);
  if ('diff' in r) t.deepEqual(r.diff.machines.stopped.map((x) => x.id), [id]);
  t.false(live.machine(id)!.started);
  r = patchMachines(live, [{ id, entry: undefined }], 'p');
  if ('diff' in r) t.deepEqual(r.diff.machines.removed.map((x) => x.id), [id]);
  t.is(live.machine(id), undefined);
  t.is(live.machineAt(old.address, 0), undefined);
  r = patchMachines(live, [{ id: 'zz0000000000bb', entry: { ...m, id: 'zz0000000000cc' } }], 'p');
  t.true('problems' in r, 'an entry under another id is refused');
});

// The watcher applies edits without a restart: an edit written by rename (temp file + rename,
// as editors and writeFileAtomic do) is picked up and diffed; a bad edit or a half-written file
// is refused with the running topology kept; a fix afterwards is applied. Every wait has a
// timeout, so a broken watcher fails instead of hanging.
import test from 'ava';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TopologyError, moveMachine, setMachineState } from '../src/topology/index.ts';
import { watchTopology, writeFileAtomic } from '../src/store/index.ts';
import type { Topology, TopologyDiff } from '../src/topology/index.ts';

const EXAMPLE = fileURLToPath(new URL('../examples/topology.example.json', import.meta.url));
const TIMEOUT_MS = 5000;
type Doc = Record<string, any>;
const example = (): Doc => JSON.parse(readFileSync(EXAMPLE, 'utf8'));

// Events from the watcher, awaited one at a time.
class Events {
  readonly queue: ({ kind: 'change'; next: Topology; diff: TopologyDiff } | { kind: 'error'; err: Error })[] = [];
  wake: (() => void) | undefined;
  change = (next: Topology, diff: TopologyDiff) => this.push({ kind: 'change', next, diff });
  error = (err: Error) => this.push({ kind: 'error', err });
  push(e: Events['queue'][number]): void {
    this.queue.push(e);
    this.wake?.();
  }
  async next(): Promise<Events['queue'][number]> {
    const deadline = Date.now() + TIMEOUT_MS;
    while (this.queue.length === 0) {
      if (Date.now() > deadline) throw new Error('no event from the watcher in time');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.queue.shift()!;
  }
}

function tempTopology(t: { teardown(f: () => void): void }, doc: Doc): string {
  const dir = mkdtempSync(join(tmpdir(), 'sixpn-topology-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'topology.json');
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

// Replaces the file the way editors do: a new file, renamed over the old one.
function replaceByRename(file: string, text: string): void {
  const tmp = `${file}.new`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

test('an edit written by rename is applied, with its diff', async (t) => {
  const doc = example();
  const file = tempTopology(t, doc);
  const ev = new Events();
  const w = watchTopology(file, ev.change, ev.error, { intervalMs: 20 });
  t.teardown(() => w.close());
  const first = w.current;
  t.true(first.machine('148e21ea235a89')!.started);

  replaceByRename(file, JSON.stringify(setMachineState(doc, '148e21ea235a89', 'stopped')));
  const e = await ev.next();
  if (e.kind !== 'change') return t.fail(e.err.message);
  t.deepEqual(e.diff.machines.stopped.map((m) => m.id), ['148e21ea235a89']);
  t.is(w.current, e.next);
  t.false(w.current.machine('148e21ea235a89')!.started);
  t.true(first.machine('148e21ea235a89')!.started); // the old topology is untouched
});

test('a bad edit is refused and the running topology kept; a fix is then applied', async (t) => {
  const doc = example();
  const file = tempTopology(t, doc);
  const ev = new Events();
  const w = watchTopology(file, ev.change, ev.error, { intervalMs: 20 });
  t.teardown(() => w.close());
  const running = w.current;

  const bad = structuredClone(doc);
  bad.machines[0].app = 'shop-api';
  replaceByRename(file, JSON.stringify(bad));
  const e1 = await ev.next();
  if (e1.kind !== 'error') return t.fail('a bad edit was applied');
  t.true(e1.err instanceof TopologyError);
  t.regex(e1.err.message, new RegExp(`${file}: machines\\[0\\] "148e21ea235a89": app: unknown app "shop-api"`));
  t.is(w.current, running);

  // A half-written file (written in place, not renamed) is refused the same way.
  const moved = JSON.stringify(moveMachine(doc, '148e21ea235a89', 'syd1'), null, 2);
  writeFileSync(file, moved.slice(0, moved.length / 2));
  const e2 = await ev.next();
  if (e2.kind !== 'error') return t.fail('a half-written file was applied');
  t.regex(e2.err.message, /\(document\): not valid JSON/);
  t.is(w.current, running);

  // The complete file is applied.
  writeFileAtomic(file, moved);
  const e3 = await ev.next();
  if (e3.kind !== 'change') return t.fail(e3.err.message);
  t.is(e3.diff.machines.moved.length, 1);
  t.is(w.current.machine('148e21ea235a89')!.addressText, 'fdaa:0:18:a7b:bea:f066:b83b:2');
  t.is(w.current.movedFrom(running.machine('148e21ea235a89')!.address)!.machine.id, '148e21ea235a89');
  t.is(ev.queue.length, 0); // each state reported once
});

test('a refused edit is reported once, not at every poll; a touch is no change', async (t) => {
  const file = tempTopology(t, example());
  const ev = new Events();
  const w = watchTopology(file, ev.change, ev.error, { intervalMs: 10 });
  t.teardown(() => w.close());
  replaceByRename(file, '{ "version": 1, ');
  t.is((await ev.next()).kind, 'error');
  await new Promise((r) => setTimeout(r, 200));
  t.is(ev.queue.length, 0);
  // Back to the running content: nothing changed, nothing reported.
  replaceByRename(file, JSON.stringify(example(), null, 2));
  t.false(await w.check());
  await new Promise((r) => setTimeout(r, 100));
  t.is(ev.queue.length, 0);
});

test('check() applies an edit at once; close() stops watching', async (t) => {
  const doc = example();
  const file = tempTopology(t, doc);
  const ev = new Events();
  const w = watchTopology(file, ev.change, ev.error, { intervalMs: 60_000 });
  t.teardown(() => w.close());
  const d = structuredClone(doc);
  d.machines.pop();
  writeFileAtomic(file, JSON.stringify(d));
  t.true(await w.check());
  t.is(w.current.machines.length, 6);
  t.is((await ev.next()).kind, 'change');
  w.close();
  writeFileAtomic(file, JSON.stringify(doc));
  t.false(await w.check());
  t.is(w.current.machines.length, 6);
});

test('a file invalid at start throws with every problem; a missing file is named', (t) => {
  const bad = example();
  bad.hosts[0].publicKey = 'x';
  bad.peers[0].org = 'nobody';
  const file = tempTopology(t, bad);
  const err = t.throws(() => watchTopology(file, () => {}, () => {}), { instanceOf: TopologyError })!;
  t.is(err.problems.length, 2);
  const gone = t.throws(() => watchTopology(`${file}.missing`, () => {}, () => {}), { instanceOf: TopologyError })!;
  t.regex(gone.message, /topology\.json\.missing: \(file\): cannot read: ENOENT/);
});

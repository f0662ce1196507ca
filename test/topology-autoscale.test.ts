// Autostart and autostop as topology document edits (src/topology/autoscale.ts): which machine
// starts, that a started one means nothing to do, and minRunning.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { autostartIn, autostopIn, asDocument, topologyFromDocument } from '../src/topology/index.ts';

const example = () => asDocument(JSON.parse(readFileSync(new URL('../examples/topology.example.json', import.meta.url), 'utf8')));
const stopAll = (d: ReturnType<typeof example>, app: string) => {
  for (const m of d.machines) if (m.app === app) m.state = 'stopped';
  return d;
};

test('autostart: a stopped machine on the asking host first, then its region, then any; none if one is started', (t) => {
  const ams1 = 0x0a7b007d;
  const ord1 = 0x0a7b0d6b;
  t.is(autostartIn(example(), 'shop-web', ams1, 'ams'), undefined, 'one is started already');
  let d = stopAll(example(), 'shop-web');
  t.is(autostartIn(d, 'shop-web', ams1, 'ams'), '148e21ea235a89', 'the one on ams1');
  t.is(topologyFromDocument(d, 'x').machine('148e21ea235a89')!.state, 'started');
  d = stopAll(example(), 'shop-web');
  t.is(autostartIn(d, 'shop-web', 0x99, 'ord'), '3d8e0c71a2b95f', 'the one in ord');
  d = stopAll(example(), 'shop-web');
  t.is(autostartIn(d, 'shop-web', ord1, 'zzz'), '3d8e0c71a2b95f');
  t.is(autostartIn(example(), 'nope', ams1, 'ams'), undefined);
});

test('autostop: stops the idle machines asked for, never below minRunning', (t) => {
  const d = example();
  t.deepEqual(autostopIn(d, 'shop-web', ['148e21ea235a89', '3d8e0c71a2b95f'], 1), ['148e21ea235a89']);
  t.is(topologyFromDocument(d, 'x').machinesOfApp('shop-web').filter((m) => m.started).length, 1);
  t.deepEqual(autostopIn(example(), 'shop-web', ['148e21ea235a89', '3d8e0c71a2b95f'], 0), ['148e21ea235a89', '3d8e0c71a2b95f']);
  t.deepEqual(autostopIn(example(), 'shop-web', ['e2865071b9d412'], 0), [], 'not a machine of the app');
});

// The worker pool (src/noise/aead-pool.ts): batches sealed and opened on worker threads over the
// shared wasm memory. The batched-open scenarios run again with two workers (the same
// expectations as one by one); then the pool's own promises: a flush returns before the crypto is
// done, the jobs are delivered in submission order (a peer's packets in the order sealed), and
// settle() waits for all of them.
import test from 'ava';
import { AeadPool } from '../src/noise/index.ts';
import { FakeNet, connect } from './helpers/wgnet.ts';
import { openBatchScenarios, sendId } from './helpers/open-batch.ts';

const pool = AeadPool.configure(2)!;
pool.inlineMax = 0; // every batch to a worker, however small (the default runs a few messages inline)
test.after.always(() => AeadPool.configure(0));

openBatchScenarios(test, [{ name: 'two workers', batch: true }]);

function pair() {
  const net = new FakeNet();
  const a = net.add('a', '192.0.2.1:51820', { batch: true });
  const b = net.add('b', '[2001:db8::2]:51821', { batch: true });
  connect(a, b, ['10.0.0.1/32'], ['10.0.0.2/32']);
  sendId(a, '10.0.0.1', '10.0.0.2', 0);
  net.pump();
  b.tun.length = 0;
  return { net, a, b };
}

test.serial('a flush hands the batch to a worker and returns; the jobs are delivered in order, asynchronously', async (t) => {
  const { net, a, b } = pair();
  const delivered = new Promise<void>((resolve) => {
    pool.onDelivered = () => {
      if (pool.inFlight === 0) resolve();
    };
  });
  let id = 0;
  for (let round = 0; round < 6; round++) {
    for (let k = 0; k < 40; k++) sendId(a, '10.0.0.1', '10.0.0.2', id++ & 0xff, 1200);
    a.device.flushSeals(); // one job per round, round-robin over the two workers
  }
  t.true(pool.inFlight > 0, 'sealing is under way after flushSeals returned');
  await delivered;
  pool.onDelivered = null;
  net.pump();
  t.is(b.tun.length, 240);
  t.deepEqual(b.tun.map((p) => p[20]), Array.from({ length: 240 }, (_, i) => i & 0xff), 'in the order sealed');
  t.is(b.device.counters.rxReplay + b.device.counters.rxAuthFailed, 0);
});

test.serial('settle() waits for every job; opens on workers keep arrival order across several jobs', (t) => {
  const { net, a, b } = pair();
  const held: Uint8Array[] = [];
  net.tap = (_f, to, data) => {
    if (!to.sameRemote(b.endpoint)) return true;
    held.push(data.slice());
    return false;
  };
  for (let k = 0; k < 300; k++) sendId(a, '10.0.0.1', '10.0.0.2', k & 0xff, 1000);
  net.pump();
  net.tap = null;
  t.is(held.length, 300);
  const from = a.endpoint;
  // three read batches, each flushed to a worker without waiting, then settled at once
  for (let i = 0; i < 300; i += 100) {
    for (const d of held.slice(i, i + 100)) b.device.receiveDatagram(d, 0, d.length, from);
    b.device.flushOpens();
  }
  b.device.settleBatches();
  t.is(pool.inFlight, 0);
  t.deepEqual(b.tun.map((p) => p[20]), Array.from({ length: 300 }, (_, i) => i & 0xff));
});

// Batched open (src/wg/open-queue.ts): the transport messages of one read batch are opened in one
// wasm call and handed back in arrival order. Every scenario (test/helpers/open-batch.ts) runs
// twice, one by one and batched, with the same expectations: batching changes how many AEAD calls
// there are, nothing else — tampered tags are rejected and counted, a counter enters the replay
// window only once its message authenticated, peers and message types mix in one batch, timers
// behave the same.
import test from 'ava';
import { FakeNet, connect } from './helpers/wgnet.ts';
import { openBatchScenarios, sendId } from './helpers/open-batch.ts';

openBatchScenarios(test, [{ name: 'one by one', batch: false }, { name: 'batched', batch: true }]);

test('batched: ten minutes of traffic across rekeys, every packet delivered, opens in batches', (t) => {
  const net = new FakeNet();
  const a = net.add('a', '192.0.2.1:51820', { batch: true });
  const b = net.add('b', '[2001:db8::2]:51821', { batch: true });
  connect(a, b, ['10.0.0.1/32'], ['10.0.0.2/32']);
  for (let s = 0; s < 600; s++) {
    for (let k = 0; k < 4; k++) {
      sendId(a, '10.0.0.1', '10.0.0.2', k);
      sendId(b, '10.0.0.2', '10.0.0.1', k);
    }
    net.pump();
    net.advance(1000, 10);
  }
  t.is(a.tun.length + b.tun.length, 4800);
  t.is(a.device.counters.rxAuthFailed + b.device.counters.rxAuthFailed, 0);
  t.is(a.device.counters.rxReplay + b.device.counters.rxReplay, 0);
  const { opened, batches } = b.device.batchOpens;
  t.true(opened >= 2400 && batches < opened / 2, `opened ${opened} in ${batches} batches`);
});

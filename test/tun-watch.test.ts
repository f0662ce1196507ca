// fdWatch: the event loop is told when a native fd is readable, and stops being told.
import test from 'ava';
import { createSocket } from 'node:dgram';
import { UdpBatch, close, fdUnwatch, fdWatch, udpOpen } from '../src/tun/index.ts';

test('fdWatch calls back when datagrams arrive; fdUnwatch stops it and is idempotent', async (t) => {
  const s = udpOpen(6, '::1', 0);
  const batch = new UdpBatch(16, 2048);
  const client = createSocket('udp6');
  t.teardown(() => client.close());
  let received = 0;
  let calls = 0;
  const done = new Promise<void>((resolve) => {
    const w = fdWatch(s.fd, (events) => {
      calls++;
      t.true(events > 0);
      received += batch.recv(s.fd, 0);
      if (received >= 5) {
        fdUnwatch(w);
        fdUnwatch(w);
        resolve();
      }
    });
  });
  for (let i = 0; i < 5; i++) client.send(`m${i}`, s.port, '::1');
  await done;
  t.is(received, 5);
  // after the watch stopped, new datagrams do not call back
  const before = calls;
  client.send('late', s.port, '::1');
  await new Promise((r) => setTimeout(r, 100));
  t.is(calls, before);
  t.is(batch.recv(s.fd, 0), 1, 'the late datagram is still there to read');
  close(s.fd);
});

test('fdWatch rejects a non-function callback and a bad fd', (t) => {
  t.throws(() => fdWatch(0, 5 as unknown as () => void), { message: /function/ });
  t.throws(() => fdWatch(-1, () => {}));
});

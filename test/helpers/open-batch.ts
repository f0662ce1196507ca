// The scenarios of batched open (test/wg-open-batch.test.ts, test/wg-pool.test.ts): each runs
// with the same expectations one by one, batched, and batched on a worker pool.
import type { TestFn } from 'ava';
import { FakeNet, connect, ipPacket, type Node } from './wgnet.ts';
import { Endpoint } from '../../src/wg/endpoint.ts';
import { KEEPALIVE_TIMEOUT_MS, REKEY_TIMEOUT_MS } from '../../src/noise/index.ts';


export function mesh(batch: boolean) {
  const net = new FakeNet();
  const a = net.add('a', '192.0.2.1:51820', { batch });
  const b = net.add('b', '[2001:db8::2]:51821', { batch });
  const c = net.add('c', '198.51.100.3:51822', { batch });
  connect(a, b, ['10.0.0.1/32'], ['10.0.0.2/32']);
  connect(c, b, ['10.0.0.3/32'], ['10.0.0.2/32']);
  return { net, a, b, c };
}

/** Holds datagrams to `dst` instead of delivering them (while `on`), with their sources. */
function holdTo(net: FakeNet, dst: Node) {
  const h = { on: false, held: [] as Array<[Uint8Array, Endpoint]> };
  net.tap = (from, to, data) => {
    if (!h.on || !to.sameRemote(dst.endpoint)) return true;
    h.held.push([data.slice(), from]);
    return false;
  };
  return h;
}

/** Sends packet `id` (its first payload byte) from node's address `src` to `dst`. */
export function sendId(node: Node, src: string, dst: string, id: number, size = 100): void {
  const body = new Uint8Array(size).fill(0xaa);
  body[0] = id;
  const { buf, off, len } = ipPacket(src, dst, body);
  node.device.sendPacket(buf, off, len);
}

const ids = (n: Node) => n.tun.map((p) => p[20]); // IPv4 header, then the id byte
const flip = (m: Uint8Array, at: number) => {
  const c = m.slice();
  c[at < 0 ? c.length + at : at] ^= 0x01;
  return c;
};

/** a ⇄ b with a session, b's TUN emptied. */
function established(batch: boolean) {
  const m = mesh(batch);
  sendId(m.a, '10.0.0.1', '10.0.0.2', 0);
  m.net.pump();
  m.b.tun.length = 0;
  return m;
}

/** Registers every scenario for each mode (`batch`: batchSeal and batchOpen). */
export function openBatchScenarios(test: TestFn, modes: Array<{ name: string; batch: boolean }>): void {
  for (const { name, batch } of modes) {
    test(`${name}: tampered tags and ciphertext, a replay and a truncated message in one read batch`, (t) => {
      const { net, a, b } = established(batch);
      const h = holdTo(net, b);
      h.on = true;
      for (let id = 1; id <= 5; id++) sendId(a, '10.0.0.1', '10.0.0.2', id);
      net.pump();
      h.on = false;
      const [m1, m2, m3, m4, m5] = h.held.map(([d]) => d);
      const from = h.held[0][1];
      t.is(h.held.length, 5);
      const c0 = { ...b.device.counters };
      const opened0 = b.device.batchOpens;
      t.notThrows(() => net.deliver(b, [
        [m1, from],
        [flip(m2, -1), from], // last tag byte
        [m3, from],
        [m3, from], // replayed in the same batch
        [flip(m4, 40), from], // ciphertext byte
        [m2, from], // the genuine m2 after its tampered copy: its counter is still free
        [m5.subarray(0, m5.length - 1), from], // truncated
        [m5, from],
      ]));
      t.deepEqual(ids(b), [1, 3, 2, 5], 'delivered in arrival order');
      const c = b.device.counters;
      t.is(c.rxAuthFailed - c0.rxAuthFailed, 3);
      t.is(c.rxReplay - c0.rxReplay, 1);
      if (batch) {
        t.is(b.device.batchOpens.opened - opened0.opened, 8, 'all eight went through the queue');
        t.is(b.device.batchOpens.batches - opened0.batches, 1, 'in one wasm call');
      }
      // m4's counter did not enter the window with its tampered copy; m1 and m3 did
      net.deliver(b, [[m4, from], [m1, from], [m3, from]]);
      t.deepEqual(ids(b), [1, 3, 2, 5, 4]);
      t.is(b.device.counters.rxReplay - c0.rxReplay, 3);
    });

    test(`${name}: two peers interleaved in one batch, each with its own source (roaming) and allowed IPs`, (t) => {
      const { net, a, b, c } = mesh(batch);
      sendId(a, '10.0.0.1', '10.0.0.2', 0);
      sendId(c, '10.0.0.3', '10.0.0.2', 0);
      net.pump();
      b.tun.length = 0;
      const h = holdTo(net, b);
      h.on = true;
      sendId(a, '10.0.0.1', '10.0.0.2', 1);
      sendId(c, '10.0.0.3', '10.0.0.2', 2);
      sendId(a, '10.0.0.1', '10.0.0.2', 3);
      sendId(c, '10.0.0.3', '10.0.0.2', 4);
      sendId(a, '10.0.0.3', '10.0.0.2', 5); // a claims c's address: cryptokey routing drops it
      net.pump();
      h.on = false;
      t.is(h.held.length, 5);
      const roamed = Endpoint.parse('203.0.113.9:40000');
      const fromA = (d: Uint8Array): [Uint8Array, Endpoint] => [d, roamed];
      const cFrom = h.held[1][1];
      const c0 = { ...b.device.counters };
      net.deliver(b, [fromA(h.held[0][0]), [h.held[1][0], cFrom], fromA(h.held[2][0]), [h.held[3][0], cFrom], fromA(h.held[4][0])]);
      t.deepEqual(ids(b), [1, 2, 3, 4]);
      t.is(b.device.counters.rxSourceNotAllowed - c0.rxSourceNotAllowed, 1);
      t.is(b.device.peer(a.publicKey)!.endpoint!.toString(), '203.0.113.9:40000', 'a roamed');
      t.is(b.device.peer(c.publicKey)!.endpoint!.toString(), c.endpoint.toString(), 'c did not');
    });

    test(`${name}: transport, a handshake initiation, a bad cookie message and a keepalive in one batch`, (t) => {
      const { net, a, b, c } = established(batch);
      const h = holdTo(net, b);
      h.on = true;
      sendId(a, '10.0.0.1', '10.0.0.2', 1);
      sendId(c, '10.0.0.3', '10.0.0.2', 9); // no session yet: c sends an initiation, stages the packet
      sendId(a, '10.0.0.1', '10.0.0.2', 2);
      a.device.sendKeepalive(a.device.peer(b.publicKey)!);
      sendId(a, '10.0.0.1', '10.0.0.2', 3);
      net.pump();
      h.on = false;
      t.is(h.held.length, 5);
      // batched sealing sends c's initiation ahead of a's data: put it second, as one by one
      const init = h.held.findIndex(([d]) => d[0] === 1);
      const fromA = h.held.filter((_, i) => i !== init);
      t.deepEqual(fromA.map(([d]) => d.length === 32), [false, false, true, false], 'a keepalive third');
      const junkCookie = new Uint8Array(60).fill(3); // type 3, not a cookie reply's size
      junkCookie[1] = junkCookie[2] = junkCookie[3] = 0;
      const c0 = { ...b.device.counters };
      net.deliver(b, [fromA[0], h.held[init], [junkCookie, fromA[0][1]], fromA[1], fromA[2], fromA[3]]);
      t.deepEqual(ids(b), [1, 2, 3], 'a\'s packets in order around the handshake messages');
      t.is(b.device.counters.rxInvalid - c0.rxInvalid, 1);
      t.is(b.device.counters.rxAuthFailed, c0.rxAuthFailed);
      net.pump(); // b's response reaches c, c's staged packet follows
      t.deepEqual(ids(b), [1, 2, 3, 9]);
    });

    test(`${name}: a message queued before a handshake that drops its keypair is delivered first`, (t) => {
      const { net, a, b } = established(batch);
      const pa = a.device.peer(b.publicKey)!;
      const pb = b.device.peer(a.publicKey)!;
      const h = holdTo(net, b);
      h.on = true;
      sendId(a, '10.0.0.1', '10.0.0.2', 1); // under the first session (kp0)
      net.pump();
      h.on = false;
      const [old] = h.held.splice(0);
      const kp0 = pb.current!;
      // rekey: b ends with previous = kp0, current = kp1
      net.clock.t += REKEY_TIMEOUT_MS + 1000;
      a.device.sendInitiation(pa, false);
      net.pump();
      t.is(pb.previous, kp0);
      // the next initiation would drop kp0 (a responder's new keypair clears `previous`)
      net.clock.t += REKEY_TIMEOUT_MS + 1000;
      h.on = true;
      a.device.sendInitiation(pa, false);
      net.pump();
      h.on = false;
      t.is(h.held.length, 1);
      net.deliver(b, [old, h.held[0]]);
      t.deepEqual(ids(b), [1], 'opened under kp0 before the initiation removed it');
      t.is(pb.previous, null);
      t.not(pb.next, null);
    });

    test(`${name}: timers after a batch — a passive keepalive answers data, the new-handshake timer is disarmed`, (t) => {
      const { net, a, b } = established(batch);
      const pa = a.device.peer(b.publicKey)!;
      const pb = b.device.peer(a.publicKey)!;
      net.advance(KEEPALIVE_TIMEOUT_MS + 500); // quiet
      const sentByB = b.device.peer(a.publicKey)!.txBytes;
      sendId(a, '10.0.0.1', '10.0.0.2', 1);
      t.true(pa.newHandshakeAt < Infinity, 'a armed new-handshake on sending');
      net.pump();
      t.is(pb.newHandshakeAt, Infinity);
      t.true(pb.sendKeepaliveAt < Infinity, 'b owes a keepalive');
      net.advance(KEEPALIVE_TIMEOUT_MS + 200);
      t.is(pb.txBytes - sentByB, 32, 'one keepalive, 32 bytes');
      t.is(pa.newHandshakeAt, Infinity, 'the keepalive disarmed a\'s new-handshake timer');
      t.deepEqual(ids(b), [1]);
    });
  }
}

// TUN queues through the native shim, against the kernel and iputils ping, in network namespaces
// created per test (root). The TUN is opened here and moved into the namespace; its fd stays
// with this process, as the router does it.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import {
  TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_RECORD_WORDS, TunBatch, VNET_HDR_LEN, addrAdd, close,
  ip, isErrno, linkSetNetns, linkUp, netnsAdd, netnsDelete, tunOpen, tunRead, tunSetOffload, tunWrite,
} from '../src/tun/index.ts';
import type { TunQueue } from '../src/tun/index.ts';
import { isRoot } from './helpers/netns.ts';

const rootTest = isRoot() ? test : test.skip; // counted as skipped when not root
const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

const MTU = 1420;
const SLOT = 2048;

// ava runs test files as worker threads of one process: names carry the pid and a per-file letter.
const TAG = (process.pid % 46656).toString(36);
let seq = 0;
const uniqIf = (): string => `sxt${TAG}n${(seq++).toString(36)}`;

async function makeNetns(t: ExecutionContext): Promise<string> {
  const name = `sixpn-tun-${process.pid}-${seq++}`;
  await netnsAdd(name);
  t.teardown(() => netnsDelete(name, { ignoreMissing: true }));
  await linkUp('lo', { netns: name });
  return name;
}

function openTun(t: ExecutionContext, name: string, opts: { multiQueue?: boolean; vnetHdr?: boolean } = {}): TunQueue {
  const q = tunOpen(name, opts);
  t.teardown(() => close(q.fd));
  return q;
}

/** Moves the TUN into `ns`, brings it up and gives it `local` with a route to `peer` through it. */
async function plumb(dev: string, ns: string, local: string, peer: string, from?: string): Promise<void> {
  await linkSetNetns(dev, ns, from === undefined ? {} : { netns: from });
  await linkUp(dev, { netns: ns, mtu: MTU });
  await addrAdd(dev, `${local}/128`, { netns: ns, peer: `${peer}/128`, nodad: true });
}

/** ICMPv6 checksum (RFC 4443 §2.3) over the pseudo-header and the message at pkt[off + 40]. */
function icmp6Checksum(pkt: Uint8Array, off: number): number {
  const len = (pkt[off + 4] << 8) | pkt[off + 5];
  let sum = 58 + (len >>> 16) + (len & 0xffff);
  for (let i = 8; i < 40; i += 2) sum += (pkt[off + i] << 8) | pkt[off + i + 1];
  for (let i = 0; i < len; i += 2) {
    if (i === 2) continue; // the checksum field itself
    sum += (pkt[off + 40 + i] << 8) | (i + 1 < len ? pkt[off + 41 + i] : 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function isEchoRequest(pkt: Uint8Array, off: number, len: number): boolean {
  return len >= 48 && pkt[off] >> 4 === 6 && pkt[off + 6] === 58 && pkt[off + 40] === 128;
}

/** Turns the echo request at pkt[off] into its reply in place: swap addresses, type 129, checksum. */
function makeEchoReply(pkt: Uint8Array, off: number): void {
  const src = pkt.slice(off + 8, off + 24);
  pkt.copyWithin(off + 8, off + 24, off + 40);
  pkt.set(src, off + 24);
  pkt[off + 7] = 64;
  pkt[off + 40] = 129;
  const sum = icmp6Checksum(pkt, off);
  pkt[off + 42] = sum >> 8;
  pkt[off + 43] = sum & 0xff;
}

interface PingResult {
  code: number | null;
  stdout: string;
}

function ping(ns: string, dst: string, count: number): Promise<PingResult> {
  const args = ['netns', 'exec', ns, 'ping', '-6', '-n', '-c', String(count), '-i', '0.2', '-W', '2', dst];
  return new Promise((resolve) => {
    execFile('ip', args, { timeout: 20_000 }, (err, stdout) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout });
    });
  });
}

/**
 * Runs `ping -c count dst` in `ns` while answering every echo request read from the queues
 * (main thread, timeout 0, yielding to the event loop between polls). Returns ping's result,
 * the echo requests answered per queue, and whether every request's checksum verified.
 */
async function pingThrough(
  ns: string, dst: string, fds: number[], count: number, vnetHdr = false,
): Promise<PingResult & { answered: number[]; checksumsOk: boolean }> {
  const hdr = vnetHdr ? VNET_HDR_LEN : 0;
  const batch = new TunBatch(32, SLOT);
  const out = new TunBatch(32, SLOT);
  const answered = fds.map(() => 0);
  let checksumsOk = true;
  let done = false;
  const result = ping(ns, dst, count).finally(() => { done = true; });
  while (!done) {
    for (let q = 0; q < fds.length; q++) {
      const n = batch.read(fds[q], 0);
      let replies = 0;
      for (let i = 0; i < n; i++) {
        const off = batch.offset(i) + hdr;
        const len = batch.length(i) - hdr;
        if (!isEchoRequest(batch.slab, off, len)) continue; // router/neighbour solicitations, MLD
        checksumsOk &&= icmp6Checksum(batch.slab, off) === ((batch.slab[off + 42] << 8) | batch.slab[off + 43]);
        const outOff = out.offset(replies);
        out.slab.set(batch.slab.subarray(off, off + len), outOff + hdr);
        out.slab.fill(0, outOff, outOff + hdr); // virtio_net_hdr: flags 0, GSO_NONE
        makeEchoReply(out.slab, outOff + hdr);
        out.setLength(replies++, hdr + len);
      }
      if (replies > 0) {
        if (out.write(fds[q], replies) !== replies) throw new Error('tunWrite stopped early');
        for (let i = 0; i < replies; i++) if (out.error(i) !== 0) throw new Error(`tunWrite errno ${out.error(i)}`);
        answered[q] += replies;
      }
    }
    await yieldLoop();
  }
  return { ...(await result), answered, checksumsOk };
}

test('argument and fd errors: RangeError for bad names and records, NativeError with a code for a bad fd', (t) => {
  t.throws(() => tunOpen('x'.repeat(16)), { instanceOf: RangeError });
  const slab = new Uint8Array(100);
  const meta = new Int32Array(TUN_RECORD_WORDS);
  meta[1] = 200; // capacity beyond the slab
  t.throws(() => tunRead(0, slab, meta, 1, 0), { instanceOf: RangeError, message: /outside the slab/ });
  t.throws(() => tunRead(0, slab, new Uint32Array(4) as unknown as Int32Array, 1, 0), { instanceOf: TypeError });
  const err = t.throws(() => tunRead(1_000_000, slab, new Int32Array(4), 1, 0));
  t.true(isErrno(err, 'EBADF'));
  t.is((err as { errno?: number }).errno, -9);
});

rootTest('ping -6 into a TUN in a fresh namespace: read the echo request, write the reply', async (t) => {
  const ns = await makeNetns(t);
  const q = openTun(t, uniqIf());
  t.regex(q.name, /^sxt/);
  await plumb(q.name, ns, 'fd5e:1::1', 'fd5e:1::2');
  const r = await pingThrough(ns, 'fd5e:1::2', [q.fd], 3);
  t.is(r.code, 0, r.stdout);
  t.regex(r.stdout, /3 received/);
  t.is(r.answered[0], 3);
  t.true(r.checksumsOk, 'the kernel’s echo requests verify with the local checksum helper');
});

rootTest('vnetHdr queue: packets carry a virtio_net_hdr; offloads can be enabled', async (t) => {
  const ns = await makeNetns(t);
  const q = openTun(t, uniqIf(), { vnetHdr: true });
  tunSetOffload(q.fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
  await plumb(q.name, ns, 'fd5e:2::1', 'fd5e:2::2');
  t.regex(await ip(['-d', 'link', 'show', q.name], { netns: ns }), /vnet_hdr on/);
  const r = await pingThrough(ns, 'fd5e:2::2', [q.fd], 2, true);
  t.is(r.code, 0, r.stdout);
  t.is(r.answered[0], 2);
});

rootTest('multi-queue: two queues on one device, pings answered from whichever queue they land on', async (t) => {
  const ns = await makeNetns(t);
  const name = uniqIf();
  const q1 = openTun(t, name, { multiQueue: true });
  const q2 = openTun(t, name, { multiQueue: true });
  t.is(q2.name, q1.name);
  t.not(q2.fd, q1.fd);
  // a single-queue open of a multi-queue device is refused
  t.true(isErrno(t.throws(() => tunOpen(name)), 'EINVAL'));
  await plumb(name, ns, 'fd5e:3::1', 'fd5e:3::2');
  t.regex(await ip(['-d', 'link', 'show', name], { netns: ns }), /multi_queue numqueues 2/);
  const r = await pingThrough(ns, 'fd5e:3::2', [q1.fd, q2.fd], 4);
  t.is(r.code, 0, r.stdout);
  t.is(r.answered[0] + r.answered[1], 4);
});

rootTest('the TUN keeps working after moving to another namespace: the fd stays with us', async (t) => {
  const ns1 = await makeNetns(t);
  const ns2 = await makeNetns(t);
  const q = openTun(t, uniqIf());
  await plumb(q.name, ns1, 'fd5e:4::1', 'fd5e:4::2');
  const r1 = await pingThrough(ns1, 'fd5e:4::2', [q.fd], 2);
  t.is(r1.code, 0, r1.stdout);

  await plumb(q.name, ns2, 'fd5e:5::1', 'fd5e:5::2', ns1);
  await t.throwsAsync(ip(['link', 'show', q.name], { netns: ns1 }), { message: /does not exist/ });
  const r2 = await pingThrough(ns2, 'fd5e:5::2', [q.fd], 2);
  t.is(r2.code, 0, r2.stdout);
  t.is(r2.answered[0], 2);
});

rootTest('per-packet write errors land in the record, the batch goes on', async (t) => {
  const ns = await makeNetns(t);
  const q = openTun(t, uniqIf());
  await plumb(q.name, ns, 'fd5e:6::1', 'fd5e:6::2');
  const batch = new TunBatch(3, SLOT);
  batch.slab.fill(0);
  batch.setLength(0, 60); // version nibble 0: not an IP packet
  batch.setLength(1, 0); // empty
  // a valid IPv6 packet with no next header (59), to the TUN's own address
  const off = batch.offset(2);
  batch.slab.set([0x60, 0, 0, 0, 0, 0, 59, 64], off);
  batch.slab.set([0xfd, 0x5e, 0, 6, ...new Array<number>(11).fill(0), 2], off + 8);
  batch.slab.set([0xfd, 0x5e, 0, 6, ...new Array<number>(11).fill(0), 1], off + 24);
  batch.setLength(2, 40);
  t.is(batch.write(q.fd, 3), 3);
  t.is(batch.error(0), 22); // EINVAL
  t.is(batch.error(1), 22);
  t.is(batch.error(2), 0);
  await ip(['link', 'set', 'dev', q.name, 'down'], { netns: ns });
  t.is(batch.write(q.fd, 3), 3);
  t.is(batch.error(2), 5); // EIO: the device is down
});

rootSerial('a worker blocks in tunRead with a timeout; the main thread stays free; a stop flag ends it', async (t) => {
  const ns = await makeNetns(t);
  const q = openTun(t, uniqIf());
  await plumb(q.name, ns, 'fd5e:7::1', 'fd5e:7::2');

  const stop = new Int32Array(new SharedArrayBuffer(4));
  const tunUrl = new URL('../src/tun/index.ts', import.meta.url).href;
  // The worker reads (blocking up to 100 ms per call) and posts each echo request to the main
  // thread, which answers with tunWrite on the same fd.
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('node:worker_threads');
    (async () => {
      const { TunBatch } = await import(workerData.tunUrl);
      const batch = new TunBatch(16, 2048);
      let timeouts = 0;
      while (Atomics.load(workerData.stop, 0) === 0) {
        const n = batch.read(workerData.fd, 100);
        if (n === 0) timeouts++;
        for (let i = 0; i < n; i++) {
          const p = batch.packet(i);
          if (p[6] === 58 && p[40] === 128) parentPort.postMessage(p.slice());
        }
      }
      parentPort.postMessage({ timeouts });
    })();
    `,
    { eval: true, workerData: { fd: q.fd, stop, tunUrl } },
  );
  t.teardown(() => worker.terminate());
  let timeouts = -1;
  let answered = 0;
  const replyBatch = new TunBatch(1, SLOT);
  const finished = new Promise<void>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('message', (m: Uint8Array | { timeouts: number }) => {
      if (!(m instanceof Uint8Array)) {
        timeouts = m.timeouts;
        resolve();
        return;
      }
      replyBatch.slab.set(m, 0);
      makeEchoReply(replyBatch.slab, 0);
      replyBatch.setLength(0, m.length);
      if (replyBatch.write(q.fd, 1) === 1 && replyBatch.error(0) === 0) answered++;
    });
  });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const r = await ping(ns, 'fd5e:7::2', 3);
  clearInterval(timer);
  await new Promise((resolve) => setTimeout(resolve, 250)); // idle: the worker's reads time out
  const stopAt = Date.now();
  Atomics.store(stop, 0, 1);
  await finished;
  t.true(Date.now() - stopAt < 1000, 'the worker noticed the stop flag within a read timeout');
  t.is(r.code, 0, r.stdout);
  t.is(answered, 3);
  t.true(timeouts >= 1, `worker reads timed out ${timeouts} times`);
  t.true(ticks > 20, `main-thread timer ran ${ticks} times while the worker was blocked`);
});

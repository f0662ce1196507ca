// UDP through the native shim: recvmmsg/sendmmsg batches, SO_REUSEPORT, IP(V6)_PKTINFO.
// Loopback tests run in this process; namespace tests run sockets in small agent processes
// started with `ip netns exec` (a socket belongs to the namespace of the thread that opens it).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { createInterface } from 'node:readline';
import {
  UDP_CHUNK, UDP_META_FAMILY, UDP_RECORD_WORDS, UdpBatch, addrAdd, close, ifIndex, linkAdd, linkUp, netnsAdd, netnsDelete, udpOpen,
} from '../src/tun/index.ts';
import type { UdpOpenOptions, UdpSocket } from '../src/tun/index.ts';
import { isRoot } from './helpers/netns.ts';

const rootTest = isRoot() ? test : test.skip; // counted as skipped when not root

const { EAFNOSUPPORT, EINVAL, EMSGSIZE, ENETUNREACH } = osConstants.errno;
const TAG = (process.pid % 46656).toString(36);
let seq = 0;

async function makeNetns(t: ExecutionContext): Promise<string> {
  const name = `sixpn-udp-${process.pid}-${seq++}`;
  await netnsAdd(name);
  t.teardown(() => netnsDelete(name, { ignoreMissing: true }));
  await linkUp('lo', { netns: name });
  return name;
}

function openUdp(t: ExecutionContext, family: 4 | 6, addr: string, port = 0, opts: UdpOpenOptions = {}): UdpSocket {
  const s = udpOpen(family, addr, port, opts);
  t.teardown(() => close(s.fd));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Agent: a child process in a namespace that runs socket operations on request (JSON lines).

interface RecvRecord {
  len: number;
  err: number;
  family: number;
  from: string;
  port: number;
  local: string;
  ifindex: number;
  data: string;
}

interface Datagram {
  to: string;
  port: number;
  data?: string;
  size?: number;
  from?: string;
  ifindex?: number;
}

const AGENT = `
import { createInterface } from 'node:readline';
const { UdpBatch, udpOpen, close, ifIndex } = await import(process.env.SIXPN_TUN_URL);
const batch = new UdpBatch(256, 2048);
const big = new UdpBatch(4, 4096);
function describe(b, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ len: b.length(i), err: b.error(i), family: b.family(i), from: b.peerAddress(i), port: b.port(i),
      local: b.localAddress(i), ifindex: b.ifindex(i), data: Buffer.from(b.packet(i)).toString('utf8', 0, 64) });
  }
  return out;
}
const ops = {
  open: (family, addr, port, opts) => udpOpen(family, addr, port, opts),
  ifIndex: (name) => ifIndex(name),
  close: (fd) => close(fd),
  // sends datagrams [{to, port, data | size, from?, ifindex?}] in one batch; returns each errno
  send(fd, dgrams) {
    const b = dgrams.some((d) => (d.size ?? 0) > 2048) ? big : batch;
    dgrams.forEach((d, i) => {
      b.setPeer(i, d.to, d.port, d.from, d.ifindex ?? 0);
      const len = d.size ?? Buffer.from(b.slab.buffer, b.offset(i)).write(d.data);
      b.setLength(i, len);
    });
    const done = b.send(fd, dgrams.length, 1000);
    return { done, errs: dgrams.map((_, i) => b.error(i)) };
  },
  recv(fd, max, timeoutMs) { return describe(batch, batch.recv(fd, timeoutMs, max)); },
  // receives, then sends every record straight back: a reply from the address it came to
  echo(fd, max, timeoutMs) {
    const n = batch.recv(fd, timeoutMs, max);
    batch.send(fd, n, 1000);
    return describe(batch, n);
  },
};
for await (const line of createInterface({ input: process.stdin })) {
  const { id, op, args } = JSON.parse(line);
  let reply;
  try { reply = { id, ok: true, result: ops[op](...args) }; }
  catch (e) { reply = { id, ok: false, message: String(e.message), code: e.code }; }
  process.stdout.write(JSON.stringify(reply) + '\\n');
}
`;

class Agent {
  private readonly pending = new Map<number, (reply: { ok: boolean; result?: unknown; message?: string; code?: string }) => void>();
  private nextId = 0;
  private readonly child: ReturnType<typeof spawn>;
  private readonly stderr: string[] = [];

  constructor(t: ExecutionContext, ns: string) {
    this.child = spawn(
      'ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', AGENT],
      {
        env: { ...process.env, SIXPN_TUN_URL: new URL('../src/tun/index.ts', import.meta.url).href },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    t.teardown(() => { this.child.kill(); });
    this.child.stderr!.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as { id: number; ok: boolean };
      this.pending.get(reply.id)?.(reply);
      this.pending.delete(reply.id);
    });
    this.child.on('exit', (code) => {
      for (const resolve of this.pending.values()) resolve({ ok: false, message: `agent exited ${code}: ${this.stderr.join('')}` });
      this.pending.clear();
    });
  }

  call<T>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (reply) => {
        if (reply.ok) resolve(reply.result as T);
        else reject(Object.assign(new Error(reply.message), { code: reply.code }));
      });
      this.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  open(family: 4 | 6, addr: string, port = 0, opts: UdpOpenOptions = {}): Promise<UdpSocket> {
    return this.call('open', family, addr, port, opts);
  }

  send(fd: number, dgrams: Datagram[]): Promise<{ done: number; errs: number[] }> {
    return this.call('send', fd, dgrams);
  }

  recv(fd: number, max = 256, timeoutMs = 2000): Promise<RecvRecord[]> {
    return this.call('recv', fd, max, timeoutMs);
  }

  /** Receives until `count` datagrams arrived or `timeoutMs` passed. */
  async recvAll(fd: number, count: number, timeoutMs = 3000): Promise<RecvRecord[]> {
    const out: RecvRecord[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < count && Date.now() < deadline) out.push(...(await this.recv(fd, count - out.length, 200)));
    return out;
  }
}

// ---------------------------------------------------------------------------------------------

rootTest('batched recv returns every datagram with its length, bytes, sender and local address', (t) => {
  const rx = openUdp(t, 6, '::1', 0, { rcvbuf: 4 << 20 });
  const tx = openUdp(t, 6, '::1');
  t.true(rx.rcvbuf >= 4 << 20, `SO_RCVBUFFORCE granted ${rx.rcvbuf}`);
  const COUNT = 300; // more than UDP_CHUNK: several sendmmsg/recvmmsg calls
  t.true(COUNT > 4 * UDP_CHUNK);
  const lengthOf = (i: number): number => ((i * 37) % 1400) + 1;

  const out = new UdpBatch(COUNT, 2048);
  for (let i = 0; i < COUNT; i++) {
    out.setPeer(i, '::1', rx.port);
    out.slab.fill(i & 0xff, out.offset(i), out.offset(i) + lengthOf(i));
    out.setLength(i, lengthOf(i));
  }
  t.is(out.send(tx.fd, COUNT, 1000), COUNT);
  for (let i = 0; i < COUNT; i++) t.is(out.error(i), 0);

  const inb = new UdpBatch(512, 2048);
  let got = 0;
  const deadline = Date.now() + 3000;
  const lengths: number[] = [];
  let bytesOk = true;
  let addrsOk = true;
  while (got < COUNT && Date.now() < deadline) {
    const n = inb.recv(rx.fd, 200, COUNT - got);
    for (let i = 0; i < n; i++) {
      const k = got + i;
      lengths.push(inb.length(i));
      bytesOk &&= inb.packet(i).every((b) => b === (k & 0xff)) && inb.error(i) === 0;
      addrsOk &&= inb.family(i) === 6 && inb.peerAddress(i) === '::1' && inb.port(i) === tx.port &&
        inb.localAddress(i) === '::1' && inb.ifindex(i) === 1;
    }
    got += n;
  }
  t.is(got, COUNT);
  t.deepEqual(lengths, Array.from({ length: COUNT }, (_, i) => lengthOf(i)));
  t.true(bytesOk, 'payloads intact and in order');
  t.true(addrsOk, 'sender ::1:port, local ::1, ifindex of lo');

  // nothing left: a timeout-0 call returns at once
  const t0 = performance.now();
  t.is(inb.recv(rx.fd, 0), 0);
  t.true(performance.now() - t0 < 50);
});

test('a dual-stack socket reports IPv4 peers as family 4 (::ffff:…) and replies to them', (t) => {
  const rx = openUdp(t, 6, '::', 0, { v6only: false });
  const tx = openUdp(t, 4, '127.0.0.1');
  const b = new UdpBatch(4, 2048);
  b.setPeer(0, '127.0.0.1', rx.port);
  b.slab.set([1, 2, 3], b.offset(0));
  b.setLength(0, 3);
  t.is(b.send(tx.fd, 1), 1);
  t.is(b.error(0), 0);
  t.is(b.recv(rx.fd, 1000), 1);
  t.is(b.family(0), 4);
  t.is(b.peerAddress(0), '127.0.0.1');
  t.is(b.port(0), tx.port);
  t.is(b.localAddress(0), '127.0.0.1');
  // the received record, sent back as it is
  t.is(b.send(rx.fd, 1), 1);
  t.is(b.error(0), 0);
  t.is(b.recv(tx.fd, 1000), 1);
  t.is(b.peerAddress(0), '127.0.0.1');
  t.is(b.port(0), rx.port);
  t.deepEqual([...b.packet(0)], [1, 2, 3]);
});

test('EMSGSIZE is reported per datagram, not thrown; the rest of the batch is sent; recv marks truncation', (t) => {
  const rx = openUdp(t, 4, '127.0.0.1');
  const tx = openUdp(t, 4, '127.0.0.1');
  const b = new UdpBatch(3, 70_000);
  for (let i = 0; i < 3; i++) {
    b.setPeer(i, '127.0.0.1', rx.port);
    b.setLength(i, i === 1 ? 66_000 : 100 + i); // 66000 > the IPv4 UDP maximum of 65507
  }
  t.is(b.send(tx.fd, 3), 3);
  t.deepEqual([b.error(0), b.error(1), b.error(2)], [0, EMSGSIZE, 0]);

  const small = new UdpBatch(4, 64);
  let n = 0;
  const deadline = Date.now() + 2000;
  const seen: Array<[number, number]> = [];
  while (n < 2 && Date.now() < deadline) {
    const k = small.recv(rx.fd, 200);
    for (let i = 0; i < k; i++) seen.push([small.length(i), small.error(i)]);
    n += k;
  }
  t.deepEqual(seen, [[64, EMSGSIZE], [64, EMSGSIZE]], '100- and 102-byte datagrams cut to 64 bytes, flagged');
});

test('record and argument checks throw before any I/O', (t) => {
  const s = openUdp(t, 6, '::1');
  const b = new UdpBatch(2, 128);
  b.setLength(1, 129);
  t.throws(() => b.send(s.fd, 2), { instanceOf: RangeError, message: /record 1/ });
  t.throws(() => udpOpen(6, 'not-an-address', 0), { instanceOf: TypeError });
  t.throws(() => udpOpen(5 as 4, '::', 0), { instanceOf: RangeError });
  // a record with no valid family: EAFNOSUPPORT in the record
  b.setLength(1, 10);
  b.setPeer(0, '::1', s.port);
  b.meta[1 * UDP_RECORD_WORDS + UDP_META_FAMILY] = 0; // record 1: family 0
  t.is(b.send(s.fd, 2), 2);
  t.is(b.error(0), 0);
  t.is(b.error(1), EAFNOSUPPORT);
});

rootTest('SO_REUSEPORT: sockets of two processes share one port and the kernel spreads flows', async (t) => {
  const ns = await makeNetns(t);
  const a = new Agent(t, ns);
  const b = new Agent(t, ns);
  const sa = await a.open(6, '::1', 0, { reusePort: true });
  const sb = await b.open(6, '::1', sa.port, { reusePort: true });
  t.is(sb.port, sa.port);
  // without SO_REUSEPORT the port is taken
  const err = await t.throwsAsync(b.open(6, '::1', sa.port));
  t.is((err as Error & { code?: string }).code, 'EADDRINUSE');

  const FLOWS = 24;
  for (let i = 0; i < FLOWS; i++) {
    const tx = await a.open(6, '::1');
    const r = await a.send(tx.fd, [{ to: '::1', port: sa.port, data: `flow ${i}` }]);
    t.deepEqual(r.errs, [0]);
  }
  const [ga, gb] = [await a.recv(sa.fd, 256, 300), await b.recv(sb.fd, 256, 300)];
  t.is(ga.length + gb.length, FLOWS);
  t.true(ga.length > 0 && gb.length > 0, `split ${ga.length}/${gb.length}`);
});

rootTest('recv reports the local address a datagram came to; a reply with that source leaves from it', async (t) => {
  const nsA = await makeNetns(t);
  const nsB = await makeNetns(t);
  const vA = `sxu${TAG}a${seq}`;
  const vB = `sxu${TAG}b${seq}`;
  await linkAdd(vA, 'veth', { netns: nsA, peer: vB, peerNetns: nsB });
  await linkUp(vA, { netns: nsA });
  await linkUp(vB, { netns: nsB });
  await addrAdd(vA, 'fd5e:a::1/64', { netns: nsA, nodad: true });
  await addrAdd(vA, '10.213.0.1/24', { netns: nsA });
  const localsB6 = ['fd5e:a::b1', 'fd5e:a::b2'];
  const localsB4 = ['10.213.0.2', '10.213.0.3'];
  for (const addr of localsB6) await addrAdd(vB, `${addr}/64`, { netns: nsB, nodad: true });
  for (const addr of localsB4) await addrAdd(vB, `${addr}/24`, { netns: nsB });

  const a = new Agent(t, nsA);
  const b = new Agent(t, nsB);
  const vBIndex = await b.call<number>('ifIndex', vB);
  t.is(ifIndex('lo'), 1);
  for (const [family, any, locals, peerA] of [
    [6, '::', localsB6, 'fd5e:a::1'],
    [4, '0.0.0.0', localsB4, '10.213.0.1'],
  ] as const) {
    const sa = await a.open(family, any);
    const sb = await b.open(family, any);
    const sent = await a.send(sa.fd, locals.map((to) => ({ to, port: sb.port, data: `to ${to}` })));
    t.deepEqual(sent.errs, [0, 0]);

    // B answers each datagram with the record it received: to the sender, from the address it came to
    const got = await b.call<RecvRecord[]>('echo', sb.fd, 16, 3000);
    t.is(got.length, 2);
    for (const r of got) {
      t.is(r.family, family);
      t.is(r.from, peerA);
      t.is(r.port, sa.port);
      t.is(r.ifindex, vBIndex);
      t.is(r.data, `to ${r.local}`, 'LOCAL is the address the datagram was sent to');
    }
    t.deepEqual(got.map((r) => r.local).sort(), [...locals].sort());

    const replies = await a.recvAll(sa.fd, 2);
    t.deepEqual(replies.map((r) => `${r.from} ${r.data}`).sort(), locals.map((l) => `${l} to ${l}`).sort(),
      'each reply came from the address its request went to');

    // an explicit source, each way round
    for (const from of locals) {
      t.deepEqual((await b.send(sb.fd, [{ to: peerA, port: sa.port, data: 'x', from }])).errs, [0]);
      const [r] = await a.recvAll(sa.fd, 1);
      t.is(r.from, from);
    }
    // a source address B does not have is refused for that datagram only (IPv6: EINVAL from the
    // pktinfo check; IPv4: the route lookup for that source fails, ENETUNREACH on Linux 6.x)
    const bad = await b.send(sb.fd, [
      { to: peerA, port: sa.port, data: 'y', from: family === 6 ? 'fd5e:a::99' : '10.213.0.99' },
      { to: peerA, port: sa.port, data: 'z' },
    ]);
    t.true([EINVAL, ENETUNREACH].includes(bad.errs[0]), `IPv${family}: errno ${bad.errs[0]}`);
    t.is(bad.errs[1], 0);
    t.deepEqual((await a.recvAll(sa.fd, 1)).map((r) => r.data), ['z']);
  }
});

rootTest('dontFragment: a datagram over the path MTU fails with EMSGSIZE in its record', async (t) => {
  const nsA = await makeNetns(t);
  const nsB = await makeNetns(t);
  const vA = `sxu${TAG}c${seq}`;
  const vB = `sxu${TAG}d${seq}`;
  await linkAdd(vA, 'veth', { netns: nsA, peer: vB, peerNetns: nsB });
  await linkUp(vA, { netns: nsA, mtu: 1280 });
  await linkUp(vB, { netns: nsB, mtu: 1280 });
  await addrAdd(vA, 'fd5e:b::1/64', { netns: nsA, nodad: true });
  await addrAdd(vB, 'fd5e:b::2/64', { netns: nsB, nodad: true });
  const a = new Agent(t, nsA);
  const b = new Agent(t, nsB);
  const sa = await a.open(6, '::', 0, { dontFragment: true });
  const sb = await b.open(6, '::');
  const r = await a.send(sa.fd, [
    { to: 'fd5e:b::2', port: sb.port, data: 'first' },
    { to: 'fd5e:b::2', port: sb.port, size: 1400 }, // 1400 + 48 > 1280
    { to: 'fd5e:b::2', port: sb.port, data: 'third' },
  ]);
  t.is(r.done, 3);
  t.deepEqual(r.errs, [0, EMSGSIZE, 0]);
  t.deepEqual((await b.recvAll(sb.fd, 2)).map((d) => d.data), ['first', 'third']);
});

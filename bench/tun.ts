// node bench/tun.ts — the native shim's packet rates, 1420-byte IPv6/UDP packets, in a private
// network namespace (root). Re-runs itself inside the namespace so the TUN and sockets live there.
//   tunWrite:  main thread writes batches into the TUN (kernel delivers to a local UDP socket)
//   udpRecv:   main thread receives those with recvmmsg while a worker keeps writing into the TUN
//   tunRead:   main thread reads the TUN while a worker sends with sendmmsg to an address routed into it
// Each figure is the median of RUNS runs of SECONDS. The last line is one JSON object.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  TunBatch, UdpBatch, addrAdd, ipToBytes, close, linkUp, netnsAdd, netnsDelete, routeAdd, tunOpen, udpOpen,
} from '../src/tun/index.ts';
import { fmt, machineDescription, median } from './lib.ts';

const RUNS = Number(process.env.RUNS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 1.5);
const PACKET = 1420;
const BATCH = 64;
const LOCAL = 'fd5e:be::1'; // the TUN's address; the UDP sink listens here
const REMOTE = 'fd5e:be:1::2'; // "behind" the TUN: routed into it
const PORT = 40_000;

if (process.argv[2] !== '--inside') {
  const ns = `sixpn-bench-${process.pid}`;
  await netnsAdd(ns);
  try {
    execFileSync('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--inside'], {
      stdio: 'inherit',
    });
  } finally {
    await netnsDelete(ns, { ignoreMissing: true });
  }
  process.exit(0);
}

/** An IPv6/UDP packet of `total` bytes from src:sport to dst:dport with a valid checksum. */
function udp6Packet(out: Uint8Array, off: number, total: number, src: Uint8Array, dst: Uint8Array, sport: number, dport: number): void {
  const udpLen = total - 40;
  out.fill(0, off, off + total);
  out.set([0x60, 0, 0, 0, udpLen >> 8, udpLen & 0xff, 17, 64], off);
  out.set(src, off + 8);
  out.set(dst, off + 24);
  out.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, udpLen >> 8, udpLen & 0xff], off + 40);
  for (let i = 48; i < total; i++) out[off + i] = i & 0xff;
  let sum = 17 + udpLen;
  for (let i = 8; i < 40; i += 2) sum += (out[off + i] << 8) | out[off + i + 1];
  for (let i = 0; i < udpLen; i += 2) sum += (out[off + 40 + i] << 8) | (i + 1 < udpLen ? out[off + 41 + i] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff || 0xffff;
  out[off + 46] = c >> 8;
  out[off + 47] = c & 0xff;
}

const v6 = (text: string): Uint8Array => {
  const b = new Uint8Array(16);
  ipToBytes(text, b);
  return b;
};

// ---- setup (inside the namespace) ----
await linkUp('lo');
const q = tunOpen('sxbench%d');
await linkUp(q.name, { mtu: 1500 });
await addrAdd(q.name, `${LOCAL}/128`, { nodad: true });
await routeAdd('fd5e:be:1::/64', q.name);
const sink = udpOpen(6, LOCAL, PORT, { rcvbuf: 8 << 20 });
const sender = udpOpen(6, LOCAL, 0, { sndbuf: 8 << 20 });

// TUN write batch: BATCH copies of one packet REMOTE:9 → LOCAL:PORT
const writes = new TunBatch(BATCH, 2048, { shared: true });
for (let i = 0; i < BATCH; i++) {
  udp6Packet(writes.slab, writes.offset(i), PACKET, v6(REMOTE), v6(LOCAL), 9, PORT);
  writes.setLength(i, PACKET);
}

const workerSource = `
const { workerData: w } = require('node:worker_threads');
(async () => {
  const { tunWrite, udpSend } = await import(w.url);
  while (Atomics.load(w.stop, 0) === 0) {
    if (w.kind === 'tunWrite') tunWrite(w.fd, w.slab, w.meta, w.count, 10);
    else udpSend(w.fd, w.slab, w.meta, w.count, 10);
  }
})();
`;
const tunUrl = new URL('../src/tun/index.ts', import.meta.url).href;

/** Runs `body` for SECONDS with a background producer worker; returns body's count per second. */
async function withProducer(kind: 'tunWrite' | 'udpSend', fd: number, slab: Uint8Array, meta: Int32Array, body: (deadline: number) => number): Promise<number> {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(workerSource, { eval: true, workerData: { url: tunUrl, kind, fd, slab, meta, count: BATCH, stop } });
  await new Promise((r) => setTimeout(r, 300)); // let it load and start
  const t0 = performance.now();
  const n = body(t0 + SECONDS * 1000);
  const rate = (n * 1000) / (performance.now() - t0);
  Atomics.store(stop, 0, 1);
  await worker.terminate();
  return rate;
}

function drain(fd: number, b: UdpBatch): void {
  while (b.recv(fd, 0) > 0);
}

// tunWrite alone (the kernel delivers to the sink socket, which overflows and drops)
function benchTunWrite(): number {
  let n = 0;
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  while (performance.now() < deadline) n += writes.write(q.fd, BATCH, 10);
  return (n * 1000) / (performance.now() - t0);
}

// udpRecv while a worker writes into the TUN
const recvBatch = new UdpBatch(BATCH, 2048);
function recvLoop(deadline: number): number {
  let n = 0;
  while (performance.now() < deadline) n += recvBatch.recv(sink.fd, 10);
  return n;
}

// tunRead while a worker sends LOCAL → REMOTE:9 (routed into the TUN)
const sends = new UdpBatch(BATCH, 2048, { shared: true });
for (let i = 0; i < BATCH; i++) {
  sends.setPeer(i, REMOTE, 9);
  sends.setLength(i, PACKET - 48);
}
const reads = new TunBatch(BATCH, 2048);
function readLoop(deadline: number): number {
  let n = 0;
  while (performance.now() < deadline) n += reads.read(q.fd, 10);
  return n;
}

console.log(machineDescription());
console.log(`packets: ${PACKET} B IPv6/UDP, batch ${BATCH}, ${SECONDS} s × ${RUNS} runs (median), TUN ${q.name} in a private namespace\n`);

const results: Record<string, number> = {};
const runs: Record<string, number[]> = { tunWrite: [], udpRecv: [], tunRead: [] };
for (let r = 0; r < RUNS; r++) {
  drain(sink.fd, recvBatch);
  runs.tunWrite.push(benchTunWrite());
  drain(sink.fd, recvBatch);
  runs.udpRecv.push(await withProducer('tunWrite', q.fd, writes.slab, writes.meta, recvLoop));
  while (reads.read(q.fd, 0) > 0);
  runs.tunRead.push(await withProducer('udpSend', sender.fd, sends.slab, sends.meta, readLoop));
}
for (const [k, xs] of Object.entries(runs)) {
  results[`${k}_pps`] = Math.round(median(xs));
  console.log(`${k.padEnd(9)} ${fmt(median(xs)).padStart(9)} pkt/s  ${((median(xs) * PACKET * 8) / 1e9).toFixed(2)} Gbit/s`);
}
close(sender.fd);
close(sink.fd);
close(q.fd);
console.log(JSON.stringify({ bench: 'tun', node: process.version, packet_bytes: PACKET, batch: BATCH, ...results }));

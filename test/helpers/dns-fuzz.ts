// DNS abuse, run inside a machine namespace by test/dns-live.test.ts:
//   node dns-fuzz.ts SERVER [idleMs] [maxConnections]
// TCP: pipelined queries, garbage, short frames, mutated queries, an idle half-sent frame, more
// connections than the server takes. UDP: random and mutated datagrams. Then one good query.
// Prints one JSON object.
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { randomBytes, randomInt } from 'node:crypto';

const server = process.argv[2] ?? 'fdaa::3';
const idleMs = Number(process.argv[3] ?? 10_000);
const maxConns = Number(process.argv[4] ?? 256);

function query(id: number, name: string, qtype = 28): Buffer {
  const b = [id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of name.split('.')) b.push(l.length, ...Array.from(l, (c) => c.charCodeAt(0)));
  b.push(0, qtype >> 8, qtype & 0xff, 0, 1);
  return Buffer.from(b);
}
const frame = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: server, port: 53 });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Sends `bytes` (then half-closes, with `end`), collects what comes back until the server
 * closes or `waitMs` passes.
 */
async function exchange(bytes: Buffer, waitMs: number, end = false): Promise<{ closed: boolean; got: Buffer; ms: number }> {
  const t0 = performance.now();
  const s = await open();
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ closed, got: Buffer.concat(chunks), ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => finish(true));
    s.on('end', () => finish(true));
    s.on('error', () => finish(true));
    if (end) s.end(bytes);
    else s.write(bytes);
  });
}

/** Splits a TCP stream into messages. */
function messages(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + 2 <= b.length; ) {
    const n = b.readUInt16BE(i);
    if (i + 2 + n > b.length) break;
    out.push(b.subarray(i + 2, i + 2 + n));
    i += 2 + n;
  }
  return out;
}

const result: Record<string, unknown> = {};

// An idle connection with half a frame: the server closes it after its idle time.
const idle = exchange(Buffer.from([0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), idleMs + 5000);

// 1. 200 pipelined queries in one write: 200 answers, IDs in any order.
{
  const qs = Array.from({ length: 200 }, (_, i) => frame(query(i + 1, 'web.internal')));
  const want = new Set(qs.map((_, i) => i + 1));
  const r = await exchange(Buffer.concat(qs), 5000);
  const got = messages(r.got).filter((m) => want.delete(m.readUInt16BE(0))).length;
  result.pipelined = got;
}
// 2. garbage streams: random bytes then FIN; never answered with more than they sent
{
  let closed = 0;
  let amplified = 0;
  for (let round = 0; round < 10; round++) {
    const rs = await Promise.all(Array.from({ length: 20 }, () => {
      const g = randomBytes(randomInt(1, 3000));
      return exchange(g, 1500, true).then((r) => ({ r, sent: g.length }));
    }));
    for (const { r, sent } of rs) {
      if (r.closed) closed++;
      if (r.got.length > sent + 512) amplified++;
    }
  }
  result.garbageClosed = closed;
  result.garbageAmplified = amplified;
}
// 3. a frame shorter than a DNS header: closed at once
{
  const r = await exchange(Buffer.from([0, 5, 1, 2, 3, 4, 5]), 3000);
  result.shortFrameClosed = r.closed;
  result.shortFrameMs = Math.round(r.ms);
}
// 4. 2000 mutated queries (random bytes flipped, random lengths) over a few connections
{
  const base = query(0x4242, 'w01.vm.web.internal');
  let replies = 0;
  let sent = 0;
  let tooBig = 0;
  for (let c = 0; c < 20; c++) {
    const batch: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const m = Buffer.from(base);
      for (let k = randomInt(1, 6); k > 0; k--) m[randomInt(0, m.length)] = randomInt(0, 256);
      const cut = randomInt(0, 4) === 0 ? m.subarray(0, randomInt(12, m.length + 1)) : m;
      batch.push(frame(Buffer.concat([cut, randomInt(0, 4) === 0 ? randomBytes(randomInt(1, 40)) : Buffer.alloc(0)])));
    }
    sent += batch.length;
    const r = await exchange(Buffer.concat(batch), 1500, true);
    for (const m of messages(r.got)) {
      replies++;
      if (m.length > 1500) tooBig++;
    }
  }
  result.mutatedSent = sent;
  result.mutatedReplies = replies;
  result.mutatedTooBig = tooBig;
}
// 5. more connections than the server takes: the extra ones are closed, the rest answer
{
  const n = maxConns + 60;
  const socks = await Promise.all(Array.from({ length: n }, () => open().catch(() => null)));
  await sleep(500);
  const answered = await Promise.all(socks.map((s, i) => new Promise<boolean>((resolve) => {
    if (s === null || s.destroyed) return resolve(false);
    const t = setTimeout(() => resolve(false), 3000);
    s.once('data', () => { clearTimeout(t); resolve(true); });
    s.once('close', () => { clearTimeout(t); resolve(false); });
    s.on('error', () => undefined);
    s.write(frame(query(i, 'db.internal')));
  })));
  result.floodOpened = n;
  result.floodAnswered = answered.filter(Boolean).length;
  for (const s of socks) s?.destroy();
  await sleep(300);
}
// 6. UDP: random datagrams (ID = index) and mutated queries; an answer to garbage is never
// longer than the garbage (no amplification)
{
  const u = createSocket('udp6');
  await new Promise<void>((r) => u.bind(0, r));
  const sent = new Map<number, number>();
  let replies = 0;
  let amplified = 0;
  u.on('message', (m) => {
    replies++;
    const n = sent.get(m.readUInt16BE(0));
    if (n !== undefined && m.length > n) amplified++;
  });
  const base = query(0, 'web.internal');
  for (let i = 0; i < 3000; i++) {
    let d: Buffer;
    if (i % 2 === 0) {
      d = randomBytes(randomInt(2, 600));
      d.writeUInt16BE(i, 0);
      sent.set(i, d.length);
    } else {
      d = Buffer.from(base);
      for (let k = randomInt(1, 6); k > 0; k--) d[randomInt(2, d.length)] = randomInt(0, 256);
      d.writeUInt16BE(0x8000 | i, 0);
    }
    u.send(d, 53, server);
    if (i % 100 === 99) await sleep(5);
  }
  await sleep(500);
  u.close();
  result.udpSent = 3000;
  result.udpReplies = replies;
  result.udpAmplified = amplified;
}
// 7. the server still answers
{
  const r = await exchange(frame(query(0x7777, 'web.internal')), 3000);
  const m = messages(r.got)[0];
  result.afterwards = m !== undefined && m.readUInt16BE(0) === 0x7777 && (m[3] & 15) === 0 ? m.readUInt16BE(6) : -1;
}
const i = await idle;
result.idleClosed = i.closed;
result.idleMs = Math.round(i.ms);
console.log(JSON.stringify(result));

// DNS queries: the `.internal` resolver over the example topology (UDP and TCP limits), the
// forwarder (queries for outside names, upstream replies matched to them, timeouts) and the TCP
// deframer. Generated queries have compression pointers (loops, forward, past the end), counts
// that lie, EDNS OPT records with options, odd classes and types. Input: [mode][message].
// Invariants: nothing throws; a reply fits its transport's limit, echoes the ID, has QR set;
// the forwarder's table stays bounded.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { FWD_CLIENT, FWD_NONE, FWD_UPSTREAM, Forwarder, InternalResolver, TcpDeframer, ANSWER_FORWARD } from '../../src/dns/index.ts';
import { dnsView, parseTopology } from '../../src/topology/index.ts';
import { mutatedBytes, type FuzzTarget } from '../lib.ts';

const EXAMPLE = new URL('../../examples/topology.example.json', import.meta.url);
const MAX_OUTSTANDING = 64;
const UDP_LIMIT = 1232; // DEFAULT_MAX_UDP_PAYLOAD: no UDP reply is larger

const NAMES = ['shop-web.internal', '_apps.internal', 'internal', 'nearest.of.shop-web.internal', 'top2.nearest.of.shop-web.internal',
  'ams.shop-web.internal', 'example.com', 'a.b.c.d.e.f.g.internal', '_peer.internal', 'vm.shop-web.internal'];

function name(labels: string[]): number[] {
  const b: number[] = [];
  for (const l of labels) if (l !== '') b.push(l.length, ...Array.from(l, (c) => c.charCodeAt(0) & 0xff));
  b.push(0);
  return b;
}

interface QueryShape {
  id: number;
  flags: number;
  counts: [number, number, number, number];
  name: number;
  caseFlip: number;
  pointer: 'none' | 'loop' | 'self' | 'forward' | 'past' | 'chain';
  qtype: number;
  qclass: number;
  edns: { payload: number; version: number; flags: number; options: Array<{ code: number; data: Uint8Array }> } | null;
  trailing: Uint8Array;
}

const queryShape: fc.Arbitrary<QueryShape> = fc.record({
  id: fc.nat(0xffff),
  flags: fc.oneof(fc.constant(0x0100), fc.constant(0), fc.nat(0xffff)),
  counts: fc.tuple(fc.constantFrom(1, 1, 1, 0, 2, 0xffff), fc.constantFrom(0, 0, 1, 0xffff), fc.constantFrom(0, 0, 1), fc.constantFrom(0, 1, 1, 2, 0xffff)),
  name: fc.nat(NAMES.length - 1),
  caseFlip: fc.nat(),
  pointer: fc.constantFrom('none', 'none', 'loop', 'self', 'forward', 'past', 'chain'),
  qtype: fc.constantFrom(28, 1, 16, 6, 255, 252, 251, 41, 15, 2, 200, 0),
  qclass: fc.constantFrom(1, 1, 255, 3, 254, 0),
  edns: fc.option(fc.record({
    payload: fc.constantFrom(0, 511, 512, 1232, 4096, 65535),
    version: fc.constantFrom(0, 0, 1, 255),
    flags: fc.constantFrom(0, 0x8000, 0xffff),
    options: fc.array(fc.record({ code: fc.constantFrom(3, 8, 10, 12, 15, 0, 65535), data: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 4 }),
  })),
  trailing: fc.uint8Array({ maxLength: 8 }),
});

function buildQuery(q: QueryShape): Uint8Array {
  const b = [q.id >> 8, q.id & 0xff, q.flags >> 8, q.flags & 0xff];
  for (const c of q.counts) b.push(c >> 8, c & 0xff);
  const labels = NAMES[q.name].split('.').map((l, i) => ((q.caseFlip >> i) & 1 ? l.toUpperCase() : l));
  const n = name(labels);
  switch (q.pointer) {
    case 'none': b.push(...n); break;
    case 'self': b.push(0xc0, 12); break; // points at itself
    case 'loop': b.push(1, 0x61, 0xc0, 12); break; // a label, then back to the start
    case 'forward': b.push(0xc0, 18, 0, 0, 0, 0, ...n); break; // to bytes after the question
    case 'past': b.push(0xff, 0xff); break;
    case 'chain': b.push(0xc0, 14, 0xc0, 16, 0xc0, 12); break; // pointer to pointer to …
  }
  b.push(q.qtype >> 8, q.qtype & 0xff, q.qclass >> 8, q.qclass & 0xff);
  if (q.edns) {
    const opts: number[] = [];
    for (const o of q.edns.options) opts.push(o.code >> 8, o.code & 0xff, o.data.length >> 8, o.data.length & 0xff, ...o.data);
    b.push(0, 0, 41, q.edns.payload >> 8, q.edns.payload & 0xff, 0, q.edns.version, q.edns.flags >> 8, q.edns.flags & 0xff,
      opts.length >> 8, opts.length & 0xff, ...opts);
  }
  b.push(...q.trailing);
  return Uint8Array.from(b);
}

export async function dnsTarget(): Promise<FuzzTarget> {
  const topology = parseTopology(readFileSync(EXAMPLE, 'utf8'), 'topology.example.json');
  const asker = topology.machines.find((m) => m.started)!.address;
  const outsider = new Uint8Array(16).fill(0x20, 0, 1);
  const out = new Uint8Array(65_535 + 2);
  let resolver: InternalResolver;
  let forwarder: Forwarder<number>;
  let deframer: TcpDeframer;
  let now = 0;
  const upstreamIds: number[] = [];
  const reset = () => {
    resolver = new InternalResolver(dnsView(() => topology));
    forwarder = new Forwarder<number>({ upstreams: [{ address: '2001:db8::53', port: 53 }, { address: '2001:db8::54', port: 53 }], maxOutstanding: MAX_OUTSTANDING, timeoutMs: 2000 });
    deframer = new TcpDeframer();
    now = 0;
    upstreamIds.length = 0;
  };
  reset();

  const checkReply = (query: Uint8Array, n: number, limit: number, what: string) => {
    if (n === 0 || n === ANSWER_FORWARD) return;
    if (n < 12 || n > limit) throw new Error(`${what}: reply of ${n} bytes (limit ${limit})`);
    if (query.length >= 2 && (out[0] !== query[0] || out[1] !== query[1])) throw new Error(`${what}: reply ID differs`);
    if ((out[2] & 0x80) === 0) throw new Error(`${what}: reply without QR`);
  };
  const seeds = fc.sample(queryShape, { numRuns: 64, seed: 53 }).map((q, i) => Uint8Array.from([i % 4, ...buildQuery(q)]));
  const structured = fc.tuple(fc.nat(3), queryShape).map(([mode, q]) => Uint8Array.from([mode, ...buildQuery(q)]));
  return {
    name: 'dns',
    seeds,
    arbitrary: (s) => fc.oneof(structured, mutatedBytes(s, 2048)),
    run(input: Uint8Array): void {
      if (input.length === 0) return;
      const msg = input.subarray(1);
      now += 100;
      switch (input[0] % 4) {
        case 0: {
          // UDP from a machine, then from an unknown source
          checkReply(msg, resolver.answer(msg, asker, 'udp', out), UDP_LIMIT, 'udp'); // our EDNS payload size bounds every UDP reply
          checkReply(msg, resolver.answer(msg, outsider, 'udp', out), 512, 'udp (outsider)');
          break;
        }
        case 1: {
          const n = resolver.answer(msg, asker, 'tcp', out.subarray(2));
          if (n > 65_535) throw new Error(`tcp: reply of ${n} bytes`);
          break;
        }
        case 2: {
          // the forwarder: the query goes upstream; the message also comes back as a "reply"
          const a = forwarder.query(msg, 1, now, out);
          if (a.kind !== FWD_NONE && (a.length <= 0 || a.length > out.length)) throw new Error(`forward: length ${a.length}`);
          if (a.kind === FWD_UPSTREAM && a.length >= 2) upstreamIds.push((out[0] << 8) | out[1]);
          if (forwarder.outstanding > MAX_OUTSTANDING) throw new Error(`forwarder holds ${forwarder.outstanding}`);
          const reply = msg.slice();
          if (reply.length >= 3) {
            const id = upstreamIds.length > 0 ? upstreamIds[upstreamIds.length - 1] : 0;
            reply[0] = id >> 8;
            reply[1] = id & 0xff;
            reply[2] |= 0x80;
          }
          const r = forwarder.reply(reply, input.length & 1, now, out);
          if (r.kind === FWD_CLIENT && r.client !== 1) throw new Error('forward: reply to a client that did not ask');
          for (let i = 0; i < 4; i++) if (forwarder.poll(now + 5000 * (input.length & 3), out).kind === FWD_NONE) break;
          if (upstreamIds.length > 256) upstreamIds.splice(0, 128);
          break;
        }
        default: {
          // TCP stream: the bytes as a chunk of a stream
          if (!deframer.push(msg)) deframer = new TcpDeframer();
          for (let m = deframer.next(); m !== undefined; m = deframer.next()) resolver.answer(m, asker, 'tcp', out);
          if (deframer.buffered > 65_537 + msg.length) throw new Error(`deframer holds ${deframer.buffered}`);
        }
      }
    },
    reset,
  };
}

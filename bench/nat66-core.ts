// node bench/nat66-core.ts — the SNAT66 core on one core (this thread), no I/O:
//   new UDP flows/s: each a new session; first with a new mapping each (250,000 internal
//     endpoints over 8 egress addresses), then on existing mappings (3 more remotes each),
//     filling the table to 1,000,000 entries;
//   packets/s of an established flow, outbound and inbound, against that full table (each
//     iteration first restores the packet from a template: that copy is measured alone too);
//   tick: reaping all 1,000,000 entries at once;
//   bytes per entry at 1,000,000 entries: the typed arrays, and what process.memoryUsage saw
//   (first run).
// Median of RUNS runs. The last line is one JSON object.
import { addressBytes, readU16, writeU16, writeU32 } from '../src/ipv6/index.ts';
import { NAT66_DELIVER, NAT66_FORWARD, Nat66 } from '../src/nat66/index.ts';
import { buildUdp } from '../test/helpers/packets.ts';
import { fmt, machineDescription, median, opsPerSecond } from './lib.ts';

const RUNS = Number(process.env.RUNS ?? 3);
const ENTRIES = Number(process.env.ENTRIES ?? 1_000_000);
const ENDPOINTS = ENTRIES / 4; // internal endpoints; 4 remotes each
const EGRESSES = 8;
const PAYLOAD = 64; // bytes of UDP data: a small packet, so the core's cost shows

console.log(machineDescription());
console.log(`runs: ${RUNS} (median reported), entries: ${ENTRIES}\n`);

const machineBase = addressBytes('fdaa:0:18:a7b:7d::2');
const remoteBase = addressBytes('2001:db8:100::');
const egress = Array.from({ length: EGRESSES }, (_, i) => addressBytes(`2001:db8:e::${i + 1}`));

const work = new Uint8Array(256);
const template = new Uint8Array(256);
const len = buildUdp(template, 0, machineBase, 0, remoteBase, 0, 1024, 53, new Uint8Array(PAYLOAD), 0, PAYLOAD);

// Flow i: internal endpoint e = i mod ENDPOINTS (machine e >> 6, port 1024 + (e & 63) * 997 mod
// 64000 … spread), remote r = i div ENDPOINTS; egress e mod 8.
function writeFlow(i: number): number {
  const e = i % ENDPOINTS;
  const r = (i / ENDPOINTS) | 0;
  work.set(template.subarray(0, len));
  writeU32(work, 8 + 10, e >>> 6); // the instance field of the 6PN address: one machine per 64 endpoints
  writeU16(work, 40, 1024 + (((e & 63) * 997 + (e >>> 6)) % 64000));
  writeU32(work, 24 + 12, 0x10000 + r * 7919 + (e & 0xff)); // remote address low bits
  return e;
}

function newNat(): Nat66 {
  const n = new Nat66({
    capacity: ENTRIES, perMachineLimit: ENTRIES, maxMachines: (ENDPOINTS >>> 6) + 1, maxEgress: EGRESSES, seed: 42,
  });
  for (const a of egress) n.addEgress(a);
  return n;
}

const newMapping: number[] = [];
const existingMapping: number[] = [];
const outPps: number[] = [];
const inPps: number[] = [];
const copyPps: number[] = [];
const tickMs: number[] = [];
let bytesPerEntry = 0;
let heapPerEntry = 0;
let arrayBuffersPerEntry = 0;
let rssPerEntry = 0;

for (let run = 0; run < RUNS; run++) {
  globalThis.gc?.();
  const before = process.memoryUsage();
  const n = newNat();
  const now = 1_000_000;

  // Phase 1: a new mapping and session per flow.
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < ENDPOINTS; i++) {
    const e = writeFlow(i);
    if (n.outbound(work, 0, len, e >>> 6, e % EGRESSES, now) !== NAT66_FORWARD) throw new Error(`flow ${i} refused`);
  }
  let s = Number(process.hrtime.bigint() - t0) / 1e9;
  newMapping.push(ENDPOINTS / s);

  // Phase 2: new sessions on those mappings.
  t0 = process.hrtime.bigint();
  for (let i = ENDPOINTS; i < ENTRIES; i++) {
    const e = writeFlow(i);
    if (n.outbound(work, 0, len, e >>> 6, e % EGRESSES, now) !== NAT66_FORWARD) throw new Error(`flow ${i} refused`);
  }
  s = Number(process.hrtime.bigint() - t0) / 1e9;
  existingMapping.push((ENTRIES - ENDPOINTS) / s);
  if (n.size !== ENTRIES || n.mappings !== ENDPOINTS) throw new Error(`table: ${n.size} sessions, ${n.mappings} mappings`);

  bytesPerEntry = n.byteLength() / ENTRIES;
  if (run === 0) {
    // First run only: later runs overlap with the collection of the previous table.
    const after = process.memoryUsage();
    arrayBuffersPerEntry = (after.arrayBuffers - before.arrayBuffers) / ENTRIES;
    heapPerEntry = (after.heapUsed - before.heapUsed) / ENTRIES;
    rssPerEntry = (after.rss - before.rss) / ENTRIES;
  }

  // Established flow 12345, both ways, in the full table.
  const f = 12345;
  const ef = writeFlow(f);
  n.outbound(work, 0, len, ef >>> 6, ef % EGRESSES, now);
  const outPkt = new Uint8Array(256);
  outPkt.set(template.subarray(0, len));
  writeFlow(f);
  outPkt.set(work.subarray(0, len));
  const inPkt = new Uint8Array(256);
  buildUdp(inPkt, 0, work, 24, egress[ef % EGRESSES], 0, 53, readU16(work, 40), new Uint8Array(PAYLOAD), 0, PAYLOAD);
  n.outbound(work, 0, len, ef >>> 6, ef % EGRESSES, now);
  writeU16(inPkt, 42, readU16(work, 40)); // the external port (checksum not checked by the core)
  outPps.push(opsPerSecond((k) => {
    for (let i = 0; i < k; i++) {
      work.set(outPkt.subarray(0, len));
      if (n.outbound(work, 0, len, ef >>> 6, ef % EGRESSES, now) !== NAT66_FORWARD) throw new Error('out');
    }
  }));
  inPps.push(opsPerSecond((k) => {
    for (let i = 0; i < k; i++) {
      work.set(inPkt.subarray(0, len));
      if (n.inbound(work, 0, len, now) !== NAT66_DELIVER) throw new Error('in');
    }
  }));
  copyPps.push(opsPerSecond((k) => {
    for (let i = 0; i < k; i++) work.set(outPkt.subarray(0, len));
  }));

  // Reap everything in one tick.
  t0 = process.hrtime.bigint();
  const gone = n.tick(now + 10_000_000);
  tickMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (gone !== ENTRIES || n.size !== 0 || n.mappings !== 0) throw new Error(`tick reaped ${gone}`);
}

const r = {
  machine: machineDescription().split('\n'),
  entries: ENTRIES,
  newFlowsNewMappingPerS: Math.round(median(newMapping)),
  newFlowsExistingMappingPerS: Math.round(median(existingMapping)),
  establishedOutboundPps: Math.round(median(outPps)),
  establishedInboundPps: Math.round(median(inPps)),
  templateCopyPps: Math.round(median(copyPps)),
  tickReapAllMs: Math.round(median(tickMs)),
  tableBytesPerEntry: Math.round(bytesPerEntry * 10) / 10,
  arrayBuffersBytesPerEntry: Math.round(arrayBuffersPerEntry * 10) / 10,
  jsHeapBytesPerEntry: Math.round(heapPerEntry * 10) / 10,
  rssBytesPerEntry: Math.round(rssPerEntry * 10) / 10,
  payloadBytes: PAYLOAD,
};
console.log(`new UDP flows/s, new mapping each:        ${fmt(r.newFlowsNewMappingPerS)}`);
console.log(`new UDP flows/s, on an existing mapping:  ${fmt(r.newFlowsExistingMappingPerS)}`);
console.log(`established flow, outbound packets/s:     ${fmt(r.establishedOutboundPps)} (${len} B, table full)`);
console.log(`established flow, inbound packets/s:      ${fmt(r.establishedInboundPps)}`);
console.log(`  (template copy alone:                   ${fmt(r.templateCopyPps)}/s)`);
console.log(`tick reaping ${ENTRIES} entries:          ${r.tickReapAllMs} ms`);
console.log(`bytes per entry at ${ENTRIES}: tables ${r.tableBytesPerEntry}, arrayBuffers Δ ${r.arrayBuffersBytesPerEntry}, JS heap Δ ${r.jsHeapBytesPerEntry}, RSS Δ ${r.rssBytesPerEntry}`);
console.log(JSON.stringify(r));

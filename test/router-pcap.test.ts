// pcap replay (DESIGN.md "How it is tested" 3): every packet captured on the machines' TUNs of
// a live `sixpn demo --keep` (pcaps/router-*.pcap, made by scripts/capture-pcaps.sh with tcpdump,
// ping, ncat and dig; see pcaps/README.md) goes through Routers built over the topology it was
// captured under (pcaps/router-topology.json), one Router per host, the mesh replayed in memory.
//
// For each scenario the table below numbers every packet of the scenario's files in capture
// order. A packet a machine sent ("out", what the router read from its TUN) is replayed from
// its machine; its row gives the path (which RouterIO calls, on which host), the counters that
// move, and what must come out: the packet forwarded with its hop limit decremented once per
// router, a migration rewrite, an ICMPv6 error, DNS, or nothing. A packet a machine received
// ("in", what the real router wrote into its TUN) must be, byte for byte, what the replay of the
// row it names delivered to that machine; every delivery to a captured machine is claimed by one.
import test, { type ExecutionContext } from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  IPPROTO_ICMPV6,
  IPPROTO_UDP,
  IPV6_OFF_DST,
  IPV6_OFF_SRC,
  Ipv6Info,
  PARSE_OK,
  addressBytes,
  checksumOffset,
  encodeSixpn,
  formatAddress,
  getNetwork,
  isSixpn,
  parsePacket,
  swapPacket,
  SWAP_BOTH,
  verifyChecksum,
} from '../src/ipv6/index.ts';
import { parseTopology, type Machine, type Topology } from '../src/topology/index.ts';
import { Net, type Journey } from './helpers/router-net.ts';
import { loadScenario, scenarioNames, type Captured } from './helpers/router-pcap.ts';

const PCAPS = new URL('../pcaps/', import.meta.url).pathname;
const topology: Topology = parseTopology(readFileSync(join(PCAPS, 'router-topology.json'), 'utf8'), 'pcaps/router-topology.json');
const TAG = 'fjsz2'; // the demo run the fixtures come from
const keyOf = (id: string): string => id.slice(TAG.length).replace(/0+$/, '');
const machineOf = (key: string): Machine => {
  const m = topology.machines.find((x) => keyOf(x.id) === key);
  if (m === undefined) throw new Error(`no machine ${key} in the fixture topology`);
  return m;
};

// Addresses of the fixture topology (acme 0x18; ams1 a7b:1, ord1 a7b:2, syd1 a7b:3)
const DB2_NEW = 'fdaa:0:18:a7b:3:0:202:2';
const DB2_OLD = 'fdaa:0:18:a7b:2:0:202:2';

// ---- The expected verdicts ----

type Expect =
  | { fwd: number; dst?: string; src?: string } // delivered; hop limit −fwd; an address rewritten
  | { icmp: [type: number, code: number, param: number]; by: string; hl: number } // an error back to the sender
  | { dns: true }
  | { drop: true };

interface OutRow {
  n: number;
  out: string; // the sending machine
  what: string;
  path: string;
  counters: string;
  expect: Expect;
}
type InRow = { n: number; in: string; of: number } | { n: number; in: string; dnsAnswerTo: number };
type Row = OutRow | InRow;

const LOCAL_DROP = (counter: string): Pick<OutRow, 'path' | 'counters'> => ({ path: 'ams1 drop', counters: `ams1.${counter}` });
const ERR_AMS1 = (counter: string): Pick<OutRow, 'path' | 'counters'> => ({
  path: 'ams1 toMachine web1',
  counters: `ams1.${counter} ams1.icmp_sent`,
});
const LOCAL = (to: string): Pick<OutRow, 'path' | 'counters'> => ({ path: `ams1 toMachine ${to}`, counters: 'ams1.forwarded_local' });
const AMS1_ORD1_WEB2 = { path: 'ams1 toMesh ord1 | ord1 toMachine web2', counters: 'ams1.forwarded_mesh ord1.forwarded_local' };
const ORD1_AMS1_WEB1 = { path: 'ord1 toMesh ams1 | ams1 toMachine web1', counters: 'ams1.forwarded_local ord1.forwarded_mesh' };
const TO_OLD_DB2 = {
  path: 'ams1 toMesh syd1 | syd1 toMachine db2',
  counters: 'ams1.forwarded_mesh ams1.migrated_rewrite syd1.forwarded_local',
  expect: { fwd: 2, dst: DB2_NEW },
};
const FROM_DB2_BACK_TO_OLD = {
  path: 'syd1 toMesh ams1 | ams1 toMachine web1',
  counters: 'ams1.forwarded_local ams1.migrated_rewrite syd1.forwarded_mesh',
  expect: { fwd: 2, src: DB2_OLD },
};

const TABLES: Record<string, Row[]> = {
  'ping-local': [
    { n: 1, out: 'web1', what: 'echo request → db1 (same org, same host)', ...LOCAL('db1'), expect: { fwd: 1 } },
    { n: 2, in: 'db1', of: 1 },
    { n: 3, out: 'db1', what: 'echo reply → web1', ...LOCAL('web1'), expect: { fwd: 1 } },
    { n: 4, in: 'web1', of: 3 },
    { n: 5, out: 'web1', what: 'echo request seq 2 → db1', ...LOCAL('db1'), expect: { fwd: 1 } },
    { n: 6, in: 'db1', of: 5 },
    { n: 7, out: 'db1', what: 'echo reply seq 2 → web1', ...LOCAL('web1'), expect: { fwd: 1 } },
    { n: 8, in: 'web1', of: 7 },
  ],
  'ping-mesh': [
    { n: 1, out: 'web1', what: 'echo request → web2 (ord1)', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 2, in: 'web2', of: 1 },
    { n: 3, out: 'web2', what: 'echo reply → web1 (ams1)', ...ORD1_AMS1_WEB1, expect: { fwd: 2 } },
    { n: 4, in: 'web1', of: 3 },
    { n: 5, out: 'web1', what: 'echo request seq 2 → web2', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 6, in: 'web2', of: 5 },
    { n: 7, out: 'web2', what: 'echo reply seq 2 → web1', ...ORD1_AMS1_WEB1, expect: { fwd: 2 } },
    { n: 8, in: 'web1', of: 7 },
  ],
  'tcp-mesh': [
    { n: 1, out: 'web1', what: 'TCP SYN → web2:7001', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 2, in: 'web2', of: 1 },
    { n: 3, out: 'web2', what: 'SYN-ACK', ...ORD1_AMS1_WEB1, expect: { fwd: 2 } },
    { n: 4, in: 'web1', of: 3 },
    { n: 5, out: 'web1', what: 'ACK', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 6, out: 'web1', what: '"hello-6pn\\n"', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 7, in: 'web2', of: 5 },
    { n: 8, in: 'web2', of: 6 },
    { n: 9, out: 'web2', what: 'ACK', ...ORD1_AMS1_WEB1, expect: { fwd: 2 } },
    { n: 10, in: 'web1', of: 9 },
    { n: 11, out: 'web2', what: 'the echo', ...ORD1_AMS1_WEB1, expect: { fwd: 2 } },
    { n: 12, in: 'web1', of: 11 },
    { n: 13, out: 'web1', what: 'ACK', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 14, in: 'web2', of: 13 },
    { n: 15, out: 'web1', what: 'FIN', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 16, in: 'web2', of: 15 },
    { n: 17, out: 'web2', what: 'FIN', ...ORD1_AMS1_WEB1, expect: { fwd: 2 } },
    { n: 18, in: 'web1', of: 17 },
    { n: 19, out: 'web1', what: 'last ACK', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 20, in: 'web2', of: 19 },
  ],
  dns: [
    { n: 1, out: 'web1', what: 'UDP AAAA? web.internal → fdaa::3', path: 'ams1 toDns', counters: 'ams1.dns', expect: { dns: true } },
    { n: 2, in: 'web1', dnsAnswerTo: 1 },
    { n: 3, out: 'web1', what: 'UDP TXT? _apps.internal → fdaa::3', path: 'ams1 toDns', counters: 'ams1.dns', expect: { dns: true } },
    { n: 4, in: 'web1', dnsAnswerTo: 3 },
  ],
  'cross-org': [
    { n: 1, out: 'web1', what: 'echo request → led1 (initech, same host)', ...ERR_AMS1('dropped_cross_org'), expect: { icmp: [1, 1, 0], by: 'ams1', hl: 64 } },
    { n: 2, in: 'web1', of: 1 },
    { n: 3, out: 'web1', what: 'echo request → led2 (initech, syd1)', ...ERR_AMS1('dropped_cross_org'), expect: { icmp: [1, 1, 0], by: 'ams1', hl: 64 } },
    { n: 4, in: 'web1', of: 3 },
    { n: 5, out: 'web1', what: 'TCP SYN → led1:7000', ...ERR_AMS1('dropped_cross_org'), expect: { icmp: [1, 1, 0], by: 'ams1', hl: 64 } },
    { n: 6, in: 'web1', of: 5 },
  ],
  spoof: [
    { n: 1, out: 'web1', what: 'echo request from web2\'s address → db1', ...LOCAL_DROP('dropped_spoofed'), expect: { drop: true } },
  ],
  unreachable: [
    {
      n: 1, out: 'web1', what: 'echo request → web3 (stopped, syd1)',
      path: 'ams1 toMesh syd1 | syd1 toMesh ams1 | ams1 toMachine web1',
      counters: 'ams1.forwarded_local ams1.forwarded_mesh syd1.dropped_unreachable syd1.icmp_sent',
      expect: { icmp: [1, 3, 0], by: 'syd1', hl: 63 },
    },
    { n: 2, in: 'web1', of: 1 },
    { n: 3, out: 'web1', what: 'echo request → unknown instance on ord1', ...ERR_AMS1('dropped_unreachable'), expect: { icmp: [1, 3, 0], by: 'ams1', hl: 64 } },
    { n: 4, in: 'web1', of: 3 },
    { n: 5, out: 'web1', what: 'echo request → unknown host dead:beef', ...ERR_AMS1('dropped_no_route'), expect: { icmp: [1, 0, 0], by: 'ams1', hl: 64 } },
    { n: 6, in: 'web1', of: 5 },
    { n: 7, out: 'web1', what: 'echo request → 2001:db8::1 (no egress)', ...ERR_AMS1('dropped_no_egress'), expect: { icmp: [1, 0, 0], by: 'ams1', hl: 64 } },
    { n: 8, in: 'web1', of: 7 },
  ],
  migrated: [
    { n: 1, out: 'web1', what: 'echo request → db2\'s old address', ...TO_OLD_DB2 },
    { n: 2, in: 'db2', of: 1 },
    { n: 3, out: 'db2', what: 'echo reply from the new address', ...FROM_DB2_BACK_TO_OLD },
    { n: 4, in: 'web1', of: 3 },
    { n: 5, out: 'web1', what: 'echo request seq 2 → old address', ...TO_OLD_DB2 },
    { n: 6, in: 'db2', of: 5 },
    { n: 7, out: 'db2', what: 'echo reply seq 2', ...FROM_DB2_BACK_TO_OLD },
    { n: 8, in: 'web1', of: 7 },
    { n: 9, out: 'web1', what: 'TCP SYN → old address:7000', ...TO_OLD_DB2 },
    { n: 10, in: 'db2', of: 9 },
    { n: 11, out: 'db2', what: 'SYN-ACK', ...FROM_DB2_BACK_TO_OLD },
    { n: 12, in: 'web1', of: 11 },
    { n: 13, out: 'web1', what: 'ACK', ...TO_OLD_DB2 },
    { n: 14, in: 'db2', of: 13 },
    { n: 15, out: 'web1', what: '"hello-old-address\\n"', ...TO_OLD_DB2 },
    { n: 16, in: 'db2', of: 15 },
    { n: 17, out: 'db2', what: 'ACK', ...FROM_DB2_BACK_TO_OLD },
    { n: 18, in: 'web1', of: 17 },
    { n: 19, out: 'db2', what: 'the echo', ...FROM_DB2_BACK_TO_OLD },
    { n: 20, in: 'web1', of: 19 },
    { n: 21, out: 'web1', what: 'ACK', ...TO_OLD_DB2 },
    { n: 22, in: 'db2', of: 21 },
    { n: 23, out: 'web1', what: 'FIN', ...TO_OLD_DB2 },
    { n: 24, in: 'db2', of: 23 },
    { n: 25, out: 'db2', what: 'FIN', ...FROM_DB2_BACK_TO_OLD },
    { n: 26, in: 'web1', of: 25 },
    { n: 27, out: 'web1', what: 'last ACK', ...TO_OLD_DB2 },
    { n: 28, in: 'db2', of: 27 },
    { n: 29, out: 'web1', what: 'UDP "hello-udp\\n" → old address:7002', ...TO_OLD_DB2 },
    { n: 30, in: 'db2', of: 29 },
    { n: 31, out: 'db2', what: 'UDP echo', ...FROM_DB2_BACK_TO_OLD },
    { n: 32, in: 'web1', of: 31 },
    {
      n: 33, out: 'web1', what: 'echo request → db2\'s new address: no rewrite',
      path: 'ams1 toMesh syd1 | syd1 toMachine db2', counters: 'ams1.forwarded_mesh syd1.forwarded_local', expect: { fwd: 2 },
    },
    { n: 34, in: 'db2', of: 33 },
    {
      n: 35, out: 'db2', what: 'its reply keeps the new address',
      path: 'syd1 toMesh ams1 | ams1 toMachine web1', counters: 'ams1.forwarded_local syd1.forwarded_mesh', expect: { fwd: 2 },
    },
    { n: 36, in: 'web1', of: 35 },
  ],
  'hop-limit': [
    { n: 1, out: 'web1', what: 'hop limit 1 → db1', ...ERR_AMS1('dropped_hop_limit'), expect: { icmp: [3, 0, 0], by: 'ams1', hl: 64 } },
    { n: 2, in: 'web1', of: 1 },
    { n: 3, out: 'web1', what: 'hop limit 1 → web2', ...ERR_AMS1('dropped_hop_limit'), expect: { icmp: [3, 0, 0], by: 'ams1', hl: 64 } },
    { n: 4, in: 'web1', of: 3 },
    { n: 5, out: 'web1', what: 'hop limit 2 → db1: arrives with 1', ...LOCAL('db1'), expect: { fwd: 1 } },
    { n: 6, in: 'db1', of: 5 },
    { n: 7, out: 'db1', what: 'echo reply', ...LOCAL('web1'), expect: { fwd: 1 } },
    { n: 8, in: 'web1', of: 7 },
    {
      n: 9, out: 'web1', what: 'hop limit 2 → web2: expires on ord1, the error comes back over the mesh',
      path: 'ams1 toMesh ord1 | ord1 toMesh ams1 | ams1 toMachine web1',
      counters: 'ams1.forwarded_local ams1.forwarded_mesh ord1.dropped_hop_limit ord1.icmp_sent',
      expect: { icmp: [3, 0, 0], by: 'ord1', hl: 63 },
    },
    { n: 10, in: 'web1', of: 9 },
  ],
  'too-big': [
    { n: 1, out: 'web1', what: '1448-byte echo request → web2 (mesh MTU 1420)', ...ERR_AMS1('dropped_too_big'), expect: { icmp: [2, 0, 1420], by: 'ams1', hl: 64 } },
    { n: 2, in: 'web1', of: 1 },
    { n: 3, out: 'web1', what: 'the retry, fragmented by web1: first fragment', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 4, out: 'web1', what: 'last fragment', ...AMS1_ORD1_WEB2, expect: { fwd: 2 } },
    { n: 5, in: 'web2', of: 3 },
    { n: 6, in: 'web2', of: 4 },
    { n: 7, out: 'web2', what: 'fragmented echo reply: first fragment', ...ORD1_AMS1_WEB1, expect: { fwd: 2 } },
    { n: 8, out: 'web2', what: 'last fragment', ...ORD1_AMS1_WEB1, expect: { fwd: 2 } },
    { n: 9, in: 'web1', of: 7 },
    { n: 10, in: 'web1', of: 8 },
  ],
  'not-unicast': [
    { n: 1, out: 'web1', what: 'echo request fe80::… → ff02::1', ...LOCAL_DROP('dropped_not_unicast'), expect: { drop: true } },
    { n: 2, out: 'web1', what: 'echo request fe80::… → fe80::1', ...LOCAL_DROP('dropped_not_unicast'), expect: { drop: true } },
  ],
};

// ---- Byte checks ----

const info = new Ipv6Info();

function parsed(t: ExecutionContext, b: Uint8Array, what: string): Ipv6Info {
  t.is(parsePacket(b, 0, b.length, info), PARSE_OK, `${what}: parses`);
  t.is(info.packetLen, b.length, `${what}: no trailing bytes`);
  return info;
}

/** Upper-layer checksum valid (whole TCP, UDP or ICMPv6 packets; fragments carry a part). */
function checksumOk(t: ExecutionContext, b: Uint8Array, what: string): void {
  const i = parsed(t, b, what);
  if (i.fragment) return;
  t.true(verifyChecksum(b, 0, i.l4Off, i.l4Len, i.protocol), `${what}: checksum valid`);
}

/**
 * `got` is `sent` forwarded: the same bytes but the hop limit (`hl`), and where `dst`/`src`
 * says, that address and the transport checksum (which must still verify).
 */
function forwardedAs(t: ExecutionContext, sent: Buffer, got: Buffer, hl: number, rw: { dst?: string; src?: string }, what: string): void {
  t.is(got.length, sent.length, `${what}: length`);
  t.is(got[7], hl, `${what}: hop limit ${hl}`);
  const i = parsed(t, sent, what);
  const csum = rw.dst !== undefined || rw.src !== undefined ? i.l4Off + checksumOffset(i.protocol) : -1;
  const skip = new Set<number>([7]);
  if (csum >= 0) skip.add(csum).add(csum + 1);
  if (rw.dst !== undefined) {
    t.is(formatAddress(got, IPV6_OFF_DST), rw.dst, `${what}: destination rewritten`);
    for (let k = 0; k < 16; k++) skip.add(IPV6_OFF_DST + k);
  }
  if (rw.src !== undefined) {
    t.is(formatAddress(got, IPV6_OFF_SRC), rw.src, `${what}: source rewritten back`);
    for (let k = 0; k < 16; k++) skip.add(IPV6_OFF_SRC + k);
  }
  let diff = -1;
  for (let k = 0; k < sent.length && diff < 0; k++) if (!skip.has(k) && sent[k] !== got[k]) diff = k;
  t.is(diff, -1, `${what}: no other byte changed`);
  if (csum >= 0) t.not(got.readUInt16BE(csum), sent.readUInt16BE(csum), `${what}: checksum updated`);
  checksumOk(t, got, what);
}

function routerAddress(network: number, host: number): string {
  const a = new Uint8Array(16);
  encodeSixpn(a, 0, network, host, 0, 1);
  return formatAddress(a, 0);
}

/** A well-formed ICMPv6 error from `by`'s router address to the sender, quoting what it sent. */
function icmpErrorFor(t: ExecutionContext, sent: Buffer, got: Buffer, e: { icmp: [number, number, number]; by: string; hl: number }, senderHost: number, what: string): void {
  const i = parsed(t, got, what);
  t.is(i.protocol, IPPROTO_ICMPV6, `${what}: ICMPv6`);
  t.is(i.l4Off, 40);
  t.deepEqual([got[40], got[41], got.readUInt32BE(44)], e.icmp, `${what}: type, code, parameter`);
  t.true(verifyChecksum(got, 0, i.l4Off, i.l4Len, IPPROTO_ICMPV6), `${what}: checksum valid`);
  const by = topology.hostByName(e.by)!.id;
  t.is(formatAddress(got, IPV6_OFF_SRC), routerAddress(getNetwork(sent, IPV6_OFF_SRC), by), `${what}: from ${e.by}'s router address in the sender's org`);
  t.is(formatAddress(got, IPV6_OFF_DST), formatAddress(sent, IPV6_OFF_SRC), `${what}: back to the sender`);
  t.is(got[7], e.hl, `${what}: hop limit`);
  t.is(got.length, Math.min(1280, 48 + sent.length), `${what}: quotes as much as fits in 1280 bytes`);
  const quote = got.subarray(48);
  // the quote is the packet as the erring router saw it: one decrement per router before it
  t.is(quote[7], by === senderHost ? sent[7] : sent[7] - 1, `${what}: quoted hop limit`);
  t.true(Buffer.compare(Buffer.concat([quote.subarray(0, 7), quote.subarray(8)]), Buffer.concat([sent.subarray(0, 7), sent.subarray(8, quote.length)])) === 0, `${what}: quote`);
}

/** On the mesh: swapped form, in the sender's and receiver's /48s, checksums still valid. */
function meshChecks(t: ExecutionContext, j: Journey, what: string): void {
  for (const s of j.steps) {
    for (const c of s.calls) {
      if (c.kind !== 'mesh') continue;
      const to = Number(c.target);
      const w = `${what}: mesh ${s.host.toString(16)} → ${to.toString(16)}`;
      t.true(isSixpn(c.bytes, IPV6_OFF_SRC) && isSixpn(c.bytes, IPV6_OFF_DST), `${w}: 6PN`);
      t.is(getNetwork(c.bytes, IPV6_OFF_SRC), s.host, `${w}: swapped source in the sending host's fdaa:HOST::/48`);
      t.is(getNetwork(c.bytes, IPV6_OFF_DST), to, `${w}: swapped destination in the receiving host's /48`);
      checksumOk(t, c.bytes, `${w} (swapped)`);
      const back = Buffer.from(c.bytes);
      swapPacket(back, 0, SWAP_BOTH);
      t.is(getNetwork(back, IPV6_OFF_SRC), getNetwork(back, IPV6_OFF_DST), `${w}: one org once swapped back`);
    }
  }
}

// ---- Replay ----

function isOut(r: Row): r is OutRow {
  return 'out' in r;
}

async function replay(t: ExecutionContext, name: string, rows: Row[] = TABLES[name]): Promise<void> {
  const { packets, files } = await loadScenario(PCAPS, name);
  t.is(packets.length, rows.length, `${name}: the table numbers every captured packet (${files.join(', ')})`);
  const net = new Net(topology);
  const journeys = new Map<number, { row: OutRow; sent: Buffer; j: Journey }>();
  const claimed = new Set<string>(); // `${row}/${delivery index}`
  const captured = new Set(files.filter((f) => f.endsWith('.in.pcap')).map((f) => f.split('.')[1]));

  for (let k = 0; k < packets.length; k++) {
    const p: Captured = packets[k];
    const row = rows[k];
    const w = `${name} #${row.n}`;
    t.is(row.n, k + 1, `${w}: rows in order`);
    if (isOut(row)) {
      t.is(p.dir, 'out', `${w}: a packet ${row.out} sent`);
      t.is(p.machine, row.out, `${w}: sent by ${row.out}`);
      const sender = machineOf(p.machine);
      const j = net.fromMachine(sender, p.data);
      journeys.set(row.n, { row, sent: p.data, j });
      t.is(net.describe(j, keyOf), row.path, `${w} (${row.what}): path`);
      t.is(Net.counterText(j), row.counters, `${w} (${row.what}): counters`);
      meshChecks(t, j, w);
      const e = row.expect;
      if ('fwd' in e) {
        t.is(j.delivered.length, 1, `${w}: delivered once`);
        forwardedAs(t, p.data, j.delivered[0].bytes, p.data[7] - e.fwd, e, w);
        // the first mesh hop carries the packet as forwarded by the sending host, swapped
        const first = j.steps[0].calls.find((c) => c.kind === 'mesh');
        if (first) {
          const back = Buffer.from(first.bytes);
          swapPacket(back, 0, SWAP_BOTH);
          forwardedAs(t, p.data, back, p.data[7] - 1, { dst: e.dst }, `${w}: on the mesh, swapped back`);
        }
      } else if ('icmp' in e) {
        t.is(j.delivered.length, 1, `${w}: one error`);
        t.is(keyOf(j.delivered[0].target), row.out, `${w}: the error goes to the sender`);
        icmpErrorFor(t, p.data, j.delivered[0].bytes, e, sender.host, w);
      } else if ('dns' in e) {
        t.is(j.exits.length, 1);
        t.deepEqual(j.exits[0].bytes, p.data, `${w}: DNS gets the query as sent`);
        t.is(j.delivered.length, 0);
      } else {
        t.is(j.delivered.length + j.exits.length, 0, `${w}: nothing comes out`);
      }
    } else {
      t.is(p.dir, 'in', `${w}: a packet ${row.in} received`);
      t.is(p.machine, row.in, `${w}: received by ${row.in}`);
      if ('of' in row) {
        const src = journeys.get(row.of);
        t.truthy(src, `${w}: row ${row.of} came before`);
        if (!src) continue;
        const d = src.j.delivered.findIndex((x, idx) => keyOf(x.target) === row.in && !claimed.has(`${row.of}/${idx}`));
        t.not(d, -1, `${w}: row ${row.of} delivered to ${row.in}`);
        claimed.add(`${row.of}/${d}`);
        t.deepEqual(p.data, src.j.delivered[d]?.bytes, `${w}: the real router wrote the same bytes as the replay`);
      } else {
        // answered by the host's DNS server, not routed: check it answers the query
        const q = journeys.get(row.dnsAnswerTo)!.sent;
        checksumOk(t, p.data, w);
        t.is(p.data[6], IPPROTO_UDP);
        t.is(formatAddress(p.data, IPV6_OFF_SRC), 'fdaa::3', `${w}: from fdaa::3`);
        t.deepEqual(p.data.subarray(IPV6_OFF_DST, 40), q.subarray(IPV6_OFF_SRC, 24), `${w}: to the asker`);
        t.is(p.data.readUInt16BE(40), 53);
        t.is(p.data.readUInt16BE(42), q.readUInt16BE(40), `${w}: to the asking port`);
        t.is(p.data.readUInt16BE(48), q.readUInt16BE(48), `${w}: same DNS id`);
      }
    }
  }
  // every delivery to a machine whose TUN was captured appears in its capture
  for (const [n, { j }] of journeys) {
    j.delivered.forEach((d, idx) => {
      if (captured.has(keyOf(d.target))) t.true(claimed.has(`${n}/${idx}`), `${name} #${n}: delivery to ${keyOf(d.target)} seen in its capture`);
    });
  }
}

// ---- Tests ----

test('the fixture topology: the demo after web3 stopped and db2 migrated ord1 → syd1', (t) => {
  t.is(topology.machines.length, 7);
  t.false(machineOf('web3').started);
  const db2 = machineOf('db2');
  t.is(db2.addressText, DB2_NEW);
  t.deepEqual(db2.previous.map((p) => p.text), [DB2_OLD]);
  t.deepEqual(topology.hosts.map((h) => h.name), ['ams1', 'ord1', 'syd1']);
  t.deepEqual([...addressBytes(DB2_OLD)].slice(0, 6), [0xfd, 0xaa, 0, 0, 0, 0x18]);
});

test('every scenario in pcaps/ has a table, every file is RAW and small', (t) => {
  t.deepEqual(scenarioNames(PCAPS), Object.keys(TABLES).sort());
  for (const f of readdirSync(PCAPS).filter((x) => x.startsWith('router-') && x.endsWith('.pcap'))) {
    t.true(statSync(join(PCAPS, f)).size <= 8192, `${f} is small`);
  }
  for (const name of scenarioNames(PCAPS)) {
    const f = `router-${name}.web1.out.pcap`;
    t.true(statSync(join(PCAPS, f)).size > 24, `${f} holds packets`);
  }
});

for (const name of Object.keys(TABLES)) {
  test(`pcap replay: ${name}`, (t) => replay(t, name));
}

test('the replay can fail: tables that are wrong in one detail do not pass', async (t) => {
  const wrong: Array<[string, (rows: Row[]) => void]> = [
    ['migrated', (rows) => ((rows[2] as OutRow).expect = { fwd: 2 })], // the reply not rewritten back
    ['ping-mesh', (rows) => ((rows[0] as OutRow).expect = { fwd: 1 })], // one decrement only
    ['hop-limit', (rows) => ((rows[8] as OutRow).expect = { icmp: [3, 0, 0], by: 'ams1', hl: 64 })], // wrong erring router
    ['cross-org', (rows) => ((rows[0] as OutRow).counters = 'ams1.dropped_cross_org')], // a counter missing
    ['tcp-mesh', (rows) => ([rows[6], rows[7]] = [{ n: 7, in: 'web2', of: 6 }, { n: 8, in: 'web2', of: 5 }])], // deliveries swapped
  ];
  for (const [name, spoil] of wrong) {
    const rows = structuredClone(TABLES[name]);
    spoil(rows);
    const r = await t.try((tt) => replay(tt, name, rows));
    const passed = r.passed;
    r.discard();
    t.false(passed, `${name}: the spoiled table fails`);
  }
});

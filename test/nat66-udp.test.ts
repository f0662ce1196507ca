// SNAT66 with UDP: translation and checksums, endpoint-independent mapping (RFC 4787 REQ-1),
// port preservation and ranges (REQ-3), filtering (REQ-8), timeouts and refresh (REQ-5, REQ-6),
// expiry by tick, the listing.
import test from 'ava';
import {
  IPPROTO_UDP,
  Ipv6Info,
  PARSE_OK,
  addressBytes,
  computeChecksum,
  parsePacket,
  readU16,
  verifyChecksum,
  writeU16,
} from '../src/ipv6/index.ts';
import {
  FILTER_ENDPOINT_INDEPENDENT,
  NAT66_DELIVER,
  NAT66_DROP,
  NAT66_FORWARD,
  Nat66,
  type Nat66Options,
} from '../src/nat66/index.ts';
import { buildUdp } from './helpers/packets.ts';

const M1 = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2');
const M2 = addressBytes('fdaa:0:18:a7b:7d:1234:5678:2');
const EGRESS = addressBytes('2001:db8:e::1');
const STATIC = addressBytes('2001:db8:e::2');
const R1 = addressBytes('2001:db8:100::53');
const R2 = addressBytes('2001:db8:200::1');
const T0 = 1_700_000_000_000; // a wall-clock-like start, ms

function udp(src: Uint8Array, dst: Uint8Array, sport: number, dport: number, data = 'hello'): Uint8Array {
  const buf = new Uint8Array(2048);
  const bytes = new TextEncoder().encode(data);
  return buf.slice(0, buildUdp(buf, 0, src, 0, dst, 0, sport, dport, bytes, 0, bytes.length));
}

const info = new Ipv6Info();
// The checksum in the packet equals a full recomputation, and verifies.
function checksumOk(p: Uint8Array): boolean {
  if (parsePacket(p, 0, p.length, info) !== PARSE_OK) return false;
  const want = computeChecksum(p, 0, info.l4Off, info.l4Len, info.protocol);
  return readU16(p, info.l4Off + 6) === want && verifyChecksum(p, 0, info.l4Off, info.l4Len, IPPROTO_UDP);
}

const src = (p: Uint8Array) => p.subarray(8, 24);
const dst = (p: Uint8Array) => p.subarray(24, 40);
const sport = (p: Uint8Array) => readU16(p, 40);
const dport = (p: Uint8Array) => readU16(p, 42);

function nat(opts: Nat66Options = {}): Nat66 {
  const n = new Nat66({ seed: 1, capacity: 1024, ...opts });
  n.addEgress(EGRESS);
  return n;
}

test('a UDP exchange: source rewritten on the way out, destination on the way back, checksums exact', (t) => {
  const n = nat();
  const out = udp(M1, R1, 40000, 53, 'query');
  t.is(n.outbound(out, 0, out.length, 0, 0, T0), NAT66_FORWARD);
  t.deepEqual(src(out), EGRESS);
  t.deepEqual(dst(out), R1);
  t.is(sport(out), 40000); // preserved: it was free
  t.is(dport(out), 53);
  t.true(checksumOk(out));
  t.deepEqual(out, udp(EGRESS, R1, 40000, 53, 'query')); // byte for byte what the host would send

  const back = udp(R1, EGRESS, 53, 40000, 'answer');
  t.is(n.inbound(back, 0, back.length, T0 + 10), NAT66_DELIVER);
  t.is(n.machine, 0);
  t.deepEqual(back, udp(R1, M1, 53, 40000, 'answer'));
  t.true(checksumOk(back));
  t.is(n.size, 1);
  t.is(n.mappings, 1);
});

test('checksums: incremental updates equal full recomputation over 2000 random flows', (t) => {
  const n = nat({ capacity: 4096 });
  let seed = 7;
  const rnd = (k: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % k;
  for (let i = 0; i < 2000; i++) {
    const m = new Uint8Array(M1);
    m[15] = rnd(256);
    m[14] = rnd(256);
    const r = new Uint8Array(R1);
    for (let k = 8; k < 16; k++) r[k] = rnd(256);
    const data = Array.from({ length: rnd(300) }, () => String.fromCharCode(rnd(256))).join('');
    const p = udp(m, r, 1 + rnd(65535), 1 + rnd(65535), data);
    if (readU16(p, 46) === 0) continue;
    const v = n.outbound(p, 0, p.length, 0, 0, T0);
    if (v !== NAT66_FORWARD) return t.fail(`flow ${i}: verdict ${v}`);
    if (!checksumOk(p)) return t.fail(`flow ${i}: outbound checksum`);
    // The answer from the remote, translated back.
    const back = udp(r, EGRESS, dport(p), sport(p), data);
    if (n.inbound(back, 0, back.length, T0) !== NAT66_DELIVER || !checksumOk(back)) return t.fail(`flow ${i}: inbound`);
    if (!back.subarray(24, 40).every((b, k) => b === m[k])) return t.fail(`flow ${i}: destination`);
  }
  t.pass();
});

test('endpoint-independent mapping: one internal endpoint keeps its external port for every destination', (t) => {
  const n = nat();
  // Occupy port 5000 with M2 so M1's port cannot be preserved: the mapping is then a chosen one.
  const first = udp(M2, R1, 5000, 53);
  n.outbound(first, 0, first.length, 1, 0, T0);
  const ports = new Set<number>();
  for (const r of [R1, R2, addressBytes('2001:db8:300::9')]) {
    for (const dp of [53, 443, 9999]) {
      const p = udp(M1, r, 5000, dp);
      t.is(n.outbound(p, 0, p.length, 0, 0, T0), NAT66_FORWARD);
      ports.add(sport(p));
    }
  }
  t.is(ports.size, 1);
  const [ext] = ports;
  t.not(ext, 5000); // taken by M2
  t.true(ext >= 1024);
  t.is(n.mappings, 2);
  t.is(n.size, 10);
});

test('port preservation and ranges: free ports kept, < 1024 stays < 1024, ≥ 1024 stays ≥ 1024', (t) => {
  const n = nat();
  const a = udp(M1, R1, 123, 123);
  n.outbound(a, 0, a.length, 0, 0, T0);
  t.is(sport(a), 123);
  const b = udp(M2, R1, 123, 123); // same internal port from another machine
  n.outbound(b, 0, b.length, 1, 0, T0);
  t.not(sport(b), 123);
  t.true(sport(b) >= 1 && sport(b) < 1024);
  const c = udp(M1, R1, 50000, 53);
  n.outbound(c, 0, c.length, 0, 0, T0);
  t.is(sport(c), 50000);
  const d = udp(M2, R1, 50000, 53);
  n.outbound(d, 0, d.length, 1, 0, T0);
  t.not(sport(d), 50000);
  t.true(sport(d) >= 1024);
});

test('two machines with the same source port toward the same destination get distinct mappings', (t) => {
  const n = nat();
  const a = udp(M1, R1, 40000, 53);
  const b = udp(M2, R1, 40000, 53);
  n.outbound(a, 0, a.length, 0, 0, T0);
  n.outbound(b, 0, b.length, 1, 0, T0);
  t.not(sport(a), sport(b));
  // Each answer reaches its own machine.
  const ra = udp(R1, EGRESS, 53, sport(a));
  const rb = udp(R1, EGRESS, 53, sport(b));
  t.is(n.inbound(rb, 0, rb.length, T0), NAT66_DELIVER);
  t.is(n.machine, 1);
  t.deepEqual(dst(rb), M2);
  t.is(n.inbound(ra, 0, ra.length, T0), NAT66_DELIVER);
  t.is(n.machine, 0);
  t.deepEqual(dst(ra), M1);
  t.is(dport(ra), 40000);
  t.is(dport(rb), 40000);
});

test('per-app static egress address: a separate mapping on the other address', (t) => {
  const n = nat();
  const e2 = n.addEgress(STATIC);
  t.is(e2, 1);
  t.is(n.addEgress(STATIC), 1);
  const p = udp(M1, R1, 40000, 53);
  t.is(n.outbound(p, 0, p.length, 0, e2, T0), NAT66_FORWARD);
  t.deepEqual(src(p), STATIC);
  t.true(checksumOk(p));
  const back = udp(R1, STATIC, 53, 40000);
  t.is(n.inbound(back, 0, back.length, T0), NAT66_DELIVER);
  const wrong = udp(R1, EGRESS, 53, 40000); // same port, the host's address: no mapping there
  t.is(n.inbound(wrong, 0, wrong.length, T0), NAT66_DROP);
});

test('unsolicited inbound is dropped silently, bytes untouched', (t) => {
  const n = nat();
  const p = udp(R1, EGRESS, 53, 40000);
  const copy = p.slice();
  t.is(n.inbound(p, 0, p.length, T0), NAT66_DROP);
  t.deepEqual(p, copy);
  const other = udp(R1, addressBytes('2001:db8:e::99'), 53, 40000); // not an egress address
  t.is(n.inbound(other, 0, other.length, T0), NAT66_DROP);
  t.is(n.size, 0);
  t.is(n.counters.unsolicited, 2);
});

test('address-and-port-dependent filtering (default): only the endpoint sent to comes back', (t) => {
  const n = nat();
  const p = udp(M1, R1, 40000, 53);
  n.outbound(p, 0, p.length, 0, 0, T0);
  for (const [r, rp] of [[R2, 53], [R1, 54]] as const) {
    const q = udp(r, EGRESS, rp, 40000);
    t.is(n.inbound(q, 0, q.length, T0), NAT66_DROP);
  }
  t.is(n.counters.filtered, 2);
  const ok = udp(R1, EGRESS, 53, 40000);
  t.is(n.inbound(ok, 0, ok.length, T0), NAT66_DELIVER);
});

test('endpoint-independent filtering: anyone reaches a live mapping, without creating state', (t) => {
  const n = nat({ filtering: FILTER_ENDPOINT_INDEPENDENT, udpTimeoutMs: 10_000 });
  const p = udp(M1, R1, 40000, 53);
  n.outbound(p, 0, p.length, 0, 0, T0);
  const q = udp(R2, EGRESS, 7777, 40000);
  t.is(n.inbound(q, 0, q.length, T0 + 1000), NAT66_DELIVER);
  t.deepEqual(dst(q), M1);
  t.true(checksumOk(q));
  t.is(n.size, 1); // no session for R2
  // The machine's answer to R2 uses the same mapping (REQ-1) and creates R2's session.
  const a = udp(M1, R2, 40000, 7777);
  n.outbound(a, 0, a.length, 0, 0, T0 + 2000);
  t.is(sport(a), 40000);
  t.is(n.size, 2);
  // Once the mapping is gone, nobody gets in.
  n.tick(T0 + 20_000);
  t.is(n.size, 0);
  const late = udp(R2, EGRESS, 7777, 40000);
  t.is(n.inbound(late, 0, late.length, T0 + 20_000), NAT66_DROP);
});

test('UDP timeout: 300 s by default, refreshed by outbound packets only; tick expires', (t) => {
  const n = nat();
  const p = udp(M1, R1, 40000, 53);
  n.outbound(p, 0, p.length, 0, 0, T0);
  const back = () => udp(R1, EGRESS, 53, 40000);
  // Inbound traffic does not refresh (RFC 4787 REQ-6 default here).
  let b = back();
  t.is(n.inbound(b, 0, b.length, T0 + 200_000), NAT66_DELIVER);
  t.is(n.tick(T0 + 299_999), 0);
  t.is(n.size, 1);
  t.is(n.tick(T0 + 300_000), 1);
  t.is(n.size, 0);
  t.is(n.mappings, 0);
  b = back();
  t.is(n.inbound(b, 0, b.length, T0 + 300_001), NAT66_DROP);
  // Outbound refreshes.
  const q = udp(M1, R1, 40000, 53);
  n.outbound(q, 0, q.length, 0, 0, T0 + 400_000);
  const q2 = udp(M1, R1, 40000, 53);
  n.outbound(q2, 0, q2.length, 0, 0, T0 + 600_000);
  t.is(n.tick(T0 + 800_000), 0);
  t.is(n.size, 1);
  t.is(n.tick(T0 + 900_000), 1);
});

test('udpInboundRefresh: inbound answers refresh when asked', (t) => {
  const n = nat({ udpInboundRefresh: true });
  const p = udp(M1, R1, 40000, 53);
  n.outbound(p, 0, p.length, 0, 0, T0);
  const b = udp(R1, EGRESS, 53, 40000);
  n.inbound(b, 0, b.length, T0 + 200_000);
  t.is(n.tick(T0 + 400_000), 0);
  t.is(n.tick(T0 + 500_000), 1);
});

test('time-scaled expiry: short timeouts and a fine wheel; expired entries are gone before the tick', (t) => {
  const n = nat({ udpTimeoutMs: 300, wheelGranularityMs: 10 });
  for (let i = 0; i < 100; i++) {
    const p = udp(M1, R1, 10000 + i, 53);
    n.outbound(p, 0, p.length, 0, 0, T0 + i * 5); // expiries spread over 500 ms
  }
  t.is(n.size, 100);
  // An inbound answer to an expired but not yet ticked entry is dropped.
  const late = udp(R1, EGRESS, 53, 10000);
  t.is(n.inbound(late, 0, late.length, T0 + 300), NAT66_DROP);
  t.is(n.tick(T0 + 299), 0);
  t.is(n.tick(T0 + 300 + 49 * 5), 50);
  t.is(n.size, 50);
  t.is(n.tick(T0 + 10_000_000), 50); // a jump past the wheel's span
  t.is(n.size, 0);
  t.is(n.mappings, 0);
});

test('an expired session found before the tick is started over with the same key', (t) => {
  const n = nat({ udpTimeoutMs: 1000 });
  const p = udp(M1, R1, 40000, 53);
  n.outbound(p, 0, p.length, 0, 0, T0);
  const q = udp(M1, R1, 40000, 53);
  t.is(n.outbound(q, 0, q.length, 0, 0, T0 + 5000), NAT66_FORWARD);
  t.is(n.size, 1);
  t.is(n.tick(T0 + 5500), 0);
  t.is(n.tick(T0 + 6000), 1);
});

test('UDP checksum 0 is invalid over IPv6: dropped both ways', (t) => {
  const n = nat();
  const p = udp(M1, R1, 40000, 53);
  writeU16(p, 46, 0);
  t.is(n.outbound(p, 0, p.length, 0, 0, T0), NAT66_DROP);
  t.is(n.size, 0);
  const ok = udp(M1, R1, 40000, 53);
  n.outbound(ok, 0, ok.length, 0, 0, T0);
  const b = udp(R1, EGRESS, 53, 40000);
  writeU16(b, 46, 0);
  t.is(n.inbound(b, 0, b.length, T0), NAT66_DROP);
});

test('verifyInbound drops inbound packets with a bad checksum', (t) => {
  const n = nat({ verifyInbound: true });
  const p = udp(M1, R1, 40000, 53);
  n.outbound(p, 0, p.length, 0, 0, T0);
  const b = udp(R1, EGRESS, 53, 40000, 'data');
  b[b.length - 1] ^= 1;
  t.is(n.inbound(b, 0, b.length, T0), NAT66_DROP);
  t.is(n.counters.badChecksum, 1);
  const good = udp(R1, EGRESS, 53, 40000, 'data');
  t.is(n.inbound(good, 0, good.length, T0), NAT66_DELIVER);
});

test('packets at an offset in a larger buffer, with trailing padding', (t) => {
  const n = nat();
  const p = udp(M1, R1, 40000, 53, 'x');
  const big = new Uint8Array(p.length + 100);
  big.set(p, 37);
  t.is(n.outbound(big, 37, p.length + 16, 0, 0, T0), NAT66_FORWARD);
  const expect = udp(EGRESS, R1, 40000, 53, 'x');
  t.deepEqual(big.subarray(37, 37 + p.length), expect);
  t.true(big.subarray(0, 37).every((b) => b === 0));
});

test('listing like conntrack -L, with [UNREPLIED] and [ASSURED]', (t) => {
  const n = nat();
  const p = udp(M1, R1, 40000, 53);
  n.outbound(p, 0, p.length, 3, 0, T0);
  t.deepEqual(n.list(T0 + 5000), [
    'ipv6 udp 17 295 src=fdaa:0:18:a7b:7d:f066:b83b:2 dst=2001:db8:100::53 sport=40000 dport=53 [UNREPLIED] ' +
      'src=2001:db8:100::53 dst=2001:db8:e::1 sport=53 dport=40000 machine=3',
  ]);
  const b = udp(R1, EGRESS, 53, 40000);
  n.inbound(b, 0, b.length, T0 + 6000);
  t.deepEqual(n.list(T0 + 6000), [
    'ipv6 udp 17 294 src=fdaa:0:18:a7b:7d:f066:b83b:2 dst=2001:db8:100::53 sport=40000 dport=53 ' +
      'src=2001:db8:100::53 dst=2001:db8:e::1 sport=53 dport=40000 [ASSURED] machine=3',
  ]);
  t.deepEqual(n.list(T0 + 300_000), []); // expired, awaiting the tick
  t.is(n.machineEntries(3), 1);
  t.is(n.flushMachine(3), 1);
  t.is(n.size, 0);
  t.is(n.machineEntries(3), 0);
});

test('tick with a budget reaps a mass expiry over several calls', (t) => {
  const n = nat({ udpTimeoutMs: 1000 });
  for (let i = 0; i < 250; i++) {
    const p = udp(M1, R1, 2000 + i, 53);
    n.outbound(p, 0, p.length, 0, 0, T0);
  }
  t.is(n.tick(T0 + 5000, 100), 100);
  t.is(n.size, 150);
  t.is(n.tick(T0 + 5000, 100), 100);
  t.is(n.tick(T0 + 6000, 100), 50);
  t.is(n.size, 0);
  t.is(n.mappings, 0);
});

test('inbound packets from one of our own egress addresses are spoofed: dropped', (t) => {
  const n = nat();
  const p = udp(M1, EGRESS, 40000, 40000); // hairpin to itself creates a session toward (EGRESS, 40000)
  n.outbound(p, 0, p.length, 0, 0, T0);
  const spoof = udp(EGRESS, EGRESS, 40000, 40000);
  t.is(n.inbound(spoof, 0, spoof.length, T0), NAT66_DROP);
  t.is(n.counters.invalid, 1);
});

// SNAT66 bounds and paths between machines: the table and per-machine limits (new flows are
// refused with REJECT, existing ones keep working), port exhaustion, hairpinning (RFC 4787
// REQ-9), fragments (RFC 8200 §4.5) and unsupported traffic.
import test from 'ava';
import {
  IPPROTO_FRAGMENT,
  IPPROTO_UDP,
  Ipv6Info,
  PARSE_OK,
  addressBytes,
  computeChecksum,
  parsePacket,
  readU16,
  writeHeader,
  writeU16,
  writeU32,
} from '../src/ipv6/index.ts';
import {
  FILTER_ENDPOINT_INDEPENDENT,
  NAT66_DELIVER,
  NAT66_DROP,
  NAT66_FORWARD,
  NAT66_HAIRPIN,
  NAT66_REJECT,
  Nat66,
  TCP_ACK,
  TCP_SYN,
  type Nat66Options,
} from '../src/nat66/index.ts';
import { buildTcp, buildUdp } from './helpers/packets.ts';

const EGRESS = addressBytes('2001:db8:e::1');
const R1 = addressBytes('2001:db8:100::53');
const T0 = 1_700_000_000_000;

// Machine i's address: fdaa:0:18:a7b:7d:<i>::2.
function machine(i: number): Uint8Array {
  const a = addressBytes('fdaa:0:18:a7b:7d::2');
  a[10] = i >>> 8;
  a[11] = i;
  return a;
}

function udp(src: Uint8Array, dst: Uint8Array, sp: number, dp: number, len = 8): Uint8Array {
  const buf = new Uint8Array(4096);
  const data = Uint8Array.from({ length: len }, (_, i) => (i * 31 + 7) & 0xff);
  return buf.slice(0, buildUdp(buf, 0, src, 0, dst, 0, sp, dp, data, 0, len));
}

function tcp(src: Uint8Array, dst: Uint8Array, sp: number, dp: number, seq: number, ack: number, flags: number): Uint8Array {
  const buf = new Uint8Array(128);
  return buf.slice(0, buildTcp(buf, 0, src, 0, dst, 0, sp, dp, seq, ack, flags, buf, 0, 0));
}

const info = new Ipv6Info();
function checksumOk(p: Uint8Array): boolean {
  if (parsePacket(p, 0, p.length, info) !== PARSE_OK) return false;
  const off = info.protocol === IPPROTO_UDP ? 6 : 16;
  return readU16(p, info.l4Off + off) === computeChecksum(p, 0, info.l4Off, info.l4Len, info.protocol);
}

function nat(opts: Nat66Options = {}): Nat66 {
  const n = new Nat66({ seed: 5, capacity: 1024, ...opts });
  n.addEgress(EGRESS);
  return n;
}

function out(n: Nat66, p: Uint8Array, m: number, now = T0): number {
  return n.outbound(p, 0, p.length, m, 0, now);
}

test('per-machine limit: the next new flow is refused; existing flows and other machines unaffected', (t) => {
  const n = nat({ perMachineLimit: 3 });
  const m0 = machine(0);
  const sent: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    const p = udp(m0, R1, 1000 + i * 1000, 53);
    t.is(out(n, p, 0), NAT66_FORWARD);
    sent.push(p);
  }
  t.is(out(n, udp(m0, R1, 9999, 53), 0), NAT66_REJECT);
  t.is(out(n, udp(m0, R1, 1000, 54), 0), NAT66_REJECT); // a new destination is a new session
  t.is(n.counters.machineFull, 2);
  t.is(n.machineEntries(0), 3);
  for (const p of sent) {
    const again = udp(m0, R1, readU16(p, 40), 53);
    t.is(out(n, again, 0, T0 + 1), NAT66_FORWARD);
    const back = udp(R1, EGRESS, 53, readU16(p, 40));
    t.is(n.inbound(back, 0, back.length, T0 + 1), NAT66_DELIVER);
  }
  t.is(out(n, udp(machine(1), R1, 9999, 53), 1), NAT66_FORWARD);
});

test('table limit: new flows refused when full, existing flows unaffected; room again after expiry', (t) => {
  const n = nat({ capacity: 8, udpTimeoutMs: 10_000 });
  for (let i = 0; i < 8; i++) t.is(out(n, udp(machine(i), R1, 40000, 53), i, T0 + i), NAT66_FORWARD);
  t.is(n.size, 8);
  t.is(out(n, udp(machine(9), R1, 40000, 53), 9, T0 + 100), NAT66_REJECT);
  t.is(n.counters.tableFull, 1);
  for (let i = 0; i < 8; i++) {
    const p = udp(machine(i), R1, 40000, 53);
    t.is(out(n, p, i, T0 + 200), NAT66_FORWARD);
    const back = udp(R1, EGRESS, 53, readU16(p, 40));
    t.is(n.inbound(back, 0, back.length, T0 + 200), NAT66_DELIVER);
    t.is(n.machine, i);
  }
  // Everything expires at T0 + 10.2 s; a full table reaps by itself before refusing.
  t.is(out(n, udp(machine(9), R1, 40000, 53), 9, T0 + 10_200), NAT66_FORWARD);
  t.is(n.size, 1);
});

test('port exhaustion: 1023 low ports, then REJECT; high ports unaffected', (t) => {
  const n = nat({ capacity: 2048, perMachineLimit: 4096 });
  for (let i = 0; i < 1023; i++) {
    const p = udp(machine(i), R1, 80, 53);
    if (out(n, p, 0) !== NAT66_FORWARD) return t.fail(`flow ${i}`);
    const ext = readU16(p, 40);
    if (ext < 1 || ext > 1023) return t.fail(`flow ${i}: port ${ext}`);
  }
  const p = udp(machine(2000), R1, 443, 53);
  t.is(out(n, p, 0), NAT66_REJECT);
  t.is(n.counters.portsFull, 1);
  t.is(out(n, udp(machine(2000), R1, 4443, 53), 0), NAT66_FORWARD);
  t.is(n.mappings, 1024);
});

test('hairpinning, address-and-port-dependent filtering: each side must have sent first', (t) => {
  const n = nat();
  const a = machine(1);
  const b = machine(2);
  // Both have mappings (B's 40000 is taken by A first, so B's is not preserved).
  const pa = udp(a, R1, 40000, 53);
  const pb = udp(b, R1, 40000, 53);
  out(n, pa, 1);
  out(n, pb, 2);
  const extA = readU16(pa, 40);
  const extB = readU16(pb, 40);
  t.not(extA, extB);
  // B → A's external endpoint: dropped at A's filter, but B's session toward it now exists.
  t.is(out(n, udp(b, EGRESS, 40000, extA), 2), NAT66_DROP);
  // A → B's external endpoint: reaches B, from A's external endpoint.
  const h = udp(a, EGRESS, 40000, extB, 30);
  t.is(out(n, h, 1), NAT66_HAIRPIN);
  t.is(n.machine, 2);
  t.deepEqual(h, udp(EGRESS, b, extA, 40000, 30));
  t.true(checksumOk(h));
  // And now B → A passes as well.
  const h2 = udp(b, EGRESS, 40000, extA, 30);
  t.is(out(n, h2, 2), NAT66_HAIRPIN);
  t.is(n.machine, 1);
  t.deepEqual(h2, udp(EGRESS, a, extB, 40000, 30));
  t.is(n.counters.hairpins, 2);
  // To an egress port nobody maps: dropped.
  t.is(out(n, udp(a, EGRESS, 40000, 7), 1), NAT66_DROP);
});

test('hairpinning a TCP connection with endpoint-independent filtering', (t) => {
  const n = nat({ filtering: FILTER_ENDPOINT_INDEPENDENT });
  const a = machine(1);
  const b = machine(2);
  out(n, tcp(b, R1, 8080, 443, 1, 0, TCP_SYN), 2); // B's TCP mapping 8080
  const syn = tcp(a, EGRESS, 50000, 8080, 100, 0, TCP_SYN);
  t.is(out(n, syn, 1), NAT66_HAIRPIN);
  t.is(n.machine, 2);
  t.deepEqual(syn, tcp(EGRESS, b, 50000, 8080, 100, 0, TCP_SYN));
  t.true(checksumOk(syn));
  const synack = tcp(b, EGRESS, 8080, 50000, 300, 101, TCP_SYN | TCP_ACK);
  t.is(out(n, synack, 2), NAT66_HAIRPIN);
  t.is(n.machine, 1);
  t.deepEqual(synack, tcp(EGRESS, a, 8080, 50000, 300, 101, TCP_SYN | TCP_ACK));
  const ack = tcp(a, EGRESS, 50000, 8080, 101, 301, TCP_ACK);
  t.is(out(n, ack, 1), NAT66_HAIRPIN);
  const states = n.list(T0).filter((l) => l.split(' ')[6] === 'dst=2001:db8:e::1').map((l) => l.split(' ')[4]);
  t.deepEqual(states.sort(), ['ESTABLISHED', 'ESTABLISHED']);
});

// Splits a UDP datagram (IPv6 packet p) into two fragments at `cut` bytes of upper-layer data.
function fragments(p: Uint8Array, cut: number, id: number): [Uint8Array, Uint8Array] {
  const l4 = p.subarray(40);
  const make = (from: number, to: number, more: boolean): Uint8Array => {
    const f = new Uint8Array(48 + to - from);
    writeHeader(f, 0, 8 + to - from, IPPROTO_FRAGMENT, 64, p, 8, p, 24);
    f[40] = IPPROTO_UDP;
    writeU16(f, 42, from | (more ? 1 : 0));
    writeU32(f, 44, id);
    f.set(l4.subarray(from, to), 48);
    return f;
  };
  return [make(0, cut, true), make(cut, l4.length, false)];
}

// The upper-layer datagram of two fragments, reassembled, as a plain packet (for the checksum).
function reassemble(f1: Uint8Array, f2: Uint8Array): Uint8Array {
  const len = f1.length - 48 + f2.length - 48;
  const p = new Uint8Array(40 + len);
  writeHeader(p, 0, len, IPPROTO_UDP, 64, f1, 8, f1, 24);
  p.set(f1.subarray(48), 40);
  p.set(f2.subarray(48), 40 + f1.length - 48);
  return p;
}

test('fragments: outbound both rewritten, inbound followers go where the first went', (t) => {
  const n = nat();
  const m = machine(1);
  const big = udp(m, R1, 40000, 53, 200);
  const [o1, o2] = fragments(big, 104, 0xabcd);
  t.is(out(n, o1, 1), NAT66_FORWARD);
  t.is(out(n, o2, 1), NAT66_FORWARD);
  t.deepEqual(o2.subarray(8, 24), EGRESS);
  const sentWhole = reassemble(o1, o2);
  t.deepEqual(sentWhole, udp(EGRESS, R1, 40000, 53, 200));
  t.true(checksumOk(sentWhole));

  const reply = udp(R1, EGRESS, 53, 40000, 300);
  const [i1, i2] = fragments(reply, 152, 0x1234);
  const [j1, j2] = fragments(udp(R1, EGRESS, 53, 40000, 300), 152, 0x5678);
  t.is(n.inbound(j2, 0, j2.length, T0), NAT66_DROP); // before its first fragment
  t.is(n.counters.fragmentsDropped, 1);
  t.is(n.inbound(j1, 0, j1.length, T0), NAT66_DELIVER);
  t.is(n.inbound(i1, 0, i1.length, T0), NAT66_DELIVER);
  t.is(n.inbound(i2, 0, i2.length, T0), NAT66_DELIVER);
  t.is(n.machine, 1);
  const gotWhole = reassemble(i1, i2);
  t.deepEqual(gotWhole, udp(R1, m, 53, 40000, 300));
  t.true(checksumOk(gotWhole));
  // After the reassembly timeout, followers are dropped.
  const [, k2] = fragments(udp(R1, EGRESS, 53, 40000, 300), 152, 0x1234);
  t.is(n.inbound(k2, 0, k2.length, T0 + 61_000), NAT66_DROP);
});

test('unsupported protocols are refused with REJECT; junk and bad ids are dropped', (t) => {
  const n = nat();
  const p = udp(machine(1), R1, 40000, 53);
  p[6] = 132; // SCTP
  t.is(out(n, p, 1), NAT66_REJECT);
  t.is(n.counters.unsupported, 1);
  const q = udp(machine(1), R1, 40000, 53);
  t.is(n.outbound(q, 0, q.length, 1, 5, T0), NAT66_DROP); // egress id not registered
  t.is(n.outbound(q, 0, q.length, 1 << 20, 0, T0), NAT66_DROP); // machine id out of range
  t.is(out(n, udp(machine(1), R1, 0, 53), 1), NAT66_DROP); // port 0
  t.is(out(n, q.subarray(0, 30), 1), NAT66_DROP);
  t.is(n.size, 0);
});

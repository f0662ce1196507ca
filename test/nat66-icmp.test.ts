// SNAT66 and ICMPv6: echo mapped by identifier (RFC 5508 §3.1), every error type translated
// (RFC 4443 §3, RFC 5508 §4) to exactly the bytes the internal endpoint would have received
// without the NAT, Path MTU Discovery through it, outbound errors, and errors never creating,
// refreshing or deleting state.
import test from 'ava';
import {
  ICMPV6_DST_UNREACH,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_TIME_EXCEEDED,
  ICMPV6_UNREACH_ADDR,
  ICMPV6_UNREACH_PORT,
  IPPROTO_ICMPV6,
  Ipv6Info,
  PARSE_OK,
  addressBytes,
  buildEcho,
  buildError,
  buildPacketTooBig,
  computeChecksum,
  parsePacket,
  readU16,
  readU32,
  verifyChecksum,
} from '../src/ipv6/index.ts';
import {
  FILTER_ENDPOINT_INDEPENDENT,
  NAT66_DELIVER,
  NAT66_DROP,
  NAT66_FORWARD,
  NAT66_REJECT,
  Nat66,
  TCP_ACK,
  TCP_SYN,
  type Nat66Options,
} from '../src/nat66/index.ts';
import { buildTcp, buildUdp } from './helpers/packets.ts';

const M1 = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2');
const M2 = addressBytes('fdaa:0:18:a7b:7d:1234:5678:2');
const EGRESS = addressBytes('2001:db8:e::1');
const R1 = addressBytes('2001:db8:100::53');
const ROUTER = addressBytes('2001:db8:ff::1');
const T0 = 1_700_000_000_000;

function udp(src: Uint8Array, dst: Uint8Array, sp: number, dp: number, len = 20): Uint8Array {
  const buf = new Uint8Array(2048);
  const data = Uint8Array.from({ length: len }, (_, i) => (i * 7 + 3) & 0xff);
  return buf.slice(0, buildUdp(buf, 0, src, 0, dst, 0, sp, dp, data, 0, len));
}

function tcp(src: Uint8Array, dst: Uint8Array, sp: number, dp: number, flags: number, len = 0): Uint8Array {
  const buf = new Uint8Array(2048);
  const data = Uint8Array.from({ length: len }, (_, i) => (i * 13 + 1) & 0xff);
  return buf.slice(0, buildTcp(buf, 0, src, 0, dst, 0, sp, dp, 12345, 0, flags, data, 0, len));
}

function echo(type: number, src: Uint8Array, dst: Uint8Array, id: number, seq = 1): Uint8Array {
  const buf = new Uint8Array(256);
  const data = new TextEncoder().encode('ping data');
  return buf.slice(0, buildEcho(buf, 0, type, src, 0, dst, 0, id, seq, data, 0, data.length));
}

// An error from `from` about packet `pkt` (to pkt's source), as src/ipv6 builds it.
function error(type: number, code: number, param: number, from: Uint8Array, pkt: Uint8Array): Uint8Array {
  const out = new Uint8Array(1400);
  const n = buildError(out, 0, type, code, param, from, 0, pkt, 0, pkt.length);
  if (n < 0) throw new Error(`buildError: ${n}`);
  return out.slice(0, n);
}

const info = new Ipv6Info();
function icmpChecksumOk(p: Uint8Array): boolean {
  if (parsePacket(p, 0, p.length, info) !== PARSE_OK || info.protocol !== IPPROTO_ICMPV6) return false;
  return readU16(p, info.l4Off + 2) === computeChecksum(p, 0, info.l4Off, info.l4Len, IPPROTO_ICMPV6) &&
    verifyChecksum(p, 0, info.l4Off, info.l4Len, IPPROTO_ICMPV6);
}

// A NAT where M1's port 40000 (and echo id 7) map to something else: M2 took them first.
function nat(opts: Nat66Options = {}): Nat66 {
  const n = new Nat66({ seed: 3, capacity: 1024, ...opts });
  n.addEgress(EGRESS);
  for (const p of [udp(M2, R1, 40000, 9), tcp(M2, R1, 40000, 9, TCP_SYN), echo(ICMPV6_ECHO_REQUEST, M2, R1, 7)]) {
    if (n.outbound(p, 0, p.length, 1, 0, T0) !== NAT66_FORWARD) throw new Error('setup');
  }
  return n;
}

// Sends `orig` out through n and returns the translated copy.
function send(n: Nat66, orig: Uint8Array, now = T0): Uint8Array {
  const p = orig.slice();
  if (n.outbound(p, 0, p.length, 0, 0, now) !== NAT66_FORWARD) throw new Error('outbound');
  return p;
}

test('ICMPv6 echo: identifier mapped like a port, reply translated back, 60 s timeout', (t) => {
  const n = nat();
  const req = echo(ICMPV6_ECHO_REQUEST, M1, R1, 7);
  const out = send(n, req);
  const ext = readU16(out, 44);
  t.not(ext, 7); // M2 holds 7
  t.deepEqual(out, echo(ICMPV6_ECHO_REQUEST, EGRESS, R1, ext));
  t.true(icmpChecksumOk(out));
  const rep = echo(ICMPV6_ECHO_REPLY, R1, EGRESS, ext);
  t.is(n.inbound(rep, 0, rep.length, T0 + 5), NAT66_DELIVER);
  t.is(n.machine, 0);
  t.deepEqual(rep, echo(ICMPV6_ECHO_REPLY, R1, M1, 7));
  t.true(n.list(T0 + 5).some((l) => l.startsWith('ipv6 icmpv6 58 59 src=fdaa:0:18:a7b:7d:f066:b83b:2') && l.includes(`type=129 code=0 id=${ext} [ASSURED]`)));
  // Unsolicited: a request to the egress address, a reply with an unknown identifier.
  const ping = echo(ICMPV6_ECHO_REQUEST, R1, EGRESS, ext);
  t.is(n.inbound(ping, 0, ping.length, T0), NAT66_DROP);
  const stray = echo(ICMPV6_ECHO_REPLY, R1, EGRESS, 4242);
  t.is(n.inbound(stray, 0, stray.length, T0), NAT66_DROP);
  // An echo reply from a machine creates nothing.
  const rogue = echo(ICMPV6_ECHO_REPLY, M1, R1, 99);
  t.is(n.outbound(rogue, 0, rogue.length, 0, 0, T0), NAT66_DROP);
  t.is(n.size, 4); // M2's UDP, TCP and echo sessions, and M1's echo
  t.is(n.tick(T0 + 59_999), 0);
  t.is(n.tick(T0 + 60_000), 2); // the two echo sessions
  t.is(n.mappings, 2);
});

// Each error type, about a UDP datagram, a TCP segment and an echo request.
const ERRORS: Array<[string, number, number, number]> = [
  ['Destination Unreachable (address)', ICMPV6_DST_UNREACH, ICMPV6_UNREACH_ADDR, 0],
  ['Packet Too Big (MTU 1280)', ICMPV6_PACKET_TOO_BIG, 0, 1280],
  ['Time Exceeded (hop limit)', ICMPV6_TIME_EXCEEDED, 0, 0],
  ['Parameter Problem (pointer 6)', ICMPV6_PARAM_PROBLEM, 1, 6],
];
const FLOWS: Array<[string, () => Uint8Array]> = [
  ['UDP', () => udp(M1, R1, 40000, 53, 33)],
  ['TCP', () => tcp(M1, R1, 40000, 443, TCP_SYN, 11)],
  ['echo', () => echo(ICMPV6_ECHO_REQUEST, M1, R1, 7)],
];
for (const [ename, type, code, param] of ERRORS) {
  for (const [fname, make] of FLOWS) {
    test(`inbound ${ename} about ${fname}: exactly the error the machine would get without NAT`, (t) => {
      const n = nat();
      const orig = make();
      const sent = send(n, orig);
      t.notDeepEqual(sent.subarray(8, 24), orig.subarray(8, 24));
      const err = error(type, code, param, ROUTER, sent);
      t.deepEqual(err.subarray(24, 40), EGRESS);
      t.is(n.inbound(err, 0, err.length, T0 + 1), NAT66_DELIVER);
      t.is(n.machine, 0);
      t.deepEqual(err, error(type, code, param, ROUTER, orig));
      t.true(icmpChecksumOk(err));
      t.is(n.counters.errorsIn, 1);
    });
  }
}

test('Path MTU Discovery: Packet Too Big about a full-size segment (quote truncated to 1232 bytes)', (t) => {
  const n = nat();
  const big = tcp(M1, R1, 40000, 443, TCP_ACK, 1400);
  n.outbound(tcp(M1, R1, 40000, 443, TCP_SYN), 0, 60, 0, 0, T0);
  const sent = send(n, big);
  const out = new Uint8Array(1400);
  const len = buildPacketTooBig(out, 0, ROUTER, 0, sent, 0, sent.length, 1280);
  t.is(len, 1280);
  const ptb = out.slice(0, len);
  t.is(n.inbound(ptb, 0, ptb.length, T0), NAT66_DELIVER);
  const want = new Uint8Array(1400);
  buildPacketTooBig(want, 0, ROUTER, 0, big, 0, big.length, 1280);
  t.deepEqual(ptb, want.subarray(0, 1280));
  t.is(readU32(ptb, 44), 1280);
  t.true(icmpChecksumOk(ptb));
});

test('errors never create, refresh or delete a mapping, nor move TCP state', (t) => {
  const n = nat({ udpTimeoutMs: 10_000 });
  const base = n.size;
  // Create: an error about a flow the NAT never saw.
  const ghost = udp(EGRESS, R1, 33333, 53);
  const e1 = error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_PORT, 0, R1, ghost);
  t.is(n.inbound(e1, 0, e1.length, T0), NAT66_DROP);
  t.is(n.size, base);
  // Refresh and delete: port unreachable for a live flow, just before it expires.
  const sent = send(n, udp(M1, R1, 40000, 53), T0);
  const e2 = error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_PORT, 0, R1, sent);
  t.is(n.inbound(e2, 0, e2.length, T0 + 9_000), NAT66_DELIVER);
  t.is(n.size, base + 1); // not deleted
  t.is(n.tick(T0 + 10_000), 2); // not refreshed: both UDP sessions expire at T0 + 10 s
  const late = error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_PORT, 0, R1, sent);
  t.is(n.inbound(late, 0, late.length, T0 + 10_001), NAT66_DROP);
  // TCP: an error quoting a SYN leaves SYN_SENT as it was.
  const n2 = nat();
  const syn = send(n2, tcp(M1, R1, 40000, 443, TCP_SYN));
  const e3 = error(ICMPV6_TIME_EXCEEDED, 0, 0, ROUTER, syn);
  t.is(n2.inbound(e3, 0, e3.length, T0 + 1), NAT66_DELIVER);
  t.true(n2.list(T0 + 1).some((l) => l.includes('SYN_SENT') && l.includes('dport=443 [UNREPLIED]')));
});

test('inbound errors about another remote endpoint are filtered like packets; EIF lets them in', (t) => {
  const sentTo = (n: Nat66) => send(n, udp(M1, R1, 40000, 53));
  const n = nat();
  const sent = sentTo(n);
  sent[39] ^= 1; // the quoted destination is a remote the machine never sent to
  const e = error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_ADDR, 0, ROUTER, sent);
  t.is(n.inbound(e, 0, e.length, T0), NAT66_DROP);
  const m = nat({ filtering: FILTER_ENDPOINT_INDEPENDENT });
  const sent2 = sentTo(m);
  sent2[39] ^= 1;
  const e2 = error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_ADDR, 0, ROUTER, sent2);
  t.is(m.inbound(e2, 0, e2.length, T0), NAT66_DELIVER);
  t.true(icmpChecksumOk(e2));
});

test('malformed errors are dropped: short quote, quote from another source, error about an error', (t) => {
  const n = nat();
  const sent = send(n, udp(M1, R1, 40000, 53));
  const short = error(ICMPV6_DST_UNREACH, 0, 0, ROUTER, sent.subarray(0, 44)); // UDP header cut
  t.is(n.inbound(short, 0, short.length, T0), NAT66_DROP);
  const other = sent.slice();
  other[23] ^= 1; // quoted source is not our egress address
  const e = error(ICMPV6_DST_UNREACH, 0, 0, ROUTER, other);
  e.set(EGRESS, 24); // but the error is addressed to it
  t.is(n.inbound(e, 0, e.length, T0), NAT66_DROP);
  t.is(n.counters.errorsDropped, 2);
});

test('outbound: a machine\'s port unreachable about an inbound datagram goes back translated', (t) => {
  const n = nat();
  const sent = send(n, udp(M1, R1, 40000, 53));
  const ext = readU16(sent, 40);
  const arrived = udp(R1, EGRESS, 53, ext, 40);
  const inb = arrived.slice();
  t.is(n.inbound(inb, 0, inb.length, T0), NAT66_DELIVER);
  const err = error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_PORT, 0, M1, inb);
  const spoof = err.slice();
  t.is(n.outbound(err, 0, err.length, 0, 0, T0), NAT66_FORWARD);
  t.deepEqual(err, error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_PORT, 0, EGRESS, arrived));
  t.true(icmpChecksumOk(err));
  t.is(n.counters.errorsOut, 1);
  // From another machine (it does not own the mapping): dropped.
  t.is(n.outbound(spoof, 0, spoof.length, 1, 0, T0), NAT66_DROP);
  // About a packet that never came through: dropped, no state.
  const size = n.size;
  const stray = error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_PORT, 0, M1, udp(R1, M1, 53, 41111));
  t.is(n.outbound(stray, 0, stray.length, 0, 0, T0), NAT66_DROP);
  t.is(n.size, size);
});

test('REJECT leaves the packet untouched; buildProhibited answers it (code 1)', (t) => {
  const n = new Nat66({ seed: 4, capacity: 1 });
  n.addEgress(EGRESS);
  const a = udp(M1, R1, 40000, 53);
  n.outbound(a, 0, a.length, 0, 0, T0);
  const b = udp(M1, R1, 40001, 53);
  const copy = b.slice();
  t.is(n.outbound(b, 0, b.length, 0, 0, T0), NAT66_REJECT);
  t.deepEqual(b, copy);
  const out = new Uint8Array(1280);
  const gw = addressBytes('fdaa:0:18:a7b:7d::1');
  const len = n.buildProhibited(out, 0, gw, 0, b, 0, b.length);
  t.is(len, 48 + b.length);
  t.deepEqual(out.subarray(0, len), error(ICMPV6_DST_UNREACH, 1, 0, gw, copy));
  t.is(out[41], 1);
});

test('verifyInbound: an error whose ICMPv6 checksum fails is dropped before translation', (t) => {
  const n = nat({ verifyInbound: true });
  const sent = send(n, udp(M1, R1, 40000, 53));
  const e = error(ICMPV6_DST_UNREACH, ICMPV6_UNREACH_PORT, 0, R1, sent);
  const bad = e.slice();
  bad[bad.length - 1] ^= 0x40;
  t.is(n.inbound(bad, 0, bad.length, T0), NAT66_DROP);
  t.is(n.counters.badChecksum, 1);
  t.is(n.inbound(e, 0, e.length, T0), NAT66_DELIVER);
});

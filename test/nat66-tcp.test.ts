// SNAT66 with TCP: a whole session through the NAT (handshake, data, close both ways) with
// exact bytes and checksums, the state machine (RFC 9293 §3.5, §3.6 seen from the middle), the
// established and transitory timeouts (RFC 5382 REQ-5, RFC 7857 §2), unsolicited SYNs.
import test from 'ava';
import {
  IPPROTO_TCP,
  Ipv6Info,
  PARSE_OK,
  addressBytes,
  computeChecksum,
  parsePacket,
  readU16,
  verifyChecksum,
} from '../src/ipv6/index.ts';
import {
  FILTER_ENDPOINT_INDEPENDENT,
  NAT66_DELIVER,
  NAT66_DROP,
  NAT66_FORWARD,
  Nat66,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  type Nat66Options,
} from '../src/nat66/index.ts';
import { buildTcp } from './helpers/packets.ts';

const M1 = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2');
const M2 = addressBytes('fdaa:0:18:a7b:7d:1234:5678:2');
const EGRESS = addressBytes('2001:db8:e::1');
const R1 = addressBytes('2001:db8:100::80');
const T0 = 1_700_000_000_000;
const S = 1000; // ms per second

function tcp(src: Uint8Array, dst: Uint8Array, sp: number, dp: number, seq: number, ack: number, flags: number, data = ''): Uint8Array {
  const buf = new Uint8Array(2048);
  const bytes = new TextEncoder().encode(data);
  return buf.slice(0, buildTcp(buf, 0, src, 0, dst, 0, sp, dp, seq, ack, flags, bytes, 0, bytes.length));
}

const info = new Ipv6Info();
function checksumOk(p: Uint8Array): boolean {
  if (parsePacket(p, 0, p.length, info) !== PARSE_OK) return false;
  return readU16(p, info.l4Off + 16) === computeChecksum(p, 0, info.l4Off, info.l4Len, IPPROTO_TCP) &&
    verifyChecksum(p, 0, info.l4Off, info.l4Len, IPPROTO_TCP);
}

function nat(opts: Nat66Options = {}): Nat66 {
  const n = new Nat66({ seed: 2, capacity: 1024, ...opts });
  n.addEgress(EGRESS);
  return n;
}

// One TCP conversation between M1:50000 and R1:443 through `n`; each step checks the exact
// bytes on the far side and returns the conntrack state the listing shows.
class Conversation {
  readonly n: Nat66;
  readonly t: import('ava').ExecutionContext;
  ext = 50000;
  constructor(n: Nat66, t: import('ava').ExecutionContext) {
    this.n = n;
    this.t = t;
  }
  out(seq: number, ack: number, flags: number, now: number, data = '', verdict = NAT66_FORWARD): void {
    const p = tcp(M1, R1, 50000, 443, seq, ack, flags, data);
    this.t.is(this.n.outbound(p, 0, p.length, 0, 0, now), verdict);
    if (verdict !== NAT66_FORWARD) return;
    this.t.deepEqual(p, tcp(EGRESS, R1, this.ext, 443, seq, ack, flags, data));
    this.t.true(checksumOk(p));
  }
  in(seq: number, ack: number, flags: number, now: number, data = '', verdict = NAT66_DELIVER): void {
    const p = tcp(R1, EGRESS, 443, this.ext, seq, ack, flags, data);
    this.t.is(this.n.inbound(p, 0, p.length, now), verdict);
    if (verdict !== NAT66_DELIVER) return;
    this.t.is(this.n.machine, 0);
    this.t.deepEqual(p, tcp(R1, M1, 443, 50000, seq, ack, flags, data));
    this.t.true(checksumOk(p));
  }
  state(now: number): string {
    const l = this.n.list(now);
    return l.length === 0 ? 'gone' : l[0].split(' ').slice(3, 5).join(' ');
  }
}

test('a TCP session: handshake, data, FIN/ACK both ways; states and timeouts along the way', (t) => {
  const n = nat();
  const c = new Conversation(n, t);
  c.out(1000, 0, TCP_SYN, T0);
  t.is(c.state(T0), '240 SYN_SENT');
  t.regex(n.list(T0)[0], /\[UNREPLIED\]/);
  c.in(5000, 1001, TCP_SYN | TCP_ACK, T0 + 10);
  t.is(c.state(T0 + 10), '240 SYN_RECV');
  c.out(1001, 5001, TCP_ACK, T0 + 20);
  t.is(c.state(T0 + 20), '7440 ESTABLISHED');
  t.regex(n.list(T0 + 20)[0], /\[ASSURED\] machine=0$/);
  c.out(1001, 5001, TCP_ACK, T0 + 30, 'GET / HTTP/1.1\r\n\r\n');
  c.in(5001, 1019, TCP_ACK, T0 + 40, 'HTTP/1.1 200 OK\r\n\r\nhello');
  // Idle for longer than the transitory timeout: an established session stays.
  t.is(n.tick(T0 + 40 + 3600 * S), 0);
  t.is(c.state(T0 + 40 + 3600 * S), '3840 ESTABLISHED');
  const t1 = T0 + 3700 * S;
  c.out(1019, 5025, TCP_ACK | TCP_FIN, t1); // the machine closes first
  t.is(c.state(t1), '240 FIN_WAIT');
  c.in(5025, 1020, TCP_ACK, t1 + 10); // acknowledges the FIN
  t.is(c.state(t1 + 10), '240 FIN_WAIT');
  c.in(5025, 1020, TCP_ACK | TCP_FIN, t1 + 20, 'bye'); // the remote's FIN, after data
  t.is(c.state(t1 + 20), '240 LAST_ACK');
  c.out(1020, 5029, TCP_ACK, t1 + 30); // acknowledges seq 5025 + 3 bytes + FIN
  t.is(c.state(t1 + 30), '240 TIME_WAIT');
  t.is(n.tick(t1 + 30 + 239 * S), 0);
  t.is(n.tick(t1 + 30 + 240 * S), 1);
  t.is(n.size, 0);
  t.is(n.mappings, 0);
});

test('the remote closes first: CLOSE_WAIT, LAST_ACK, TIME_WAIT; an ACK short of the FIN does not count', (t) => {
  const n = nat();
  const c = new Conversation(n, t);
  c.out(1, 0, TCP_SYN, T0);
  c.in(100, 2, TCP_SYN | TCP_ACK, T0);
  c.out(2, 101, TCP_ACK, T0);
  c.in(101, 2, TCP_ACK | TCP_FIN, T0 + 1, 'xy'); // FIN at 103, acknowledged by 104
  t.is(c.state(T0 + 1), '240 CLOSE_WAIT');
  c.out(2, 103, TCP_ACK | TCP_FIN, T0 + 2); // acknowledges the data, not the FIN
  t.is(c.state(T0 + 2), '240 LAST_ACK');
  c.in(104, 3, TCP_ACK, T0 + 3); // acknowledges the machine's FIN
  t.is(c.state(T0 + 3), '240 LAST_ACK');
  c.out(3, 104, TCP_ACK, T0 + 4);
  t.is(c.state(T0 + 4), '240 TIME_WAIT');
  // The four-tuple is reused: a new SYN starts over.
  c.out(9000, 0, TCP_SYN, T0 + 5);
  t.is(c.state(T0 + 5), '240 SYN_SENT');
});

test('simultaneous close: FINs cross, each acknowledged', (t) => {
  const n = nat();
  const c = new Conversation(n, t);
  c.out(1, 0, TCP_SYN, T0);
  c.in(100, 2, TCP_SYN | TCP_ACK, T0);
  c.out(2, 101, TCP_ACK, T0);
  c.out(2, 101, TCP_ACK | TCP_FIN, T0);
  c.in(101, 2, TCP_ACK | TCP_FIN, T0); // does not acknowledge the machine's FIN (needs 3)
  t.is(c.state(T0), '240 LAST_ACK');
  c.in(102, 3, TCP_ACK, T0);
  c.out(3, 102, TCP_ACK, T0);
  t.is(c.state(T0), '240 TIME_WAIT');
});

test('RST from either side: CLOSE, transitory, still forwarded until it expires', (t) => {
  for (const fromRemote of [false, true]) {
    const n = nat();
    const c = new Conversation(n, t);
    c.out(1, 0, TCP_SYN, T0);
    c.in(100, 2, TCP_SYN | TCP_ACK, T0);
    c.out(2, 101, TCP_ACK, T0);
    if (fromRemote) c.in(101, 0, TCP_RST, T0 + 1);
    else c.out(2, 0, TCP_RST | TCP_ACK, T0 + 1);
    t.is(c.state(T0 + 1), '240 CLOSE');
    c.in(101, 2, TCP_ACK, T0 + 2); // a straggler still gets through
    t.is(n.tick(T0 + 2 + 240 * S), 1);
  }
});

test('SYN timeout: an unanswered SYN is transitory; an answered handshake that never completes too', (t) => {
  const n = nat();
  const c = new Conversation(n, t);
  c.out(1, 0, TCP_SYN, T0);
  t.is(n.tick(T0 + 239 * S), 0);
  c.out(1, 0, TCP_SYN, T0 + 239 * S); // retransmission refreshes
  t.is(n.tick(T0 + 400 * S), 0);
  t.is(n.tick(T0 + 479 * S), 1);
  c.out(1, 0, TCP_SYN, T0 + 500 * S);
  c.in(100, 2, TCP_SYN | TCP_ACK, T0 + 500 * S); // answered, never acknowledged
  t.is(c.state(T0 + 500 * S), '240 SYN_RECV');
  t.is(n.tick(T0 + 739 * S), 0);
  t.is(n.tick(T0 + 740 * S), 1);
});

test('an inbound SYN gets no answer: dropped silently, no state; so are stray segments', (t) => {
  const n = nat();
  for (const flags of [TCP_SYN, TCP_ACK, TCP_RST, TCP_FIN | TCP_ACK]) {
    const p = tcp(R1, EGRESS, 443, 50000, 1, 0, flags);
    t.is(n.inbound(p, 0, p.length, T0), NAT66_DROP);
  }
  t.is(n.size, 0);
  // With a mapping to another remote, address-and-port-dependent filtering still drops it.
  const c = new Conversation(n, t);
  c.out(1, 0, TCP_SYN, T0);
  const syn = tcp(addressBytes('2001:db8:666::1'), EGRESS, 443, 50000, 1, 0, TCP_SYN);
  t.is(n.inbound(syn, 0, syn.length, T0), NAT66_DROP);
  t.is(n.size, 1);
});

test('outbound RST or FIN with no session creates nothing; a plain ACK is picked up', (t) => {
  const n = nat();
  const c = new Conversation(n, t);
  c.out(5, 6, TCP_RST | TCP_ACK, T0, '', NAT66_DROP);
  c.out(5, 6, TCP_FIN | TCP_ACK, T0, '', NAT66_DROP);
  t.is(n.size, 0);
  c.out(5, 6, TCP_ACK, T0, 'mid-stream'); // e.g. after the table lost it
  t.is(c.state(T0), '240 ESTABLISHED'); // unreplied: transitory
  c.in(6, 15, TCP_ACK, T0 + 1);
  t.is(c.state(T0 + 1), '7440 ESTABLISHED');
});

test('endpoint-independent filtering lets an inbound SYN in; the machine\'s SYN-ACK opens the session', (t) => {
  const n = nat({ filtering: FILTER_ENDPOINT_INDEPENDENT });
  const c = new Conversation(n, t);
  c.out(1, 0, TCP_SYN, T0); // opens the mapping 50000
  const peer = addressBytes('2001:db8:777::1');
  const syn = tcp(peer, EGRESS, 6000, 50000, 700, 0, TCP_SYN);
  t.is(n.inbound(syn, 0, syn.length, T0), NAT66_DELIVER);
  t.deepEqual(syn, tcp(peer, M1, 6000, 50000, 700, 0, TCP_SYN));
  t.is(n.size, 1);
  const synack = tcp(M1, peer, 50000, 6000, 900, 701, TCP_SYN | TCP_ACK);
  t.is(n.outbound(synack, 0, synack.length, 0, 0, T0), NAT66_FORWARD);
  t.is(n.size, 2);
  const ack = tcp(peer, EGRESS, 6000, 50000, 701, 901, TCP_ACK);
  t.is(n.inbound(ack, 0, ack.length, T0), NAT66_DELIVER);
  t.true(n.list(T0).some((l) => l.includes('ESTABLISHED') && l.includes('dport=6000')));
});

test('simultaneous open: SYNs cross', (t) => {
  const n = nat();
  const c = new Conversation(n, t);
  c.out(1, 0, TCP_SYN, T0);
  c.in(100, 0, TCP_SYN, T0);
  t.is(c.state(T0), '240 SYN_RECV');
  c.out(1, 101, TCP_SYN | TCP_ACK, T0);
  c.in(101, 2, TCP_ACK, T0);
  t.is(c.state(T0), '7440 ESTABLISHED');
});

test('TCP port rules: two machines, same port, same server: distinct external ports', (t) => {
  const n = nat();
  const a = tcp(M1, R1, 50000, 443, 1, 0, TCP_SYN);
  const b = tcp(M2, R1, 50000, 443, 1, 0, TCP_SYN);
  n.outbound(a, 0, a.length, 0, 0, T0);
  n.outbound(b, 0, b.length, 1, 0, T0);
  t.is(readU16(a, 40), 50000);
  t.not(readU16(b, 40), 50000);
  t.true(readU16(b, 40) >= 1024);
  t.true(checksumOk(b));
  const back = tcp(R1, EGRESS, 443, readU16(b, 40), 9, 2, TCP_SYN | TCP_ACK);
  t.is(n.inbound(back, 0, back.length, T0), NAT66_DELIVER);
  t.is(n.machine, 1);
  t.deepEqual(back, tcp(R1, M2, 443, 50000, 9, 2, TCP_SYN | TCP_ACK));
});

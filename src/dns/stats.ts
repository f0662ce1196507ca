// What the `.internal` DNS service answered, for the metrics (issue 14): answers by query type
// and response code, and the time from a query to its answer. It watches the packets at the
// service's door, not the service itself — queries as the router hands them over (UDP to port
// 53), answers as they come back (UDP from port 53) — so the service keeps no extra state.
//
// A query is remembered by (DNS id, asker port, the asker address's last 16 bits) until its
// answer or QUERY_FORGET_MS; at most MAX_PENDING are kept (a flood is not remembered beyond
// that, and counted). Latency buckets are cumulative only when read (`cumulative`), so
// recording one answer is one array increment. TCP queries go through the host kernel and are
// counted by the service (tcpQueries), not here.
import { IPPROTO_UDP, IPV6_OFF_DST, IPV6_OFF_SRC, Ipv6Info, PARSE_OK, parsePacket, readU16 } from '../ipv6/index.ts';
import { DNS_HEADER_LEN, DNS_PORT, HDR_OFF_FLAGS, HDR_OFF_ID, HDR_OFF_QDCOUNT, RCODE_MASK } from './wire.ts';

/** Upper bounds of the latency buckets, seconds (in-process answers take microseconds, forwarded ones milliseconds). */
export const DNS_LATENCY_BOUNDS_S: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
const QUERY_FORGET_MS = 10_000;
const MAX_PENDING = 8192;
const UDP_HEADER_LEN = 8;

const TYPE_NAMES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR',
  43: 'DS', 46: 'RRSIG', 48: 'DNSKEY', 64: 'SVCB', 65: 'HTTPS', 252: 'AXFR', 251: 'IXFR', 255: 'ANY', 257: 'CAA',
};
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

/** A query type as a label: its mnemonic, or "other" (the label set stays small). */
export function qtypeName(t: number): string {
  return TYPE_NAMES[t] ?? 'other';
}

/** A response code as a label: its mnemonic (RFC 6895 §2.3), or RCODE<n>. */
export function rcodeName(r: number): string {
  return RCODE_NAMES[r] ?? `RCODE${r}`;
}

export class DnsStats {
  /** Answers by "QTYPE RCODE" (mnemonics). */
  readonly answers = new Map<string, number>();
  /** Answers per latency bucket (not cumulative); the last slot is +Inf. */
  readonly buckets = new Float64Array(DNS_LATENCY_BOUNDS_S.length + 1);
  latencySumS = 0;
  latencyCount = 0;
  /** Queries not remembered for latency: MAX_PENDING were waiting. */
  pendingFull = 0;
  /** Queries forgotten without an answer (QUERY_FORGET_MS). */
  unanswered = 0;
  private readonly pending = new Map<number, number>(); // key → arrival, ms
  private readonly info = new Ipv6Info();

  /** A UDP packet to a DNS address (as the router hands it to the service), at `nowMs`. */
  query(buf: Uint8Array, off: number, len: number, nowMs: number): void {
    const d = this.dnsOffset(buf, off, len, false);
    if (d < 0) return;
    if (this.pending.size >= MAX_PENDING) return void this.pendingFull++;
    const src = off + IPV6_OFF_SRC;
    this.pending.set(key(readU16(buf, d + HDR_OFF_ID), readU16(buf, this.info.l4Off), readU16(buf, src + 14)), nowMs);
  }

  /** A UDP packet from a DNS address back to an asker (the service's answer), at `nowMs`. */
  reply(buf: Uint8Array, off: number, len: number, nowMs: number): void {
    const d = this.dnsOffset(buf, off, len, true);
    if (d < 0) return;
    const end = off + this.info.packetLen;
    const qtype = readQtype(buf, d, end);
    const name = `${qtype < 0 ? 'none' : qtypeName(qtype)} ${rcodeName(readU16(buf, d + HDR_OFF_FLAGS) & RCODE_MASK)}`;
    this.answers.set(name, (this.answers.get(name) ?? 0) + 1);
    const k = key(readU16(buf, d + HDR_OFF_ID), readU16(buf, this.info.l4Off + 2), readU16(buf, off + IPV6_OFF_DST + 14));
    const t0 = this.pending.get(k);
    if (t0 === undefined) return;
    this.pending.delete(k);
    const s = Math.max(0, nowMs - t0) / 1000;
    let i = 0;
    while (i < DNS_LATENCY_BOUNDS_S.length && s > DNS_LATENCY_BOUNDS_S[i]) i++;
    this.buckets[i]++;
    this.latencySumS += s;
    this.latencyCount++;
  }

  /** Forgets queries older than QUERY_FORGET_MS (call now and then). */
  expire(nowMs: number): void {
    for (const [k, t] of this.pending) {
      if (nowMs - t < QUERY_FORGET_MS) break; // insertion order is arrival order
      this.pending.delete(k);
      this.unanswered++;
    }
  }

  /** Cumulative bucket counts, as Prometheus histograms count (`le` each bound, then +Inf). */
  cumulative(): number[] {
    const out: number[] = [];
    let n = 0;
    for (const b of this.buckets) out.push((n += b));
    return out;
  }

  /** The offset of the DNS message in an IPv6/UDP packet to (or from, `fromServer`) port 53, or -1. */
  private dnsOffset(buf: Uint8Array, off: number, len: number, fromServer: boolean): number {
    const info = this.info;
    if (parsePacket(buf, off, len, info) !== PARSE_OK || info.protocol !== IPPROTO_UDP || info.fragment) return -1;
    if (info.l4Len < UDP_HEADER_LEN + DNS_HEADER_LEN) return -1;
    if (readU16(buf, info.l4Off + (fromServer ? 0 : 2)) !== DNS_PORT) return -1;
    return info.l4Off + UDP_HEADER_LEN;
  }
}

function key(id: number, port: number, addrLow: number): number {
  return id * 2 ** 32 + port * 2 ** 16 + addrLow;
}

/** The type of the first question of the message at buf[d…end), or -1. */
function readQtype(buf: Uint8Array, d: number, end: number): number {
  if (readU16(buf, d + HDR_OFF_QDCOUNT) === 0) return -1;
  let p = d + DNS_HEADER_LEN;
  while (p < end) {
    const l = buf[p];
    if (l === 0) return p + 3 <= end ? readU16(buf, p + 1) : -1;
    if ((l & 0xc0) !== 0) return -1; // a question name is not compressed
    p += 1 + l;
  }
  return -1;
}

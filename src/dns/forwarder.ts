/**
 * Forwarder for names outside `.internal`, sans-IO: the caller moves bytes and passes the clock
 * in; the forwarder says what to send where.
 *
 * 1. `query(msg, client, now, out)`: the client's query is rewritten with a fresh random ID
 *    (RFC 5452 §9.2: unpredictable IDs) into `out` for upstream 0; the mapping upstream ID →
 *    {client, client ID, question as asked, deadline} is kept.
 * 2. `reply(msg, upstream, now, out)`: an upstream reply is accepted only from the upstream the
 *    query went to, with an outstanding ID and the same question (RFC 5452 §9.1; the name
 *    compared case-insensitively); the client's ID and question bytes are restored into `out`.
 * 3. `poll(now, out)`, called until it returns `FWD_NONE`: a query past its deadline goes to the
 *    next upstream under a new ID, or, out of attempts, becomes SERVFAIL for the client.
 * The number of outstanding queries is bounded; past it the client gets SERVFAIL at once.
 * A query sent over TCP by the client is forwarded the same way; retrying a truncated upstream
 * reply over TCP is the I/O layer's business.
 */
import { randomFillSync } from 'node:crypto';
import {
  DNS_HEADER_LEN, EDNS_FLAG_DO, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD, HDR_OFF_FLAGS, HDR_OFF_ID,
  HDR_OFF_ARCOUNT, HDR_OFF_QDCOUNT, MessageWriter, QUERY_OK, RCODE_SERVFAIL, asciiLower, newParsedQuery, parseQuery,
  DNS_PORT, readName,
} from './wire.ts';
import { readU16, writeU16 } from '../bytes.ts';
import { ipFamily } from '../ipv6/index.ts';
import { DEFAULT_MAX_UDP_PAYLOAD } from './resolver.ts';

export interface Upstream {
  readonly address: string; // IPv4 or IPv6 literal (an IPv6 zone kept as written)
  readonly port: number;
}

/** Upstreams from resolv.conf text (resolv.conf(5)): `nameserver ADDR` lines, in order. */
export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, addr] = line.split(/\s+/);
    if (key !== 'nameserver' || addr === undefined) continue;
    if (ipFamily(addr.replace(/%.*$/, '')) === 0) continue;
    out.push({ address: addr, port: DNS_PORT });
  }
  return out;
}

export const FWD_NONE = 0; // nothing to send
export const FWD_UPSTREAM = 1; // send `out[0 … length)` to `upstreams[upstream]`
export const FWD_CLIENT = 2; // send `out[0 … length)` to `client`

export interface ForwardAction<C> {
  readonly kind: number;
  readonly length: number;
  readonly upstream: number;
  readonly client: C | undefined;
}

export interface ForwarderOptions {
  readonly upstreams: readonly Upstream[];
  /** Time to wait for one upstream; default 2000 ms. */
  readonly timeoutMs?: number;
  /** Upstreams tried per query, in order, wrapping around; default: each once. */
  readonly attempts?: number;
  /** Bound on queries in flight; default 1024. */
  readonly maxOutstanding?: number;
  /** Source of 16-bit IDs; default: node:crypto. */
  readonly randomId?: () => number;
}

export const DEFAULT_FORWARD_TIMEOUT_MS = 2000;
export const DEFAULT_MAX_OUTSTANDING = 1024;
const MAX_FORWARD_QUERY = 4096; // kept per query for retries: bounded memory
const ID_TRIES = 32;

interface Pending<C> {
  client: C;
  clientId: number;
  clientFlags: number;
  ednsDo: number; // -1: the client did not use EDNS
  question: Uint8Array; // the client's question section as asked
  lower: string[];
  qtype: number;
  qclass: number;
  query: Uint8Array; // the client's query, copied, for retries
  upstream: number;
  attempt: number;
  deadline: number;
}

const NONE: ForwardAction<never> = { kind: FWD_NONE, length: 0, upstream: -1, client: undefined };

export class Forwarder<C> {
  readonly upstreams: readonly Upstream[];
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly maxOutstanding: number;
  // Keyed by upstream ID. Insertion order is deadline order: every deadline is `now + timeoutMs`
  // with a clock that does not go back, and a retry re-inserts under a new ID.
  #pending = new Map<number, Pending<C>>();
  #randomId: () => number;
  #q = newParsedQuery();
  #labels: string[] = [];
  #w = new MessageWriter();

  constructor(opts: ForwarderOptions) {
    if (opts.upstreams.length === 0) throw new RangeError('dns: forwarder needs at least one upstream');
    this.upstreams = opts.upstreams;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
    this.attempts = Math.max(1, opts.attempts ?? opts.upstreams.length);
    this.maxOutstanding = opts.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING;
    this.#randomId = opts.randomId ?? cryptoIds();
  }

  get outstanding(): number {
    return this.#pending.size;
  }

  /** When `poll` next has work, or undefined when nothing is in flight. */
  nextDeadline(): number | undefined {
    for (const p of this.#pending.values()) return p.deadline;
    return undefined;
  }

  /** A client's query (already judged by the resolver to be for an outside name). */
  query(msg: Uint8Array, client: C, now: number, out: Uint8Array): ForwardAction<C> {
    const pq = this.#q;
    if (parseQuery(msg, msg.length, pq) !== QUERY_OK) return NONE;
    const q = pq.question;
    const p: Pending<C> = {
      client,
      clientId: pq.id,
      clientFlags: pq.flags,
      ednsDo: pq.edns.present ? pq.edns.flags & EDNS_FLAG_DO : -1,
      question: msg.slice(DNS_HEADER_LEN, q.end),
      lower: q.lower.slice(),
      qtype: q.qtype,
      qclass: q.qclass,
      query: msg,
      upstream: 0,
      attempt: 1,
      deadline: now + this.timeoutMs,
    };
    if (msg.length > MAX_FORWARD_QUERY || msg.length > out.length || this.#pending.size >= this.maxOutstanding) {
      return this.#servfail(p, out);
    }
    p.query = msg.slice();
    return this.#send(p, out);
  }

  /** A reply from `upstreams[upstream]`. */
  reply(msg: Uint8Array, upstream: number, _now: number, out: Uint8Array): ForwardAction<C> {
    if (msg.length < DNS_HEADER_LEN || (readU16(msg, HDR_OFF_FLAGS) & FLAG_QR) === 0) return NONE;
    const id = readU16(msg, HDR_OFF_ID);
    const p = this.#pending.get(id);
    if (p === undefined || p.upstream !== upstream || readU16(msg, HDR_OFF_QDCOUNT) !== 1) return NONE;
    const labels = this.#labels;
    labels.length = 0;
    const nameEnd = readName(msg, DNS_HEADER_LEN, msg.length, labels);
    const qEnd = DNS_HEADER_LEN + p.question.length;
    // Same question, written uncompressed at the same length, so the client's bytes fit in place.
    if (nameEnd < 0 || nameEnd + 4 !== qEnd || qEnd > msg.length || labels.length !== p.lower.length) return NONE;
    for (let i = 0; i < labels.length; i++) if (asciiLower(labels[i]) !== p.lower[i]) return NONE;
    if (readU16(msg, nameEnd) !== p.qtype || readU16(msg, nameEnd + 2) !== p.qclass) return NONE;
    if (msg.length > out.length) return NONE;
    this.#pending.delete(id);
    out.set(msg, 0);
    writeU16(out, HDR_OFF_ID, p.clientId);
    out.set(p.question, DNS_HEADER_LEN);
    return { kind: FWD_CLIENT, length: msg.length, upstream: -1, client: p.client };
  }

  /** Expires one query whose deadline has passed: a retry upstream or SERVFAIL to the client. */
  poll(now: number, out: Uint8Array): ForwardAction<C> {
    for (const [id, p] of this.#pending) {
      if (p.deadline > now) return NONE;
      this.#pending.delete(id);
      if (p.attempt >= this.attempts) return this.#servfail(p, out);
      p.attempt++;
      p.upstream = (p.upstream + 1) % this.upstreams.length;
      p.deadline = now + this.timeoutMs;
      return this.#send(p, out);
    }
    return NONE;
  }

  #send(p: Pending<C>, out: Uint8Array): ForwardAction<C> {
    let id = -1;
    for (let i = 0; i < ID_TRIES && id < 0; i++) {
      const c = this.#randomId() & 0xffff;
      if (!this.#pending.has(c)) id = c;
    }
    if (id < 0) return this.#servfail(p, out);
    this.#pending.set(id, p);
    out.set(p.query, 0);
    writeU16(out, HDR_OFF_ID, id);
    return { kind: FWD_UPSTREAM, length: p.query.length, upstream: p.upstream, client: undefined };
  }

  /** SERVFAIL (RFC 1035 §4.1.1) with the client's ID, RD/CD and question; OPT if it sent one. */
  #servfail(p: Pending<C>, out: Uint8Array): ForwardAction<C> {
    const w = this.#w;
    w.reset(out, out.length);
    w.header(p.clientId, FLAG_QR | FLAG_RA | (p.clientFlags & (FLAG_RD | FLAG_CD)) | RCODE_SERVFAIL);
    w.bytes(p.question);
    if (p.ednsDo >= 0) w.opt(DEFAULT_MAX_UDP_PAYLOAD, 0, p.ednsDo);
    if (w.overflow) return NONE;
    w.setCount(HDR_OFF_QDCOUNT, 1);
    if (p.ednsDo >= 0) w.setCount(HDR_OFF_ARCOUNT, 1);
    return { kind: FWD_CLIENT, length: w.pos, upstream: -1, client: p.client };
  }
}

/** 16-bit IDs from node:crypto, drawn 256 at a time. */
function cryptoIds(): () => number {
  const pool = new Uint16Array(256);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++];
  };
}

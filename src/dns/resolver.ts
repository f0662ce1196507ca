/**
 * The `.internal` DNS server, sans-IO: `answer(query, asker, transport, out)` turns one query
 * into one reply written into `out` (or no reply), with no sockets and no timers.
 *
 * Flow of one query:
 * 1. the 12-byte header alone decides whether the bytes get any reply (`parseQuery`): no reply
 *    to responses, to QDCOUNT ≠ 1, to answer/authority records in a query; other opcodes get a
 *    header-only NOTIMP, an unparsable body a header-only FORMERR;
 * 2. the asker's source address must belong to a machine or WireGuard peer (else REFUSED);
 * 3. EDNS version ≠ 0 → BADVERS (RFC 6891 §6.1.3); class other than IN/ANY → REFUSED;
 * 4. names outside `.internal` are the forwarder's (`ANSWER_FORWARD`) or REFUSED;
 * 5. `.internal` names are looked up for the asker's org (`zone.ts`) and answered with AA set;
 *    negative answers carry the zone's SOA in the authority section (RFC 2308 §3).
 *
 * Size: UDP replies fit in 512 bytes, or in the requestor's EDNS payload size (RFC 6891
 * §6.2.3–§6.2.5) capped by `maxUdpPayload`; TCP replies in 65535 bytes. What does not fit is
 * cut at a record boundary with TC set, keeping the records that fit (RFC 2181 §9): a client
 * that cannot retry over TCP (musl before 1.2.4) still gets usable addresses. Error replies are
 * never longer than the query (header, the question as asked, our OPT ≤ theirs).
 */
import type { DnsView } from './view.ts';
import {
  CLASS_ANY, CLASS_IN, DNS_HEADER_LEN, EDNS_FLAG_DO, FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC,
  HDR_OFF_ANCOUNT, HDR_OFF_ARCOUNT, HDR_OFF_NSCOUNT, HDR_OFF_QDCOUNT, MessageWriter, OPT_RR_LEN, QUERY_DROP,
  QUERY_FORMERR, QUERY_NOTIMP, RCODE_BADVERS, RCODE_FORMERR, RCODE_MASK, RCODE_NOERROR, RCODE_NOTIMP,
  RCODE_NXDOMAIN, RCODE_REFUSED, TCP_MESSAGE_MAX, TYPE_AAAA, TYPE_ANY, TYPE_AXFR, TYPE_IXFR, TYPE_OPT,
  TYPE_SOA, TYPE_TXT, UDP_PAYLOAD_MIN, newParsedQuery, parseQuery, writeHeaderOnly, type SoaData,
} from './wire.ts';
import {
  LOOKUP_AAAA, LOOKUP_APEX, LOOKUP_NXDOMAIN, LOOKUP_TXT, SERVICE_ZONE, ZONE_APEX, lookupInternal, lookupService, newLookup,
} from './zone.ts';
import { REGION_COORDS, type LatLon } from './regions.ts';

export type Transport = 'udp' | 'tcp';

/** `answer()` result: the query is valid, from a known asker, for a name outside `.internal`:
 * hand it to the `Forwarder`. */
export const ANSWER_FORWARD = -1;

// Implementation constants
export const DEFAULT_TTL_S = 5;
/** Our EDNS UDP payload size: the DNS flag day 2020 value, fits a 1280-byte IPv6 MTU unfragmented. */
export const DEFAULT_MAX_UDP_PAYLOAD = 1232;
const SOA_REFRESH_S = 3600;
const SOA_RETRY_S = 600;
const SOA_EXPIRE_S = 86400;
const QUESTION_OFF = DNS_HEADER_LEN; // the question name, target of every answer's owner pointer

export interface ResolverOptions {
  /** TTL of every record, and the negative-caching TTL (SOA MINIMUM); default 5 s. */
  readonly ttlS?: number;
  /** Cap on the requestor's EDNS payload size; default 1232. */
  readonly maxUdpPayload?: number;
  /** Whether names outside `.internal` return `ANSWER_FORWARD` (default) or REFUSED. */
  readonly forwardExternal?: boolean;
  /** Region coordinates for `nearest`; default `REGION_COORDS`. */
  readonly regions?: ReadonlyMap<string, LatLon>;
  /** SOA serial of the `internal` zone; default 1. */
  readonly soaSerial?: number;
}

const APEX_LABELS: readonly string[] = [ZONE_APEX];
const SERVICE_APEX_LABELS: readonly string[] = [SERVICE_ZONE];

export class InternalResolver {
  readonly view: DnsView;
  readonly ttlS: number;
  readonly maxUdpPayload: number;
  readonly forwardExternal: boolean;
  readonly regions: ReadonlyMap<string, LatLon>;
  readonly soa: SoaData;
  /** The SOA of the service zone (`sixpn`). */
  readonly serviceSoa: SoaData;
  #apex = APEX_LABELS;
  #soa: SoaData;
  #q = newParsedQuery();
  #lookup = newLookup();
  #w = new MessageWriter();
  #enc = new TextEncoder();

  constructor(view: DnsView, opts: ResolverOptions = {}) {
    this.view = view;
    this.ttlS = opts.ttlS ?? DEFAULT_TTL_S;
    this.maxUdpPayload = Math.max(UDP_PAYLOAD_MIN, Math.min(TCP_MESSAGE_MAX, opts.maxUdpPayload ?? DEFAULT_MAX_UDP_PAYLOAD));
    this.forwardExternal = opts.forwardExternal ?? true;
    this.regions = opts.regions ?? REGION_COORDS;
    this.soa = {
      mname: ['ns', ZONE_APEX],
      rname: ['hostmaster', ZONE_APEX],
      serial: opts.soaSerial ?? 1,
      refreshS: SOA_REFRESH_S,
      retryS: SOA_RETRY_S,
      expireS: SOA_EXPIRE_S,
      minimumS: this.ttlS,
    };
    this.serviceSoa = { ...this.soa, mname: ['ns', SERVICE_ZONE], rname: ['hostmaster', SERVICE_ZONE] };
    this.#soa = this.soa;
  }

  /**
   * Answers `query` (one whole DNS message, without TCP length prefix) from the host owning
   * `asker` (16-byte source address) into `out`. Returns the reply's length, 0 for no reply,
   * or `ANSWER_FORWARD`. Never throws on any input bytes.
   */
  answer(query: Uint8Array, asker: Uint8Array, transport: Transport, out: Uint8Array): number {
    const p = this.#q;
    const verdict = parseQuery(query, query.length, p);
    if (verdict === QUERY_DROP) return 0;
    if (verdict === QUERY_NOTIMP) return writeHeaderOnly(query, out, RCODE_NOTIMP);
    if (verdict === QUERY_FORMERR) return writeHeaderOnly(query, out, RCODE_FORMERR);

    const e = p.edns;
    let limit = TCP_MESSAGE_MAX;
    if (transport === 'udp') limit = e.present ? Math.min(e.payload, this.maxUdpPayload) : UDP_PAYLOAD_MIN;

    const who = this.view.askerOf(asker);
    if (who === undefined) return this.#reply(out, limit, RCODE_REFUSED, false);
    if (e.present && e.version !== 0) return this.#reply(out, limit, RCODE_BADVERS, false);
    const q = p.question;
    if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return this.#reply(out, limit, RCODE_REFUSED, false);
    const zone = q.lower.length === 0 ? '' : q.lower[q.lower.length - 1];
    const services = zone === SERVICE_ZONE;
    this.#apex = services ? SERVICE_APEX_LABELS : APEX_LABELS;
    this.#soa = services ? this.serviceSoa : this.soa;
    if (zone !== ZONE_APEX && !services) {
      return this.forwardExternal ? ANSWER_FORWARD : this.#reply(out, limit, RCODE_REFUSED, false);
    }
    // Zone transfers are refused (RFC 5936 §2.2.1 allows it); other meta types are not implemented.
    if (q.qtype === TYPE_AXFR || q.qtype === TYPE_IXFR) return this.#reply(out, limit, RCODE_REFUSED, false);
    if (q.qtype === TYPE_OPT || (q.qtype >= 128 && q.qtype < TYPE_ANY)) {
      return this.#reply(out, limit, RCODE_NOTIMP, false);
    }

    const r = this.#lookup;
    if (services) lookupService(this.view, who, q.lower, r);
    else lookupInternal(this.view, who, q.lower, this.regions, r);
    return this.#reply(out, limit, r.kind === LOOKUP_NXDOMAIN ? RCODE_NXDOMAIN : RCODE_NOERROR, true);
  }

  /**
   * Writes the reply: header, the question as asked, then (when `authoritative`) the answers
   * of `#lookup` matching QTYPE or the SOA of a negative answer, then OPT if the query had one.
   */
  #reply(out: Uint8Array, limit: number, rcode: number, authoritative: boolean): number {
    const p = this.#q;
    const q = p.question;
    const w = this.#w;
    const optLen = p.edns.present ? OPT_RR_LEN : 0;
    w.reset(out, Math.min(limit, out.length) - optLen);
    let flags = FLAG_QR | FLAG_RA | (p.flags & (FLAG_RD | FLAG_CD)) | (rcode & RCODE_MASK);
    if (authoritative) flags |= FLAG_AA;
    w.header(p.id, flags);
    w.name(q.labels, q.lower);
    w.u16(q.qtype);
    w.u16(q.qclass);
    if (w.overflow) return 0; // `out` smaller than a question: nothing sensible to send
    w.setCount(HDR_OFF_QDCOUNT, 1);

    let answers = 0;
    let truncated = false;
    if (authoritative) {
      const r = this.#lookup;
      const t = q.qtype;
      const any = t === TYPE_ANY;
      if (r.kind === LOOKUP_AAAA && (any || t === TYPE_AAAA)) {
        for (const addr of r.addrs) {
          const mark = w.pos;
          w.aaaa(QUESTION_OFF, this.ttlS, addr);
          if (w.overflow) {
            w.rollback(mark);
            truncated = true;
            break;
          }
          answers++;
        }
      } else if (r.kind === LOOKUP_TXT && (any || t === TYPE_TXT)) {
        const mark = w.pos;
        w.txt(QUESTION_OFF, this.ttlS, this.#enc.encode(r.txt));
        if (w.overflow) {
          w.rollback(mark);
          truncated = true;
        } else answers++;
      } else if (r.kind === LOOKUP_APEX && (any || t === TYPE_SOA)) {
        w.soa(this.#apex, this.ttlS, this.#soa);
        answers++;
      }
      if (answers === 0 && !truncated) {
        // NXDOMAIN or NODATA: the SOA for negative caching (RFC 2308 §3, §5: TTL = MINIMUM).
        const mark = w.pos;
        w.soa(this.#apex, Math.min(this.ttlS, this.#soa.minimumS), this.#soa);
        if (w.overflow) w.rollback(mark);
        else w.setCount(HDR_OFF_NSCOUNT, 1);
      }
    }
    w.setCount(HDR_OFF_ANCOUNT, answers);
    if (truncated) out[2] |= FLAG_TC >>> 8;
    if (optLen > 0) {
      // RFC 6891 §7: a reply to an EDNS query carries OPT; RFC 3225 §3: DO is copied.
      w.limit += optLen;
      w.opt(this.maxUdpPayload, rcode, p.edns.flags & EDNS_FLAG_DO);
      w.setCount(HDR_OFF_ARCOUNT, 1);
    }
    return w.pos;
  }
}

/** Convenience: one `answer` over a view with default options (allocates a resolver). */
export function answer(view: DnsView, query: Uint8Array, asker: Uint8Array, transport: Transport, out: Uint8Array): number {
  return new InternalResolver(view).answer(query, asker, transport, out);
}

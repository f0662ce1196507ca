/**
 * DNS message codec (RFC 1035 §4.1), sans-IO: reads from `(buf, len)`, writes into a caller's
 * buffer through `MessageWriter`.
 *
 * Reading is defensive because every byte comes from a machine we do not trust:
 * - the 12-byte header is judged first (`parseQuery`), so a response, a multi-question message
 *   or a message with answer/authority records gets no reply at all before anything else is read
 *   (a reply to such bytes can only serve reflection);
 * - names are bounded (63-byte labels, 255-byte names, RFC 1035 §2.3.4), compression pointers
 *   must point strictly before the label run that holds them (RFC 1035 §4.1.4 "prior
 *   occurrence"), so a pointer chain cannot loop and ends after at most a few hundred hops;
 *   no read goes past `end`.
 *
 * Labels are handled as latin1 strings (one char per byte) so any byte survives a round trip;
 * matching uses the ASCII-lower-cased copy (RFC 4343: only A–Z fold).
 */

import { readU16, writeU16 } from '../bytes.ts';

// Specification constants (RFC 1035 §4.1.1, §2.3.4; RFC 6891 §6.1.2)
export const DNS_PORT = 53; // UDP and TCP (RFC 1035 §4.2); the one definition in the tree
export const DNS_HEADER_LEN = 12; // size of the fixed message header
export const HDR_OFF_ID = 0;
export const HDR_OFF_FLAGS = 2;
export const HDR_OFF_QDCOUNT = 4;
export const HDR_OFF_ANCOUNT = 6;
export const HDR_OFF_NSCOUNT = 8;
export const HDR_OFF_ARCOUNT = 10;
export const MAX_LABEL_LEN = 63;
export const MAX_NAME_LEN = 255; // wire form, length octets and the root label included
export const UDP_PAYLOAD_MIN = 512; // RFC 1035 §4.2.1; RFC 6891 §6.2.5 floor
export const TCP_MESSAGE_MAX = 65535; // RFC 1035 §4.2.2 two-byte length
export const OPT_RR_LEN = 11; // OPT RR without options: root 1 + type 2 + class 2 + ttl 4 + rdlen 2
export const RR_FIXED_LEN = 10; // type 2 + class 2 + ttl 4 + rdlength 2 (RFC 1035 §4.1.3)

export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_CD = 0x0010;
export const OPCODE_MASK = 0x7800;
export const OPCODE_QUERY = 0;
export const RCODE_MASK = 0x000f;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;
export const RCODE_BADVERS = 16; // RFC 6891 §6.1.3, extended: upper 8 bits travel in the OPT TTL

export const TYPE_A = 1;
export const TYPE_NS = 2;
export const TYPE_SOA = 6;
export const TYPE_MX = 15;
export const TYPE_TXT = 16;
export const TYPE_AAAA = 28; // RFC 3596 §2.1
export const TYPE_OPT = 41; // RFC 6891 §6.1.1
export const TYPE_IXFR = 251;
export const TYPE_AXFR = 252;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;
export const EDNS_FLAG_DO = 0x8000; // RFC 3225 §3, top bit of the OPT TTL's low 16 bits

// Implementation constants
const PTR_MASK = 0xc0; // RFC 1035 §4.1.4
const MAX_PTR_OFFSET = 0x3fff;
const MAX_PTR_HOPS = 128; // unreachable with the strictly-backward rule; a second guard
const MAX_ADDITIONAL = 2; // OPT and possibly TSIG; more is not a query we answer

const UPPER = /[A-Z]+/g;
const toLower = (m: string) => m.toLowerCase();
/** RFC 4343 §3: case folds for ASCII letters only. Returns `s` itself when it has none. */
export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.replace(UPPER, toLower);
  }
  return s;
}

/**
 * Reads a (possibly compressed) name starting at `off`, pushing its labels (original bytes as
 * latin1) into `labels` when given. Returns the offset just past the name in the stream, or -1
 * when it is malformed (truncated, reserved label type, too long, pointer not strictly backward).
 */
export function readName(buf: Uint8Array, off: number, end: number, labels?: string[]): number {
  let pos = off;
  let runStart = off; // start of the label run being read; a pointer must go below it
  let after = -1;
  let wireLen = 1; // the terminating root label
  for (let hops = 0; ; ) {
    if (pos >= end) return -1;
    const len = buf[pos];
    if ((len & PTR_MASK) === PTR_MASK) {
      if (pos + 1 >= end || ++hops > MAX_PTR_HOPS) return -1;
      const target = ((len & ~PTR_MASK) << 8) | buf[pos + 1];
      if (target >= runStart) return -1;
      if (after < 0) after = pos + 2;
      pos = runStart = target;
      continue;
    }
    if ((len & PTR_MASK) !== 0) return -1; // 0x40/0x80: extended/reserved label types (RFC 6891 §5)
    if (len === 0) return after < 0 ? pos + 1 : after;
    wireLen += 1 + len;
    if (wireLen > MAX_NAME_LEN || pos + 1 + len > end) return -1;
    if (labels !== undefined) {
      let label = '';
      for (let j = pos + 1; j <= pos + len; j++) label += String.fromCharCode(buf[j]);
      labels.push(label);
    }
    pos += 1 + len;
  }
}

/** One question (RFC 1035 §4.1.2). Reused between messages: `parseQuery` overwrites it. */
export interface Question {
  labels: string[]; // as asked (latin1, original case)
  lower: string[]; // ASCII-lower-cased, for matching
  qtype: number;
  qclass: number;
  end: number; // offset just past the question
}

/** EDNS(0) state of a query (RFC 6891 §6.1.2–§6.1.3). */
export interface Edns {
  present: boolean;
  payload: number; // requestor's UDP payload size, raised to 512 (RFC 6891 §6.2.5)
  version: number;
  flags: number; // DO and Z bits
}

export interface ParsedQuery {
  id: number;
  flags: number;
  question: Question;
  edns: Edns;
}

export function newParsedQuery(): ParsedQuery {
  return {
    id: 0,
    flags: 0,
    question: { labels: [], lower: [], qtype: 0, qclass: 0, end: 0 },
    edns: { present: false, payload: UDP_PAYLOAD_MIN, version: 0, flags: 0 },
  };
}

/** Outcomes of `parseQuery`. */
export const QUERY_OK = 0;
export const QUERY_DROP = 1; // no reply: not a query, or a header no query has
export const QUERY_FORMERR = 2; // header fine, body malformed: header-only FORMERR
export const QUERY_NOTIMP = 3; // opcode other than QUERY: header-only NOTIMP

/**
 * Judges a query. The header is checked first and alone: fewer than 12 bytes, QR set,
 * QDCOUNT ≠ 1, any answer or authority record, or more than two additional records → DROP.
 * Then the question and the additional section; an OPT RR is parsed (RFC 6891 §6.1.2), a second
 * one or one not owned by the root is FORMERR (§6.1.1). Bytes after the last record are ignored.
 */
export function parseQuery(buf: Uint8Array, len: number, out: ParsedQuery): number {
  const end = Math.min(len, buf.length);
  if (end < DNS_HEADER_LEN) return QUERY_DROP;
  const flags = readU16(buf, HDR_OFF_FLAGS);
  out.id = readU16(buf, HDR_OFF_ID);
  out.flags = flags;
  if ((flags & FLAG_QR) !== 0) return QUERY_DROP;
  if ((flags & OPCODE_MASK) !== OPCODE_QUERY) return QUERY_NOTIMP;
  if (readU16(buf, HDR_OFF_QDCOUNT) !== 1 || readU16(buf, HDR_OFF_ANCOUNT) !== 0 || readU16(buf, HDR_OFF_NSCOUNT) !== 0) {
    return QUERY_DROP;
  }
  const arcount = readU16(buf, HDR_OFF_ARCOUNT);
  if (arcount > MAX_ADDITIONAL) return QUERY_DROP;

  const q = out.question;
  q.labels.length = 0;
  q.lower.length = 0;
  let pos = readName(buf, DNS_HEADER_LEN, end, q.labels);
  if (pos < 0 || pos + 4 > end) return QUERY_FORMERR;
  // The question is the first name: a pointer in it could only point into the header.
  let wire = 1;
  for (const l of q.labels) wire += 1 + l.length;
  if (wire !== pos - DNS_HEADER_LEN) return QUERY_FORMERR;
  for (const l of q.labels) q.lower.push(asciiLower(l));
  q.qtype = readU16(buf, pos);
  q.qclass = readU16(buf, pos + 2);
  pos += 4;
  q.end = pos;

  const e = out.edns;
  e.present = false;
  e.payload = UDP_PAYLOAD_MIN;
  e.version = 0;
  e.flags = 0;
  for (let i = 0; i < arcount; i++) {
    const nameStart = pos;
    pos = readName(buf, pos, end, undefined);
    if (pos < 0 || pos + RR_FIXED_LEN > end) return QUERY_FORMERR;
    const type = readU16(buf, pos);
    const rdlen = readU16(buf, pos + 8);
    const rdata = pos + RR_FIXED_LEN;
    if (rdata + rdlen > end) return QUERY_FORMERR;
    if (type === TYPE_OPT) {
      if (e.present || buf[nameStart] !== 0) return QUERY_FORMERR;
      if (!optionsWellFormed(buf, rdata, rdata + rdlen)) return QUERY_FORMERR;
      e.present = true;
      e.payload = Math.max(UDP_PAYLOAD_MIN, readU16(buf, pos + 2));
      e.version = buf[pos + 5];
      e.flags = readU16(buf, pos + 6);
    }
    pos = rdata + rdlen;
  }
  return QUERY_OK;
}

/** RFC 6891 §6.1.2: RDATA is a sequence of {code u16, length u16, data}. */
function optionsWellFormed(buf: Uint8Array, pos: number, end: number): boolean {
  while (pos < end) {
    if (pos + 4 > end) return false;
    pos += 4 + readU16(buf, pos + 2);
  }
  return pos === end;
}

const EMPTY = new Uint8Array(0);
const DICT_SEP = '\u0100'; // not a latin1 char: cannot occur inside a label

/** keys[i] = lower[i … n) joined by DICT_SEP: the dictionary key of each suffix. */
function suffixKeys(lower: readonly string[], keys: string[]): string[] {
  const n = lower.length;
  keys.length = n;
  for (let i = n - 1; i >= 0; i--) keys[i] = i === n - 1 ? lower[i] : lower[i] + DICT_SEP + keys[i + 1];
  return keys;
}

/**
 * Writes a message into a caller's buffer up to `limit`. Every write checks the bound; the first
 * one that does not fit sets `overflow` and later writes do nothing, so a caller writes a whole
 * record, then checks `overflow` and `rollback`s to the mark taken before it (RFC 2181 §9:
 * whole records only). Names are compressed against the names written before (RFC 1035 §4.1.4).
 */
export class MessageWriter {
  buf: Uint8Array = EMPTY;
  pos = 0;
  limit = 0;
  overflow = false;
  #dict = new Map<string, number>();
  #dictOrder: string[] = [];
  #keys: string[] = [];
  #firstAt: number[] = []; // offsets of the first name's labels, not yet in the dictionary
  #firstLower: string[] = [];

  reset(buf: Uint8Array, limit: number): void {
    this.buf = buf;
    this.pos = 0;
    this.limit = Math.min(limit, buf.length);
    this.overflow = false;
    this.#dict.clear();
    this.#dictOrder.length = 0;
    this.#firstAt.length = 0;
  }

  /** Returns to `mark` (a former `pos`), forgetting names written after it. */
  rollback(mark: number): void {
    this.#materialize();
    this.pos = mark;
    this.overflow = false;
    for (let k = this.#dictOrder.at(-1); k !== undefined && this.#dict.get(k)! >= mark; k = this.#dictOrder.at(-1)) {
      this.#dict.delete(k);
      this.#dictOrder.pop();
    }
  }

  #room(n: number): boolean {
    if (this.overflow || this.pos + n > this.limit) {
      this.overflow = true;
      return false;
    }
    return true;
  }

  u8(v: number): void {
    if (this.#room(1)) this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    if (!this.#room(2)) return;
    writeU16(this.buf, this.pos, v);
    this.pos += 2;
  }

  u32(v: number): void {
    if (!this.#room(4)) return;
    writeU16(this.buf, this.pos, v >>> 16);
    writeU16(this.buf, this.pos + 2, v & 0xffff);
    this.pos += 4;
  }

  bytes(src: Uint8Array): void {
    if (!this.#room(src.length)) return;
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** Header with all counts zero; `setCount` fills them in at the end (RFC 1035 §4.1.1). */
  header(id: number, flags: number): void {
    this.u16(id);
    this.u16(flags);
    this.u32(0);
    this.u32(0);
  }

  setCount(hdrOff: number, n: number): void {
    writeU16(this.buf, hdrOff, n);
  }

  /**
   * A name from `labels` (bytes as latin1) and their lower-cased forms. The longest suffix
   * already written becomes a pointer; new suffixes below offset 0x3fff are remembered.
   */
  name(labels: readonly string[], lower: readonly string[]): void {
    // The first name of a message (the question) has nothing to point at, and is often the only
    // name written: its suffixes enter the dictionary only when another name comes.
    if (this.#dict.size === 0 && this.#firstAt.length === 0) return this.#firstName(labels, lower);
    this.#materialize();
    const keys = suffixKeys(lower, this.#keys);
    for (let i = 0; i < labels.length; i++) {
      const key = keys[i];
      const at = this.#dict.get(key);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      const label = labels[i];
      if (!this.#room(1 + label.length)) return;
      if (this.pos <= MAX_PTR_OFFSET) {
        this.#dict.set(key, this.pos);
        this.#dictOrder.push(key);
      }
      this.buf[this.pos++] = label.length;
      for (let j = 0; j < label.length; j++) this.buf[this.pos++] = label.charCodeAt(j);
    }
    this.u8(0);
  }

  #firstName(labels: readonly string[], lower: readonly string[]): void {
    const first = this.#firstLower;
    for (let i = 0; i < lower.length; i++) first[i] = lower[i];
    first.length = lower.length;
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i];
      if (!this.#room(1 + label.length)) return;
      if (this.pos <= MAX_PTR_OFFSET) this.#firstAt.push(this.pos);
      this.buf[this.pos++] = label.length;
      for (let j = 0; j < label.length; j++) this.buf[this.pos++] = label.charCodeAt(j);
    }
    this.u8(0);
  }

  /** Enters the suffixes of the first name into the dictionary. */
  #materialize(): void {
    const at = this.#firstAt;
    if (at.length === 0) return;
    const keys = suffixKeys(this.#firstLower, this.#keys);
    for (let i = 0; i < at.length; i++) {
      this.#dict.set(keys[i], at[i]);
      this.#dictOrder.push(keys[i]);
    }
    at.length = 0;
  }

  /** Start of a resource record after its owner (RFC 1035 §4.1.3); returns the RDLENGTH offset. */
  rrStart(type: number, klass: number, ttlS: number): number {
    this.u16(type);
    this.u16(klass);
    this.u32(ttlS);
    const at = this.pos;
    this.u16(0);
    return at;
  }

  rrEnd(rdlenAt: number): void {
    if (!this.overflow) writeU16(this.buf, rdlenAt, this.pos - rdlenAt - 2);
  }

  /** AAAA RR (RFC 3596 §2.2) owned by the name at `ownerOff` (a compression pointer). */
  aaaa(ownerOff: number, ttlS: number, addr: Uint8Array): void {
    this.u16(0xc000 | ownerOff);
    const at = this.rrStart(TYPE_AAAA, CLASS_IN, ttlS);
    this.bytes(addr.length === 16 ? addr : addr.subarray(0, 16));
    this.rrEnd(at);
  }

  /**
   * TXT RR (RFC 1035 §3.3.14) owned by the name at `ownerOff`: `text` split into
   * character-strings of at most 255 bytes, all in one record.
   */
  txt(ownerOff: number, ttlS: number, text: Uint8Array): void {
    this.u16(0xc000 | ownerOff);
    const at = this.rrStart(TYPE_TXT, CLASS_IN, ttlS);
    let i = 0;
    do {
      const n = Math.min(255, text.length - i);
      this.u8(n);
      this.bytes(text.subarray(i, i + n));
      i += n;
    } while (i < text.length);
    if (this.pos - at - 2 > 0xffff) this.overflow = true; // cannot be one record
    this.rrEnd(at);
  }

  /** SOA RR (RFC 1035 §3.3.13). */
  soa(owner: readonly string[], ttlS: number, s: SoaData): void {
    this.name(owner, owner);
    const at = this.rrStart(TYPE_SOA, CLASS_IN, ttlS);
    this.name(s.mname, s.mname);
    this.name(s.rname, s.rname);
    this.u32(s.serial);
    this.u32(s.refreshS);
    this.u32(s.retryS);
    this.u32(s.expireS);
    this.u32(s.minimumS);
    this.rrEnd(at);
  }

  /**
   * OPT pseudo-RR without options (RFC 6891 §6.1.2): CLASS = our UDP payload size, TTL =
   * extended RCODE (upper 8 of 12 bits) | version | DO and Z flags.
   */
  opt(payload: number, extRcode: number, flags: number): void {
    this.u8(0);
    this.u16(TYPE_OPT);
    this.u16(payload);
    this.u8(extRcode >>> 4);
    this.u8(0); // version 0
    this.u16(flags);
    this.u16(0);
  }
}

export interface SoaData {
  mname: readonly string[]; // lower-case labels
  rname: readonly string[];
  serial: number;
  refreshS: number;
  retryS: number;
  expireS: number;
  minimumS: number; // negative-caching TTL (RFC 2308 §4)
}

/**
 * A reply made of the header alone (counts 0): ID, opcode and RD of the query, QR set, `rcode`.
 * Used where the question cannot be trusted or is not worth echoing; never longer than a query.
 */
export function writeHeaderOnly(query: Uint8Array, out: Uint8Array, rcode: number): number {
  if (query.length < DNS_HEADER_LEN || out.length < DNS_HEADER_LEN) return 0;
  const flags = readU16(query, HDR_OFF_FLAGS);
  writeU16(out, HDR_OFF_ID, readU16(query, HDR_OFF_ID));
  writeU16(out, HDR_OFF_FLAGS, FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD)) | (rcode & RCODE_MASK));
  out.fill(0, HDR_OFF_QDCOUNT, DNS_HEADER_LEN);
  return DNS_HEADER_LEN;
}

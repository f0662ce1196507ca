// The --filter of `sixpn capture`: a small subset of tcpdump's expressions over an IPv6 packet.
//
//   expr      := term { ("or" | "||") term }
//   term      := factor { ["and" | "&&"] factor }        (juxtaposition is "and", as in tcpdump)
//   factor    := ("not" | "!") factor | "(" expr ")" | primitive
//   primitive := "ip6" | "tcp" | "udp" | "icmp6" | "frag"
//              | ["src" | "dst"] "host" ADDRESS          an IPv6 address
//              | ["src" | "dst"] "net" ADDRESS/LEN
//              | ["src" | "dst"] "port" N                TCP or UDP (not a later fragment)
//              | "proto" N                               the upper-layer Next Header value
//
// Protocols and ports are those after the extension headers (src/ipv6 parsePacket); a packet that
// does not parse matches only "ip6" and the address primitives (when it has a fixed header).
// Pure: `parseFilter` throws a one-line error naming the word it could not read.
import {
  IPV6_HEADER_LEN, IPV6_OFF_DST, IPV6_OFF_SRC, Ipv6Info, PARSE_OK, parseAddress, parseCidr, parsePacket, prefixMatch, readU16,
} from '../ipv6/index.ts';

const TCP = 6;
const UDP = 17;
const ICMPV6 = 58;

/** A compiled filter: true when the packet buf[off, off + len) matches. */
export type PacketFilter = (buf: Uint8Array, off: number, len: number) => boolean;

type Node = (p: Parsed) => boolean;

/** The packet as the primitives see it (parsed once per packet). */
class Parsed {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  ok = false;
  readonly info = new Ipv6Info();
}

const WHICH = { src: [IPV6_OFF_SRC], dst: [IPV6_OFF_DST], any: [IPV6_OFF_SRC, IPV6_OFF_DST] } as const;

function tokenize(text: string): string[] {
  return text.match(/\(|\)|&&|\|\||!|[^\s()!]+/g) ?? [];
}

/** Compiles `text` (empty: everything matches). */
export function parseFilter(text: string): PacketFilter {
  const tokens = tokenize(text);
  if (tokens.length === 0) return () => true;
  let i = 0;
  const peek = () => tokens[i];
  const fail = (why: string): never => {
    throw new Error(`filter "${text}": ${why}`);
  };
  const next = (what: string) => tokens[i++] ?? fail(`${what} expected at the end`);

  const expr = (): Node => {
    let left = term();
    while (peek() === 'or' || peek() === '||') {
      i++;
      const l = left;
      const r = term();
      left = (p) => l(p) || r(p);
    }
    return left;
  };
  const term = (): Node => {
    let left = factor();
    for (;;) {
      const t = peek();
      if (t === undefined || t === ')' || t === 'or' || t === '||') return left;
      if (t === 'and' || t === '&&') i++;
      const l = left;
      const r = factor();
      left = (p) => l(p) && r(p);
    }
  };
  const factor = (): Node => {
    const t = next('a primitive');
    if (t === 'not' || t === '!') {
      const f = factor();
      return (p) => !f(p);
    }
    if (t === '(') {
      const e = expr();
      if (next('")"') !== ')') fail(`")" expected before "${tokens[i - 1]}"`);
      return e;
    }
    return primitive(t);
  };
  const primitive = (t: string): Node => {
    let dir: keyof typeof WHICH = 'any';
    if (t === 'src' || t === 'dst') {
      dir = t;
      t = next(`"host", "net" or "port" after "${t}"`);
      if (t !== 'host' && t !== 'net' && t !== 'port') fail(`"host", "net" or "port" expected after "${dir}", not "${t}"`);
    }
    const at = WHICH[dir];
    switch (t) {
      case 'ip6':
        return () => true;
      case 'tcp':
        return (p) => p.ok && p.info.protocol === TCP;
      case 'udp':
        return (p) => p.ok && p.info.protocol === UDP;
      case 'icmp6':
      case 'icmpv6':
        return (p) => p.ok && p.info.protocol === ICMPV6;
      case 'frag':
        return (p) => p.ok && p.info.fragment;
      case 'proto': {
        const w = next('a protocol number');
        const n = Number(w);
        if (!/^\d+$/.test(w) || n > 255) fail(`"proto" takes a number 0-255, not "${w}"`);
        return (p) => p.ok && p.info.protocol === n;
      }
      case 'host': {
        const w = next('an IPv6 address');
        const a = new Uint8Array(16);
        if (!parseAddress(w, a, 0)) fail(`"${w}" is not an IPv6 address`);
        return (p) => p.len >= IPV6_HEADER_LEN && at.some((o) => prefixMatch(p.buf, p.off + o, a, 0, 128));
      }
      case 'net': {
        const w = next('ADDRESS/LEN');
        const a = new Uint8Array(16);
        const bits = parseCidr(w, a, 0);
        if (!(bits >= 0)) fail(`"${w}" is not an IPv6 prefix (ADDRESS/LEN)`);
        return (p) => p.len >= IPV6_HEADER_LEN && at.some((o) => prefixMatch(p.buf, p.off + o, a, 0, bits));
      }
      case 'port': {
        const w = next('a port number');
        const n = Number(w);
        if (!/^\d+$/.test(w) || n > 65535) fail(`"port" takes a number 0-65535, not "${w}"`);
        const ports = dir === 'src' ? [0] : dir === 'dst' ? [2] : [0, 2];
        return (p) =>
          p.ok && (p.info.protocol === TCP || p.info.protocol === UDP) && !p.info.nonFirstFragment && p.info.l4Len >= 4 &&
          ports.some((o) => readU16(p.buf, p.info.l4Off + o) === n);
      }
      default:
        return fail(`unknown word "${t}" (expected ip6, tcp, udp, icmp6, frag, proto N, [src|dst] host ADDR, [src|dst] net ADDR/LEN, [src|dst] port N, and, or, not, parentheses)`);
    }
  };

  const root = expr();
  if (i < tokens.length) fail(`unexpected "${tokens[i]}"`);
  const p = new Parsed();
  return (buf, off, len) => {
    p.buf = buf;
    p.off = off;
    p.len = len;
    p.ok = parsePacket(buf, off, len, p.info) === PARSE_OK;
    return root(p);
  };
}

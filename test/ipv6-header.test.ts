// Header validation and the extension-header walk (RFC 8200 §3, §4): a numbered table of good
// and bad packets, accessors, and random corruption that must never throw or over-read.
import test from 'ava';
import {
  Ipv6Info,
  parsePacket,
  PARSE_OK,
  PARSE_TOO_SHORT,
  PARSE_BAD_VERSION,
  PARSE_BAD_PAYLOAD_LEN,
  PARSE_TRUNCATED_EXT,
  PARSE_TOO_MANY_EXT,
  PARSE_BAD_EXT_ORDER,
  PARSE_BAD_FRAGMENT,
  PARSE_TRUNCATED_UPPER,
  IPPROTO_HOPOPTS,
  IPPROTO_ROUTING,
  IPPROTO_FRAGMENT,
  IPPROTO_DSTOPTS,
  IPPROTO_AH,
  IPPROTO_ESP,
  IPPROTO_NONE,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_ICMPV6,
  MAX_EXT_HEADERS,
  addressBytes,
  writeHeader,
  version,
  trafficClass,
  flowLabel,
  payloadLength,
  nextHeader,
  hopLimit,
  setHopLimit,
  decrementHopLimit,
  copySrc,
  copyDst,
  formatAddress,
} from '../src/ipv6/index.ts';

const SRC = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2');
const DST = addressBytes('fdaa:0:18:a7b:bea:1234:5678:2');

// An extension header: its type and total length in bytes; fragment fields for type 44.
type Ext = { type: number; len?: number; fragOffset?: number; more?: boolean };

// Builds header | extensions | upper-layer bytes at `pad` bytes into a buffer with `trail`
// bytes after it. Returns the buffer; the packet is buf[pad, pad + 40 + payload).
function build(exts: Ext[], proto: number, l4Len: number, pad = 0, trail = 0): Uint8Array {
  let payload = l4Len;
  for (const e of exts) payload += e.type === IPPROTO_FRAGMENT ? 8 : (e.len ?? 8);
  const buf = new Uint8Array(pad + 40 + payload + trail).fill(0xee);
  writeHeader(buf, pad, payload, exts.length > 0 ? exts[0].type : proto, 64, SRC, 0, DST, 0);
  let p = pad + 40;
  exts.forEach((e, i) => {
    const len = e.type === IPPROTO_FRAGMENT ? 8 : (e.len ?? 8);
    buf.fill(0, p, p + len);
    buf[p] = i + 1 < exts.length ? exts[i + 1].type : proto;
    if (e.type === IPPROTO_FRAGMENT) {
      const fo = (e.fragOffset ?? 0) | (e.more ? 1 : 0);
      buf[p + 2] = fo >>> 8;
      buf[p + 3] = fo & 0xff;
      buf.set([0xde, 0xad, 0xbe, 0xef], p + 4);
    } else if (e.type === IPPROTO_AH) {
      buf[p + 1] = len / 4 - 2;
    } else {
      buf[p + 1] = len / 8 - 1;
      if (len > 2) buf[p + 2] = 1; // PadN option (RFC 8200 §4.2) filling the rest
      if (len > 3) buf[p + 3] = len - 4;
    }
    p += len;
  });
  buf.fill(0x11, p, p + l4Len);
  return buf;
}

function setPayloadLen(buf: Uint8Array, off: number, v: number): Uint8Array {
  buf[off + 4] = v >>> 8;
  buf[off + 5] = v & 0xff;
  return buf;
}

const DO = { type: IPPROTO_DSTOPTS };
const many = (n: number): Ext[] => Array.from({ length: n }, () => DO);

type Case = {
  name: string;
  buf: Uint8Array;
  off?: number;
  len?: number;
  code: number;
  proto?: number;
  l4Off?: number; // relative to off
  check?: (info: Ipv6Info) => boolean;
};

const cases: Case[] = [
  { name: 'UDP', buf: build([], IPPROTO_UDP, 20), code: PARSE_OK, proto: IPPROTO_UDP, l4Off: 40 },
  { name: 'TCP', buf: build([], IPPROTO_TCP, 20), code: PARSE_OK, proto: IPPROTO_TCP, l4Off: 40 },
  { name: 'ICMPv6', buf: build([], IPPROTO_ICMPV6, 8), code: PARSE_OK, proto: IPPROTO_ICMPV6, l4Off: 40 },
  { name: 'Hop-by-Hop + UDP', buf: build([{ type: IPPROTO_HOPOPTS }], IPPROTO_UDP, 8), code: PARSE_OK, proto: IPPROTO_UDP, l4Off: 48 },
  {
    name: 'Hop-by-Hop 16 + Routing 24 + Destination Options 8 + TCP',
    buf: build([{ type: IPPROTO_HOPOPTS, len: 16 }, { type: IPPROTO_ROUTING, len: 24 }, DO], IPPROTO_TCP, 20),
    code: PARSE_OK, proto: IPPROTO_TCP, l4Off: 88,
    check: (i) => i.extHeaders === 3 && i.hasRouting && !i.fragment,
  },
  {
    name: 'atomic fragment (offset 0, M 0) + UDP',
    buf: build([{ type: IPPROTO_FRAGMENT }], IPPROTO_UDP, 13),
    code: PARSE_OK, proto: IPPROTO_UDP, l4Off: 48,
    check: (i) => i.fragment && !i.nonFirstFragment && !i.moreFragments && i.fragId === 0xdeadbeef,
  },
  {
    name: 'first fragment (M 1, 8-multiple) + Destination Options + UDP',
    buf: build([{ type: IPPROTO_FRAGMENT, more: true }, DO], IPPROTO_UDP, 1000),
    code: PARSE_OK, proto: IPPROTO_UDP, l4Off: 56,
    check: (i) => i.fragment && i.moreFragments && !i.nonFirstFragment && i.extHeaders === 2,
  },
  {
    name: 'non-first fragment: walk stops, fragment Next Header reported',
    buf: build([{ type: IPPROTO_FRAGMENT, fragOffset: 1448 }], IPPROTO_TCP, 3),
    code: PARSE_OK, proto: IPPROTO_TCP, l4Off: 48,
    check: (i) => i.nonFirstFragment && i.fragOffset === 1448 && i.l4Len === 3,
  },
  {
    name: 'Destination Options + No Next Header (octets after are ignored, §4.7)',
    buf: build([DO], IPPROTO_NONE, 5), code: PARSE_OK, proto: IPPROTO_NONE, l4Off: 48,
  },
  { name: 'AH 24 + TCP', buf: build([{ type: IPPROTO_AH, len: 24 }], IPPROTO_TCP, 20), code: PARSE_OK, proto: IPPROTO_TCP, l4Off: 64 },
  { name: 'ESP ends the walk', buf: build([], IPPROTO_ESP, 3), code: PARSE_OK, proto: IPPROTO_ESP, l4Off: 40 },
  { name: 'empty payload, No Next Header', buf: build([], IPPROTO_NONE, 0), code: PARSE_OK, proto: IPPROTO_NONE, l4Off: 40 },
  {
    name: 'WireGuard padding after the packet: Payload Length decides',
    buf: build([], IPPROTO_UDP, 9, 0, 7), code: PARSE_OK, proto: IPPROTO_UDP, l4Off: 40,
    check: (i) => i.packetLen === 49 && i.l4Len === 9, // of 56 bytes
  },
  {
    name: 'packet inside a slab at offset 100',
    buf: build([{ type: IPPROTO_HOPOPTS }], IPPROTO_ICMPV6, 8, 100, 50), off: 100, len: 56,
    code: PARSE_OK, proto: IPPROTO_ICMPV6, l4Off: 48,
  },
  { name: `${MAX_EXT_HEADERS} Destination Options: at the bound`, buf: build(many(MAX_EXT_HEADERS), IPPROTO_UDP, 8), code: PARSE_OK, proto: IPPROTO_UDP },
  // ---- bad ----
  { name: '39 bytes', buf: build([], IPPROTO_NONE, 0).subarray(0, 39), code: PARSE_TOO_SHORT },
  { name: 'len past the buffer', buf: build([], IPPROTO_UDP, 8), len: 49, code: PARSE_TOO_SHORT },
  { name: 'version 4', buf: (() => { const b = build([], IPPROTO_UDP, 8); b[0] = 0x45; return b; })(), code: PARSE_BAD_VERSION },
  { name: 'version 0', buf: (() => { const b = build([], IPPROTO_UDP, 8); b[0] = 0x06; return b; })(), code: PARSE_BAD_VERSION },
  { name: 'Payload Length one past the buffer', buf: setPayloadLen(build([], IPPROTO_UDP, 8), 0, 9), code: PARSE_BAD_PAYLOAD_LEN, check: (i) => i.errorPointer === 4 },
  { name: 'Payload Length 65535 in a small buffer', buf: setPayloadLen(build([], IPPROTO_UDP, 8), 0, 65535), code: PARSE_BAD_PAYLOAD_LEN },
  { name: 'jumbogram (Payload Length 0 + Hop-by-Hop)', buf: setPayloadLen(build([{ type: IPPROTO_HOPOPTS }], IPPROTO_UDP, 8), 0, 0), code: PARSE_TRUNCATED_EXT },
  {
    name: 'Hop-by-Hop length says 16, 8 present',
    buf: (() => { const b = build([{ type: IPPROTO_HOPOPTS }], IPPROTO_NONE, 0); b[41] = 1; return b; })(),
    code: PARSE_TRUNCATED_EXT, check: (i) => i.errorPointer === 41,
  },
  { name: 'Routing header cut by Payload Length', buf: setPayloadLen(build([{ type: IPPROTO_ROUTING, len: 24 }], IPPROTO_UDP, 8), 0, 20), code: PARSE_TRUNCATED_EXT },
  { name: 'Fragment header cut (4 of 8 bytes)', buf: setPayloadLen(build([{ type: IPPROTO_FRAGMENT }], IPPROTO_UDP, 8), 0, 4), code: PARSE_TRUNCATED_EXT },
  { name: 'Hop-by-Hop after Destination Options (§4.3)', buf: build([DO, { type: IPPROTO_HOPOPTS }], IPPROTO_UDP, 8), code: PARSE_BAD_EXT_ORDER, check: (i) => i.errorPointer === 40 },
  { name: 'two Fragment headers', buf: build([{ type: IPPROTO_FRAGMENT }, { type: IPPROTO_FRAGMENT }], IPPROTO_UDP, 8), code: PARSE_BAD_EXT_ORDER },
  { name: `${MAX_EXT_HEADERS + 1} Destination Options`, buf: build(many(MAX_EXT_HEADERS + 1), IPPROTO_UDP, 8), code: PARSE_TOO_MANY_EXT },
  { name: '200 Destination Options (a long chain)', buf: build(many(200), IPPROTO_UDP, 8), code: PARSE_TOO_MANY_EXT },
  {
    name: 'M 1 with a fragment of 1001 bytes (§4.5)',
    buf: build([{ type: IPPROTO_FRAGMENT, more: true }], IPPROTO_UDP, 1001),
    code: PARSE_BAD_FRAGMENT, check: (i) => i.errorPointer === 4,
  },
  {
    name: 'fragment offset + length > 65535 (§4.5)',
    buf: build([{ type: IPPROTO_FRAGMENT, fragOffset: 65528 }], IPPROTO_UDP, 16),
    code: PARSE_BAD_FRAGMENT, check: (i) => i.errorPointer === 42,
  },
  { name: 'UDP header of 4 bytes', buf: build([], IPPROTO_UDP, 4), code: PARSE_TRUNCATED_UPPER, proto: IPPROTO_UDP },
  { name: 'TCP header of 19 bytes', buf: build([], IPPROTO_TCP, 19), code: PARSE_TRUNCATED_UPPER },
  { name: 'ICMPv6 of 7 bytes', buf: build([], IPPROTO_ICMPV6, 7), code: PARSE_TRUNCATED_UPPER },
  {
    name: 'first fragment without its UDP header (RFC 7112)',
    buf: build([{ type: IPPROTO_FRAGMENT, more: true }, { type: IPPROTO_DSTOPTS, len: 16 }], IPPROTO_UDP, 0),
    code: PARSE_TRUNCATED_UPPER,
  },
];

const info = new Ipv6Info();
cases.forEach((c, n) => {
  test(`parse #${n + 1}: ${c.name}`, (t) => {
    const off = c.off ?? 0;
    const len = c.len ?? c.buf.length - off;
    const code = parsePacket(c.buf, off, len, info);
    t.is(code, c.code);
    if (c.proto !== undefined) t.is(info.protocol, c.proto);
    if (c.l4Off !== undefined) t.is(info.l4Off, off + c.l4Off);
    if (code === PARSE_OK) t.is(info.l4Off + info.l4Len, off + info.packetLen);
    if (c.check) t.true(c.check(info), JSON.stringify(info));
  });
});

test('a result object is fully reset between packets', (t) => {
  parsePacket(build([{ type: IPPROTO_FRAGMENT, fragOffset: 8 }, DO], IPPROTO_UDP, 8), 0, 64, info);
  t.true(info.nonFirstFragment);
  const b = build([], IPPROTO_UDP, 8);
  t.is(parsePacket(b, 0, b.length, info), PARSE_OK);
  t.false(info.fragment);
  t.false(info.nonFirstFragment);
  t.is(info.extHeaders, 0);
});

test('accessors read the fixed header', (t) => {
  // 60 0d bc c5 00 40 3a 40: the first packet of fixtures/wireguard-go-v6/inner.pcap
  const b = new Uint8Array(104);
  b.set([0x60, 0x0d, 0xbc, 0xc5, 0x00, 0x40, 0x3a, 0x40]);
  b.set(SRC, 8);
  b.set(DST, 24);
  t.is(version(b, 0), 6);
  t.is(trafficClass(b, 0), 0x00);
  t.is(flowLabel(b, 0), 0xdbcc5);
  t.is(payloadLength(b, 0), 64);
  t.is(nextHeader(b, 0), 58);
  t.is(hopLimit(b, 0), 64);
  b[0] = 0x6a;
  b[1] = 0xbd;
  t.is(trafficClass(b, 0), 0xab);
  t.is(flowLabel(b, 0), 0xdbcc5);
  const a = new Uint8Array(20);
  copySrc(b, 0, a, 2);
  t.is(formatAddress(a, 2), 'fdaa:0:18:a7b:7d:f066:b83b:2');
  copyDst(b, 0, a, 4);
  t.is(formatAddress(a, 4), 'fdaa:0:18:a7b:bea:1234:5678:2');
});

test('hop limit: decremented, expired at 1 and 0 (left as received)', (t) => {
  const b = build([], IPPROTO_UDP, 8);
  setHopLimit(b, 0, 3);
  t.is(decrementHopLimit(b, 0), 2);
  t.is(decrementHopLimit(b, 0), 1);
  t.is(decrementHopLimit(b, 0), 0);
  t.is(hopLimit(b, 0), 1);
  setHopLimit(b, 0, 0);
  t.is(decrementHopLimit(b, 0), 0);
  t.is(hopLimit(b, 0), 0);
});

test('random corruption never throws and never reports bytes outside the packet', (t) => {
  let seed = 0x2545f491;
  const rnd = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const bases = cases.filter((c) => c.code === PARSE_OK && c.off === undefined).map((c) => c.buf);
  let ok = 0;
  for (let i = 0; i < 20000; i++) {
    const base = bases[rnd(bases.length)];
    const b = base.slice();
    for (let k = rnd(4) + 1; k > 0; k--) b[rnd(Math.min(b.length, 100))] = rnd(256);
    const len = rnd(4) === 0 ? rnd(b.length + 1) : b.length;
    const code = parsePacket(b, 0, len, info);
    if (code === PARSE_OK) {
      ok++;
      if (info.packetLen > len || info.l4Off < 40 || info.l4Off + info.l4Len !== info.packetLen) {
        t.fail(`bad result for ${Buffer.from(b.subarray(0, len)).toString('hex')}`);
        return;
      }
    }
  }
  t.true(ok > 1000, `${ok} still valid`);
});

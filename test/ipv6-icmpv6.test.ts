// ICMPv6 error builders (RFC 4443 §2.4, §3) and echo helpers (§4).
import test from 'ava';
import {
  Ipv6Info,
  parsePacket,
  PARSE_OK,
  PARSE_BAD_EXT_ORDER,
  IPPROTO_ICMPV6,
  IPPROTO_UDP,
  IPPROTO_TCP,
  IPPROTO_FRAGMENT,
  IPPROTO_DSTOPTS,
  IPPROTO_HOPOPTS,
  ICMPV6_DST_UNREACH,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_TIME_EXCEEDED,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_ECHO_REPLY,
  ICMPV6_REDIRECT,
  ICMPV6_UNREACH_NO_ROUTE,
  ICMPV6_UNREACH_ADMIN,
  ICMPV6_UNREACH_ADDR,
  ICMPV6_UNREACH_PORT,
  ICMPV6_TIME_EXCEEDED_HOP_LIMIT,
  ICMPV6_PARAM_NEXT_HEADER,
  ICMPV6_SUPPRESS_INVALID,
  ICMPV6_SUPPRESS_ERROR,
  ICMPV6_SUPPRESS_FRAGMENT,
  ICMPV6_SUPPRESS_MULTICAST,
  ICMPV6_SUPPRESS_SOURCE,
  ICMPV6_NO_ROOM,
  IPV6_MIN_MTU,
  addressBytes,
  formatAddress,
  writeHeader,
  writeChecksum,
  verifyChecksum,
  readU16,
  readU32,
  icmpv6ErrorAllowed,
  buildError,
  buildDestUnreachable,
  buildPacketTooBig,
  buildTimeExceeded,
  buildParamProblem,
  icmpv6Type,
  icmpv6Code,
  isErrorType,
  isEchoRequest,
  isEchoReply,
  echoIdentifier,
  echoSequence,
  setEchoIdentifier,
  makeEchoReply,
  buildEcho,
} from '../src/ipv6/index.ts';

const ROUTER = addressBytes('fdaa:0:18:a7b:7d::1');
const A = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2');
const B = addressBytes('fdaa:0:18:a7b:bea:1234:5678:2');
const info = new Ipv6Info();

// A UDP packet of `len` bytes from A to B (or the given addresses), checksummed.
function udp(len: number, src = A, dst = B): Uint8Array {
  const p = new Uint8Array(len);
  for (let i = 40; i < len; i++) p[i] = (i * 31) & 0xff;
  writeHeader(p, 0, len - 40, IPPROTO_UDP, 7, src, 0, dst, 0);
  p[44] = (len - 40) >>> 8;
  p[45] = (len - 40) & 0xff;
  writeChecksum(p, 0, 40, len - 40, IPPROTO_UDP);
  return p;
}

// An ICMPv6 message of the given type after optional extension headers.
function icmp(type: number, exts: number[] = []): Uint8Array {
  const p = new Uint8Array(40 + 8 * exts.length + 16);
  writeHeader(p, 0, p.length - 40, exts.length ? exts[0] : IPPROTO_ICMPV6, 64, A, 0, B, 0);
  exts.forEach((_, i) => (p[40 + 8 * i] = i + 1 < exts.length ? exts[i + 1] : IPPROTO_ICMPV6));
  p[40 + 8 * exts.length] = type;
  return p;
}

// Checks an error message: valid packet, checksum, addresses, fields, and the quote.
function checkError(t: any, out: Uint8Array, n: number, invoking: Uint8Array, type: number, code: number, param: number) {
  t.is(parsePacket(out, 0, n, info), PARSE_OK);
  t.is(info.packetLen, n);
  t.is(info.protocol, IPPROTO_ICMPV6);
  t.true(n <= IPV6_MIN_MTU);
  t.true(verifyChecksum(out, 0, info.l4Off, info.l4Len, IPPROTO_ICMPV6));
  t.is(formatAddress(out, 8), formatAddress(ROUTER, 0));
  t.is(formatAddress(out, 24), formatAddress(invoking, 8)); // back to the invoking source
  t.is(icmpv6Type(out, 40), type);
  t.is(icmpv6Code(out, 40), code);
  t.is(readU32(out, 44), param);
  const quoted = Math.min(invoking.length, IPV6_MIN_MTU - 48);
  t.is(n, 48 + quoted);
  t.deepEqual(out.subarray(48, n), invoking.subarray(0, quoted));
}

const builders = [
  { name: 'Destination Unreachable, no route', type: ICMPV6_DST_UNREACH, code: ICMPV6_UNREACH_NO_ROUTE, param: 0,
    build: (o: Uint8Array, p: Uint8Array) => buildDestUnreachable(o, 0, ROUTER, 0, p, 0, p.length, ICMPV6_UNREACH_NO_ROUTE) },
  { name: 'Destination Unreachable, admin prohibited', type: ICMPV6_DST_UNREACH, code: ICMPV6_UNREACH_ADMIN, param: 0,
    build: (o: Uint8Array, p: Uint8Array) => buildDestUnreachable(o, 0, ROUTER, 0, p, 0, p.length, ICMPV6_UNREACH_ADMIN) },
  { name: 'Destination Unreachable, address unreachable', type: ICMPV6_DST_UNREACH, code: ICMPV6_UNREACH_ADDR, param: 0,
    build: (o: Uint8Array, p: Uint8Array) => buildDestUnreachable(o, 0, ROUTER, 0, p, 0, p.length, ICMPV6_UNREACH_ADDR) },
  { name: 'Destination Unreachable, port unreachable', type: ICMPV6_DST_UNREACH, code: ICMPV6_UNREACH_PORT, param: 0,
    build: (o: Uint8Array, p: Uint8Array) => buildDestUnreachable(o, 0, ROUTER, 0, p, 0, p.length, ICMPV6_UNREACH_PORT) },
  { name: 'Packet Too Big, MTU 1420', type: ICMPV6_PACKET_TOO_BIG, code: 0, param: 1420,
    build: (o: Uint8Array, p: Uint8Array) => buildPacketTooBig(o, 0, ROUTER, 0, p, 0, p.length, 1420) },
  { name: 'Time Exceeded, hop limit', type: ICMPV6_TIME_EXCEEDED, code: ICMPV6_TIME_EXCEEDED_HOP_LIMIT, param: 0,
    build: (o: Uint8Array, p: Uint8Array) => buildTimeExceeded(o, 0, ROUTER, 0, p, 0, p.length, ICMPV6_TIME_EXCEEDED_HOP_LIMIT) },
  { name: 'Parameter Problem, pointer 6', type: ICMPV6_PARAM_PROBLEM, code: ICMPV6_PARAM_NEXT_HEADER, param: 6,
    build: (o: Uint8Array, p: Uint8Array) => buildParamProblem(o, 0, ROUTER, 0, p, 0, p.length, ICMPV6_PARAM_NEXT_HEADER, 6) },
];

for (const b of builders) {
  test(`${b.name}: checksum verifies, quote truncated to 1280 bytes in all`, (t) => {
    for (const len of [48, 49, 200, 1231, 1232, 1233, 1280, 1500, 9000]) {
      const p = udp(len);
      const out = new Uint8Array(2000);
      const n = b.build(out, p);
      checkError(t, out, n, p, b.type, b.code, b.param);
    }
  });
}

test('the quote ends where Payload Length says, not at WireGuard padding', (t) => {
  const buf = new Uint8Array(120);
  buf.set(udp(100));
  const out = new Uint8Array(1280);
  const n = buildDestUnreachable(out, 0, ROUTER, 0, buf, 0, 120, ICMPV6_UNREACH_PORT);
  t.is(n, 148);
});

test('no error about an ICMPv6 error or a Redirect; errors about informational messages', (t) => {
  const out = new Uint8Array(1280);
  for (const type of [1, 2, 3, 4, 0, 100, 127, ICMPV6_REDIRECT]) {
    t.is(buildTimeExceeded(out, 0, ROUTER, 0, icmp(type), 0, 56, 0), ICMPV6_SUPPRESS_ERROR, `type ${type}`);
  }
  // behind extension headers too
  const deep = icmp(ICMPV6_PACKET_TOO_BIG, [IPPROTO_HOPOPTS, IPPROTO_DSTOPTS]);
  t.is(icmpv6ErrorAllowed(deep, 0, deep.length), ICMPV6_SUPPRESS_ERROR);
  // and when the packet is broken after the ICMPv6 type (Payload Length past the buffer)
  const broken = icmp(ICMPV6_DST_UNREACH);
  broken[5] = 200;
  t.is(icmpv6ErrorAllowed(broken, 0, broken.length), ICMPV6_SUPPRESS_ERROR);
  for (const type of [ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY, 135]) {
    const p = icmp(type);
    t.is(buildTimeExceeded(out, 0, ROUTER, 0, p, 0, p.length, 0), 48 + p.length, `type ${type}`);
  }
});

test('no error about a non-first fragment; errors about first and atomic fragments', (t) => {
  const out = new Uint8Array(1280);
  const frag = (offset: number, more: boolean) => {
    const p = new Uint8Array(40 + 8 + 64);
    writeHeader(p, 0, 72, IPPROTO_FRAGMENT, 9, A, 0, B, 0);
    p[40] = IPPROTO_UDP;
    p[42] = offset >>> 8;
    p[43] = (offset & 0xf8) | (more ? 1 : 0);
    return p;
  };
  t.is(buildTimeExceeded(out, 0, ROUTER, 0, frag(1280, false), 0, 112, 0), ICMPV6_SUPPRESS_FRAGMENT);
  t.is(buildPacketTooBig(out, 0, ROUTER, 0, frag(8, true), 0, 112, 1280), ICMPV6_SUPPRESS_FRAGMENT);
  t.is(buildTimeExceeded(out, 0, ROUTER, 0, frag(0, true), 0, 112, 0), 160);
  t.is(buildTimeExceeded(out, 0, ROUTER, 0, frag(0, false), 0, 112, 0), 160);
});

test('no error to or from multicast, from ::, about non-IPv6, or without room', (t) => {
  const out = new Uint8Array(1280);
  const mc = udp(100, A, addressBytes('ff02::1'));
  for (const b of builders) t.is(b.build(out, mc), ICMPV6_SUPPRESS_MULTICAST, b.name);
  t.is(buildDestUnreachable(out, 0, ROUTER, 0, udp(100, addressBytes('ff05::2'), B), 0, 100, 0), ICMPV6_SUPPRESS_SOURCE);
  t.is(buildDestUnreachable(out, 0, ROUTER, 0, udp(100, addressBytes('::'), B), 0, 100, 0), ICMPV6_SUPPRESS_SOURCE);
  const v4 = udp(100);
  v4[0] = 0x45;
  t.is(buildDestUnreachable(out, 0, ROUTER, 0, v4, 0, 100, 0), ICMPV6_SUPPRESS_INVALID);
  t.is(buildDestUnreachable(out, 0, ROUTER, 0, udp(100), 0, 39, 0), ICMPV6_SUPPRESS_INVALID);
  t.is(buildDestUnreachable(new Uint8Array(87), 0, ROUTER, 0, udp(100), 0, 100, 0), ICMPV6_NO_ROOM);
  const small = new Uint8Array(100);
  t.is(buildDestUnreachable(small, 0, ROUTER, 0, udp(100), 0, 100, 0), 100); // quote cut to fit
  t.true(verifyChecksum(small, 0, 40, 60, IPPROTO_ICMPV6));
});

test('Parameter Problem about a malformed packet, pointer from parsePacket', (t) => {
  const p = icmp(ICMPV6_ECHO_REQUEST, [IPPROTO_DSTOPTS, IPPROTO_HOPOPTS]);
  t.is(parsePacket(p, 0, p.length, info), PARSE_BAD_EXT_ORDER);
  const pointer = info.errorPointer;
  t.is(pointer, 40);
  const out = new Uint8Array(1280);
  const n = buildParamProblem(out, 0, ROUTER, 0, p, 0, p.length, ICMPV6_PARAM_NEXT_HEADER, pointer);
  checkError(t, out, n, p, ICMPV6_PARAM_PROBLEM, ICMPV6_PARAM_NEXT_HEADER, 40);
});

test('built in place over the invoking packet: same bytes as into a fresh buffer', (t) => {
  for (const len of [60, 1000, 1400]) {
    const p = udp(len);
    const fresh = new Uint8Array(1400);
    const n = buildError(fresh, 0, ICMPV6_DST_UNREACH, 3, 0, ROUTER, 0, p, 0, len);
    const slab = new Uint8Array(3000);
    slab.set(p, 500);
    const view = slab.subarray(500); // a different view of the same memory
    t.is(buildError(view, 0, ICMPV6_DST_UNREACH, 3, 0, ROUTER, 0, slab, 500, len), n);
    t.deepEqual(view.subarray(0, n), fresh.subarray(0, n));
  }
});

test('echo: build, parse identifier and sequence, reply in place, rewrite identifier', (t) => {
  const data = Uint8Array.from({ length: 56 }, (_, i) => i);
  const req = new Uint8Array(200);
  const n = buildEcho(req, 0, ICMPV6_ECHO_REQUEST, A, 0, B, 0, 0x17ee, 1, data, 0, 56);
  t.is(n, 104);
  t.is(parsePacket(req, 0, n, info), PARSE_OK);
  t.true(verifyChecksum(req, 0, 40, 64, IPPROTO_ICMPV6));
  t.true(isEchoRequest(req, 40));
  t.false(isEchoReply(req, 40));
  t.false(isErrorType(icmpv6Type(req, 40)));
  t.is(echoIdentifier(req, 40), 0x17ee);
  t.is(echoSequence(req, 40), 1);

  const want = new Uint8Array(200);
  buildEcho(want, 0, ICMPV6_ECHO_REPLY, B, 0, A, 0, 0x17ee, 1, data, 0, 56);
  req[7] = 3; // a request that travelled: hop limit is reset in the reply
  makeEchoReply(req, 0, 40);
  t.deepEqual(req.subarray(0, n), want.subarray(0, n));
  t.true(isEchoReply(req, 40));

  setEchoIdentifier(req, 40, 0xbeef);
  t.is(echoIdentifier(req, 40), 0xbeef);
  t.true(verifyChecksum(req, 0, 40, 64, IPPROTO_ICMPV6));
  t.is(readU16(req, 42), readU16(buildEchoBytes(0xbeef), 42));
});

function buildEchoBytes(id: number): Uint8Array {
  const b = new Uint8Array(200);
  buildEcho(b, 0, ICMPV6_ECHO_REPLY, B, 0, A, 0, id, 1, Uint8Array.from({ length: 56 }, (_, i) => i), 0, 56);
  return b;
}

test('TCP invoking packet: the quote keeps its header', (t) => {
  const p = new Uint8Array(80);
  writeHeader(p, 0, 40, IPPROTO_TCP, 1, A, 0, B, 0);
  writeChecksum(p, 0, 40, 40, IPPROTO_TCP);
  const out = new Uint8Array(1280);
  const n = buildTimeExceeded(out, 0, ROUTER, 0, p, 0, 80, ICMPV6_TIME_EXCEEDED_HOP_LIMIT);
  checkError(t, out, n, p, ICMPV6_TIME_EXCEEDED, 0, 0);
});

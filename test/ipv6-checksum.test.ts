// Checksums (RFC 1071, RFC 8200 §8.1, RFC 1624) against a plain reference over random packets,
// and on packets the Linux kernel wrote (fixtures/wireguard-go-v6/inner.pcap).
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import {
  Ipv6Info,
  parsePacket,
  PARSE_OK,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_ICMPV6,
  IPPROTO_DSTOPTS,
  writeHeader,
  internetChecksum,
  computeChecksum,
  writeChecksum,
  verifyChecksum,
  checksumOffset,
  updateChecksumWord,
  updateChecksumAddress,
  rewriteAddress,
  readU16,
  writeU16,
  fold,
  sumWords,
} from '../src/ipv6/index.ts';

// ---- a seeded generator, so failures repeat ----
let seed = 0x9e3779b9;
function rnd(n: number): number {
  seed = (seed + 0x6d2b79f5) >>> 0; // mulberry32
  let z = seed;
  z = Math.imul(z ^ (z >>> 15), z | 1);
  z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
  return ((z ^ (z >>> 14)) >>> 0) % n;
}
function rndBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rnd(256);
  return b;
}

// ---- the reference: build the pseudo-header as bytes, zero the field, add words one by one ----
function refChecksum(pkt: Uint8Array, l4Off: number, l4Len: number, proto: number): number {
  const field = proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : 2;
  const bytes = new Uint8Array(40 + l4Len + 1);
  bytes.set(pkt.subarray(8, 40), 0); // src, dst
  new DataView(bytes.buffer).setUint32(32, l4Len); // upper-layer packet length
  bytes[39] = proto; // three zero bytes, then Next Header
  bytes.set(pkt.subarray(l4Off, l4Off + l4Len), 40);
  bytes[40 + field] = 0;
  bytes[40 + field + 1] = 0;
  const dv = new DataView(bytes.buffer);
  let sum = 0;
  for (let i = 0; i < 40 + l4Len; i += 2) sum += dv.getUint16(i); // odd: the extra byte is 0
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  const c = 0xffff - sum;
  return proto === IPPROTO_UDP && c === 0 ? 0xffff : c;
}

const PROTOS = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6];

// A random packet: optional Destination Options header, then `proto` with random bytes.
function randomPacket(proto: number): { pkt: Uint8Array; l4Off: number; l4Len: number } {
  const ext = rnd(3) === 0 ? 8 * (rnd(3) + 1) : 0;
  const min = proto === IPPROTO_TCP ? 20 : 8;
  const l4Len = min + (rnd(4) === 0 ? rnd(8) : rnd(1500));
  const pkt = rndBytes(40 + ext + l4Len);
  writeHeader(pkt, 0, ext + l4Len, ext ? IPPROTO_DSTOPTS : proto, 64, rndBytes(16), 0, rndBytes(16), 0);
  if (ext) {
    pkt[40] = proto;
    pkt[41] = ext / 8 - 1;
  }
  if (proto === IPPROTO_UDP) writeU16(pkt, 40 + ext + 4, l4Len);
  return { pkt, l4Off: 40 + ext, l4Len };
}

test('RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', (t) => {
  const b = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
  t.is(sumWords(b, 0, 8, 0), 0x2ddf0);
  t.is(fold(0x2ddf0), 0xddf2);
  t.is(internetChecksum(b, 0, 8), 0x220d);
  t.is(internetChecksum(Uint8Array.of(0xab), 0, 1), 0xffff - 0xab00); // odd: padded with zero
  t.is(fold(2 ** 40 + 5), fold(fold(2 ** 40) + 5)); // folds sums past 32 bits
});

test('compute equals the reference over 3000 random packets; write then verify', (t) => {
  const info = new Ipv6Info();
  for (let i = 0; i < 3000; i++) {
    const proto = PROTOS[i % 3];
    const { pkt, l4Off, l4Len } = randomPacket(proto);
    t.is(parsePacket(pkt, 0, pkt.length, info), PARSE_OK);
    t.is(info.l4Off, l4Off);
    const want = refChecksum(pkt, l4Off, l4Len, proto);
    const got = computeChecksum(pkt, 0, l4Off, l4Len, proto);
    if (got !== want) return t.fail(`packet ${i}: ${got} != ${want}`);
    writeChecksum(pkt, 0, l4Off, l4Len, proto);
    if (readU16(pkt, l4Off + checksumOffset(proto)) !== want || !verifyChecksum(pkt, 0, l4Off, l4Len, proto)) {
      return t.fail(`packet ${i}: written checksum does not verify`);
    }
    // Any single flipped bit, header addresses included, is caught.
    const bit = rnd(8 * (pkt.length - 8));
    const at = 8 + (bit >>> 3);
    if (at >= 40 && at < l4Off) continue; // extension headers are not covered
    pkt[at] ^= 1 << (bit & 7);
    if (verifyChecksum(pkt, 0, l4Off, l4Len, proto)) return t.fail(`packet ${i}: bit ${bit} flip verified`);
  }
  t.pass();
});

test('UDP never carries checksum 0 (RFC 8200 §8.1); TCP does; a UDP 0 never verifies', (t) => {
  for (const proto of [IPPROTO_UDP, IPPROTO_TCP]) {
    let r = randomPacket(proto);
    while (r.l4Len < 24) r = randomPacket(proto); // keep the adjusted word clear of the checksum
    const { pkt, l4Off, l4Len } = r;
    // Choose the last word so the data sums to 0xffff: the computed checksum is then 0.
    const last = l4Off + l4Len - 2 - (l4Len & 1);
    pkt.fill(0, last, l4Off + l4Len);
    writeU16(pkt, l4Off + checksumOffset(proto), 0);
    const x = fold(sumWords(pkt, l4Off, l4Len, sumWords(pkt, 8, 32, 0) + l4Len + proto));
    writeU16(pkt, last, 0xffff - x);
    t.is(refChecksum(pkt, l4Off, l4Len, proto), proto === IPPROTO_UDP ? 0xffff : 0);
    t.is(writeChecksum(pkt, 0, l4Off, l4Len, proto), proto === IPPROTO_UDP ? 0xffff : 0);
    t.true(verifyChecksum(pkt, 0, l4Off, l4Len, proto));
  }
  const { pkt, l4Off, l4Len } = randomPacket(IPPROTO_UDP);
  writeU16(pkt, l4Off + 6, 0);
  t.false(verifyChecksum(pkt, 0, l4Off, l4Len, IPPROTO_UDP));
  t.is(computeChecksum(pkt, 0, l4Off, l4Len, 99), -1);
  t.false(verifyChecksum(pkt, 0, l4Off, l4Len, 99));
});

test('incremental update of a 16-bit word equals full recomputation (RFC 1624)', (t) => {
  for (let i = 0; i < 5000; i++) {
    const proto = PROTOS[i % 3];
    const { pkt, l4Off, l4Len } = randomPacket(proto);
    writeChecksum(pkt, 0, l4Off, l4Len, proto);
    const field = l4Off + checksumOffset(proto);
    // Any even offset in the upper-layer packet except the checksum itself (ports, ids, data).
    let w = l4Off + 2 * rnd(l4Len >>> 1);
    if (w === field) w = l4Off;
    const old = readU16(pkt, w);
    const neu = rnd(8) === 0 ? [0, 0xffff, old][rnd(3)] : rnd(0x10000);
    writeU16(pkt, w, neu);
    updateChecksumWord(pkt, field, old, neu, proto === IPPROTO_UDP);
    const want = computeChecksum(pkt, 0, l4Off, l4Len, proto);
    if (readU16(pkt, field) !== want) return t.fail(`case ${i}: ${readU16(pkt, field)} != ${want}`);
    if (!verifyChecksum(pkt, 0, l4Off, l4Len, proto)) return t.fail(`case ${i} does not verify`);
  }
  t.pass();
});

test('incremental update of a 16-byte address equals full recomputation (RFC 1624)', (t) => {
  for (let i = 0; i < 5000; i++) {
    const proto = PROTOS[i % 3];
    const { pkt, l4Off, l4Len } = randomPacket(proto);
    writeChecksum(pkt, 0, l4Off, l4Len, proto);
    const field = l4Off + checksumOffset(proto);
    const addrOff = rnd(2) === 0 ? 8 : 24;
    const neu = rndBytes(16);
    if (i % 2 === 0) {
      updateChecksumAddress(pkt, field, pkt, addrOff, neu, 0, proto === IPPROTO_UDP);
      pkt.set(neu, addrOff);
    } else {
      rewriteAddress(pkt, addrOff, neu, 0, field, proto);
      t.deepEqual(pkt.subarray(addrOff, addrOff + 16), neu);
    }
    const want = computeChecksum(pkt, 0, l4Off, l4Len, proto);
    if (readU16(pkt, field) !== want) return t.fail(`case ${i}: ${readU16(pkt, field)} != ${want}`);
    if (!verifyChecksum(pkt, 0, l4Off, l4Len, proto)) return t.fail(`case ${i} does not verify`);
  }
  t.pass();
});

test('an update leaves a UDP header without checksum (0) alone', (t) => {
  const { pkt, l4Off } = randomPacket(IPPROTO_UDP);
  writeU16(pkt, l4Off + 6, 0);
  updateChecksumWord(pkt, l4Off + 6, 1234, 4321, true);
  updateChecksumAddress(pkt, l4Off + 6, pkt, 8, rndBytes(16), 0, true);
  t.is(readU16(pkt, l4Off + 6), 0);
});

// ---- packets from the kernel ----
const PCAP = new URL('../../shared/fixtures/wireguard-go-v6/inner.pcap', import.meta.url);

// Records of a little-endian pcap file (link type RAW: each record is one IPv6 packet).
function pcapRecords(bytes: Uint8Array): Uint8Array[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== 0xa1b2c3d4 || dv.getUint32(20, true) !== 101) throw new Error('not a RAW pcap');
  const out: Uint8Array[] = [];
  for (let p = 24; p + 16 <= bytes.length; ) {
    const caplen = dv.getUint32(p + 8, true);
    out.push(bytes.subarray(p + 16, p + 16 + caplen));
    p += 16 + caplen;
  }
  return out;
}

(existsSync(PCAP) ? test : test.skip)('kernel-written packets (inner.pcap) parse and verify', (t) => {
  const records = pcapRecords(new Uint8Array(readFileSync(PCAP)));
  t.is(records.length, 74);
  const info = new Ipv6Info();
  const seen = new Set<number>();
  for (const pkt of records) {
    t.is(parsePacket(pkt, 0, pkt.length, info), PARSE_OK);
    seen.add(info.protocol);
    t.true(verifyChecksum(pkt, 0, info.l4Off, info.l4Len, info.protocol));
    const field = info.l4Off + checksumOffset(info.protocol);
    const c = readU16(pkt, field);
    t.is(computeChecksum(pkt, 0, info.l4Off, info.l4Len, info.protocol), c);
    t.is(refChecksum(pkt, info.l4Off, info.l4Len, info.protocol), c);
  }
  t.deepEqual([...seen].sort((a, b) => a - b), [IPPROTO_TCP, IPPROTO_ICMPV6]);
});

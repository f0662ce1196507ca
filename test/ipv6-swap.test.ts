// The host/net swap of the mesh (DESIGN.md "Addresses"): the examples, the involution, and the
// claim that TCP, UDP and ICMPv6 checksums stay valid across it, shown on real packets.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import {
  Ipv6Info,
  parsePacket,
  PARSE_OK,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_ICMPV6,
  IPPROTO_HOPOPTS,
  ICMPV6_ECHO_REQUEST,
  SIXPN_ORG_PREFIX_LEN,
  SWAP_SRC,
  SWAP_DST,
  SWAP_BOTH,
  addressBytes,
  formatAddress,
  encodeSixpn,
  machineAddress,
  getHost,
  getNetwork,
  prefixMatch,
  writeHeader,
  writeChecksum,
  verifyChecksum,
  computeChecksum,
  checksumOffset,
  readU16,
  writeU16,
  buildEcho,
  buildDestUnreachable,
  swapAddress,
  swapAddressTo,
  swapPacket,
  meshHostPrefix,
} from '../src/ipv6/index.ts';

let seed = 0xc0ffee;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const u32 = () => (rnd(0x10000) * 0x10000 + rnd(0x10000)) >>> 0;
const swapped = (s: string) => {
  const b = addressBytes(s);
  swapAddress(b, 0);
  return formatAddress(b, 0);
};

test('the DESIGN example, both ways', (t) => {
  t.is(swapped('fdaa:0:863:a7b:bea:0:a:2'), 'fdaa:a7b:bea:0:863:0:a:2');
  t.is(swapped('fdaa:a7b:bea:0:863:0:a:2'), 'fdaa:0:863:a7b:bea:0:a:2');
  t.is(swapped('fdaa:0:18:a7b:7d:f066:b83b:2'), 'fdaa:a7b:7d:0:18:f066:b83b:2');
  t.is(swapped('fdaa::3'), 'fdaa::3');
  const out = new Uint8Array(20);
  swapAddressTo(addressBytes('fdaa:0:863:a7b:bea:0:a:2'), 0, out, 4);
  t.is(formatAddress(out, 4), 'fdaa:a7b:bea:0:863:0:a:2');
});

test('swapped machine addresses of one host fall in its mesh /48, whatever the org', (t) => {
  const host = 0x0a7b0bea;
  const prefix = new Uint8Array(16);
  meshHostPrefix(prefix, 0, host);
  t.is(formatAddress(prefix, 0), 'fdaa:a7b:bea::');
  const a = new Uint8Array(16);
  for (let i = 0; i < 1000; i++) {
    machineAddress(a, 0, u32(), host, u32());
    swapAddress(a, 0);
    if (!prefixMatch(a, 0, prefix, 0, SIXPN_ORG_PREFIX_LEN)) return t.fail(formatAddress(a, 0));
    machineAddress(a, 0, u32(), host ^ (1 << rnd(32)), u32());
    swapAddress(a, 0);
    if (prefixMatch(a, 0, prefix, 0, SIXPN_ORG_PREFIX_LEN)) return t.fail(`other host ${formatAddress(a, 0)}`);
  }
  t.pass();
});

test('the swap is an involution and trades exactly the two fields', (t) => {
  const a = new Uint8Array(16);
  for (let i = 0; i < 10000; i++) {
    for (let k = 0; k < 16; k++) a[k] = rnd(256);
    const before = a.slice();
    swapAddress(a, 0);
    if (getNetwork(a, 0) !== getHost(before, 0) || getHost(a, 0) !== getNetwork(before, 0)) return t.fail('fields');
    if (a[0] !== before[0] || a[1] !== before[1] || a.subarray(10).some((x, k) => x !== before[10 + k])) {
      return t.fail('other bytes changed');
    }
    swapAddress(a, 0);
    if (a.some((x, k) => x !== before[k])) return t.fail('not an involution');
  }
  t.pass();
});

test('swapPacket: which addresses, 6PN only', (t) => {
  const p = new Uint8Array(48);
  writeHeader(p, 0, 8, IPPROTO_UDP, 64, addressBytes('fdaa:0:863:a7b:bea:0:a:2'), 0, addressBytes('2001:db8:1:2:3:4:5:6'), 0);
  const orig = p.slice();
  t.is(swapPacket(p, 0, SWAP_BOTH), SWAP_SRC); // the global address is left alone
  t.is(formatAddress(p, 8), 'fdaa:a7b:bea:0:863:0:a:2');
  t.is(formatAddress(p, 24), '2001:db8:1:2:3:4:5:6');
  t.is(swapPacket(p, 0, SWAP_DST), 0);
  t.is(swapPacket(p, 0, SWAP_SRC), SWAP_SRC);
  t.deepEqual(p, orig);
  p.set(addressBytes('fdaa:1:2:3:4:5:6:7'), 24);
  t.is(swapPacket(p, 0, SWAP_DST), SWAP_DST);
  t.is(formatAddress(p, 8), 'fdaa:0:863:a7b:bea:0:a:2');
  t.is(formatAddress(p, 24), 'fdaa:3:4:1:2:5:6:7');
});

// A real TCP, UDP or ICMPv6 packet between two random 6PN machines, with a valid checksum.
function randomPacket(proto: number): { pkt: Uint8Array; l4Off: number; l4Len: number } {
  const src = new Uint8Array(16);
  const dst = new Uint8Array(16);
  encodeSixpn(src, 0, u32(), u32(), u32(), rnd(0x10000));
  encodeSixpn(dst, 0, u32(), u32(), u32(), rnd(0x10000));
  const hbh = rnd(4) === 0 ? 8 : 0;
  const dataLen = rnd(5) === 0 ? rnd(4) : rnd(1400);
  const data = Uint8Array.from({ length: dataLen }, () => rnd(256));
  const l4Off = 40 + hbh;
  let l4Len: number;
  let pkt: Uint8Array;
  if (proto === IPPROTO_ICMPV6) {
    pkt = new Uint8Array(l4Off + 8 + dataLen);
    buildEcho(pkt, hbh, ICMPV6_ECHO_REQUEST, src, 0, dst, 0, rnd(0x10000), rnd(0x10000), data, 0, dataLen);
    pkt.copyWithin(0, hbh, hbh + 40); // move the header in front of the Hop-by-Hop header
    l4Len = 8 + dataLen;
  } else {
    const hlen = proto === IPPROTO_TCP ? 20 + 4 * rnd(11) : 8;
    l4Len = hlen + dataLen;
    pkt = new Uint8Array(l4Off + l4Len);
    for (let i = l4Off; i < pkt.length; i++) pkt[i] = rnd(256);
    writeHeader(pkt, 0, hbh + l4Len, proto, 64, src, 0, dst, 0);
    if (proto === IPPROTO_TCP) pkt[l4Off + 12] = (hlen / 4) << 4;
    else writeU16(pkt, l4Off + 4, l4Len);
  }
  if (hbh) {
    pkt[6] = IPPROTO_HOPOPTS;
    pkt.fill(0, 40, 48);
    pkt[40] = proto;
    pkt[42] = 1; // PadN
    pkt[43] = 4;
  }
  writeU16(pkt, 4, hbh + l4Len);
  writeChecksum(pkt, 0, l4Off, l4Len, proto);
  return { pkt, l4Off, l4Len };
}

test('TCP, UDP and ICMPv6 checksums stay valid across the swap; swapping back restores the bytes', (t) => {
  const info = new Ipv6Info();
  const counts = [0, 0, 0];
  for (let i = 0; i < 6000; i++) {
    const proto = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6][i % 3];
    const { pkt, l4Off, l4Len } = randomPacket(proto);
    if (parsePacket(pkt, 0, pkt.length, info) !== PARSE_OK || info.l4Off !== l4Off) return t.fail('bad packet');
    if (!verifyChecksum(pkt, 0, l4Off, l4Len, proto)) return t.fail('not valid before the swap');
    const orig = pkt.slice();
    const csum = readU16(pkt, l4Off + checksumOffset(proto));
    const which = [SWAP_BOTH, SWAP_SRC, SWAP_DST][rnd(3)];
    t.is(swapPacket(pkt, 0, which), which);
    // The swap did change the addresses (unless network equals host, vanishingly rare) ...
    if (pkt.subarray(8, 40).every((x, k) => x === orig[8 + k])) return t.fail('swap changed nothing');
    // ... but not the checksum field, and that checksum still verifies: nothing recomputed.
    if (readU16(pkt, l4Off + checksumOffset(proto)) !== csum) return t.fail('checksum field touched');
    if (!verifyChecksum(pkt, 0, l4Off, l4Len, proto)) return t.fail(`case ${i}: invalid after the swap`);
    if (computeChecksum(pkt, 0, l4Off, l4Len, proto) !== csum) return t.fail(`case ${i}: recomputation differs`);
    swapPacket(pkt, 0, which);
    if (pkt.some((x, k) => x !== orig[k])) return t.fail(`case ${i}: swap back differs`);
    counts[i % 3]++;
  }
  t.deepEqual(counts, [2000, 2000, 2000]);
});

test('control: moving a field by a byte (not a word) would break the checksum', (t) => {
  // Shows verifyChecksum would notice a rewrite that is not a permutation of 16-bit words.
  let broken = 0;
  for (let i = 0; i < 300; i++) {
    const { pkt, l4Off, l4Len } = randomPacket([IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6][i % 3]);
    const a = pkt.slice(10, 18); // rotate bytes 2..9 of the source by one byte
    for (let k = 0; k < 8; k++) pkt[10 + k] = a[(k + 1) % 8];
    if (!verifyChecksum(pkt, 0, l4Off, l4Len, [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6][i % 3])) broken++;
  }
  t.true(broken > 290, `${broken} of 300`);
});

test('an ICMPv6 error quoting a packet survives the swap of its own header', (t) => {
  const { pkt } = randomPacket(IPPROTO_UDP);
  const router = new Uint8Array(16);
  encodeSixpn(router, 0, u32(), u32(), u32(), 1);
  const out = new Uint8Array(1280);
  const n = buildDestUnreachable(out, 0, router, 0, pkt, 0, pkt.length, 4);
  t.true(n > 0);
  const orig = out.slice(0, n);
  t.is(swapPacket(out, 0, SWAP_BOTH), SWAP_BOTH);
  t.true(verifyChecksum(out, 0, 40, n - 40, IPPROTO_ICMPV6));
  swapPacket(out, 0, SWAP_BOTH);
  t.deepEqual(out.subarray(0, n), orig);
});

const PCAP = new URL('../../shared/fixtures/wireguard-go-v6/inner.pcap', import.meta.url);
(existsSync(PCAP) ? test : test.skip)('kernel-written packets (inner.pcap) stay valid across the swap', (t) => {
  const bytes = new Uint8Array(readFileSync(PCAP));
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const info = new Ipv6Info();
  let n = 0;
  for (let p = 24; p + 16 <= bytes.length; n++) {
    const len = dv.getUint32(p + 8, true);
    const pkt = bytes.slice(p + 16, p + 16 + len);
    p += 16 + len;
    t.is(parsePacket(pkt, 0, len, info), PARSE_OK);
    const orig = pkt.slice();
    t.is(swapPacket(pkt, 0, SWAP_BOTH), SWAP_BOTH);
    t.true(verifyChecksum(pkt, 0, info.l4Off, info.l4Len, info.protocol));
    swapPacket(pkt, 0, SWAP_BOTH);
    t.deepEqual(pkt, orig);
  }
  t.is(n, 74);
});

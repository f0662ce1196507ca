// The 6PN address codec (DESIGN.md "Addresses"), prefixes, RFC 4291 parsing and RFC 5952 text.
import test from 'ava';
import {
  addressBytes,
  parseAddress,
  formatAddress,
  parseCidr,
  formatCidr,
  prefixMatch,
  maskPrefix,
  isSixpn,
  getNetwork,
  getHost,
  getInstance,
  getFree,
  setNetwork,
  setHost,
  setInstance,
  setFree,
  encodeSixpn,
  machineAddress,
  machinePrefix,
  peerAddress,
  orgPrefix,
  orgDnsAddress,
  globalDnsAddress,
  isGlobalDns,
  isOrgDns,
  orgOf,
  isInOrg,
  sameOrg,
  sameMachine,
  addressEquals,
  isMulticast,
  isUnspecified,
  isLoopback,
  isLinkLocal,
  isUniqueLocal,
  SIXPN_ORG_PREFIX_LEN,
  SIXPN_MACHINE_PREFIX_LEN,
  SIXPN_PEER_PREFIX_LEN,
} from '../src/ipv6/index.ts';

let seed = 0x1234567;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const u32 = () => (rnd(0x10000) * 0x10000 + rnd(0x10000)) >>> 0;
const fmt = (b: Uint8Array) => formatAddress(b, 0);
function make(f: (out: Uint8Array, off: number) => void): string {
  const b = new Uint8Array(16);
  f(b, 0);
  return fmt(b);
}

test('the DESIGN example decodes into its fields', (t) => {
  const a = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2');
  t.true(isSixpn(a, 0));
  t.is(getNetwork(a, 0), 0x00000018);
  t.is(getHost(a, 0), 0x0a7b007d);
  t.is(getInstance(a, 0), 0xf066b83b);
  t.is(getFree(a, 0), 0x0002);
  t.is(orgOf(a, 0), 0x18);
  t.true(isInOrg(a, 0, 0x18));
  t.false(isInOrg(a, 0, 0x19));
});

test('machine, org, DNS and peer addresses', (t) => {
  t.is(make((b, o) => machineAddress(b, o, 0x18, 0x0a7b007d, 0xf066b83b)), 'fdaa:0:18:a7b:7d:f066:b83b:2');
  t.is(make((b, o) => machinePrefix(b, o, 0x18, 0x0a7b007d, 0xf066b83b)), 'fdaa:0:18:a7b:7d:f066:b83b:0');
  t.is(make((b, o) => orgPrefix(b, o, 0x18)), 'fdaa:0:18::');
  t.is(make((b, o) => orgDnsAddress(b, o, 0x18)), 'fdaa:0:18::3');
  t.is(make((b, o) => globalDnsAddress(b, o)), 'fdaa::3');
  t.is(make((b, o) => peerAddress(b, o, 0x18, 0x0a7b0d6b, 0xa, 0)), 'fdaa:0:18:a7b:d6b:0:a:2');
  t.is(make((b, o) => peerAddress(b, o, 4, 0x0a7b0ab6, 0xa, 1)), 'fdaa:0:4:a7b:ab6:0:a:102');
  t.is(make((b, o) => encodeSixpn(b, o, 0xffffffff, 0, 0xffffffff, 0xffff)), 'fdaa:ffff:ffff::ffff:ffff:ffff');

  t.true(isGlobalDns(addressBytes('fdaa::3'), 0));
  t.false(isGlobalDns(addressBytes('fdaa:0:18::3'), 0));
  t.true(isOrgDns(addressBytes('fdaa:0:18::3'), 0));
  t.false(isOrgDns(addressBytes('fdaa:0:18::2'), 0));
  t.false(isOrgDns(addressBytes('fdaa:0:18:0:1::3'), 0));
  t.false(isOrgDns(addressBytes('fdab:0:18::3'), 0));

  // A machine's address lies in its /112, in its org's /48; a peer's in its /120.
  const m = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2');
  const p = new Uint8Array(16);
  machinePrefix(p, 0, 0x18, 0x0a7b007d, 0xf066b83b);
  t.true(prefixMatch(m, 0, p, 0, SIXPN_MACHINE_PREFIX_LEN));
  orgPrefix(p, 0, 0x18);
  t.true(prefixMatch(m, 0, p, 0, SIXPN_ORG_PREFIX_LEN));
  orgPrefix(p, 0, 0x19);
  t.false(prefixMatch(m, 0, p, 0, SIXPN_ORG_PREFIX_LEN));
  const peer = new Uint8Array(16);
  const cidr = new Uint8Array(16);
  peerAddress(peer, 0, 4, 0x0a7b0ab6, 0xa, 1);
  t.is(parseCidr('fdaa:0:4:a7b:ab6:0:a:100/120', cidr, 0), SIXPN_PEER_PREFIX_LEN);
  t.true(prefixMatch(peer, 0, cidr, 0, SIXPN_PEER_PREFIX_LEN));
  peerAddress(peer, 0, 4, 0x0a7b0ab6, 0xa, 2);
  t.false(prefixMatch(peer, 0, cidr, 0, SIXPN_PEER_PREFIX_LEN));
});

test('org and machine tests', (t) => {
  const a = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2');
  t.true(sameOrg(a, 0, addressBytes('fdaa:0:18:1:2:3:4:5'), 0));
  t.false(sameOrg(a, 0, addressBytes('fdaa:0:19:a7b:7d:f066:b83b:2'), 0));
  t.false(sameOrg(a, 0, addressBytes('fdaa:1:18:a7b:7d:f066:b83b:2'), 0));
  t.false(sameOrg(addressBytes('2001:0:18::1'), 0, addressBytes('2001:0:18::2'), 0)); // not 6PN
  t.true(sameMachine(a, 0, addressBytes('fdaa:0:18:a7b:7d:f066:b83b:ffff'), 0));
  t.false(sameMachine(a, 0, addressBytes('fdaa:0:18:a7b:7d:f066:b83c:2'), 0));
  t.is(orgOf(addressBytes('2001:db8::1'), 0), -1);
  t.false(isInOrg(addressBytes('fdab:0:18::1'), 0, 0x18));
  t.true(isInOrg(addressBytes('fdaa:ffff:ffff::1'), 0, -1)); // network taken as u32
});

test('codec round trips over random fields and offsets', (t) => {
  const buf = new Uint8Array(64);
  for (let i = 0; i < 10000; i++) {
    const [n, h, ins, f, off] = [u32(), u32(), u32(), rnd(0x10000), rnd(48)];
    buf.fill(0xa5);
    encodeSixpn(buf, off, n, h, ins, f);
    if (getNetwork(buf, off) !== n || getHost(buf, off) !== h || getInstance(buf, off) !== ins || getFree(buf, off) !== f) {
      return t.fail(`fields ${n} ${h} ${ins} ${f}`);
    }
    if (off > 0 && buf[off - 1] !== 0xa5) return t.fail('wrote before');
    if (buf[off + 16] !== 0xa5) return t.fail('wrote after');
    const text = formatAddress(buf, off);
    const back = addressBytes(text);
    if (!addressEquals(back, 0, buf, off)) return t.fail(`${text} does not round trip`);
    setNetwork(back, 0, h);
    setHost(back, 0, n);
    setInstance(back, 0, f);
    setFree(back, 0, 7);
    if (getNetwork(back, 0) !== h || getHost(back, 0) !== n || getInstance(back, 0) !== f || getFree(back, 0) !== 7) {
      return t.fail('setters');
    }
    if (orgOf(buf, off) !== n || !isInOrg(buf, off, n)) return t.fail('org');
  }
  t.pass();
});

// RFC 5952 §4 and §5, and a few edges.
const canonical: [string, string][] = [
  ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'], // §4.1 leading zeros, §4.2.1 shortest
  ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
  ['2001:db8::0:1', '2001:db8::1'], // §4.2.1: all of the run
  ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // §4.2.2: one zero group stays
  ['2001:db8::1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // ... even when written compressed
  ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // §4.2.3: the longest run
  ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // §4.2.3: leftmost on a tie
  ['2001:DB8::ABCD:EF', '2001:db8::abcd:ef'], // §4.3: lowercase
  ['0:0:0:0:0:0:0:0', '::'],
  ['0:0:0:0:0:0:0:1', '::1'],
  ['1:0:0:0:0:0:0:0', '1::'],
  ['0:0:1:0:0:0:0:0', '0:0:1::'],
  ['0:1:0:0:0:0:0:0', '0:1::'],
  ['0:0:0:0:0:0:1:0', '::1:0'],
  ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
  ['fe80:0000:0000:0000:0202:b3ff:fe1e:8329', 'fe80::202:b3ff:fe1e:8329'],
  ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ['::ffff:c000:0201', '::ffff:192.0.2.1'], // §5: IPv4-mapped in dotted decimal
  ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
  ['::192.0.2.1', '::c000:201'], // not mapped: hex
  ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
  ['fdaa:0:863:a7b:bea:0:a:2', 'fdaa:0:863:a7b:bea:0:a:2'],
  ['FDAA:0000:0018:0A7B:007D:F066:B83B:0002', 'fdaa:0:18:a7b:7d:f066:b83b:2'],
];
canonical.forEach(([input, want], n) => {
  test(`RFC 5952 #${n + 1}: ${input} → ${want}`, (t) => {
    t.is(fmt(addressBytes(input)), want);
    t.is(fmt(addressBytes(want)), want);
  });
});

const invalid = [
  '', ':', ':::', '1', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8',
  '1::2::3', '1:::2', ':1::2', '1::2:', '12345::', 'g::', '::1.2.3', '::1.2.3.4.5', '::256.1.1.1',
  '::01.2.3.4', '1.2.3.4::', '::1.2.3.4:5', '1:2:3:4:5:6:7:1.2.3.4', 'fe80::1%eth0', ' ::1', '::1 ',
  '[::1]', '::-1', '::+1', '0x1::',
];
test('invalid text is rejected and leaves the output alone', (t) => {
  const out = new Uint8Array(16).fill(7);
  for (const s of invalid) {
    t.false(parseAddress(s, out, 0), JSON.stringify(s));
    t.true(out.every((b) => b === 7), JSON.stringify(s));
  }
  t.throws(() => addressBytes('nope'), { instanceOf: TypeError });
  t.true(parseAddress('1:2:3:4:5:6:1.2.3.4', out, 0));
  t.is(fmt(out), '1:2:3:4:5:6:102:304');
});

// Every canonical text agrees with the WHATWG URL parser's IPv6 serializer (which implements the
// same compression rules) and parses back to the same bytes.
test('format agrees with node:url over random zero-heavy addresses; parse(format(x)) = x', (t) => {
  const b = new Uint8Array(16);
  for (let i = 0; i < 5000; i++) {
    for (let w = 0; w < 8; w++) {
      const v = rnd(3) === 0 ? rnd(0x10000) : rnd(4) === 0 ? rnd(16) : 0;
      b[2 * w] = v >>> 8;
      b[2 * w + 1] = v & 0xff;
    }
    const text = fmt(b);
    if (b[10] === 0xff && b[11] === 0xff && b.subarray(0, 10).every((x) => x === 0)) continue; // §5 form
    const url = new URL(`http://[${text}]/`).hostname.slice(1, -1);
    if (url !== text) return t.fail(`${text} vs URL ${url}`);
    if (!addressEquals(addressBytes(text), 0, b, 0)) return t.fail(`${text} does not round trip`);
  }
  t.pass();
});

test('CIDR parsing and formatting', (t) => {
  const b = new Uint8Array(16);
  t.is(parseCidr('fdaa:0:18::/48', b, 0), 48);
  t.is(formatCidr(b, 0, 48), 'fdaa:0:18::/48');
  t.is(parseCidr('fdaa:0:18:a7b:d6b:0:a:2/120', b, 0), 120);
  t.is(fmt(b), 'fdaa:0:18:a7b:d6b:0:a:2'); // host bits kept
  maskPrefix(b, 0, 120);
  t.is(formatCidr(b, 0, 120), 'fdaa:0:18:a7b:d6b:0:a:0/120');
  t.is(parseCidr('::/0', b, 0), 0);
  t.is(parseCidr('::1/128', b, 0), 128);
  for (const bad of ['fdaa::', 'fdaa::/129', 'fdaa::/048', 'fdaa::/', 'fdaa::/-1', 'fdaa::/4 8', 'x/3', '/48', 'fdaa::/48/1']) {
    t.is(parseCidr(bad, b, 0), -1, bad);
  }
});

// Bit-by-bit reference for prefixMatch and maskPrefix.
const bit = (a: Uint8Array, i: number) => (a[i >> 3] >> (7 - (i & 7))) & 1;

test('prefixMatch and maskPrefix equal a bit-by-bit reference', (t) => {
  const a = new Uint8Array(20);
  const p = new Uint8Array(24);
  for (let i = 0; i < 20000; i++) {
    for (let k = 0; k < 16; k++) a[2 + k] = rnd(256);
    // p shares a random number of leading bits with a, then differs in one bit (or not at all)
    const common = rnd(129);
    p.set(a.subarray(2, 18), 5);
    if (common < 128) p[5 + (common >> 3)] ^= 0x80 >> (common & 7);
    const len = rnd(129);
    let want = true;
    for (let k = 0; k < len; k++) if (bit(a.subarray(2), k) !== bit(p.subarray(5), k)) want = false;
    if (prefixMatch(a, 2, p, 5, len) !== want) return t.fail(`len ${len} common ${common}`);
    const m = a.slice(2, 18);
    maskPrefix(m, 0, len);
    for (let k = 0; k < 128; k++) {
      if (bit(m, k) !== (k < len ? bit(a.subarray(2), k) : 0)) return t.fail(`mask ${len} bit ${k}`);
    }
  }
  t.pass();
});

test('address classes (RFC 4291 §2.4, RFC 4193)', (t) => {
  const is = (f: (b: Uint8Array, o: number) => boolean, s: string) => f(addressBytes(s), 0);
  t.true(is(isMulticast, 'ff02::1'));
  t.false(is(isMulticast, 'fe80::1'));
  t.true(is(isUnspecified, '::'));
  t.false(is(isUnspecified, '::1'));
  t.true(is(isLoopback, '::1'));
  t.false(is(isLoopback, '::2'));
  t.false(is(isLoopback, '1::1'));
  t.true(is(isLinkLocal, 'fe80::1'));
  t.true(is(isLinkLocal, 'febf::1'));
  t.false(is(isLinkLocal, 'fec0::1'));
  t.true(is(isUniqueLocal, 'fdaa::3'));
  t.true(is(isUniqueLocal, 'fc00::'));
  t.false(is(isUniqueLocal, 'fe00::'));
  t.false(is(isSixpn, 'fdab::3'));
});

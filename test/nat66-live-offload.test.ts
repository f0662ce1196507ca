// Egress in offload mode (vnet_hdr TUNs, 64 KB TCP segments both ways). First the partial
// checksum arithmetic against a model — the same packets translated complete by a twin Nat66 —
// then the real thing in namespaces: PMTUD and large transfers across the 1280-byte link, with
// the router's end of that link checksumming in software (tx offload off), so a wrong
// pseudo-header sum would be caught by the server's TCP, and every partial checksum delivered
// to the machine checked against its translated header.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ICMPV6_ECHO_REQUEST, IPPROTO_TCP, IPPROTO_UDP, addressBytes, buildEcho, fold, pseudoHeaderSum, readU16, sumWords,
  verifyChecksum, writeU16,
} from '../src/ipv6/index.ts';
import { NAT66_DELIVER, NAT66_FORWARD, Nat66 } from '../src/nat66/index.ts';
import { buildTcp, buildUdp } from './helpers/packets.ts';
import { PartialChecksum, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_LEN } from '../src/nat66/partial-checksum.ts';
import { isRoot } from './helpers/netns.ts';
import { EGRESS_O, INET_A, Nat66Lab, sleep } from './helpers/nat66.ts';

const rootSerial = isRoot() ? test.serial : test.serial.skip; // counted as skipped when not root

const H = VIRTIO_NET_HDR_LEN;
const EGRESS = addressBytes('2001:db8:e::1');
const T0 = 1_000_000;

// ---- the model ----

let seed = 0x1234567;
function rnd(n: number): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return (seed >>> 8) % n;
}

// Turns the full-checksum packet at full[0, len) into its NEEDS_CSUM form behind a
// virtio_net_hdr at out[0]: the checksum field holds the pseudo-header sum, as the kernel
// leaves it (~tcp_v6_check(len, saddr, daddr, 0)).
function partialForm(full: Uint8Array, len: number, out: Uint8Array, field: number): number {
  out.fill(0, 0, H);
  out[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  out[1] = full[6] === IPPROTO_TCP ? 4 : 0; // gso_type TCPV6 (not segmented here: gso_size 0)
  out[6] = 40; // csum_start: the transport header (little-endian u16)
  out[8] = field; // csum_offset
  out.set(full.subarray(0, len), H);
  const l4Len = len - 40;
  writeU16(out, H + 40 + field, fold(pseudoHeaderSum(out, H, l4Len, full[6])) & 0xffff);
  return H + len;
}

// What a device does with a NEEDS_CSUM packet: sum from csum_start, complement, store.
function complete(buf: Uint8Array, len: number, field: number): void {
  writeU16(buf, H + 40 + field, ~fold(sumWords(buf, H + 40, len - H - 40, 0)) & 0xffff);
}

function sameZero(a: number, b: number): boolean {
  return a === b || (a === 0 && b === 0xffff) || (a === 0xffff && b === 0);
}

test('partial checksums: a NEEDS_CSUM packet translated equals the complete packet translated (random TCP/UDP, both ways, ports changed)', (t) => {
  const full = new Uint8Array(4096);
  const part = new Uint8Array(4096 + H);
  const reply = new Uint8Array(4096);
  const pc = new PartialChecksum();
  let checked = 0;
  let portsChanged = 0;
  for (let round = 0; round < 300; round++) {
    const natFull = new Nat66({ seed: round, capacity: 64 });
    const natPart = new Nat66({ seed: round, capacity: 64 });
    natFull.addEgress(EGRESS);
    natPart.addEgress(EGRESS);
    const tcp = rnd(2) === 0;
    const proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
    const field = tcp ? 16 : 6;
    const m1 = addressBytes(`fdaa:0:18:a7b:7d:${rnd(0xffff).toString(16)}:${rnd(0xffff).toString(16)}:2`);
    const m2 = addressBytes('fdaa:0:18:a7b:7d:0:99:2');
    const r = addressBytes(`2001:db8:${rnd(0xffff).toString(16)}::${rnd(0xffff).toString(16)}`);
    const sport = 1024 + rnd(60000);
    const dport = 1 + rnd(65535);
    const data = randomBytes(rnd(3000));
    const build = (src: Uint8Array, dst: Uint8Array, sp: number, dp: number, flags: number): number => tcp
      ? buildTcp(full, 0, src, 0, dst, 0, sp, dp, rnd(0x7fffffff), 0, flags, data, 0, data.length)
      : buildUdp(full, 0, src, 0, dst, 0, sp, dp, data, 0, data.length);
    // half the rounds: another machine holds the port first, so m1's port changes
    if (rnd(2) === 0) {
      const n = build(m2, r, sport, dport, 0x02);
      natFull.outbound(full, 0, n, 1, 0, T0);
      build(m2, r, sport, dport, 0x02);
      natPart.outbound(full, 0, n, 1, 0, T0);
    }
    // outbound: m1 → r
    const n = build(m1, r, sport, dport, 0x02);
    const pn = partialForm(full, n, part, field);
    t.is(natFull.outbound(full, 0, n, 0, 0, T0), NAT66_FORWARD);
    t.true(pc.open(part, 0, pn));
    t.is(natPart.outbound(part, H, pn - H, 0, 0, T0), NAT66_FORWARD);
    pc.close(part);
    const ext = readU16(full, 40);
    if (ext !== sport) portsChanged++;
    t.true(sameZero(readU16(part, H + 40 + field), fold(pseudoHeaderSum(part, H, n - 40, proto)) & 0xffff), 'the field is the translated pseudo-header sum');
    complete(part, pn, field);
    t.true(verifyChecksum(part, H, H + 40, n - 40, proto));
    t.true(verifyChecksum(full, 0, 40, n - 40, proto));
    writeU16(part, H + 40 + field, readU16(full, 40 + field));
    t.deepEqual(part.subarray(H, pn), full.subarray(0, n), 'otherwise the same bytes');
    // inbound: r → egress:ext, answered (SYN-ACK for TCP)
    const rn = tcp
      ? buildTcp(reply, 0, r, 0, EGRESS, 0, dport, ext, rnd(0x7fffffff), 1, 0x12, data, 0, data.length)
      : buildUdp(reply, 0, r, 0, EGRESS, 0, dport, ext, data, 0, data.length);
    const rp = partialForm(reply, rn, part, field);
    t.is(natFull.inbound(reply, 0, rn, T0), NAT66_DELIVER);
    t.true(pc.open(part, 0, rp));
    t.is(natPart.inbound(part, H, rp - H, T0), NAT66_DELIVER);
    pc.close(part);
    t.is(readU16(reply, 42), sport);
    t.true(sameZero(readU16(part, H + 40 + field), fold(pseudoHeaderSum(part, H, rn - 40, proto)) & 0xffff));
    complete(part, rp, field);
    t.true(verifyChecksum(part, H, H + 40, rn - 40, proto));
    checked++;
  }
  t.is(checked, 300);
  t.true(portsChanged > 50, `${portsChanged} translations changed the port`);
});

test('partial checksums: a NEEDS_CSUM ICMPv6 message is completed in software and the flag cleared', (t) => {
  const m = addressBytes('fdaa:0:18:a7b:7d:0:1:2');
  const r = addressBytes('2001:db8:f::10');
  const full = new Uint8Array(256);
  const part = new Uint8Array(256 + H);
  const data = randomBytes(32);
  const n = buildEcho(full, 0, ICMPV6_ECHO_REQUEST, m, 0, r, 0, 7, 1, data, 0, data.length);
  const pn = partialForm(full, n, part, 2);
  const pc = new PartialChecksum();
  t.false(pc.open(part, 0, pn));
  t.is(part[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM, 0);
  t.true(verifyChecksum(part, H, H + 40, n - 40, 58));
  const nat = new Nat66({ seed: 1 });
  nat.addEgress(EGRESS);
  t.is(nat.outbound(part, H, pn - H, 0, 0, T0), NAT66_FORWARD);
  t.true(verifyChecksum(part, H, H + 40, n - 40, 58));
});

// ---- in namespaces ----

rootSerial('offload mode: PMTUD with 64 KB segments, 16 MiB both ways across the 1280-byte link checksummed in software, iperf3', async (t) => {
  const lab = await Nat66Lab.create({ offload: true, linux: false, agents: false, machines: 1 });
  t.teardown(() => lab.cleanup());
  const site = lab.offload!;
  const m = site.machines[0];
  // Outbound: the router's end of the narrow link segments and checksums in software, so a
  // wrong pseudo-header sum in a translated segment becomes a wrong checksum the server drops.
  // Inbound: the server's 64 KB segments (TSO) reach the egress TUN whole, and the harness
  // checks every partial checksum it delivers against the translated header.
  await lab.exec(lab.router, 'ethtool', ['-K', lab.lab.name('a0'), 'tx', 'off', 'tso', 'off', 'gso', 'off']);
  t.regex(await lab.exec(m.ns, 'ethtool', ['-k', m.ifname]), /tcp-segmentation-offload: on/, 'the machine\'s TUN takes 64 KB segments');
  lab.start(lab.inet, 'iperf3', ['-s', '-B', INET_A, '-p', '5201']);
  const blob = join(lab.lab.dir, 'blob');
  writeFileSync(blob, randomBytes(16 << 20));
  const hash = createHash('sha256').update(readFileSync(blob)).digest('hex');
  await sleep(200);

  const up = lab.start(lab.inet, 'sh', ['-c', `ncat -6 -l ${INET_A} 7200 --recv-only | sha256sum`]);
  const upHash = new Promise<string>((resolve) => {
    let text = '';
    up.stdout!.on('data', (d) => (text += d.toString()));
    up.once('exit', () => resolve(text.split(' ')[0]));
  });
  await sleep(200);
  await lab.exec(m.ns, 'sh', ['-c', `ncat -6 --send-only ${INET_A} 7200 < ${blob}`], 60_000);
  t.is(await upHash, hash, '16 MiB machine → internet');
  const down = lab.start(lab.inet, 'sh', ['-c', `ncat -6 -l ${INET_A} 7201 --send-only < ${blob}`]);
  await sleep(200);
  const got = await lab.exec(m.ns, 'sh', ['-c', `ncat -6 --recv-only ${INET_A} 7201 | sha256sum`], 60_000);
  down.kill();
  t.is(got.split(' ')[0], hash, '16 MiB internet → machine');
  t.regex(await lab.exec(m.ns, 'ip', ['-6', 'route', 'get', INET_A]), /mtu 1280/, 'PMTU learnt through the NAT');

  for (const reverse of [false, true]) {
    const out = await lab.exec(m.ns, 'iperf3', ['-c', INET_A, '-p', '5201', '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 60_000);
    const bps = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
    t.true(bps > 1e6);
    t.log(`offload mode, iperf3 ${reverse ? 'internet → machine' : 'machine → internet'}: ${(bps / 1e6).toFixed(0)} Mbit/s (software checksums on the narrow link)`);
  }
  const s = site.engine.status();
  const big = site.largest;
  t.true(big.out > 1500, `the machine sent segments larger than the MTU through the NAT (largest ${big.out} bytes)`);
  t.true(big.in > 1500, `inbound segments larger than the MTU through the NAT (largest ${big.in} bytes)`);
  t.true(site.partialChecked > 0, 'partial checksums delivered to the machine were checked');
  t.is(site.partialBad, 0, `${site.partialBad} of ${site.partialChecked} partial checksums delivered to the machine do not match their header`);
  t.true(s.nat.errorsIn > 0, 'Packet Too Big translated');
  t.log(`largest packet: out ${big.out} B, in ${big.in} B; partial checksums checked inbound: ${site.partialChecked}; ${JSON.stringify(s.io)}`);
  t.is(s.addresses[0], EGRESS_O);
});

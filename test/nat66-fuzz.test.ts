// SNAT66 against hostile input and against a naive model:
//   - 10,000 random and mutated packets, both directions, never throw, and leave the tables
//     consistent (counts, hash chains, port ownership, the expiry wheel);
//   - random UDP traffic between a few endpoints, checked step by step against a plain model of
//     endpoint-independent mapping, port preservation and address-and-port-dependent filtering.
import test from 'ava';
import {
  ICMPV6_DST_UNREACH,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  IPPROTO_FRAGMENT,
  addressBytes,
  buildEcho,
  buildError,
  readU16,
  writeU16,
  writeU32,
} from '../src/ipv6/index.ts';
import {
  FILTER_ENDPOINT_INDEPENDENT,
  NAT66_DELIVER,
  NAT66_DROP,
  NAT66_FORWARD,
  Nat66,
} from '../src/nat66/index.ts';
import { buildTcp, buildUdp } from './helpers/packets.ts';
import { invariants } from './helpers/nat66-invariants.ts';

let seed = 0x2545f491;
function rnd(n: number): number {
  seed = (seed + 0x6d2b79f5) >>> 0; // mulberry32
  let z = seed;
  z = Math.imul(z ^ (z >>> 15), z | 1);
  z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
  return ((z ^ (z >>> 14)) >>> 0) % n;
}

const EGRESS = [addressBytes('2001:db8:e::1'), addressBytes('2001:db8:e::2')];
const REMOTES = [addressBytes('2001:db8:100::1'), addressBytes('2001:db8:200::2'), addressBytes('2001:db8:300::3')];
function machineAddr(i: number): Uint8Array {
  const a = addressBytes('fdaa:0:18:a7b:7d::2');
  a[11] = i;
  return a;
}
const pick = <T>(xs: T[]): T => xs[rnd(xs.length)];

// A valid packet of some kind, from a machine or from the internet.
function randomPacket(buf: Uint8Array, inbound: boolean): number {
  const mach = machineAddr(rnd(8));
  const remote = pick(REMOTES);
  const eg = pick(EGRESS);
  const [src, dst] = inbound ? [remote, eg] : [mach, rnd(10) === 0 ? eg : remote];
  const sp = rnd(4) === 0 ? rnd(1024) : 1024 + rnd(64);
  const dp = rnd(3) === 0 ? 53 : rnd(65536);
  const data = new Uint8Array(rnd(4) === 0 ? rnd(1400) : rnd(40));
  for (let i = 0; i < data.length; i++) data[i] = rnd(256);
  switch (rnd(6)) {
    case 0:
    case 1:
      return buildUdp(buf, 0, src, 0, dst, 0, sp, dp, data, 0, data.length);
    case 2:
      return buildTcp(buf, 0, src, 0, dst, 0, sp, dp, rnd(2 ** 32), rnd(2 ** 32), rnd(64), data, 0, data.length);
    case 3:
      return buildEcho(buf, 0, pick([ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY]), src, 0, dst, 0, sp, rnd(65536), data, 0, data.length);
    case 4: {
      // An error quoting a packet the other way round.
      const q = new Uint8Array(1500);
      const qlen = buildUdp(q, 0, dst, 0, src, 0, dp, sp, data, 0, data.length);
      return Math.max(0, buildError(buf, 0, ICMPV6_DST_UNREACH + rnd(4), rnd(5), 1280, rnd(2) ? pick(REMOTES) : src, 0, q, 0, qlen));
    }
    default: {
      // A fragment.
      const len = buildUdp(buf, 8, src, 0, dst, 0, sp, dp, data, 0, data.length);
      buf.copyWithin(0, 8, 48);
      buf[6] = IPPROTO_FRAGMENT;
      writeU16(buf, 4, len - 40 + 8);
      buf[40] = 17;
      buf[41] = 0;
      writeU16(buf, 42, rnd(2) ? 0 : 8 * rnd(100));
      writeU32(buf, 44, rnd(4));
      return len + 8;
    }
  }
}

test('10,000 random and mutated packets never throw and keep the tables consistent', (t) => {
  const n = new Nat66({ seed: 9, capacity: 256, perMachineLimit: 64, maxMachines: 8, udpTimeoutMs: 5000, tcpTransitoryTimeoutMs: 3000, tcpEstablishedTimeoutMs: 20_000, icmpTimeoutMs: 2000, wheelGranularityMs: 100 });
  n.addEgress(EGRESS[0]);
  n.addEgress(EGRESS[1]);
  const eif = new Nat66({ seed: 10, capacity: 64, filtering: FILTER_ENDPOINT_INDEPENDENT, maxMachines: 8 });
  eif.addEgress(EGRESS[0]);
  eif.addEgress(EGRESS[1]);
  const buf = new Uint8Array(2048);
  let now = 1_000_000;
  const verdicts = new Map<number, number>();
  for (let i = 0; i < 10_000; i++) {
    const inbound = rnd(2) === 0;
    let len = randomPacket(buf, inbound);
    // Mutations: flipped bytes, truncation, a lying length, or pure noise.
    const how = rnd(5);
    if (how === 1) for (let k = rnd(6); k >= 0; k--) buf[rnd(Math.max(1, Math.min(len, 120)))] ^= 1 << rnd(8);
    else if (how === 2) len = rnd(len + 1);
    else if (how === 3) len += rnd(64);
    else if (how === 4) for (let k = 0; k < len; k++) buf[k] = rnd(256);
    const off = 0;
    try {
      for (const nat of [n, eif]) {
        const v = inbound
          ? nat.inbound(buf, off, len, now)
          : nat.outbound(buf, off, len, rnd(9), rnd(3), now);
        verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
      }
    } catch (e) {
      return t.fail(`packet ${i} threw ${(e as Error).stack}: ${Buffer.from(buf.subarray(0, len)).toString('hex')}`);
    }
    now += rnd(50);
    if (rnd(100) === 0) n.tick(now);
    if (i % 1000 === 999) {
      const bad = invariants(n) || invariants(eif);
      if (bad) return t.fail(`after packet ${i}: ${bad}`);
    }
  }
  t.true((verdicts.get(NAT66_FORWARD) ?? 0) > 500, 'some packets were translated');
  t.true((verdicts.get(NAT66_DELIVER) ?? 0) > 50, 'some came back in');
  n.tick(now + 100_000);
  t.is(n.size, 0);
  t.is(invariants(n), '');
});

test('random UDP traffic against a model of EIM, port preservation and APDF filtering', (t) => {
  const TIMEOUT = 1000;
  const n = new Nat66({ seed: 11, capacity: 512, udpTimeoutMs: TIMEOUT, wheelGranularityMs: 50 });
  n.addEgress(EGRESS[0]);
  type Mapping = { ext: number; sessions: Map<string, number> }; // remote key → expiry
  const model = new Map<string, Mapping>(); // internal endpoint → mapping
  const alive = (m: Mapping, now: number) => [...m.sessions.values()].some((e) => e > now);
  const buf = new Uint8Array(256);
  let now = 5_000_000;
  for (let step = 0; step < 5000; step++) {
    now += rnd(40);
    n.tick(now); // then the NAT holds exactly the sessions with expiry > now
    for (const [k, m] of model) {
      for (const [r, e] of m.sessions) if (e <= now) m.sessions.delete(r);
      if (m.sessions.size === 0) model.delete(k);
    }
    const mi = rnd(4);
    const iport = pick([53, 1000, 5000, 5001]);
    const ri = rnd(3);
    const rport = pick([53, 443]);
    const ikey = `${mi}:${iport}`;
    const rkey = `${ri}:${rport}`;
    if (rnd(2) === 0) {
      const len = buildUdp(buf, 0, machineAddr(mi), 0, REMOTES[ri], 0, iport, rport, buf, 0, 0);
      if (n.outbound(buf, 0, len, mi, 0, now) !== NAT66_FORWARD) return t.fail(`step ${step}: outbound refused`);
      const ext = readU16(buf, 40);
      const m = model.get(ikey);
      if (m) {
        if (m.ext !== ext) return t.fail(`step ${step}: mapping of ${ikey} moved ${m.ext} → ${ext}`);
        m.sessions.set(rkey, now + TIMEOUT);
      } else {
        const taken = new Set([...model.values()].map((x) => x.ext));
        if (taken.has(ext)) return t.fail(`step ${step}: port ${ext} shared`);
        if (!taken.has(iport) && ext !== iport) return t.fail(`step ${step}: port ${iport} free but not kept`);
        if ((iport < 1024) !== (ext < 1024)) return t.fail(`step ${step}: range not kept`);
        model.set(ikey, { ext, sessions: new Map([[rkey, now + TIMEOUT]]) });
      }
    } else {
      // From a remote, to an external port that is mapped (or not).
      const entries = [...model.entries()];
      const target = entries.length > 0 && rnd(4) !== 0 ? pick(entries) : undefined;
      const ext = target ? target[1].ext : 1 + rnd(65535);
      const len = buildUdp(buf, 0, REMOTES[ri], 0, EGRESS[0], 0, rport, ext, buf, 0, 0);
      const v = n.inbound(buf, 0, len, now);
      const owner = entries.find(([, m]) => m.ext === ext && alive(m, now));
      const want = owner && (owner[1].sessions.get(rkey) ?? 0) > now ? NAT66_DELIVER : NAT66_DROP;
      if (v !== want) return t.fail(`step ${step}: inbound ${rkey} → ${ext}: ${v}, model says ${want}`);
      if (v === NAT66_DELIVER) {
        const [mi2, ip2] = owner![0].split(':').map(Number);
        if (n.machine !== mi2 || readU16(buf, 42) !== ip2 || buf[39] !== 2 || buf[35] !== mi2) {
          return t.fail(`step ${step}: delivered to the wrong endpoint`);
        }
      }
    }
    const sessions = [...model.values()].reduce((a, m) => a + m.sessions.size, 0);
    if (n.size !== sessions) return t.fail(`step ${step}: size ${n.size}, model ${sessions}`);
  }
  t.is(invariants(n), '');
});

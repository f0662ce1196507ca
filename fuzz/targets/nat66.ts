// The SNAT66 core: outbound and inbound packets (TCP, UDP, ICMPv6 echo and errors quoting
// anything, fragments, extension headers) through two Nat66 instances (address-and-port
// dependent filtering, and endpoint-independent filtering), time moving on and the expiry
// tick running. Input: [direction, machine, egress][ms to advance][packet]. Invariants:
// nothing throws, verdicts are known, the tables stay consistent (test/helpers/nat66-invariants.ts).
import fc from 'fast-check';
import { addressBytes } from '../../src/ipv6/index.ts';
import { FILTER_ENDPOINT_INDEPENDENT, NAT66_DELIVER, NAT66_DROP, NAT66_FORWARD, Nat66 } from '../../src/nat66/index.ts';
import * as verdicts from '../../src/nat66/constants.ts';
import { invariants } from '../../test/helpers/nat66-invariants.ts';
import { mutatedBytes, type FuzzTarget } from '../lib.ts';
import { build, shape } from './router.ts';

const EGRESS = ['2001:db8:e::1', '2001:db8:e::2'].map(addressBytes);
const POOL = [
  ...EGRESS,
  ...['2001:db8:100::1', '2001:db8:200::2', '2001:db8:300::3', 'fdaa:0:18:a7b:7d:1:0:2', 'fdaa:0:18:a7b:7d:2:0:2',
    'fdaa:0:18:a7b:7d:3:0:2', 'fe80::1', 'ff02::1', '::1', '64:ff9b::1'].map(addressBytes),
];
const CHECK_EVERY = 256;

export async function nat66Target(): Promise<FuzzTarget> {
  const known = new Set(Object.entries(verdicts).filter(([k]) => k.startsWith('NAT66_')).map(([, v]) => v as number));
  for (const v of [NAT66_DELIVER, NAT66_DROP, NAT66_FORWARD]) known.add(v);
  let nats: Nat66[] = [];
  let now = 0;
  let count = 0;
  const reset = () => {
    now = 1_000_000;
    count = 0;
    const a = new Nat66({ seed: 9, capacity: 256, perMachineLimit: 64, maxMachines: 8, udpTimeoutMs: 5000, tcpTransitoryTimeoutMs: 3000, tcpEstablishedTimeoutMs: 20_000, icmpTimeoutMs: 2000, wheelGranularityMs: 100 });
    const b = new Nat66({ seed: 10, capacity: 64, filtering: FILTER_ENDPOINT_INDEPENDENT, maxMachines: 8 });
    for (const n of [a, b]) for (const e of EGRESS) n.addEgress(e);
    nats = [a, b];
  };
  reset();
  const buf = new Uint8Array(70_000);
  const seeds = fc.sample(shape(0), { numRuns: 48, seed: 7 }).map((s, i) => Uint8Array.from([i, 3, ...build(s, POOL, 1500)]));
  const structured = fc
    .tuple(fc.nat(255), fc.nat(255), shape(0))
    .map(([how, dt, s]) => Uint8Array.from([how, dt, ...build(s, POOL, 65_000)]));
  return {
    name: 'nat66',
    seeds,
    arbitrary: (s) => fc.oneof({ arbitrary: structured, weight: 3 }, { arbitrary: mutatedBytes(s, 4096), weight: 1 }),
    run(input: Uint8Array): void {
      if (input.length < 2) return;
      const how = input[0];
      now += input[1] * 20;
      const len = input.length - 2;
      for (const n of nats) {
        buf.set(input.subarray(2)); // each NAT gets the packet as sent
        const v = (how & 1) === 0 ? n.outbound(buf, 0, len, (how >> 1) % 9, (how >> 5) % 3, now) : n.inbound(buf, 0, len, now);
        if (!known.has(v)) throw new Error(`unknown verdict ${v}`);
      }
      if (input[1] === 0xff) for (const n of nats) n.tick(now);
      if (++count % CHECK_EVERY === 0) {
        for (const n of nats) {
          n.tick(now);
          const bad = invariants(n);
          if (bad !== '') throw new Error(`table invariant: ${bad}`);
        }
      }
    },
    reset,
  };
}

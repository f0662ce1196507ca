// UAPI requests (the wg(8) protocol): bytes cut into chunks at random places and fed to the
// streaming parser; each set applied to the in-memory reference device and to the real
// WireGuard device (through src/wg's adapter). Invariants: nothing throws; formatSet of a
// parsed set parses back to the same set; both devices end with the same peers and prefixes.
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { keyToHex } from '../../src/noise/index.ts';
import { MemoryDevice, UapiParser, formatCidr, formatGet, formatSet, type UapiDeviceState, type UapiSet } from '../../src/uapi/index.ts';
import { Device } from '../../src/wg/device.ts';
import { DeviceUapi } from '../../src/wg/uapi-adapter.ts';
import { mutatedBytes, utf8, type FuzzTarget } from '../lib.ts';

const KEYS = ['01', '02', '03', '00', 'ff'].map((b) => b.repeat(32));
const CIDRS = ['10.0.0.0/8', '10.0.0.1/32', '0.0.0.0/0', '::/0', 'fd00::/16', 'fd00::1/128', '192.168.1.7/24', 'fdaa:0:18::/48', '1.2.3.4/33', 'fd00::/129', '::ffff:1.2.3.4/128'];
const VALUES: Record<string, string[]> = {
  private_key: KEYS,
  listen_port: ['0', '51820', '65535', '65536', '-1', 'x'],
  fwmark: ['0', '1', '4294967295', '4294967296'],
  replace_peers: ['true', 'false'],
  public_key: KEYS,
  preshared_key: KEYS,
  endpoint: ['[::1]:51820', '1.2.3.4:5', '[fe80::1%eth0]:1', '1.2.3.4:0', 'host:1', '[::1]:65536'],
  persistent_keepalive_interval: ['0', '25', '65535', '65536'],
  allowed_ip: [...CIDRS, ...CIDRS.map((c) => `-${c}`)],
  replace_allowed_ips: ['true', 'false'],
  remove: ['true', 'false'],
  update_only: ['true', 'false'],
  protocol_version: ['1', '2'],
};
const KEYS_OF = Object.keys(VALUES);

const line = fc.tuple(fc.nat(KEYS_OF.length - 1), fc.nat()).map(([k, v]) => `${KEYS_OF[k]}=${VALUES[KEYS_OF[k]][v % VALUES[KEYS_OF[k]].length]}\n`);
const request = fc.oneof(
  { arbitrary: fc.array(line, { maxLength: 24 }).map((ls) => `set=1\n${ls.join('')}\n`), weight: 6 },
  { arbitrary: fc.constantFrom('get=1\n\n', 'stats=1\n\n', 'get=1\nx', 'set=1\n', 'bogus\n\n', '\n'), weight: 1 },
);
const requests = fc.array(request, { minLength: 1, maxLength: 4 }).map((rs) => utf8.encode(rs.join('')));

/** Peers and their prefixes, the part of a device state both devices must agree on. */
function essentials(s: UapiDeviceState): string[] {
  return s.peers.map((p) => `${keyToHex(p.publicKey)} ${p.allowedIps.map(formatCidr).sort().join(',')}`).sort();
}

export async function uapiTarget(): Promise<FuzzTarget> {
  let memory: MemoryDevice;
  let real: DeviceUapi;
  const reset = () => {
    memory = new MemoryDevice();
    let next = 40000;
    real = new DeviceUapi(new Device({ sendUdp() {}, writeTun() {} }), { bindPort: (p) => (p === 0 ? next++ : p), setFwmark() {} });
  };
  reset();
  const seeds = fc.sample(requests, { numRuns: 32, seed: 11 }).map((r) => Uint8Array.from([0, ...r]));
  const parseAll = (text: string): UapiSet[] => {
    const p = new UapiParser();
    p.feed(utf8.encode(text));
    const sets: UapiSet[] = [];
    for (let r = p.next(); r !== null; r = p.next()) if (r.kind === 'set') sets.push(r.set);
    return sets;
  };
  return {
    name: 'uapi',
    seeds,
    arbitrary: (s) => fc.tuple(fc.oneof(requests, mutatedBytes(s, 8192)), fc.array(fc.nat(), { maxLength: 6 })).map(([bytes, cuts]) => {
      // the cut points travel in front: [count][u16 …][bytes]
      const head = [cuts.length, ...cuts.flatMap((c) => [(c >> 8) & 0xff, c & 0xff])];
      const o = new Uint8Array(head.length + bytes.length);
      o.set(head);
      o.set(bytes, head.length);
      return o;
    }),
    run(input: Uint8Array): void {
      if (input.length === 0) return;
      const ncuts = Math.min(input[0], 8, (input.length - 1) >> 1);
      const cuts: number[] = [];
      for (let i = 0; i < ncuts; i++) cuts.push((input[1 + 2 * i] << 8) | input[2 + 2 * i]);
      const bytes = input.subarray(1 + 2 * ncuts);
      const parser = new UapiParser();
      let at = 0;
      for (const c of cuts.map((c) => c % (bytes.length + 1)).sort((x, y) => x - y)) {
        parser.feed(bytes.subarray(at, Math.max(at, c)));
        at = Math.max(at, c);
      }
      parser.feed(bytes.subarray(at));
      for (let r = parser.next(); r !== null; r = parser.next()) {
        if (r.kind === 'get') formatGet(real.uapiGet());
        if (r.kind !== 'set') continue;
        const again = parseAll(formatSet(r.set).join(''));
        if (again.length !== 1 || !isDeepStrictEqual(again[0], r.set)) throw new Error(`formatSet does not parse back to the same set: ${formatSet(r.set).join('').slice(0, 300)}`);
        const em = memory.uapiSet(r.set);
        const er = real.uapiSet(r.set);
        if (em !== er) throw new Error(`the devices disagree: memory errno ${em}, device errno ${er}`);
        const a = essentials(memory.uapiGet());
        const b = essentials(real.uapiGet());
        if (!isDeepStrictEqual(a, b)) throw new Error(`the devices differ after a set:\n memory ${a.join('\n        ')}\n device ${b.join('\n        ')}`);
      }
    },
    reset,
  };
}

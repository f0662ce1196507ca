// Topology files and host-config files: JSON edited at random (values replaced by any JSON,
// keys dropped, entries repeated) and bytes mutated, through the validator (parseTopology) and
// the host-config parsers (file and flags). Invariants: a bad file is refused with the
// module's own error (TopologyError, HostConfigError) — never another exception; an accepted
// topology is consistent (every machine found at its address, its old addresses moved-from,
// every peer at its /120) and diffs against the example without throwing.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import {
  HostConfigError,
  TopologyError,
  describeDiff,
  diffTopology,
  mergeHostConfig,
  parseHostConfigFile,
  parseHostFlags,
  parseTopology,
  topologyDigest,
  type Topology,
} from '../../src/topology/index.ts';
import { fromUtf8, mutatedBytes, tagged, utf8, type FuzzTarget } from '../lib.ts';

const EXAMPLE = new URL('../../examples/topology.example.json', import.meta.url);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Edit {
  path: number[];
  op: 'set' | 'delete' | 'repeat';
  value: unknown;
}

const edit: fc.Arbitrary<Edit> = fc.record({
  path: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
  op: fc.constantFrom('set' as const, 'set' as const, 'delete' as const, 'repeat' as const),
  value: fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom('0x18', '0:863', 'a7b:7d', '0xffffffff', '0x0', '', 'fdaa::1', '2001:db8::1', '[::1]:0', '1.2.3.4:65536', 'stopped', 'started', -1, 0, 4294967296, 1e300),
  ),
});

/** Applies edits to a copy of `doc`: each path picks keys or elements by index, modulo. */
function applyEdits(doc: Json, edits: Edit[]): Json {
  const root = structuredClone(doc);
  for (const e of edits) {
    let node: Json = root;
    for (let i = 0; i < e.path.length; i++) {
      if (node === null || typeof node !== 'object') break;
      const keys: Array<string | number> = Array.isArray(node) ? node.map((_, k) => k) : Object.keys(node);
      if (keys.length === 0) break;
      const key = keys[e.path[i] % keys.length];
      const last = i === e.path.length - 1;
      const child: Json = (node as Record<string | number, Json>)[key];
      if (!last && child !== null && typeof child === 'object') {
        node = child;
        continue;
      }
      if (e.op === 'set') (node as Record<string | number, Json>)[key] = e.value as Json;
      else if (e.op === 'delete') {
        if (Array.isArray(node)) node.splice(key as number, 1);
        else delete (node as Record<string, Json>)[key as string];
      } else if (Array.isArray(node)) node.push(structuredClone(child));
      else (node as Record<string, Json>)[`${key}`] = structuredClone(child);
      break;
    }
  }
  return root;
}

function checkTopology(t: Topology, example: Topology): void {
  for (const m of t.machines) {
    if (t.machineAt(m.address) !== m) throw new Error(`machine ${m.id} is not found at its address`);
    for (const p of m.previous) {
      const moved = t.movedFrom(p.address);
      if (t.machineAt(p.address) === undefined && moved?.machine !== m) throw new Error(`machine ${m.id}: old address not moved-from`);
    }
  }
  for (const p of t.peers) if (t.peerAt(p.address) !== p) throw new Error(`peer ${p.org}/${p.name} is not found at its address`);
  describeDiff(diffTopology(example, t));
  describeDiff(diffTopology(t, example));
  topologyDigest(t);
}

const HOST_CONFIG: Json = {
  host: 'ams1', privateKeyFile: 'ams1.key', listenPort: 51820, topology: 'topology.json', meshInterface: '6pn0',
  dnsUpstream: ['[2001:db8::53]:53', '192.0.2.53'], offload: true, uplink: 'eth0', egress: '2001:db8:e::11', comment: 'x',
};
const FLAGS = ['--host', '--private-key', '--listen-port', '--uplink', '--topology', '--mesh-interface', '--dns', '--store', '--store-ca',
  '--store-cert', '--store-key', '--offload', '--metrics', '--keylog', '--egress', '-c', '--config', '--bogus'];
const FLAG_VALUES = ['ams1', '0x0a7b0001', '51820', '65535', '0', '65536', 'eth0', '6pn-very-long-interface-name', 'etcd://127.0.0.1:2379',
  'file:///x', 'true', 'false', '127.0.0.1:9586', '[::1]:0', '2001:db8::1', 'fdaa::1', '', '='];

export async function configTarget(): Promise<FuzzTarget> {
  const text = readFileSync(EXAMPLE, 'utf8');
  const example = parseTopology(text, 'topology.example.json');
  const doc = JSON.parse(text) as Json;
  const seeds = [tagged(0, utf8.encode(text)), tagged(1, utf8.encode(JSON.stringify(HOST_CONFIG))), tagged(2, utf8.encode('--host\0ams1\0--listen-port\x0051820'))];
  const topologyEdits = fc.array(edit, { maxLength: 6 }).map((es) => tagged(0, utf8.encode(JSON.stringify(applyEdits(doc, es)))));
  const hostEdits = fc.array(edit, { maxLength: 4 }).map((es) => tagged(1, utf8.encode(JSON.stringify(applyEdits(HOST_CONFIG, es)))));
  const flags = fc
    .array(fc.oneof(fc.constantFrom(...FLAGS), fc.constantFrom(...FLAG_VALUES), fc.tuple(fc.constantFrom(...FLAGS), fc.constantFrom(...FLAG_VALUES)).map(([f, v]) => `${f}=${v}`)), { maxLength: 10 })
    .map((args) => tagged(2, utf8.encode(args.join('\0'))));
  const expect = (what: string, kind: new (...a: never[]) => Error, f: () => void) => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof kind)) throw new Error(`${what} threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.stack ?? err}`);
    }
  };
  return {
    name: 'config',
    seeds,
    arbitrary: (s) => fc.oneof(topologyEdits, hostEdits, flags, mutatedBytes(s, 16_384)),
    run(input: Uint8Array): void {
      if (input.length === 0) return;
      const body = fromUtf8.decode(input.subarray(1));
      switch (input[0] % 3) {
        case 0:
          expect('parseTopology', TopologyError, () => checkTopology(parseTopology(body, 'fuzz.json'), example));
          break;
        case 1:
          expect('parseHostConfigFile', HostConfigError, () => mergeHostConfig(parseHostConfigFile(body, '/etc/sixpn/host.json'), {}));
          break;
        default:
          expect('parseHostFlags', HostConfigError, () => {
            const { config } = parseHostFlags(body.split('\0'), '/tmp');
            mergeHostConfig({}, config);
          });
      }
    },
    reset() {},
  };
}

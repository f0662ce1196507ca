// Incremental edits of every section (src/topology/patch.ts) against the whole-document path.
// The store is modelled as etcd holds it: one entry per identity (org, host, app names, machine
// ids, peers' org/name), each edit a few puts and deletes. On random sequences of edits of the
// example — orgs, hosts, apps (services, egress), machines and peers added, removed and changed,
// with names, ids, keys, endpoints, egress and service addresses drawn from small pools so that
// collisions and dangling references are common, and several sections in one edit — a patch is
// accepted exactly when the whole validation accepts the resulting document; then the patched
// topology answers every question exactly as one built from that document does, and its diff is
// the one between the two whole topologies; a refused patch changes nothing; an edit given back
// as `whole` is one of the kinds patch.ts names.
import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  SECTIONS, describeDiff, diffTopology, dnsView, patchTopology, removeHost, topologyDigest, topologyFromDocument, asDocument,
} from '../src/topology/index.ts';
import type { EntryChange, Section, Topology } from '../src/topology/index.ts';

const EXAMPLE = JSON.parse(readFileSync(fileURLToPath(new URL('../examples/topology.example.json', import.meta.url)), 'utf8'));
type Entry = Record<string, unknown>;
type Store = Record<Section, Map<string, Entry>>;

const idOf = (s: Section, e: Entry): string => (s === 'machines' ? e.id as string : s === 'peers' ? `${e.org as string}/${e.name as string}` : e.name as string);

function storeOf(doc: Record<string, unknown>): Store {
  const st = {} as Store;
  for (const s of SECTIONS) st[s] = new Map(((doc[s] as Entry[] | undefined) ?? []).map((e) => [idOf(s, e), e]));
  return st;
}
const docOf = (st: Store) => ({ version: 1, ...Object.fromEntries(SECTIONS.map((s) => [s, [...st[s].values()]])) });
const clone = (st: Store): Store => storeOf(structuredClone(docOf(st)));

function build(st: Store): Topology | undefined {
  try {
    return topologyFromDocument(structuredClone(docOf(st)), 'whole');
  } catch {
    return undefined;
  }
}

// Orders are left out (a patched entity keeps its place, a rebuilt one comes in the document's order).
const sorted = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();
const ids = (xs: readonly { id?: string; name?: string; org?: string }[]) => xs.map((x) => x.id ?? `${x.org ?? ''}/${x.name ?? ''}`).sort();

/** Everything the router, the DNS server and the host ask a topology, as plain data. */
function view(t: Topology): unknown {
  const dns = dnsView(() => t);
  const addrs = [...t.machines.flatMap((m) => [m.address, ...m.previous.map((p) => p.address)]), ...t.peers.flatMap((p) => [p.address, p.prefix]), ...t.services.map((s) => s.address)];
  return {
    digest: topologyDigest(t),
    orgs: sorted([...t.orgs]), apps: sorted([...t.apps]), hosts: sorted([...t.hosts]), peers: sorted([...t.peers]), services: sorted([...t.services]),
    machines: sorted([...t.machines]),
    byOrg: t.orgs.map((o) => [o.name, t.org(o.name)?.network, t.orgByNetwork(o.network)?.name, ids(t.appsOfOrg(o.name)), ids(t.machinesOfOrg(o.name)), ids(t.peersOfOrg(o.name)), sorted(t.servicesForOrg(o.name).map((s) => s.addressText)), [...dns.apps(o.name)].sort(), ids([...dns.peers(o.name)] as never)]).sort(),
    byApp: t.apps.map((a) => [a.name, t.app(a.name)?.org, ids(t.machinesOfApp(a.name)), ...t.orgs.map((o) => o.name).sort().map((o) => ids([...dns.machines(o, a.name)] as never))]).sort(),
    byHost: t.hosts.map((h) => [h.name, t.host(h.id)?.name, t.hostByName(h.name)?.id, t.hostByKey(h.publicKeyBase64)?.name, ids(t.machinesOnHost(h.id)), ids(t.peersOnGateway(h.id)), ids([...t.movedOffHost(h.id)].map((x) => x.machine))]).sort(),
    at: sorted(addrs.map((a) => [t.machineAt(a, 0)?.id, t.movedFrom(a, 0)?.machine.id, t.peerAt(a, 0)?.name, t.serviceAt(a, 0)?.addressText, t.orgOfAddress(a, 0)?.name, dns.askerOf(a)])),
    keys: sorted(t.peers.map((p) => [t.peerByKey(p.publicKeyBase64)?.name, t.peer(p.org, p.name)?.addressText])),
  };
}

const KEYS = ['mxVLM6Q/ZCB4ugOaHLdmb2kTSRnMJJSnmb/pgjFHjXo=', 'WiD38puIP8cdMjHdhRi15xqd6Do6Z2w7xyCYqjv6vEc=', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', 'ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=', 'QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=', 'not a key'];
const HOST_IDS = ['a7b:7d', '0x30', '0x31', 1, 0];
const REGIONS = ['ams', 'ord', 'syd', 'fra'];
const ENDPOINTS = ['192.0.2.11:51820', '192.0.2.40:51820', '[2001:db8::40]:51820', '192.0.2.41:51820'];
const EGRESS = [undefined, '2001:db8:e::11', '2001:db8:e::100', '2001:db8:e::40', '2001:db8:e::41', 'fdaa::1'];
const NETWORKS = ['0x18', '0:863', '0x20', '0x21', 0];
const SERVICES = ['fdaa:0:18:0:1::3', 'fdaa:0:18:0:1::5', 'fdaa:0:863:0:1::1', 'fdaa:0:20:0:1::1', 'fdaa:0:21:0:1::9', 'fdaa:0:18::3'];
const INSTANCES = [1, 2, 3, 0xa, 0xb, 0x10, 0x7d02, 0];

const n = fc.nat();
const op = fc.oneof(
  fc.record({ k: fc.constant('org+'), name: fc.constantFrom('acme', 'initech', 'o1', 'o2'), network: fc.constantFrom(...NETWORKS), comment: fc.boolean() }),
  fc.record({ k: fc.constant('org-'), pick: n }),
  fc.record({ k: fc.constant('host+'), name: fc.constantFrom('ams1', 'h1', 'h2', '0x40'), id: fc.constantFrom(...HOST_IDS), region: fc.constantFrom(...REGIONS), key: fc.constantFrom(...KEYS), endpoint: fc.constantFrom(...ENDPOINTS), egress: fc.constantFrom(...EGRESS) }),
  fc.record({ k: fc.constant('host~'), pick: n, key: fc.constantFrom(...KEYS), endpoint: fc.constantFrom(...ENDPOINTS), egress: fc.constantFrom(...EGRESS) }),
  fc.record({ k: fc.constant('host-region'), pick: n, region: fc.constantFrom(...REGIONS) }),
  fc.record({ k: fc.constant('host-'), pick: n }),
  fc.record({ k: fc.constant('host-remove-cli'), pick: n }),
  fc.record({ k: fc.constant('app+'), name: fc.constantFrom('shop-web', 'a1', 'a2'), org: fc.constantFrom('acme', 'initech', 'o1', 'nope'), services: fc.subarray(SERVICES, { maxLength: 2 }), egress: fc.constantFrom(...EGRESS), region: fc.constantFrom(...REGIONS) }),
  fc.record({ k: fc.constant('app~'), pick: n, services: fc.subarray(SERVICES, { maxLength: 2 }), egress: fc.constantFrom(...EGRESS) }),
  fc.record({ k: fc.constant('app-org'), pick: n, org: fc.constantFrom('acme', 'initech', 'o1') }),
  fc.record({ k: fc.constant('app-'), pick: n }),
  fc.record({ k: fc.constant('machine-state'), pick: n }),
  fc.record({ k: fc.constant('machine-move'), pick: n, host: n, instance: fc.constantFrom(...INSTANCES) }),
  fc.record({ k: fc.constant('machine+'), app: n, host: n, instance: fc.constantFrom(...INSTANCES), previous: fc.option(n) }),
  fc.record({ k: fc.constant('machine-'), pick: n }),
  fc.record({ k: fc.constant('peer+'), name: fc.constantFrom('ops-laptop', 'p1', 'p2'), org: n, gateway: n, byId: fc.boolean(), key: fc.constantFrom(...KEYS), instance: fc.constantFrom(...INSTANCES), block: fc.constantFrom(0, 1), wrongOrg: fc.boolean() }),
  fc.record({ k: fc.constant('peer~'), pick: n, key: fc.constantFrom(...KEYS) }),
  fc.record({ k: fc.constant('peer-'), pick: n }),
);
type Op = { k: string } & Record<string, unknown>;

const pick = <T>(m: Map<string, T>, i: number): [string, T] | undefined => [...m][i % Math.max(1, m.size)];
const hex = (x: number) => x.toString(16);

/** Applies one operation to the store (puts and deletes by identity, as etcd keys). */
function apply(st: Store, t: Topology, o: Op, serial: number): void {
  const x = o as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  switch (o.k) {
    case 'org+': st.orgs.set(x.name, { name: x.name, network: x.network, ...(x.comment ? { comment: `c${serial}` } : {}) }); break;
    case 'org-': { const e = pick(st.orgs, x.pick); if (e) st.orgs.delete(e[0]); break; }
    case 'host+': st.hosts.set(x.name, { name: x.name, id: x.id, region: x.region, publicKey: x.key, endpoint: x.endpoint, ...(x.egress ? { egress: x.egress } : {}) }); break;
    case 'host~': {
      const e = pick(st.hosts, x.pick);
      if (e) st.hosts.set(e[0], { ...e[1], publicKey: x.key, endpoint: x.endpoint, ...(x.egress ? { egress: x.egress } : {}) });
      break;
    }
    case 'host-region': { const e = pick(st.hosts, x.pick); if (e) st.hosts.set(e[0], { ...e[1], region: x.region }); break; }
    case 'host-': { const e = pick(st.hosts, x.pick); if (e) st.hosts.delete(e[0]); break; }
    case 'host-remove-cli': { // sixpn host remove: previous addresses naming it by name are rewritten to its id
      const e = pick(st.hosts, x.pick);
      if (!e) break;
      const doc = asDocument(structuredClone(docOf(st)));
      try {
        removeHost(doc, e[0]);
      } catch {
        break;
      }
      const next = storeOf(doc);
      for (const s of SECTIONS) st[s] = next[s];
      break;
    }
    case 'app+': st.apps.set(x.name, { name: x.name, org: x.org, ...(x.services.length ? { services: (x.services as string[]).map((a) => ({ address: a, ports: ['80/tcp'] })) } : {}), ...(x.egress ? { egress: { [x.region]: x.egress } } : {}) }); break;
    case 'app~': {
      const e = pick(st.apps, x.pick);
      if (!e) break;
      const next: Entry = { name: e[1].name, org: e[1].org };
      if ((x.services as string[]).length) next.services = (x.services as string[]).map((a) => ({ address: a, ports: ['443/tcp', '53/udp'] }));
      if (x.egress) next.egress = { ams: x.egress };
      st.apps.set(e[0], next);
      break;
    }
    case 'app-org': { const e = pick(st.apps, x.pick); if (e) st.apps.set(e[0], { ...e[1], org: x.org }); break; }
    case 'app-': { const e = pick(st.apps, x.pick); if (e) st.apps.delete(e[0]); break; }
    case 'machine-state': { const e = pick(st.machines, x.pick); if (e) st.machines.set(e[0], { ...e[1], state: e[1].state === 'stopped' ? 'started' : 'stopped' }); break; }
    case 'machine-move': {
      const e = pick(st.machines, x.pick);
      const h = pick(st.hosts, x.host);
      if (!e || !h) break;
      const now = t.machine(e[0]);
      const { region: _r, ...rest } = e[1];
      st.machines.set(e[0], { ...rest, host: h[0], instance: x.instance, ...(now ? { previous: [...((e[1].previous as unknown[]) ?? []), { address: now.addressText, host: hex(now.host >>> 16) + ':' + hex(now.host & 0xffff) }] } : {}) });
      break;
    }
    case 'machine+': {
      const a = pick(st.apps, x.app);
      const h = pick(st.hosts, x.host);
      if (!a || !h) break;
      const id = `ad${serial.toString(36).padStart(12, '0')}`;
      const prev = x.previous === null ? undefined : t.machines[(x.previous as number) % Math.max(1, t.machines.length)];
      st.machines.set(id, { id, app: a[0], host: h[0], instance: x.instance, ...(prev ? { previous: [prev.addressText] } : {}) });
      break;
    }
    case 'machine-': { const e = pick(st.machines, x.pick); if (e) st.machines.delete(e[0]); break; }
    case 'peer+': {
      const org = t.orgs[(x.org as number) % Math.max(1, t.orgs.length)];
      const gw = t.hosts[(x.gateway as number) % Math.max(1, t.hosts.length)];
      if (!org || !gw) break;
      const net = x.wrongOrg ? org.network + 1 : org.network;
      const w = (v: number) => `${hex(v >>> 16)}:${hex(v & 0xffff)}`;
      const address = `fdaa:${w(net)}:${w(gw.id)}:${w(x.instance)}:${hex((x.block as number) * 256 + 2)}/120`;
      st.peers.set(`${org.name}/${x.name}`, { name: x.name, org: org.name, gateway: x.byId ? w(gw.id) : gw.name, publicKey: x.key, address });
      break;
    }
    case 'peer~': { const e = pick(st.peers, x.pick); if (e) st.peers.set(e[0], { ...e[1], publicKey: x.key }); break; }
    case 'peer-': { const e = pick(st.peers, x.pick); if (e) st.peers.delete(e[0]); break; }
  }
}

/** The entries that differ between two stores, as the watch hands them to the patch. */
function changesBetween(a: Store, b: Store): EntryChange[] {
  const out: EntryChange[] = [];
  for (const s of SECTIONS) {
    for (const [id, e] of b[s]) if (JSON.stringify(a[s].get(id)) !== JSON.stringify(e)) out.push({ section: s, id, entry: structuredClone(e) });
    for (const id of a[s].keys()) if (!b[s].has(id)) out.push({ section: s, id, entry: undefined });
  }
  return out;
}

const WHOLE_KINDS = /changes its network|changes its id|changes its region|moves to org|reads as a host id/;

test('patchTopology accepts what the whole validation accepts and answers as the rebuilt topology', (t) => {
  const seen = { applied: 0, refused: 0, whole: 0, sections: new Set<string>() };
  fc.assert(fc.property(fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 20 }), (batches) => {
    let st = storeOf(structuredClone(EXAMPLE));
    let live = build(st)!;
    let serial = 0;
    for (const batch of batches) {
      const next = clone(st);
      for (const o of batch) apply(next, live, o as Op, serial++);
      const changes = changesBetween(st, next);
      if (changes.length === 0) continue;
      const whole = build(next);
      const old = build(st)!;
      const before = JSON.stringify(view(live));
      const r = patchTopology(live, changes, 'patch');
      if ('whole' in r) {
        if (!WHOLE_KINDS.test(r.whole)) throw new Error(`unexpected whole: ${r.whole}`);
        if (JSON.stringify(view(live)) !== before) return false; // given back, but changed something
        seen.whole++;
        if (whole !== undefined) {
          live = whole;
          st = next;
        }
        continue;
      }
      if (whole === undefined) {
        if (!('problems' in r)) throw new Error(`accepted what the whole document refuses: ${JSON.stringify(batch)}`);
        if (JSON.stringify(view(live)) !== before) throw new Error(`a refusal changed the topology: ${JSON.stringify(batch)}`);
        seen.refused++;
        continue;
      }
      if ('problems' in r) throw new Error(`refused a valid edit ${JSON.stringify(batch)}: ${r.problems.map((p) => `${p.entry}: ${p.message}`).join('; ')}`);
      t.deepEqual(view(live), view(whole), `edit ${JSON.stringify(batch)}`);
      t.deepEqual(describeDiff(r.diff).sort(), describeDiff(diffTopology(old, whole)).sort(), `diff of ${JSON.stringify(batch)}`);
      for (const c of changes) seen.sections.add(c.section);
      seen.applied++;
      st = next;
    }
    return true;
  }), { numRuns: Number(process.env.RUNS ?? 400) });
  t.log(`applied ${seen.applied}, refused ${seen.refused}, whole ${seen.whole}; sections ${[...seen.sections].join(', ')}`);
  t.true(seen.applied > 100 && seen.refused > 100 && seen.whole > 0);
});

test('a peer created, then removed: the same topology object, its indexes and diff', (t) => {
  const live = topologyFromDocument(structuredClone(EXAMPLE), 'x');
  const entry = { name: 'p1', org: 'acme', gateway: 'ord1', publicKey: KEYS[2], address: 'fdaa:0:18:a7b:d6b:0:b:2/120' };
  let r = patchTopology(live, [{ section: 'peers', id: 'acme/p1', entry }], 'p');
  if (!('diff' in r)) return t.fail(JSON.stringify(r));
  t.deepEqual(r.diff.peers.added.map((p) => p.name), ['p1']);
  t.is(live.peersOnGateway(0x0a7b0d6b).map((p) => p.name).join(), 'p1');
  t.is(live.peerByKey(KEYS[2])?.name, 'p1');
  r = patchTopology(live, [{ section: 'peers', id: 'acme/p2', entry: { ...entry, name: 'p2' } }], 'p');
  t.true('problems' in r && r.problems.some((p) => /same key as peer "p1"/.test(p.message)), 'a second peer with its key');
  r = patchTopology(live, [{ section: 'peers', id: 'acme/p1', entry: undefined }], 'p');
  if (!('diff' in r)) return t.fail(JSON.stringify(r));
  t.deepEqual(r.diff.peers.removed.map((p) => p.name), ['p1']);
  t.is(live.peersOnGateway(0x0a7b0d6b).length, 0);
  r = patchTopology(live, [{ section: 'hosts', id: 'syd1', entry: undefined }], 'p');
  t.true('problems' in r && r.problems.some((p) => p.entry === 'machines "5683d920c7e418"' && /previous: host: unknown host "syd1"/.test(p.message)), 'a host a previous address names by name');
});

test('removals are refused while something left alone refers to them', (t) => {
  const live = topologyFromDocument(structuredClone(EXAMPLE), 'x');
  const ok = (changes: EntryChange[]) => {
    const r = patchTopology(live, changes, 'p');
    if (!('diff' in r)) throw new Error(JSON.stringify(r));
  };
  const refused = (changes: EntryChange[], entry: string, re: RegExp) => {
    const before = JSON.stringify(view(live));
    const r = patchTopology(live, changes, 'p');
    t.true('problems' in r && r.problems.some((p) => p.entry === entry && re.test(p.message)), `${entry} ${re}: ${JSON.stringify(r)}`);
    t.is(JSON.stringify(view(live)), before);
  };
  // an org whose /48 holds another org's app's service address
  ok([
    { section: 'orgs', id: 'o1', entry: { name: 'o1', network: '0x20' } },
    { section: 'apps', id: 'a1', entry: { name: 'a1', org: 'acme', services: [{ address: 'fdaa:0:20:0:1::1', ports: ['80/tcp'] }] } },
  ]);
  t.is(live.servicesForOrg('o1').length, 1);
  refused([{ section: 'orgs', id: 'o1', entry: undefined }], 'apps "a1"', /fdaa:0:20:0:1::1 is not in the \/48 of any org/);
  // a host that is only the gateway of a peer
  ok([
    { section: 'hosts', id: 'h1', entry: { name: 'h1', id: '0x30', region: 'fra', publicKey: KEYS[3], endpoint: ENDPOINTS[1] } },
    { section: 'peers', id: 'initech/p1', entry: { name: 'p1', org: 'initech', gateway: '0x30', publicKey: KEYS[4], address: 'fdaa:0:863:0:30:0:a:2/120' } },
  ]);
  refused([{ section: 'hosts', id: 'h1', entry: undefined }], 'peers "initech/p1"', /gateway: unknown host "h1"/);
  // an app with machines; an org with apps and peers
  refused([{ section: 'apps', id: 'shop-db', entry: undefined }], 'machines "e2865071b9d412"', /app: unknown app "shop-db"/);
  refused([{ section: 'orgs', id: 'initech', entry: undefined }], 'peers "initech/ci-runner"', /unknown org "initech"/);
  // both sides gone in one edit: fine
  ok([{ section: 'orgs', id: 'o1', entry: undefined }, { section: 'apps', id: 'a1', entry: undefined }]);
  ok([{ section: 'hosts', id: 'h1', entry: undefined }, { section: 'peers', id: 'initech/p1', entry: undefined }]);
  t.deepEqual(view(live), view(topologyFromDocument(structuredClone(EXAMPLE), 'x')));
});

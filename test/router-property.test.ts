// Property tests of org isolation (issue 3, "Tests that must exist"): over random topologies
// (2–4 orgs, 2–5 hosts, 1–40 machines, some stopped, some migrated) and random (source machine,
// destination address) pairs, a packet read from a machine's TUN on its host is delivered — to
// toMachine on the same host, or toMesh to the destination's host and then, replayed into that
// host's Router.fromMesh, to toMachine there — IF AND ONLY IF source and destination are machines
// of one org and the destination is started. The documented exceptions: fdaa::3 and the org's
// own ::3 go to toDns; an old address of a migrated machine of the org is delivered to its new
// address (and the reply comes back from the old one); the hop limit must outlive the routers on
// the way (one per host), and the mesh MTU must fit. Every refusal is an ICMPv6 error back to the
// sender, or silence (multicast, link-local and spoofed sources, stopped senders).
//
// The expected outcome is computed from the generated model (plain arrays), not from the
// Topology indexes the router uses. Seeds: a fixed one, and a new one per run (printed when a
// case fails; rerun with ROUTER_PROPERTY_SEED=<seed>).
import test, { type ExecutionContext } from 'ava';
import {
  IPPROTO_ICMPV6,
  IPV6_OFF_DST,
  IPV6_OFF_SRC,
  SWAP_BOTH,
  addressEquals,
  getHost,
  getInstance,
  getNetwork,
  isOrgDns,
  isSixpn,
  prefixMatch,
  swapPacket,
} from '../src/ipv6/index.ts';
import { Net, type Journey } from './helpers/router-net.ts';
import {
  Rng,
  addr,
  checksumValid,
  packet,
  randomTopology,
  replyTo,
  sixpn,
  text,
  type GenMachine,
  type GenTopology,
  type Proto,
} from './helpers/router-gen.ts';

const TOPOLOGIES = 40;
const CASES_PER_TOPOLOGY = 200;

const addressOf = (m: GenMachine): Uint8Array => sixpn(m.network, m.host, m.instance, 2);

// ---- The model's answer ----

interface Err {
  type: number;
  code: number;
  param: number;
  by: number; // the host whose router sends it
}
type Want =
  | { kind: 'deliver'; to: GenMachine; dst: Uint8Array; routers: number; replySrc: Uint8Array; migrated: boolean }
  | { kind: 'error'; allowed: Err[] }
  | { kind: 'dns' }
  | { kind: 'egress' }
  | { kind: 'nothing' };

function isGlobalUnicast(a: Uint8Array): boolean {
  return (a[0] & 0xe0) === 0x20; // 2000::/3
}

function want(g: GenTopology, s: GenMachine, pkt: Buffer, meshMtu: number, egress: boolean): Want {
  const src = pkt.subarray(IPV6_OFF_SRC, IPV6_OFF_SRC + 16);
  const dst = pkt.subarray(IPV6_OFF_DST, IPV6_OFF_DST + 16);
  const hl = pkt[7];
  if (dst[0] === 0xff || (src[0] === 0xfe && (src[1] & 0xc0) === 0x80)) return { kind: 'nothing' };
  if (!prefixMatch(src, 0, addressOf(s), 0, 112)) return { kind: 'nothing' }; // spoofed
  if (!s.started) return { kind: 'nothing' };
  const err = (type: number, code: number, by: number, param = 0): Want => ({ kind: 'error', allowed: [{ type, code, param, by }] });
  if (!isSixpn(dst, 0)) {
    if (egress && isGlobalUnicast(dst)) return { kind: 'egress' };
    return err(1, 0, s.host);
  }
  const net = getNetwork(dst, 0);
  if (isOrgDns(dst, 0) && (net === 0 || net === s.network)) return { kind: 'dns' };
  if (net !== s.network) return err(1, 1, s.host); // another org: administratively prohibited
  const host = getHost(dst, 0);
  const inst = getInstance(dst, 0);
  let to = g.machines.find((m) => m.network === net && m.host === host && m.instance === inst);
  let migrated = false;
  if (to === undefined) {
    to = g.machines.find((m) => m.network === net && m.previous.some((p) => p.host === host && p.instance === inst));
    migrated = to !== undefined;
  }
  if (to === undefined) return err(1, g.hosts.includes(host) ? 3 : 0, s.host);
  const allowed: Err[] = [];
  if (to.host === s.host) {
    if (!to.started) allowed.push({ type: 1, code: 3, param: 0, by: s.host });
    if (hl <= 1) allowed.push({ type: 3, code: 0, param: 0, by: s.host });
  } else {
    if (pkt.length > meshMtu) allowed.push({ type: 2, code: 0, param: meshMtu, by: s.host });
    if (hl <= 1) allowed.push({ type: 3, code: 0, param: 0, by: s.host });
    if (!to.started) allowed.push({ type: 1, code: 3, param: 0, by: to.host });
    if (hl === 2) allowed.push({ type: 3, code: 0, param: 0, by: to.host });
  }
  if (allowed.length > 0) return { kind: 'error', allowed };
  const replySrc = migrated ? sixpn(net, host, inst, 2) : Buffer.from(dst);
  return { kind: 'deliver', to, dst: migrated ? addressOf(to) : Buffer.from(dst), routers: to.host === s.host ? 1 : 2, replySrc, migrated };
}

// ---- Cases ----

interface Case {
  s: GenMachine;
  pkt: Buffer;
  how: string;
}

function randomCase(r: Rng, g: GenTopology, serial: number, meshMtu: number): Case {
  const started = g.machines.filter((m) => m.started);
  const s = r.chance(0.9) && started.length > 0 ? r.pick(started) : r.pick(g.machines);
  const others = g.networks.filter((n) => n !== s.network);
  let src: Uint8Array;
  let how = '';
  const p = r.int(0, 99);
  if (p < 86) src = addressOf(s);
  else if (p < 90) src = sixpn(s.network, s.host, s.instance, r.int(0, 0xffff)), (how += 'src in its /112; ');
  else if (p < 97) {
    src = r.chance(0.5) ? addressOf(r.pick(g.machines)) : sixpn(r.pick(g.networks), r.pick(g.hosts), r.u32(), 2);
    how += 'spoofed? ';
  } else src = addr(`fe80::${r.int(1, 0xffff).toString(16)}`), (how += 'link-local src; ');

  let dst: Uint8Array;
  const d = r.int(0, 99);
  const same = g.machines.filter((m) => m.network === s.network);
  const moved = g.machines.filter((m) => m.previous.length > 0);
  if (d < 30) dst = addressOf(r.pick(same)), (how += 'same-org machine');
  else if (d < 45) {
    const m = r.pick(g.machines);
    dst = r.chance(0.15) ? sixpn(m.network, m.host, m.instance, r.int(0, 0xffff)) : addressOf(m);
    how += 'any machine';
  } else if (d < 60 && moved.length > 0) {
    const m = r.chance(0.6) && moved.some((x) => x.network === s.network) ? r.pick(moved.filter((x) => x.network === s.network)) : r.pick(moved);
    const prev = r.pick(m.previous);
    dst = sixpn(m.network, prev.host, prev.instance, 2);
    how += 'an old address';
  } else if (d < 72) {
    const net = r.chance(0.5) ? s.network : r.chance(0.7) && others.length ? r.pick(others) : r.u32();
    const host = r.chance(0.7) ? r.pick(g.hosts) : r.u32();
    dst = sixpn(net, host, r.chance(0.5) ? r.int(1, 64) : r.u32(), r.chance(0.8) ? 2 : r.int(0, 0xffff));
    how += 'random fdaa';
  } else if (d < 80) {
    const which = r.int(0, 2);
    dst = which === 0 ? addr('fdaa::3') : sixpn(which === 1 ? s.network : r.pick(others), 0, 0, 3);
    how += 'a DNS address';
  } else if (d < 88) {
    dst = r.bytes(16);
    dst[0] = 0x20 | (dst[0] & 0x1f);
    how += 'global unicast';
  } else if (d < 91) dst = addr(r.pick(['ff02::1', 'ff05::1:3', 'ff02::2'])), (how += 'multicast');
  else {
    const m = r.pick(g.machines.filter((x) => x.network !== s.network).concat(same));
    dst = addressOf(m);
    how += 'another org\'s machine?';
  }

  const proto = r.pick<Proto>(['icmp', 'udp', 'tcp']);
  const hdr = proto === 'tcp' ? 60 : 48;
  const z = r.int(0, 99);
  const size = z < 85 ? r.int(0, 200) : z < 95 ? r.int(meshMtu - hdr - 40, meshMtu - hdr + 40) : meshMtu - hdr;
  const pkt = packet({
    src, dst, proto,
    hopLimit: r.pick([1, 2, 3, 64, 64, 64, 64, 255]),
    id: serial & 0xffff, // unique per case: migration flows of earlier cases must not match
    port: r.int(1, 0xffff),
    payload: r.bytes(Math.max(0, size)),
  });
  return { s, pkt, how };
}

// ---- Checking one case ----

function routerAddress(network: number, host: number): Uint8Array {
  return sixpn(network, host, 0, 1);
}

function errorMatches(b: Buffer, e: Err, sent: Buffer, s: GenMachine): string | null {
  if (b[6] !== IPPROTO_ICMPV6) return 'not ICMPv6';
  if (b[40] !== e.type || b[41] !== e.code || b.readUInt32BE(44) !== e.param) return `type ${b[40]} code ${b[41]} param ${b.readUInt32BE(44)}`;
  if (!addressEquals(b, IPV6_OFF_SRC, routerAddress(s.network, e.by), 0)) return `from ${text(b, IPV6_OFF_SRC)}`;
  if (!addressEquals(b, IPV6_OFF_DST, sent, IPV6_OFF_SRC)) return `to ${text(b, IPV6_OFF_DST)}`;
  if (b[7] !== (e.by === s.host ? 64 : 63)) return `hop limit ${b[7]}`;
  if (b.length !== Math.min(1280, 48 + sent.length)) return `length ${b.length}`;
  if (!checksumValid(b)) return 'bad checksum';
  return null;
}

/** What is wrong with the journey, or null. */
function verdict(net: Net, g: GenTopology, c: Case, j: Journey, w: Want): string | null {
  const machines = j.delivered.map((x) => x.target);
  const sid = c.s.id;
  const counter = (name: string) => [...j.counters].filter(([k]) => k.endsWith(`.${name}`)).reduce((a, [, v]) => a + v, 0);
  const dst = c.pkt.subarray(IPV6_OFF_DST, 40);
  const src = c.pkt.subarray(IPV6_OFF_SRC, 24);
  // counters that name the reason
  const notUnicast = dst[0] === 0xff || (src[0] === 0xfe && (src[1] & 0xc0) === 0x80);
  const spoofed = !notUnicast && !prefixMatch(src, 0, addressOf(c.s), 0, 112);
  if (counter('dropped_not_unicast') !== (notUnicast ? 1 : 0)) return `dropped_not_unicast ${counter('dropped_not_unicast')}`;
  if (counter('dropped_spoofed') !== (spoofed ? 1 : 0)) return `dropped_spoofed ${counter('dropped_spoofed')}`;
  const crossOrg = w.kind === 'error' && w.allowed.length === 1 && w.allowed[0].type === 1 && w.allowed[0].code === 1;
  if (counter('dropped_cross_org') !== (crossOrg ? 1 : 0)) return `dropped_cross_org ${counter('dropped_cross_org')}`;

  switch (w.kind) {
    case 'deliver': {
      if (j.exits.length > 0) return `unexpected ${j.exits[0].kind}`;
      if (machines.length !== 1 || machines[0] !== w.to.id) return `delivered to [${machines}] instead of ${w.to.id}`;
      const b = j.delivered[0].bytes;
      if (b.length !== c.pkt.length) return 'length changed';
      if (b[7] !== c.pkt[7] - w.routers) return `hop limit ${b[7]}, sent ${c.pkt[7]}, ${w.routers} router(s)`;
      if (!addressEquals(b, IPV6_OFF_DST, w.dst, 0)) return `delivered with destination ${text(b, IPV6_OFF_DST)}`;
      if (!addressEquals(b, IPV6_OFF_SRC, c.pkt, IPV6_OFF_SRC)) return 'source changed';
      if (!checksumValid(b)) return 'checksum no longer valid';
      if (!w.migrated && Buffer.compare(b.subarray(8), c.pkt.subarray(8)) !== 0) return 'bytes changed';
      if (counter('migrated_rewrite') !== (w.migrated ? 1 : 0)) return `migrated_rewrite ${counter('migrated_rewrite')}`;
      // the reply from the destination comes back to the sender from the address it used
      const reply = replyTo(b);
      const j2 = net.fromMachine(g.topology.machine(w.to.id)!, reply);
      if (j2.delivered.length !== 1 || j2.delivered[0].target !== sid || j2.exits.length > 0) return `reply: delivered to [${j2.delivered.map((x) => x.target)}]`;
      const rb = j2.delivered[0].bytes;
      if (!addressEquals(rb, IPV6_OFF_SRC, w.replySrc, 0)) return `reply from ${text(rb, IPV6_OFF_SRC)}, expected ${text(w.replySrc)}`;
      if (!addressEquals(rb, IPV6_OFF_DST, c.pkt, IPV6_OFF_SRC)) return `reply to ${text(rb, IPV6_OFF_DST)}`;
      if (rb[7] !== 64 - w.routers) return `reply hop limit ${rb[7]}`;
      if (!checksumValid(rb)) return 'reply checksum';
      return null;
    }
    case 'error': {
      if (j.exits.length > 0) return `unexpected ${j.exits[0].kind}`;
      if (machines.length !== 1 || machines[0] !== sid) return `delivered to [${machines}], expected an error to the sender`;
      const b = j.delivered[0].bytes;
      const why = w.allowed.map((e) => errorMatches(b, e, c.pkt, c.s));
      if (why.every((x) => x !== null)) {
        return `error ${why.join(' / ')}; expected one of ${w.allowed.map((e) => `${e.type}/${e.code}/${e.param} by ${e.by.toString(16)}`).join(', ')}`;
      }
      return null;
    }
    case 'dns':
    case 'egress':
      if (machines.length > 0) return `delivered to [${machines}]`;
      if (j.exits.length !== 1 || j.exits[0].kind !== w.kind) return `exits [${j.exits.map((x) => x.kind)}], expected ${w.kind}`;
      if (w.kind === 'dns' && Buffer.compare(j.exits[0].bytes, c.pkt) !== 0) return 'DNS got altered bytes';
      return null;
    case 'nothing':
      if (machines.length > 0 || j.exits.length > 0) return `out: [${machines}] [${j.exits.map((x) => x.kind)}]`;
      return null;
  }
}

function describeCase(g: GenTopology, c: Case, w: Want): string {
  const m = (x: GenMachine) => `${x.id} org ${x.network.toString(16)} host ${x.host.toString(16)} inst ${x.instance.toString(16)}${x.started ? '' : ' stopped'}`;
  return [
    `case: ${c.how}; from ${m(c.s)}`,
    `packet ${text(c.pkt, IPV6_OFF_SRC)} → ${text(c.pkt, IPV6_OFF_DST)} proto ${c.pkt[6]} hl ${c.pkt[7]} len ${c.pkt.length}`,
    `expected ${w.kind}${w.kind === 'deliver' ? ` to ${m(w.to)}` : ''}`,
    `machines: ${g.machines.map((x) => `${m(x)}${x.previous.length ? ` prev ${x.previous.map((p) => `${p.host.toString(16)}/${p.instance.toString(16)}`)}` : ''}`).join('; ')}`,
  ].join('\n');
}

function runSeed(t: ExecutionContext, seed: number, topologies: number): { cases: number; kinds: Record<string, number> } {
  const r = new Rng(seed);
  const kinds: Record<string, number> = {};
  let cases = 0;
  for (let k = 0; k < topologies; k++) {
    const g = randomTopology(r);
    const meshMtu = r.pick([1420, 1420, 1400, 1280]);
    const egress = r.chance(0.5);
    const net = new Net(g.topology, { meshMtu, egress });
    for (let i = 0; i < CASES_PER_TOPOLOGY; i++) {
      const c = randomCase(r, g, i + 1, meshMtu);
      const w = want(g, c.s, c.pkt, meshMtu, egress);
      const j = net.fromMachine(g.topology.machine(c.s.id)!, c.pkt);
      const bad = verdict(net, g, c, j, w);
      cases++;
      kinds[w.kind] = (kinds[w.kind] ?? 0) + 1;
      if (bad !== null) {
        t.log(`seed ${seed} (ROUTER_PROPERTY_SEED=${seed}), topology ${k}, case ${i}: ${bad}\n${describeCase(g, c, w)}\npath: ${net.describe(j)}`);
        t.fail(`seed ${seed}: ${bad}`);
        return { cases, kinds };
      }
    }
  }
  return { cases, kinds };
}

const RUN_SEED = process.env.ROUTER_PROPERTY_SEED !== undefined ? Number(process.env.ROUTER_PROPERTY_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;

test('from a machine: delivered iff same org and destination started (fixed seed)', (t) => {
  const { cases, kinds } = runSeed(t, 0x6b9e11, TOPOLOGIES);
  t.is(cases, TOPOLOGIES * CASES_PER_TOPOLOGY);
  t.log(`${cases} cases: ${JSON.stringify(kinds)}`);
  // the generator reaches every outcome often enough to mean something
  for (const k of ['deliver', 'error', 'dns', 'egress', 'nothing']) t.true((kinds[k] ?? 0) >= 100, `${k}: ${kinds[k] ?? 0} cases`);
});

test(`from a machine: delivered iff same org and destination started (seed of this run: ${RUN_SEED})`, (t) => {
  const { cases } = runSeed(t, RUN_SEED, TOPOLOGIES);
  t.is(cases, TOPOLOGIES * CASES_PER_TOPOLOGY, `seed ${RUN_SEED}`);
});

// ---- From the mesh ----

// A decrypted packet from host F's mesh peer, in swapped form, on host H: delivered to a machine
// of H iff its source (swapped back) is on F, source and destination are in one existing org,
// and the destination is a started machine of H (and the hop limit allows one more router).
function meshCase(t: ExecutionContext, seed: number, topologies: number): number {
  const r = new Rng(seed);
  let n = 0;
  for (let k = 0; k < topologies; k++) {
    const g = randomTopology(r);
    const net = new Net(g.topology);
    for (let i = 0; i < CASES_PER_TOPOLOGY; i++) {
      const h = r.pick(g.hosts);
      const f = r.pick(g.hosts.filter((x) => x !== h));
      const onF = g.machines.filter((m) => m.host === f);
      const onH = g.machines.filter((m) => m.host === h);
      let src: Uint8Array;
      const a = r.int(0, 9);
      if (a < 5 && onF.length) src = addressOf(r.pick(onF));
      else if (a < 7) src = sixpn(r.pick(g.networks), f, r.u32(), r.int(0, 0xffff)); // anything F hosts
      else if (a < 9) src = addressOf(r.pick(g.machines)); // often spoofed: not on F
      else src = sixpn(r.u32(), f, 1, 2); // an org that does not exist
      let dst: Uint8Array;
      const b = r.int(0, 9);
      if (b < 5 && onH.length) {
        const m = r.pick(onH);
        dst = r.chance(0.7) && g.machines.some((x) => x.network === getNetwork(src, 0) && x.host === h)
          ? addressOf(r.pick(onH.filter((x) => x.network === getNetwork(src, 0))))
          : addressOf(m);
      } else if (b < 7) dst = addressOf(r.pick(g.machines));
      else if (b < 8) dst = sixpn(getNetwork(src, 0), h, r.int(1, 64), 2);
      else if (b < 9 && g.machines.some((m) => m.previous.length)) {
        const m = r.pick(g.machines.filter((x) => x.previous.length));
        dst = sixpn(m.network, m.previous[0].host, m.previous[0].instance, 2);
      } else dst = addr('2001:db8::1');
      const hl = r.pick([1, 2, 64]);
      const plain = packet({ src, dst, proto: r.pick<Proto>(['icmp', 'udp', 'tcp']), hopLimit: hl, id: r.int(0, 0xffff), payload: r.bytes(r.int(0, 64)) });
      const swapped = Buffer.from(plain);
      swapPacket(swapped, 0, SWAP_BOTH);

      // the model
      const net0 = getNetwork(src, 0);
      let expect: 'deliver' | 'error' | 'nothing' = 'nothing';
      let to: GenMachine | undefined;
      if (isSixpn(src, 0) && getHost(src, 0) === f && isSixpn(dst, 0) && getNetwork(dst, 0) === net0 && getHost(dst, 0) === h && g.networks.includes(net0)) {
        to = g.machines.find((m) => m.network === net0 && m.host === h && m.instance === getInstance(dst, 0));
        expect = to !== undefined && to.started && hl > 1 ? 'deliver' : 'error';
      }

      const j = net.fromMesh(h, f, swapped);
      const first = j.steps[0].calls;
      const delivered = first.filter((c) => c.kind === 'machine');
      const back = first.filter((c) => c.kind === 'mesh');
      let bad: string | null = null;
      if (first.some((c) => c.kind !== 'machine' && c.kind !== 'mesh')) bad = 'an exit';
      else if (expect === 'deliver') {
        if (delivered.length !== 1 || delivered[0].target !== to!.id || back.length) bad = `delivered to [${delivered.map((x) => x.target)}]`;
        else {
          const d = delivered[0].bytes;
          const exp = Buffer.from(plain);
          exp[7] = hl - 1;
          if (Buffer.compare(d, exp) !== 0) bad = 'delivered bytes differ from the swapped-back packet with hop limit − 1';
        }
      } else if (delivered.length) bad = `delivered to [${delivered.map((x) => x.target)}]`;
      else if (expect === 'nothing' && back.length) bad = 'answered a packet it must drop silently';
      else if (expect === 'error') {
        if (back.length !== 1 || Number(back[0].target) !== f) bad = 'no ICMPv6 error back over the mesh to the sender';
        else {
          const e = Buffer.from(back[0].bytes);
          swapPacket(e, 0, SWAP_BOTH);
          const type = to !== undefined && to.started ? 3 : 1;
          if (e[6] !== IPPROTO_ICMPV6 || e[40] !== type) bad = `error type ${e[40]}, expected ${type}`;
          else if (!addressEquals(e, IPV6_OFF_SRC, sixpn(net0, h, 0, 1), 0)) bad = `error from ${text(e, IPV6_OFF_SRC)}`;
          else if (!addressEquals(e, IPV6_OFF_DST, src, 0)) bad = `error to ${text(e, IPV6_OFF_DST)}`;
          else if (!checksumValid(back[0].bytes)) bad = 'error checksum (swapped form)';
        }
      }
      n++;
      if (bad !== null) {
        t.log(`seed ${seed}, topology ${k}, case ${i}: ${bad}\nF ${f.toString(16)} → H ${h.toString(16)}: ${text(src)} → ${text(dst)} hl ${hl}, expected ${expect}\npath: ${net.describe(j)}`);
        t.fail(`seed ${seed}: ${bad}`);
        return n;
      }
    }
  }
  return n;
}

test('from the mesh: delivered iff the source is on the sending host, one org, destination a started local machine', (t) => {
  t.is(meshCase(t, 0x3e5a, TOPOLOGIES / 2), (TOPOLOGIES / 2) * CASES_PER_TOPOLOGY);
  t.is(meshCase(t, RUN_SEED ^ 0x5a5a5a5a, TOPOLOGIES / 2), (TOPOLOGIES / 2) * CASES_PER_TOPOLOGY, `seed ${RUN_SEED ^ 0x5a5a5a5a}`);
});

test('the property can fail: a model that lets stopped machines receive disagrees with the router', (t) => {
  const r = new Rng(7);
  let disagreements = 0;
  for (let k = 0; k < 10; k++) {
    const g = randomTopology(r);
    const net = new Net(g.topology);
    for (let i = 0; i < 100; i++) {
      const c = randomCase(r, g, i + 1, 1420);
      const w = want(g, c.s, c.pkt, 1420, false);
      // the wrong model: a stopped destination would be delivered to
      const stoppedTarget = w.kind === 'error' && w.allowed.every((e) => e.type === 1 && e.code === 3) &&
        g.machines.some((m) => !m.started && addressEquals(addressOf(m), 0, c.pkt, IPV6_OFF_DST));
      if (!stoppedTarget) continue;
      const m = g.machines.find((x) => addressEquals(addressOf(x), 0, c.pkt, IPV6_OFF_DST))!;
      const wrong: Want = { kind: 'deliver', to: m, dst: addressOf(m), routers: m.host === c.s.host ? 1 : 2, replySrc: addressOf(m), migrated: false };
      const j = net.fromMachine(g.topology.machine(c.s.id)!, c.pkt);
      if (verdict(net, g, c, j, wrong) !== null) disagreements++;
    }
  }
  t.true(disagreements > 0, `${disagreements} cases`);
});

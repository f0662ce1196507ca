// The router's rules one by one (DESIGN.md "Packet path", issue 3), on a small fixed topology:
// hop limit, Packet Too Big, anti-spoofing, what is not routed, org isolation, unknown and
// stopped destinations, the mesh's own checks, DNS, external peers, and the migration rewrite
// (both directions, its checksums, its end when the topology drops the old address).
import test, { type ExecutionContext } from 'ava';
import {
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_OFF_DST,
  IPV6_OFF_SRC,
  SWAP_BOTH,
  getNetwork,
  swapPacket,
} from '../src/ipv6/index.ts';
import { Router, COUNTERS } from '../src/router/router.ts';
import { parseTopology, type Machine, type Topology } from '../src/topology/index.ts';
import { Net, RecordingIO, type Journey } from './helpers/router-net.ts';
import { addr, checksumValid, packet, replyTo, text, type PacketSpec } from './helpers/router-gen.ts';

// ---- The topology ----
// acme 0x18, initech 0x863; ams1 a7b:1, ord1 a7b:2, syd1 a7b:3
const key = (i: number) => Buffer.alloc(32, i).toString('base64');
const AMS1 = 0x0a7b0001;
const ORD1 = 0x0a7b0002;
const SYD1 = 0x0a7b0003;
// MOVED has two old addresses; `previous` says which ones the topology keeps
function doc(opts: { previous?: 'both' | 'second' | 'none' } = {}) {
  const keep = opts.previous ?? 'both';
  const movedPrevious = keep === 'both' ? ['fdaa:0:18:a7b:3:0:302:2', 'fdaa:0:18:a7b:1:0:302:2'] : keep === 'second' ? ['fdaa:0:18:a7b:1:0:302:2'] : [];
  return {
    version: 1,
    orgs: [{ name: 'acme', network: '0x18' }, { name: 'initech', network: '0x863' }],
    hosts: [
      { name: 'ams1', id: AMS1, region: 'ams', publicKey: key(1), endpoint: '192.0.2.1:51820' },
      { name: 'ord1', id: ORD1, region: 'ord', publicKey: key(2), endpoint: '192.0.2.2:51820' },
      { name: 'syd1', id: SYD1, region: 'syd', publicKey: key(3), endpoint: '192.0.2.3:51820' },
    ],
    apps: [{ name: 'web', org: 'acme' }, { name: 'ledger', org: 'initech' }],
    machines: [
      { id: 'acmeweb0000a01', app: 'web', region: 'ams', host: 'ams1', instance: '0x101' }, // fdaa:0:18:a7b:1:0:101:2
      { id: 'acmeweb0000a02', app: 'web', region: 'ams', host: 'ams1', instance: '0x102' },
      { id: 'acmeweb0000a03', app: 'web', region: 'ams', host: 'ams1', instance: '0x103', state: 'stopped' },
      { id: 'acmeweb0000b01', app: 'web', region: 'ord', host: 'ord1', instance: '0x201' }, // fdaa:0:18:a7b:2:0:201:2
      { id: 'acmeweb0000c01', app: 'web', region: 'syd', host: 'syd1', instance: '0x301', state: 'stopped' },
      // migrated syd1 → ord1, and ord1 → ams1 (to the client's own host)
      { id: 'acmewebmoved01', app: 'web', region: 'ord', host: 'ord1', instance: '0x202', ...(movedPrevious.length ? { previous: movedPrevious } : {}) },
      { id: 'acmewebmoved02', app: 'web', region: 'ams', host: 'ams1', instance: '0x104', ...(keep !== 'none' ? { previous: ['fdaa:0:18:a7b:2:0:204:2'] } : {}) },
      { id: 'initechled0a01', app: 'ledger', region: 'ams', host: 'ams1', instance: '0x401' }, // fdaa:0:863:a7b:1:0:401:2
      { id: 'initechled0b01', app: 'ledger', region: 'ord', host: 'ord1', instance: '0x402' },
    ],
    peers: [
      { name: 'laptop', org: 'acme', gateway: 'ams1', publicKey: key(9), address: 'fdaa:0:18:a7b:1:0:a:2/120' },
      { name: 'ci', org: 'acme', gateway: 'ord1', publicKey: key(10), address: 'fdaa:0:18:a7b:2:0:a:102/120' },
    ],
  };
}
const topo = (opts?: { previous?: 'both' | 'second' | 'none' }): Topology => parseTopology(JSON.stringify(doc(opts)), 'router-unit');
const T = topo();
const M = (id: string): Machine => T.machine(id)!;
const A1 = M('acmeweb0000a01');
const A2 = M('acmeweb0000a02');
const A3_STOPPED = M('acmeweb0000a03');
const B1 = M('acmeweb0000b01');
const C1_STOPPED = M('acmeweb0000c01');
const MOVED = M('acmewebmoved01'); // now fdaa:0:18:a7b:2:0:202:2, was fdaa:0:18:a7b:3:0:302:2 and fdaa:0:18:a7b:1:0:302:2
const MOVED_LOCAL = M('acmewebmoved02'); // now fdaa:0:18:a7b:1:0:104:2, was fdaa:0:18:a7b:2:0:204:2
const I1 = M('initechled0a01');
const I2 = M('initechled0b01');
const MOVED_OLD = 'fdaa:0:18:a7b:3:0:302:2';
const MOVED_OLDER = 'fdaa:0:18:a7b:1:0:302:2';
const MOVED_LOCAL_OLD = 'fdaa:0:18:a7b:2:0:204:2';

const routerAddr = (network: number, host: number) => text(Buffer.from([0xfd, 0xaa, network >>> 24, (network >>> 16) & 255, (network >>> 8) & 255, network & 255, host >>> 24, (host >>> 16) & 255, (host >>> 8) & 255, host & 255, 0, 0, 0, 0, 0, 1]));

const from = (m: Machine, dst: string | Uint8Array, spec: Partial<PacketSpec> = {}) =>
  packet({ src: m.address, dst: typeof dst === 'string' ? addr(dst) : dst, proto: 'icmp', ...spec });

function icmpError(t: ExecutionContext, b: Buffer, e: { type: number; code: number; param?: number; by: number; to: Uint8Array; hl?: number; quote?: Uint8Array }): void {
  t.is(b[6], IPPROTO_ICMPV6, 'ICMPv6');
  t.deepEqual([b[40], b[41], b.readUInt32BE(44)], [e.type, e.code, e.param ?? 0], 'type, code, parameter');
  t.true(checksumValid(b), 'checksum valid');
  t.is(text(b, IPV6_OFF_DST), text(e.to), 'back to the sender');
  t.is(text(b, IPV6_OFF_SRC), routerAddr(getNetwork(e.to, 0), e.by), 'from the erring host\'s router address in the sender\'s org');
  t.is(b[7], e.hl ?? 64, 'hop limit');
  t.true(b.length <= 1280, 'within the minimum MTU');
  if (e.quote) {
    const q = b.subarray(48);
    t.is(q.length, Math.min(e.quote.length, 1280 - 48), 'quote length');
    t.deepEqual([...q.subarray(8, 40)], [...e.quote.subarray(8, 40)], 'quoted addresses');
    t.deepEqual(q.subarray(40), Buffer.from(e.quote.subarray(40, q.length)), 'quoted payload');
  }
}

function only(t: ExecutionContext, net: Net, j: Journey, path: string, counters: string): void {
  t.is(net.describe(j), path, 'path');
  t.is(Net.counterText(j), counters, 'counters');
}

// ---- Hop limit ----

test('1. hop limit 1 to a machine on this host: Time Exceeded back to the sender, nothing delivered', (t) => {
  const net = new Net(T);
  const p = from(A1, A2.address, { hopLimit: 1 });
  const j = net.fromMachine(A1, p);
  only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_hop_limit ams1.icmp_sent');
  icmpError(t, j.delivered[0].bytes, { type: 3, code: 0, by: AMS1, to: A1.address, quote: p });
});

test('2. hop limit 1 (and 0) to another host: Time Exceeded from this host, nothing on the mesh', (t) => {
  for (const hl of [1, 0]) {
    const net = new Net(T);
    const p = from(A1, B1.address, { hopLimit: hl, proto: 'udp' });
    const j = net.fromMachine(A1, p);
    only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_hop_limit ams1.icmp_sent');
    icmpError(t, j.delivered[0].bytes, { type: 3, code: 0, by: AMS1, to: A1.address, quote: p });
  }
});

test('3. hop limit 2 to another host: decremented to 1 on the mesh, expires there, the error comes back over the mesh swapped', (t) => {
  const net = new Net(T);
  const p = from(A1, B1.address, { hopLimit: 2, proto: 'tcp' });
  const j = net.fromMachine(A1, p);
  only(t, net, j, 'ams1 toMesh ord1 | ord1 toMesh ams1 | ams1 toMachine acmeweb0000a01',
    'ams1.forwarded_local ams1.forwarded_mesh ord1.dropped_hop_limit ord1.icmp_sent');
  const there = j.steps[0].calls[0].bytes;
  t.is(there[7], 1, 'hop limit 1 on the mesh');
  const back = j.steps[1].calls[0].bytes; // ord1 → ams1, swapped
  t.is(text(back, IPV6_OFF_SRC), 'fdaa:a7b:2:0:18::1', 'swapped source: in ord1\'s fdaa:a7b:2::/48');
  t.is(text(back, IPV6_OFF_DST), 'fdaa:a7b:1:0:18:0:101:2', 'swapped destination: in ams1\'s /48');
  t.true(checksumValid(back), 'checksum valid in swapped form');
  const quote = Buffer.from(p);
  quote[7] = 1;
  icmpError(t, j.delivered[0].bytes, { type: 3, code: 0, by: ORD1, to: A1.address, hl: 63, quote });
});

test('4. hop limit 1 arriving from the mesh: Time Exceeded back to the sending host over the mesh, swapped', (t) => {
  const net = new Net(T);
  const p = from(B1, A1.address, { hopLimit: 1 });
  const swapped = Buffer.from(p);
  swapPacket(swapped, 0, SWAP_BOTH);
  const r = net.router('ams1');
  const io = net.ios.get(AMS1)!;
  const buf = new Uint8Array(swapped.length + 8);
  buf.set(swapped, 8);
  r.fromMesh(ORD1, buf, 8, swapped.length);
  t.is(io.calls.length, 1);
  const c = io.calls[0];
  t.is(c.kind, 'mesh');
  t.is(Number(c.target), ORD1, 'to the host it came from');
  t.is(getNetwork(c.bytes, IPV6_OFF_SRC), AMS1, 'swapped: source in ams1\'s /48');
  t.is(getNetwork(c.bytes, IPV6_OFF_DST), ORD1, 'swapped: destination in ord1\'s /48');
  const e = Buffer.from(c.bytes);
  swapPacket(e, 0, SWAP_BOTH);
  icmpError(t, e, { type: 3, code: 0, by: AMS1, to: B1.address, quote: p });
  t.is(r.counters.dropped_hop_limit, 1);
  t.is(r.counters.forwarded_local, 0);
});

test('5. hop limit is decremented once per router: 64 → 63 on the same host, 62 across hosts', (t) => {
  const net = new Net(T);
  t.is(net.fromMachine(A1, from(A1, A2.address)).delivered[0].bytes[7], 63);
  t.is(net.fromMachine(A1, from(A1, B1.address)).delivered[0].bytes[7], 62);
  t.is(net.fromMachine(A1, from(A1, A2.address, { hopLimit: 2 })).delivered[0].bytes[7], 1, 'hop limit 2 still reaches a local machine');
});

// ---- Packet Too Big ----

test('6. a packet larger than the mesh MTU to another host: Packet Too Big with that MTU; exactly the MTU passes', (t) => {
  for (const mtu of [1420, 1280, 1400]) {
    const net = new Net(T, { meshMtu: mtu });
    const big = from(A1, B1.address, { proto: 'udp', payload: new Uint8Array(mtu - 48 + 1) });
    t.is(big.length, mtu + 1);
    const j = net.fromMachine(A1, big);
    only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_too_big ams1.icmp_sent');
    icmpError(t, j.delivered[0].bytes, { type: 2, code: 0, param: mtu, by: AMS1, to: A1.address, quote: big });
    t.is(j.delivered[0].bytes.length, 1280, 'the quote fills the error up to 1280 bytes');
    const fits = from(A1, B1.address, { proto: 'udp', payload: new Uint8Array(mtu - 48) });
    only(t, net, net.fromMachine(A1, fits), 'ams1 toMesh ord1 | ord1 toMachine acmeweb0000b01', 'ams1.forwarded_mesh ord1.forwarded_local');
  }
});

// ---- What is not routed ----

test('7. anti-spoofing: a source outside the machine\'s /112 is dropped silently; inside it, any free bits pass', (t) => {
  const net = new Net(T, { egress: true });
  for (const src of [A2.address, B1.address, I1.address, addr('fdaa:0:18:a7b:1:0:100:2'), addr('fdaa:0:18:a7b:1:0:101:2').map((x, i) => (i === 5 ? 0x19 : x)), addr('::'), addr('2001:db8::1')]) {
    const j = net.fromMachine(A1, packet({ src, dst: A2.address, proto: 'icmp' }));
    only(t, net, j, 'ams1 drop', 'ams1.dropped_spoofed');
  }
  const j = net.fromMachine(A1, packet({ src: addr('fdaa:0:18:a7b:1:0:101:beef'), dst: A2.address, proto: 'icmp' }));
  only(t, net, j, 'ams1 toMachine acmeweb0000a02', 'ams1.forwarded_local');
});

test('8. link-local sources and multicast destinations (neighbour discovery, MLD, ping ff02::1) are not routed', (t) => {
  const net = new Net(T, { egress: true });
  const cases: Array<[string, string]> = [
    ['fe80::1', 'ff02::2'], // router solicitation
    ['fe80::1', 'ff02::16'], // MLDv2 report
    ['fe80::1', 'fe80::2'],
    ['fe80::1', A2.addressText],
    [A1.addressText, 'ff02::1'],
    [A1.addressText, 'ff02::1:ff00:2'], // solicited-node
    [A1.addressText, 'ff05::1:3'],
  ];
  for (const [s, d] of cases) {
    const j = net.fromMachine(A1, packet({ src: addr(s), dst: addr(d), proto: 'icmp', hopLimit: 255 }));
    only(t, net, j, 'ams1 drop', 'ams1.dropped_not_unicast');
  }
});

test('9. malformed packets are dropped and counted', (t) => {
  const net = new Net(T);
  const good = from(A1, A2.address);
  const bad = [good.subarray(0, 39), Buffer.concat([Buffer.from([0x40]), good.subarray(1)]), (() => { const b = Buffer.from(good); b.writeUInt16BE(500, 4); return b; })()];
  for (const b of bad) only(t, net, net.fromMachine(A1, b), 'ams1 drop', 'ams1.dropped_malformed');
  only(t, net, net.fromMesh(AMS1, ORD1, good.subarray(0, 20)), 'ams1 drop', 'ams1.dropped_malformed');
});

// ---- Org isolation ----

test('10. across orgs: administratively prohibited (code 1) and dropped_cross_org, same host or not', (t) => {
  const net = new Net(T);
  const targets = [I1.addressText, I2.addressText, 'fdaa:0:863::3', 'fdaa:0:863:a7b:1:0:999:2', 'fdaa:1234:5678:a7b:1:0:101:2'];
  for (const d of targets) {
    for (const proto of ['icmp', 'udp', 'tcp'] as const) {
      const p = from(A1, d, { proto });
      const j = net.fromMachine(A1, p);
      only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_cross_org ams1.icmp_sent');
      icmpError(t, j.delivered[0].bytes, { type: 1, code: 1, by: AMS1, to: A1.address, quote: p });
    }
  }
  // and initech the other way, to acme's machines and acme's DNS ::3
  for (const d of [A1.addressText, B1.addressText, 'fdaa:0:18::3']) {
    const j = net.fromMachine(I1, from(I1, d));
    only(t, net, j, 'ams1 toMachine initechled0a01', 'ams1.dropped_cross_org ams1.icmp_sent');
  }
});

test('11. DNS: fdaa::3 and the sender\'s own org ::3 go to toDns unchanged, hop limit and all', (t) => {
  const net = new Net(T);
  for (const [m, d] of [[A1, 'fdaa::3'], [A1, 'fdaa:0:18::3'], [I1, 'fdaa::3'], [I1, 'fdaa:0:863::3']] as const) {
    const p = from(m, d, { proto: 'udp', port: 53, hopLimit: 1 });
    const j = net.fromMachine(m, p);
    only(t, net, j, 'ams1 toDns', 'ams1.dns');
    t.deepEqual(j.exits[0].bytes, p);
  }
});

// ---- Unknown and stopped destinations ----

test('12. an unknown host in the org: no route (code 0)', (t) => {
  const net = new Net(T);
  const p = from(A1, 'fdaa:0:18:dead:beef:0:1:2');
  const j = net.fromMachine(A1, p);
  only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_no_route ams1.icmp_sent');
  icmpError(t, j.delivered[0].bytes, { type: 1, code: 0, by: AMS1, to: A1.address, quote: p });
});

test('13. an unknown machine on a known host (this one or another): address unreachable (code 3)', (t) => {
  const net = new Net(T);
  for (const d of ['fdaa:0:18:a7b:1:0:999:2', 'fdaa:0:18:a7b:2:0:999:2', 'fdaa:0:18:a7b:3::2', routerAddr(0x18, ORD1)]) {
    const p = from(A1, d);
    const j = net.fromMachine(A1, p);
    only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_unreachable ams1.icmp_sent');
    icmpError(t, j.delivered[0].bytes, { type: 1, code: 3, by: AMS1, to: A1.address, quote: p });
  }
});

test('14. a stopped machine: address unreachable, from this host or back over the mesh from its host', (t) => {
  const net = new Net(T);
  let p = from(A1, A3_STOPPED.address);
  let j = net.fromMachine(A1, p);
  only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_unreachable ams1.icmp_sent');
  icmpError(t, j.delivered[0].bytes, { type: 1, code: 3, by: AMS1, to: A1.address, quote: p });
  p = from(A1, C1_STOPPED.address, { proto: 'tcp' });
  j = net.fromMachine(A1, p);
  only(t, net, j, 'ams1 toMesh syd1 | syd1 toMesh ams1 | ams1 toMachine acmeweb0000a01',
    'ams1.forwarded_local ams1.forwarded_mesh syd1.dropped_unreachable syd1.icmp_sent');
  const quote = Buffer.from(p);
  quote[7] = 63;
  icmpError(t, j.delivered[0].bytes, { type: 1, code: 3, by: SYD1, to: A1.address, hl: 63, quote });
});

test('15. a stopped machine sends nothing', (t) => {
  const net = new Net(T);
  only(t, net, net.fromMachine(A3_STOPPED, from(A3_STOPPED, A1.address)), 'ams1 drop', 'ams1.dropped_unreachable');
});

test('16. the Internet without egress: no route (code 0); with egress, toEgress', (t) => {
  let net = new Net(T);
  const p = from(A1, '2001:db8::1');
  const j = net.fromMachine(A1, p);
  only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_no_egress ams1.icmp_sent');
  icmpError(t, j.delivered[0].bytes, { type: 1, code: 0, by: AMS1, to: A1.address, quote: p });
  net = new Net(T, { egress: true });
  only(t, net, net.fromMachine(A1, p), 'ams1 toEgress', 'ams1.forwarded_egress');
});

// ---- The mesh ----

function meshIn(net: Net, host: number, fromHost: number, plain: Buffer): Journey {
  const s = Buffer.from(plain);
  swapPacket(s, 0, SWAP_BOTH);
  return net.fromMesh(host, fromHost, s);
}

test('17. from the mesh: a same-org packet for a started local machine is swapped back and delivered, hop limit − 1', (t) => {
  const net = new Net(T);
  for (const proto of ['icmp', 'udp', 'tcp'] as const) {
    const p = from(B1, A1.address, { proto, payload: Buffer.from('6pn') });
    const j = meshIn(net, AMS1, ORD1, p);
    only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.forwarded_local');
    const want = Buffer.from(p);
    want[7] = 63;
    t.deepEqual(j.delivered[0].bytes, want);
  }
});

test('18. from the mesh: a source whose host field (swapped back) is not the sending host is dropped_spoofed', (t) => {
  const net = new Net(T);
  for (const [src, fromHost] of [[A2, ORD1], [B1, SYD1], [I2, SYD1]] as const) {
    only(t, net, meshIn(net, AMS1, fromHost, from(src, A1.address)), 'ams1 drop', 'ams1.dropped_spoofed');
  }
  // a non-6PN source cannot come from the mesh either
  only(t, net, meshIn(net, AMS1, ORD1, packet({ src: addr('2001:db8::2'), dst: A1.address, proto: 'udp' })), 'ams1 drop', 'ams1.dropped_spoofed');
});

test('19. from the mesh: across orgs is dropped_cross_org, silently', (t) => {
  const net = new Net(T);
  only(t, net, meshIn(net, AMS1, ORD1, from(I2, A1.address)), 'ams1 drop', 'ams1.dropped_cross_org');
  only(t, net, meshIn(net, AMS1, ORD1, from(B1, I1.address)), 'ams1 drop', 'ams1.dropped_cross_org');
  only(t, net, meshIn(net, AMS1, ORD1, from(B1, '2001:db8::1')), 'ams1 drop', 'ams1.dropped_cross_org');
  only(t, net, meshIn(net, AMS1, ORD1, from(B1, 'fdaa::3')), 'ams1 drop', 'ams1.dropped_cross_org');
});

test('20. from the mesh: a packet for another host is dropped_not_local (no transit)', (t) => {
  const net = new Net(T);
  only(t, net, meshIn(net, AMS1, ORD1, from(B1, 'fdaa:0:18:a7b:3:0:301:2')), 'ams1 drop', 'ams1.dropped_not_local');
  only(t, net, meshIn(net, AMS1, ORD1, from(B1, B1.address)), 'ams1 drop', 'ams1.dropped_not_local');
  // nor is an old address rewritten for another host's client
  only(t, net, meshIn(net, AMS1, ORD1, from(B1, MOVED_OLD)), 'ams1 drop', 'ams1.dropped_not_local');
});

test('21. from the mesh: an unknown org is dropped_no_route; a stopped or unknown local machine is answered over the mesh', (t) => {
  const net = new Net(T);
  const ghost = packet({ src: addr('fdaa:77:77:a7b:2:0:1:2'), dst: addr('fdaa:77:77:a7b:1:0:1:2'), proto: 'icmp' });
  only(t, net, meshIn(net, AMS1, ORD1, ghost), 'ams1 drop', 'ams1.dropped_no_route');
  for (const d of [A3_STOPPED.addressText, 'fdaa:0:18:a7b:1:0:999:2']) {
    const j = meshIn(net, AMS1, ORD1, from(B1, d));
    t.is(Net.counterText(j), 'ams1.dropped_unreachable ams1.icmp_sent ord1.forwarded_local');
    t.is(net.describe(j), 'ams1 toMesh ord1 | ord1 toMachine acmeweb0000b01');
    icmpError(t, j.delivered[0].bytes, { type: 1, code: 3, by: AMS1, to: B1.address, hl: 63 });
  }
});

// ---- External peers ----

test('22. external peers: this gateway delivers unswapped (toPeer), another gateway is reached over the mesh', (t) => {
  const net = new Net(T);
  const p = from(A1, 'fdaa:0:18:a7b:1:0:a:2', { proto: 'udp' });
  const j = net.fromMachine(A1, p);
  only(t, net, j, 'ams1 toPeer laptop', 'ams1.forwarded_peer');
  const want = Buffer.from(p);
  want[7] = 63;
  t.deepEqual(j.exits[0].bytes, want, 'unswapped, hop limit − 1');
  only(t, net, net.fromMachine(A1, from(A1, 'fdaa:0:18:a7b:2:0:a:102')), 'ams1 toMesh ord1 | ord1 toPeer ci', 'ams1.forwarded_mesh ord1.forwarded_peer');
  // a peer may only send from its /120
  const r = net.router('ams1');
  const laptop = T.peer('acme', 'laptop')!;
  const spoof = packet({ src: addr('fdaa:0:18:a7b:1:0:b:2'), dst: A1.address, proto: 'icmp' });
  r.fromPeer(laptop, spoof, 0, spoof.length);
  t.is(r.counters.dropped_spoofed, 1);
  const ok = packet({ src: addr('fdaa:0:18:a7b:1:0:a:7'), dst: B1.address, proto: 'icmp' });
  const before = r.counters.forwarded_mesh;
  r.fromPeer(laptop, ok, 0, ok.length);
  t.is(r.counters.forwarded_mesh, before + 1);
});

// ---- Migration ----

function migrationRoundTrip(t: ExecutionContext, net: Net, client: Machine, old: string, target: Machine, spec: Partial<PacketSpec>, routers: number, path: string, replyPath: string): void {
  const p = from(client, old, spec);
  const j = net.fromMachine(client, p);
  t.is(net.describe(j), path, 'request path');
  t.is(j.counters.get('ams1.migrated_rewrite'), 1, 'request rewritten on the client\'s host');
  const req = j.delivered[0].bytes;
  t.is(text(req, IPV6_OFF_DST), target.addressText, 'destination rewritten to the new address');
  t.is(text(req, IPV6_OFF_SRC), client.addressText, 'source untouched');
  t.true(checksumValid(req), 'transport checksum valid after the rewrite');
  t.not(req.readUInt16BE(40 + (p[6] === IPPROTO_TCP ? 16 : p[6] === IPPROTO_UDP ? 6 : 2)), p.readUInt16BE(40 + (p[6] === IPPROTO_TCP ? 16 : p[6] === IPPROTO_UDP ? 6 : 2)), 'the checksum changed with the address');
  t.is(req[7], 64 - routers);
  const l4h = p[6] === IPPROTO_TCP ? 20 : 8;
  t.deepEqual(req.subarray(40 + l4h), p.subarray(40 + l4h), 'payload unchanged');
  // the reply, from the new address, reaches the client from the old one
  const r = net.fromMachine(target, replyTo(req));
  t.is(net.describe(r), replyPath, 'reply path');
  t.is(r.counters.get('ams1.migrated_rewrite'), 1, 'reply rewritten back on the client\'s host');
  const rep = r.delivered[0].bytes;
  t.is(text(rep, IPV6_OFF_SRC), old, 'reply source rewritten back to the old address');
  t.is(text(rep, IPV6_OFF_DST), client.addressText);
  t.true(checksumValid(rep), 'reply checksum valid');
}

test('23. migration: a request to an old address is rewritten to the new one (checksum valid); the reply comes back from the old address', (t) => {
  for (const proto of ['icmp', 'udp', 'tcp'] as const) {
    const net = new Net(T);
    migrationRoundTrip(t, net, A1, MOVED_OLD, MOVED, { proto, id: 40000, port: 7000, payload: Buffer.from('hello-old-address') }, 2,
      'ams1 toMesh ord1 | ord1 toMachine acmewebmoved01', 'ord1 toMesh ams1 | ams1 toMachine acmeweb0000a01');
    migrationRoundTrip(t, net, A1, MOVED_LOCAL_OLD, MOVED_LOCAL, { proto, id: 40001, port: 7001 }, 1,
      'ams1 toMachine acmewebmoved02', 'ams1 toMachine acmeweb0000a01');
  }
});

test('24. migration: only the flows that used the old address are rewritten back; other orgs cannot use it', (t) => {
  const net = new Net(T);
  net.fromMachine(A1, from(A1, MOVED_OLD, { proto: 'udp', id: 5000, port: 53 }));
  // another flow of the same client to the new address: its reply keeps the new address
  const other = net.fromMachine(A1, from(A1, MOVED.address, { proto: 'udp', id: 5001, port: 53 }));
  const reply = net.fromMachine(MOVED, replyTo(other.delivered[0].bytes));
  t.is(text(reply.delivered[0].bytes, IPV6_OFF_SRC), MOVED.addressText);
  t.is(reply.counters.get('ams1.migrated_rewrite'), undefined);
  // another client (A2) did not use the old address: not rewritten either
  const r2 = net.fromMachine(MOVED, packet({ src: MOVED.address, dst: A2.address, proto: 'udp', id: 53, port: 5000 }));
  t.is(text(r2.delivered[0].bytes, IPV6_OFF_SRC), MOVED.addressText);
  // initech asking for acme's old address: cross-org
  only(t, net, net.fromMachine(I1, from(I1, MOVED_OLD)), 'ams1 toMachine initechled0a01', 'ams1.dropped_cross_org ams1.icmp_sent');
});

test('25. migration: after setTopology without the previous address, no more rewrite either way', (t) => {
  const net = new Net(T);
  const p = from(A1, MOVED_OLD, { proto: 'tcp', id: 41000, port: 7000 });
  const req = net.fromMachine(A1, p).delivered[0].bytes;
  net.setTopology(topo({ previous: 'none' }));
  // the old address now names nothing: syd1 is a known host, so address unreachable
  const j = net.fromMachine(A1, from(A1, MOVED_OLD, { proto: 'tcp', id: 41000, port: 7000 }));
  only(t, net, j, 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_unreachable ams1.icmp_sent');
  t.is(j.delivered[0].bytes[41], 3);
  // and a late reply of the flow is no longer rewritten back
  const r = net.fromMachine(net.topology.machine(MOVED.id)!, replyTo(req));
  t.is(Net.counterText(r), 'ams1.forwarded_local ord1.forwarded_mesh');
  t.is(text(r.delivered[0].bytes, IPV6_OFF_SRC), MOVED.addressText);
});

test('25b. migration: a topology that drops one of two old addresses ends the flows of that one only', (t) => {
  const net = new Net(T);
  const viaDropped = net.fromMachine(A1, from(A1, MOVED_OLD, { proto: 'udp', id: 43000, port: 9 })).delivered[0].bytes;
  const viaKept = net.fromMachine(A1, from(A1, MOVED_OLDER, { proto: 'udp', id: 43001, port: 9 })).delivered[0].bytes;
  t.is(text(viaKept, IPV6_OFF_DST), MOVED.addressText, 'the other old address is rewritten too');
  net.setTopology(topo({ previous: 'second' }));
  const moved = net.topology.machine(MOVED.id)!;
  t.is(text(net.fromMachine(moved, replyTo(viaDropped)).delivered[0].bytes, IPV6_OFF_SRC), MOVED.addressText, 'dropped address: no rewrite back');
  t.is(text(net.fromMachine(moved, replyTo(viaKept)).delivered[0].bytes, IPV6_OFF_SRC), MOVED_OLDER, 'kept address: still rewritten back');
  only(t, net, net.fromMachine(A1, from(A1, MOVED_OLD)), 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_unreachable ams1.icmp_sent');
});

test('26. migration: a flow idle past its lifetime is forgotten by expire()', (t) => {
  const net = new Net(T);
  const req = net.fromMachine(A1, from(A1, MOVED_OLD, { proto: 'udp', id: 42000, port: 9 })).delivered[0].bytes;
  net.clock += 299_000;
  net.router('ams1').expire();
  let r = net.fromMachine(MOVED, replyTo(req));
  t.is(text(r.delivered[0].bytes, IPV6_OFF_SRC), MOVED_OLD, 'still known before the lifetime');
  net.clock += 300_001; // the reply above refreshed it
  net.router('ams1').expire();
  r = net.fromMachine(MOVED, replyTo(req));
  t.is(text(r.delivered[0].bytes, IPV6_OFF_SRC), MOVED.addressText, 'forgotten after it');
});

// ---- Counters ----

test('27. counters: every name in COUNTERS starts at zero and only the named ones move', (t) => {
  const io = new RecordingIO(AMS1);
  const r = new Router(T, AMS1, io);
  t.deepEqual(Object.keys(r.counters).sort(), [...COUNTERS].sort());
  t.true(Object.values(r.counters).every((v) => v === 0));
  const p = from(A1, A2.address);
  r.fromMachine(A1, p, 0, p.length);
  t.deepEqual(Object.entries(r.counters).filter(([, v]) => v !== 0), [['forwarded_local', 1]]);
});

// ---- Regressions: the four router bugs the replay and property tests found ----

test('28. only global unicast goes to egress: link-local, loopback, unspecified and other ULA destinations do not', (t) => {
  for (const [dst, path, counters] of [
    ['fe80::1', '', 'ams1.dropped_not_unicast'],
    ['::1', '', 'ams1.dropped_not_unicast'],
    ['::', '', 'ams1.dropped_not_unicast'],
    ['fc00::1', 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_no_route ams1.icmp_sent'],
    ['fdab::1', 'ams1 toMachine acmeweb0000a01', 'ams1.dropped_no_route ams1.icmp_sent'],
    ['2001:db8::1', 'ams1 toEgress acmeweb0000a01', 'ams1.forwarded_egress'],
  ] as const) {
    const net = new Net(T, { egress: true });
    const j = net.fromMachine(A1, from(A1, dst));
    t.is(Net.counterText(j), counters, dst);
    if (path.includes('toMachine')) icmpError(t, j.delivered[0].bytes, { type: 1, code: 0, by: AMS1, to: A1.address });
    if (path.includes('toEgress')) t.is(j.exits.length, 1, `${dst} leaves through egress`);
    if (path === '') t.is(j.exits.length + j.delivered.length, 0, `${dst}: nothing sent`);
  }
});

test('29. hop limit expiring on the way to an external peer: Time Exceeded goes back over the mesh', (t) => {
  const net = new Net(T);
  const p = from(B1, 'fdaa:0:18:a7b:1:0:a:2', { hopLimit: 2 }); // ord1's B1 → ams1's laptop
  const j = net.fromMachine(B1, p);
  t.is(Net.counterText(j), 'ams1.dropped_hop_limit ams1.icmp_sent ord1.forwarded_local ord1.forwarded_mesh');
  t.is(j.delivered.length, 1);
  t.is(j.delivered[0].target, B1.id, 'the error reaches the sender on ord1');
  const quote = Buffer.from(p);
  quote[7] = 1;
  icmpError(t, j.delivered[0].bytes, { type: 3, code: 0, by: AMS1, to: B1.address, hl: 63, quote });
});

test('30. errors about a packet sent to an old address quote the old address (PMTUD, hop limit, stopped)', (t) => {
  // Packet Too Big: the moved machine is on another host, the packet is larger than the mesh MTU
  let net = new Net(T, { meshMtu: 1280 });
  const big = from(A1, MOVED_OLD, { proto: 'tcp', payload: new Uint8Array(1300) });
  let j = net.fromMachine(A1, big);
  t.is(Net.counterText(j), 'ams1.dropped_too_big ams1.icmp_sent');
  icmpError(t, j.delivered[0].bytes, { type: 2, code: 0, param: 1280, by: AMS1, to: A1.address, quote: big });
  // Time Exceeded
  net = new Net(T);
  const hl1 = from(A1, MOVED_OLD, { hopLimit: 1 });
  j = net.fromMachine(A1, hl1);
  t.is(Net.counterText(j), 'ams1.dropped_hop_limit ams1.icmp_sent');
  icmpError(t, j.delivered[0].bytes, { type: 3, code: 0, by: AMS1, to: A1.address, quote: hl1 });
});

test('31. a machine sending to its own old address: the request keeps its source, only replies are rewritten', (t) => {
  const net = new Net(T);
  const p = from(MOVED_LOCAL, MOVED_LOCAL_OLD, { id: 777 });
  const j = net.fromMachine(MOVED_LOCAL, p);
  t.is(Net.counterText(j), 'ams1.forwarded_local ams1.migrated_rewrite');
  const b = j.delivered[0].bytes;
  t.is(text(b, IPV6_OFF_SRC), MOVED_LOCAL.addressText, 'source unchanged');
  t.is(text(b, IPV6_OFF_DST), MOVED_LOCAL.addressText, 'destination rewritten to the new address');
  t.true(checksumValid(b));
});

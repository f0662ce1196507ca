// Service addresses in the router (issue 13, src/router/services.ts): balancing (same host, then
// same region, then the others; fewest flows), the flow table both ways (replies from the service
// address, checksums valid), exposure to another org (the machine sees a source of its own org),
// refusals (TCP reset, ICMPv6 port/address unreachable), autostart holding, bounds and timeouts.
import test from 'ava';
import { IPV6_OFF_DST, IPV6_OFF_SRC, getHost, getInstance, getNetwork } from '../src/ipv6/index.ts';
import { parseTopology } from '../src/topology/index.ts';
import type { Service, Topology } from '../src/topology/index.ts';
import { Net } from './helpers/router-net.ts';
import { addr, checksumValid, packet, replyTo, text } from './helpers/router-gen.ts';

const KEYS = [
  'mxVLM6Q/ZCB4ugOaHLdmb2kTSRnMJJSnmb/pgjFHjXo=',
  'WS0mNefJBriX2ZDbr+CZ3bnV9oLyw4Ff+0Pf7sOQVRg=',
  'Rx4nGLVVddxIlIiban3Pskc1UrjxG77pbY1JP1YVNDQ=',
];
const WEB = 'fdaa:0:18:0:1::3';
const LEDGER = 'fdaa:0:18:0:1::4'; // initech's ledger, exposed in acme's /48
const API = 'fdaa:0:18:0:1::5'; // autostart, all machines stopped
const COLD = 'fdaa:0:18:0:1::6'; // no autostart, all machines stopped

type Doc = Record<string, any>;
function doc(): Doc {
  return {
    version: 1,
    orgs: [{ name: 'acme', network: '0x18' }, { name: 'initech', network: '0x863' }],
    hosts: [
      { name: 'ams1', id: 'a7b:11', region: 'ams', publicKey: KEYS[0], endpoint: '192.0.2.1:51820' },
      { name: 'ams2', id: 'a7b:12', region: 'ams', publicKey: KEYS[1], endpoint: '192.0.2.2:51820' },
      { name: 'ord1', id: 'a7b:21', region: 'ord', publicKey: KEYS[2], endpoint: '192.0.2.3:51820' },
    ],
    apps: [
      { name: 'cli', org: 'acme' },
      { name: 'web', org: 'acme', services: [{ address: WEB, ports: ['80/tcp', '53/udp'] }] },
      { name: 'ledger', org: 'initech', services: [{ address: LEDGER, ports: ['7000/tcp'] }] },
      { name: 'api', org: 'acme', services: [{ address: API, ports: ['8080/tcp'], autostart: true }] },
      { name: 'cold', org: 'acme', services: [{ address: COLD, ports: ['9/tcp'] }] },
    ],
    machines: [
      { id: 'client00000001', app: 'cli', host: 'ams1', instance: '0x101' },
      { id: 'web00000000001', app: 'web', host: 'ams1', instance: '0x201' },
      { id: 'web00000000002', app: 'web', host: 'ams2', instance: '0x202' },
      { id: 'web00000000003', app: 'web', host: 'ord1', instance: '0x203' },
      { id: 'ledger00000001', app: 'ledger', host: 'ord1', instance: '0x301' },
      { id: 'ledger00000002', app: 'ledger', host: 'ams2', instance: '0x302' },
      { id: 'initech0000001', app: 'ledger', host: 'ams1', instance: '0x303', state: 'stopped' },
      { id: 'api00000000001', app: 'api', host: 'ams2', instance: '0x401', state: 'stopped' },
      { id: 'cold0000000001', app: 'cold', host: 'ams2', instance: '0x501', state: 'stopped' },
    ],
    peers: [{ name: 'laptop', org: 'acme', gateway: 'ams1', publicKey: 'WiD38puIP8cdMjHdhRi15xqd6Do6Z2w7xyCYqjv6vEc=', address: 'fdaa:0:18:a7b:11:0:a:2/120' }],
  };
}
const load = (d: Doc): Topology => parseTopology(JSON.stringify(d), '(services test)');
const stop = (d: Doc, id: string, state = 'stopped'): Doc => {
  d.machines.find((m: Doc) => m.id === id).state = state;
  return d;
};

function setup(d = doc()) {
  const t = load(d);
  const net = new Net(t);
  const client = t.machine('client00000001')!;
  let port = 40000;
  const syn = (dst: string, dport = 80, sport = port++) => packet({ src: client.address, dst: addr(dst), proto: 'tcp', id: sport, port: dport, tcpFlags: 0x02 });
  return { t, net, client, syn };
}

const delivered = (j: ReturnType<Net['fromMachine']>) => j.delivered.map((c) => c.target);

test('a SYN to the service address goes to the machine on the same host, rewritten with valid checksums', (t) => {
  const { net, syn } = setup();
  for (let i = 0; i < 4; i++) {
    const j = net.fromMachine(net.topology.machine('client00000001')!, syn(WEB));
    t.deepEqual(delivered(j), ['web00000000001'], 'same host first, even with more flows');
    const b = j.delivered[0].bytes;
    t.is(text(b, IPV6_OFF_DST), net.topology.machine('web00000000001')!.addressText);
    const src = b.subarray(IPV6_OFF_SRC, IPV6_OFF_SRC + 16);
    t.deepEqual([getNetwork(src, 0), getHost(src, 0), getInstance(src, 0)], [0x18, 0x0a7b0011, 0], 'a client-source address of ams1');
    t.true(checksumValid(b));
  }
  t.is(net.router('ams1').counters.service_flows, 4);
});

test('with the local machine stopped: the same region (ams2) before the others (ord1); then ord1', (t) => {
  const d = stop(doc(), 'web00000000001');
  const { net, syn, client } = setup(d);
  for (let i = 0; i < 3; i++) {
    const j = net.fromMachine(client, syn(WEB));
    t.deepEqual(delivered(j), ['web00000000002']);
    t.is(net.describe(j), 'ams1 toMesh ams2 | ams2 toMachine web00000000002');
  }
  net.setTopology(load(stop(d, 'web00000000002')));
  t.deepEqual(delivered(net.fromMachine(client, syn(WEB))), ['web00000000003']);
});

test('least connections among equals: two machines on the host share new flows', (t) => {
  const d = doc();
  d.machines.push({ id: 'web00000000004', app: 'web', host: 'ams1', instance: '0x204' });
  const { net, syn, client } = setup(d);
  const seen = new Map<string, number>();
  for (let i = 0; i < 10; i++) {
    const [to] = delivered(net.fromMachine(client, syn(WEB)));
    seen.set(to, (seen.get(to) ?? 0) + 1);
  }
  t.deepEqual(Object.fromEntries(seen), { web00000000001: 5, web00000000004: 5 });
  t.deepEqual(Object.fromEntries(net.router('ams1').services.flowsPerMachine()), { web00000000001: 5, web00000000004: 5 });
});

test('every packet of a flow reaches the same machine; its replies come from the service address, across the mesh too', (t) => {
  const d = stop(doc(), 'web00000000001');
  const { net, syn, client } = setup(d);
  const first = syn(WEB, 80, 41000);
  const j = net.fromMachine(client, first);
  t.deepEqual(delivered(j), ['web00000000002']);
  // the machine's SYN-ACK, from its own address, crosses the mesh back to ams1
  const back = net.fromMachine(net.topology.machine('web00000000002')!, replyTo(j.delivered[0].bytes));
  t.deepEqual(delivered(back), ['client00000001']);
  const r = back.delivered[0].bytes;
  t.is(text(r, IPV6_OFF_SRC), WEB, 'the reply comes from the service address');
  t.is(text(r, IPV6_OFF_DST), client.addressText);
  t.true(checksumValid(r));
  t.is(r.readUInt16BE(40), 80);
  t.is(r.readUInt16BE(42), 41000);
  // the client's ACK and data go to the same machine
  const ack = packet({ src: client.address, dst: addr(WEB), proto: 'tcp', id: 41000, port: 80, tcpFlags: 0x10, payload: Buffer.from('GET /') });
  for (let i = 0; i < 3; i++) t.deepEqual(delivered(net.fromMachine(client, ack)), ['web00000000002']);
  t.is(net.router('ams1').counters.service_replies, 1);
});

test('UDP: a datagram makes a flow; the reply comes from the service address', (t) => {
  const { net, client } = setup();
  const q = packet({ src: client.address, dst: addr(WEB), proto: 'udp', id: 5353, port: 53, payload: Buffer.from('q') });
  const j = net.fromMachine(client, q);
  t.deepEqual(delivered(j), ['web00000000001']);
  const back = net.fromMachine(net.topology.machine('web00000000001')!, replyTo(j.delivered[0].bytes));
  t.is(text(back.delivered[0].bytes, IPV6_OFF_SRC), WEB);
  t.true(checksumValid(back.delivered[0].bytes));
});

test('refused: an unserved TCP port gets a reset from the service address; UDP gets port unreachable', (t) => {
  const { net, client, syn } = setup();
  const j = net.fromMachine(client, syn(WEB, 81, 42000));
  t.deepEqual(delivered(j), ['client00000001']);
  const rst = j.delivered[0].bytes;
  t.is(rst[6], 6);
  t.is(text(rst, IPV6_OFF_SRC), WEB);
  t.is(text(rst, IPV6_OFF_DST), client.addressText);
  t.is(rst[40 + 13], 0x14, 'RST|ACK');
  t.is(rst.readUInt16BE(40), 81);
  t.is(rst.readUInt16BE(42), 42000);
  t.is(rst.readUInt32BE(48), 0x01020305, 'acknowledges the SYN');
  t.true(checksumValid(rst));
  const u = net.fromMachine(client, packet({ src: client.address, dst: addr(WEB), proto: 'udp', id: 1, port: 54 }));
  const icmp = u.delivered[0].bytes;
  t.deepEqual([icmp[6], icmp[40], icmp[41]], [58, 1, 4], 'ICMPv6 port unreachable');
  t.is(text(icmp, IPV6_OFF_SRC), WEB);
  const ping = net.fromMachine(client, packet({ src: client.address, dst: addr(WEB), proto: 'icmp' }));
  t.deepEqual([ping.delivered[0].bytes[40], ping.delivered[0].bytes[41]], [1, 4], 'no ports to balance ICMPv6 by');
  t.is(net.router('ams1').counters.service_refused_port, 3);
});

test('refused: no started machine and no autostart: ICMPv6 address unreachable; a segment without a flow: reset', (t) => {
  const { net, client, syn } = setup();
  const j = net.fromMachine(client, syn(COLD, 9));
  const icmp = j.delivered[0].bytes;
  t.deepEqual([icmp[40], icmp[41]], [1, 3]);
  t.is(text(icmp, IPV6_OFF_SRC), COLD);
  const ack = packet({ src: client.address, dst: addr(WEB), proto: 'tcp', id: 43000, port: 80, tcpFlags: 0x10 });
  const r = net.fromMachine(client, ack).delivered[0].bytes;
  t.is(r[40 + 13], 0x04, 'RST with the ACK number as sequence');
  t.is(r.readUInt32BE(44), 0);
  t.is(net.router('ams1').counters.service_no_flow, 1);
});

test('a flow whose machine stops ends: its next segment is reset, a new SYN picks another machine', (t) => {
  const d = doc();
  const { net, client, syn } = setup(d);
  t.deepEqual(delivered(net.fromMachine(client, syn(WEB, 80, 44000))), ['web00000000001']);
  net.setTopology(load(stop(d, 'web00000000001')));
  t.is(net.router('ams1').services.size, 0);
  const ack = packet({ src: client.address, dst: addr(WEB), proto: 'tcp', id: 44000, port: 80, tcpFlags: 0x10 });
  t.is(net.fromMachine(client, ack).delivered[0].bytes[40 + 13], 0x04);
  t.deepEqual(delivered(net.fromMachine(client, syn(WEB, 80, 44000))), ['web00000000002']);
});

test('exposure: acme reaches initech\'s ledger on its service port only, and the machine sees a source of initech on the client\'s host', (t) => {
  const { net, client, syn } = setup();
  const j = net.fromMachine(client, syn(LEDGER, 7000, 45000));
  t.deepEqual(delivered(j), ['ledger00000002'], 'ams2: same region');
  const b = j.delivered[0].bytes;
  const src = b.subarray(IPV6_OFF_SRC, IPV6_OFF_SRC + 16);
  t.is(getNetwork(src, 0), 0x863, 'a source in the machine\'s own org');
  t.is(getHost(src, 0), 0x0a7b0011, 'on the client\'s host (the mesh checks it)');
  t.is(getInstance(src, 0), 0);
  t.true(checksumValid(b));
  const back = net.fromMachine(net.topology.machine('ledger00000002')!, replyTo(b));
  t.deepEqual(delivered(back), ['client00000001']);
  t.is(text(back.delivered[0].bytes, IPV6_OFF_SRC), LEDGER);
  t.is(text(back.delivered[0].bytes, IPV6_OFF_DST), client.addressText);
  t.true(checksumValid(back.delivered[0].bytes));
  // the same client's next flow keeps its source; another port is refused
  const j2 = net.fromMachine(client, syn(LEDGER, 7000, 45001));
  t.is(text(j2.delivered[0].bytes, IPV6_OFF_SRC), text(src));
  t.is(net.fromMachine(client, syn(LEDGER, 22, 45002)).delivered[0].bytes[40 + 13], 0x14);
  // the ledger machine cannot reach the client's source address outside the flow, nor acme at all
  const ledger = net.topology.machine('ledger00000002')!;
  const probe = net.fromMachine(ledger, packet({ src: ledger.address, dst: src, proto: 'tcp', id: 7000, port: 45999 }));
  t.deepEqual(delivered(probe), ['ledger00000002'], 'only an ICMPv6 error back to the prober');
  t.is(probe.delivered[0].bytes[40], 1);
  const direct = net.fromMachine(ledger, packet({ src: ledger.address, dst: client.address, proto: 'tcp', id: 7000, port: 45000 }));
  t.deepEqual(delivered(direct), ['ledger00000002']);
  t.is(direct.delivered[0].bytes[41], 1, 'administratively prohibited');
  // initech's own machines do not reach a service address in acme's /48
  const stopped = load(stop(doc(), 'initech0000001', 'started'));
  net.setTopology(stopped);
  const inn = stopped.machine('initech0000001')!;
  const x = net.fromMachine(inn, packet({ src: inn.address, dst: addr(LEDGER), proto: 'tcp', id: 1, port: 7000, tcpFlags: 2 }));
  t.deepEqual([delivered(x), x.delivered[0].bytes[41]], [['initech0000001'], 1]);
});

test('autostart: the first packets are held, a machine is asked for, and they go on once it is started', (t) => {
  const d = doc();
  const { net, client, syn } = setup(d);
  const asked: Service[] = [];
  net.router('ams1').services.onAutostart = (s) => asked.push(s);
  const j = net.fromMachine(client, syn(API, 8080, 46000));
  t.deepEqual(delivered(j), [], 'held, not refused');
  net.fromMachine(client, syn(API, 8080, 46001));
  t.deepEqual(asked.map((s) => s.app), ['api'], 'asked once per hold');
  t.is(net.router('ams1').services.heldPackets, 2);
  const io = net.ios.get(0x0a7b0011)!;
  net.setTopology(load(stop(d, 'api00000000001', 'started')));
  const out = io.calls.splice(0);
  t.deepEqual(out.map((c) => [c.kind, c.target]), [['mesh', String(0x0a7b0012)], ['mesh', String(0x0a7b0012)]]);
  t.is(net.router('ams1').services.heldPackets, 0);
});

test('autostart: held packets past the timeout are refused with address unreachable', (t) => {
  const { net, client, syn } = setup();
  net.fromMachine(client, syn(API, 8080, 47000));
  net.clock += 10_001;
  const io = net.ios.get(0x0a7b0011)!;
  net.router('ams1').expire();
  const out = io.calls.splice(0);
  t.is(out.length, 1);
  t.deepEqual([out[0].kind, out[0].target, out[0].bytes[40], out[0].bytes[41]], ['machine', 'client00000001', 1, 3]);
});

test('bounded: the oldest flow makes room; idle flows expire (UDP 30 s, TCP SYN 120 s)', (t) => {
  const { t: topo, client } = setup();
  const net = new Net(topo);
  const r = net.router('ams1');
  // a fresh router with a small table
  const small = new (r.constructor as typeof import('../src/router/router.ts').Router)(topo, r.hostId, net.ios.get(r.hostId)!, { now: () => net.clock, services: { flowsMax: 4 } });
  const buf = new Uint8Array(256);
  for (let i = 0; i < 6; i++) {
    const p = packet({ src: client.address, dst: addr(WEB), proto: 'udp', id: 2000 + i, port: 53 });
    buf.set(p, 16);
    small.fromMachine(client, buf, 16, p.length);
  }
  t.is(small.services.size, 4);
  t.is(small.counters.service_flows_evicted, 2);
  net.clock += 30_001;
  small.expire();
  t.is(small.services.size, 0);
  const p = packet({ src: client.address, dst: addr(WEB), proto: 'tcp', id: 3000, port: 80, tcpFlags: 2 });
  buf.set(p, 16);
  small.fromMachine(client, buf, 16, p.length);
  net.clock += 60_000;
  small.expire();
  t.is(small.services.size, 1, 'a SYN waits 120 s');
  net.clock += 60_001;
  small.expire();
  t.is(small.services.size, 0);
});

test('autostop: machines of this host with no packet for the service\'s idle time are listed, with minRunning', (t) => {
  const d = doc();
  d.apps[1].services[0].autostop = 60;
  d.apps[1].services[0].minRunning = 1;
  d.machines.push({ id: 'web00000000004', app: 'web', host: 'ams1', instance: '0x204' });
  const { net, client, syn } = setup(d);
  const r = net.router('ams1');
  t.deepEqual(r.services.idleMachines(), [], 'first seen now');
  net.clock += 30_000;
  net.fromMachine(client, syn(WEB)); // least loaded of the two: web1 first
  net.clock += 30_000;
  const idle = r.services.idleMachines();
  t.deepEqual(idle.map((x) => [x.machine.id, x.minRunning]), [['web00000000004', 1]], 'web1 got a packet 30 s ago');
  t.deepEqual(net.router('ams2').services.idleMachines(), [], 'ams2 counts from its own first look');
});

test('a direct connection from a port a service flow used gets its replies untouched', (t) => {
  const { net, client, syn } = setup();
  const j = net.fromMachine(client, syn(WEB, 80, 48000));
  t.deepEqual(delivered(j), ['web00000000001']);
  const web1 = net.topology.machine('web00000000001')!;
  const direct = net.fromMachine(client, packet({ src: client.address, dst: web1.address, proto: 'tcp', id: 48000, port: 80, tcpFlags: 0x02 }));
  t.is(text(direct.delivered[0].bytes, IPV6_OFF_SRC), client.addressText, 'the machine sees the client itself');
  const back = net.fromMachine(web1, replyTo(direct.delivered[0].bytes));
  t.is(text(back.delivered[0].bytes, IPV6_OFF_SRC), web1.addressText);
  t.true(checksumValid(back.delivered[0].bytes));
});

test('offload: a whole segment (partial checksum) of a flow to a machine of this host goes whole, its pseudo-header sum updated', async (t) => {
  const { fold, pseudoHeaderSum } = await import('../src/ipv6/index.ts');
  const { net, client, syn } = setup();
  const r = net.router('ams1');
  t.deepEqual(delivered(net.fromMachine(client, syn(WEB, 80, 49000))), ['web00000000001']);
  const partial = (p: Buffer) => {
    p.writeUInt16BE(fold(pseudoHeaderSum(p, 0, p.length - 40, 6)), 56); // what a TSO segment carries
    return p;
  };
  const seg = partial(packet({ src: client.address, dst: addr(WEB), proto: 'tcp', id: 49000, port: 80, tcpFlags: 0x10, payload: new Uint8Array(3000) }));
  const io = net.ios.get(0x0a7b0011)!;
  const buf = new Uint8Array(16 + seg.length + 64);
  buf.set(seg, 16);
  t.true(r.fromMachine(client, buf, 16, seg.length, true), 'sent whole');
  const [c] = io.calls.splice(0);
  t.deepEqual([c.kind, c.target, c.bytes.length], ['machine', 'web00000000001', seg.length]);
  t.is(text(c.bytes, IPV6_OFF_DST), net.topology.machine('web00000000001')!.addressText);
  t.is(c.bytes.readUInt16BE(56), fold(pseudoHeaderSum(c.bytes, 0, c.bytes.length - 40, 6)), 'the partial checksum is the new pseudo-header sum');
  // the machine's whole segment back, to the client-source address
  const back = partial(replyTo(c.bytes));
  back[53] = 0x10;
  partial(back);
  const b2 = new Uint8Array(16 + back.length + 64);
  b2.set(back, 16);
  t.true(r.fromMachine(net.topology.machine('web00000000001')!, b2, 16, back.length, true));
  const [d] = io.calls.splice(0);
  t.deepEqual([d.target, text(d.bytes, IPV6_OFF_SRC), text(d.bytes, IPV6_OFF_DST)], ['client00000001', WEB, client.addressText]);
  t.is(d.bytes.readUInt16BE(56), fold(pseudoHeaderSum(d.bytes, 0, d.bytes.length - 40, 6)));
  // no flow (another port): not whole, nothing sent
  const other = partial(packet({ src: client.address, dst: addr(WEB), proto: 'tcp', id: 49001, port: 80, tcpFlags: 0x10, payload: new Uint8Array(100) }));
  buf.set(other, 16);
  t.false(r.fromMachine(client, buf, 16, other.length, true));
  t.is(io.calls.length, 0);
});

test('an external peer of this gateway uses a service address too; the reply goes back to it from the service address', (t) => {
  const d = stop(doc(), 'web00000000001');
  const { net } = setup(d);
  const r = net.router('ams1');
  const io = net.ios.get(0x0a7b0011)!;
  const laptop = net.topology.peer('acme', 'laptop')!;
  const p = packet({ src: laptop.address, dst: addr(WEB), proto: 'tcp', id: 50000, port: 80, tcpFlags: 0x02 });
  const buf = new Uint8Array(16 + p.length + 64);
  buf.set(p, 16);
  r.fromPeer(laptop, buf, 16, p.length);
  const [c] = io.calls.splice(0);
  t.deepEqual([c.kind, c.target], ['mesh', String(0x0a7b0012)], 'to web2 on ams2, same region');
  const j = net.fromMesh(0x0a7b0012, 0x0a7b0011, c.bytes);
  t.deepEqual(delivered(j), ['web00000000002']);
  const back = net.fromMachine(net.topology.machine('web00000000002')!, replyTo(j.delivered[0].bytes));
  const exit = back.exits.find((x) => x.kind === 'peer')!;
  t.is(exit.target, 'laptop');
  t.is(text(exit.bytes, IPV6_OFF_SRC), WEB);
  t.is(text(exit.bytes, IPV6_OFF_DST), laptop.addressText);
  t.true(checksumValid(exit.bytes));
});

test('an ICMPv6 error from the machine about a flow reaches the client about what it sent, from the service address', async (t) => {
  const { buildDestUnreachable } = await import('../src/ipv6/index.ts');
  const d = stop(doc(), 'web00000000001');
  const { net, client } = setup(d);
  const q = packet({ src: client.address, dst: addr(WEB), proto: 'udp', id: 5300, port: 53, payload: Buffer.from('query') });
  const j = net.fromMachine(client, q);
  t.deepEqual(delivered(j), ['web00000000002']);
  const web2 = net.topology.machine('web00000000002')!;
  const err = Buffer.alloc(1280);
  const n = buildDestUnreachable(err, 0, web2.address, 0, j.delivered[0].bytes, 0, j.delivered[0].bytes.length, 4);
  const back = net.fromMachine(web2, err.subarray(0, n));
  t.deepEqual(delivered(back), ['client00000001']);
  const b = back.delivered[0].bytes;
  t.deepEqual([b[40], b[41]], [1, 4]);
  t.is(text(b, IPV6_OFF_SRC), WEB);
  t.is(text(b, IPV6_OFF_DST), client.addressText);
  t.true(checksumValid(b));
  const inner = b.subarray(48);
  t.is(text(inner, IPV6_OFF_SRC), client.addressText, 'the quote is what the client sent');
  t.is(text(inner, IPV6_OFF_DST), WEB);
  t.true(checksumValid(inner), 'the quoted datagram\'s checksum too');
  // an error whose quote matches no flow goes nowhere but back as unreachable
  const stray = Buffer.from(err.subarray(0, n));
  stray.writeUInt16BE(9999, 48 + 40);
  t.notDeepEqual(delivered(net.fromMachine(web2, stray)), ['client00000001']);
});

test('a service flow reaching a machine its host does not see started yet is dropped silently (the topologies converge; the client retries)', (t) => {
  const d = stop(doc(), 'web00000000001');
  const { net, client, syn } = setup(d);
  net.router('ams2').setTopology(load(stop(structuredClone(d), 'web00000000002'))); // ams2 is behind… or ahead
  const j = net.fromMachine(client, syn(WEB));
  t.deepEqual(delivered(j), [], 'no ICMPv6 error back to the client');
  t.is(net.describe(j), 'ams1 toMesh ams2 | ams2 drop');
  t.is(net.router('ams2').counters.dropped_unreachable, 1);
});

test('flows end when their port is no longer served; autostart holds at most HOLD_PER_SERVICE packets per service', async (t) => {
  const { HOLD_PER_SERVICE } = await import('../src/router/services.ts');
  const d = doc();
  const { net, client, syn } = setup(d);
  net.fromMachine(client, syn(WEB, 80, 51000));
  t.is(net.router('ams1').services.size, 1);
  d.apps[1].services[0].ports = ['53/udp'];
  net.setTopology(load(d));
  t.is(net.router('ams1').services.size, 0);
  for (let i = 0; i < HOLD_PER_SERVICE; i++) t.deepEqual(delivered(net.fromMachine(client, syn(API, 8080))), []);
  const over = net.fromMachine(client, syn(API, 8080));
  t.deepEqual([delivered(over), over.delivered[0].bytes[40], over.delivered[0].bytes[41]], [['client00000001'], 1, 3], 'refused past the bound');
  t.is(net.router('ams1').services.heldPackets, HOLD_PER_SERVICE);
});

test('autostart with a store that answers at once: the first packet is released, not lost', (t) => {
  const d = doc();
  const { net, client, syn } = setup(d);
  const r = net.router('ams1');
  r.services.onAutostart = () => net.setTopology(load(stop(d, 'api00000000001', 'started')));
  const io = net.ios.get(0x0a7b0011)!;
  net.fromMachine(client, syn(API, 8080, 52000));
  t.is(r.services.heldPackets, 0);
  t.is(r.counters.service_flows, 1, 'the SYN went on to the started machine');
  io.calls.length = 0;
});

/** Cuts a whole UDP packet (no extension headers) into fragments of `size` bytes of its UDP part. */
function fragments(p: Buffer, size: number, id: number): Buffer[] {
  const udp = p.subarray(40);
  const out: Buffer[] = [];
  for (let at = 0; at < udp.length; at += size) {
    const part = udp.subarray(at, Math.min(udp.length, at + size));
    const f = Buffer.alloc(48 + part.length);
    p.copy(f, 0, 0, 40);
    f[6] = 44; // Fragment header
    f.writeUInt16BE(8 + part.length, 4);
    f[40] = 17;
    f.writeUInt16BE(at | (at + size < udp.length ? 1 : 0), 42);
    f.writeUInt32BE(id, 44);
    part.copy(f, 48);
    out.push(f);
  }
  return out;
}

/** The UDP datagram of fragments put together again, as one packet (for its checksum). */
function reassemble(fs: Buffer[]): Buffer {
  const udp = Buffer.concat(fs.map((f) => f.subarray(48)));
  const p = Buffer.alloc(40 + udp.length);
  fs[0].copy(p, 0, 0, 40);
  p[6] = 17;
  p.writeUInt16BE(udp.length, 4);
  udp.copy(p, 40);
  return p;
}

test('fragmented UDP: the first fragment picks the flow, the later ones follow it, both ways; checksums hold over the datagram', (t) => {
  const { net, client } = setup();
  const big = packet({ src: client.address, dst: addr(WEB), proto: 'udp', id: 5301, port: 53, payload: Buffer.alloc(1800, 7) });
  const sent = fragments(big, 1000, 0x1234);
  const got = sent.map((f) => net.fromMachine(client, f));
  t.deepEqual(got.map(delivered), [['web00000000001'], ['web00000000001']]);
  const web1 = net.topology.machine('web00000000001')!;
  const at = reassemble(got.map((j) => j.delivered[0].bytes));
  t.is(text(at, IPV6_OFF_DST), web1.addressText);
  t.true(checksumValid(at), 'the first fragment\'s checksum covers the datagram with the new addresses');
  // the machine answers with a fragmented datagram to the source it saw
  const reply = replyTo(at);
  const back = fragments(Buffer.concat([reply.subarray(0, 40), reply.subarray(40)]), 1000, 0x99);
  const gotBack = back.map((f) => net.fromMachine(web1, f));
  t.deepEqual(gotBack.map(delivered), [['client00000001'], ['client00000001']]);
  const r = reassemble(gotBack.map((j) => j.delivered[0].bytes));
  t.deepEqual([text(r, IPV6_OFF_SRC), text(r, IPV6_OFF_DST)], [WEB, client.addressText]);
  t.true(checksumValid(r));
  // a later fragment of a datagram whose first fragment never came: dropped, counted
  const stray = fragments(big, 1000, 0x5678)[1];
  t.deepEqual(delivered(net.fromMachine(client, stray)), []);
  t.is(net.router('ams1').counters.service_fragments_dropped, 1);
});

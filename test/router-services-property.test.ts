// Property test of isolation with service addresses (issue 13): over random topologies (those of
// router-property.test.ts, with random service addresses added: some in the app's own org, some
// exposing it in another org's /48) and random traffic — SYNs, segments and datagrams to service
// addresses on served and other ports, replies of the machines that got them, and probes from
// those machines to the client-source addresses and to anything else — every packet delivered to
// a machine of another org than its sender's is one of exactly two kinds:
//   (a) a packet a client sent to a service address of its own org's /48, on a port the service
//       serves, delivered to a started machine of that service's app, from a source in the
//       machine's own org on the client's host (instance 0: the host's own addresses);
//   (b) a reply to the client of such a flow: from the service address, with the ports of a
//       flow that the client opened (seen in (a)).
// Everything else crossing orgs is refused or dropped. Each delivered packet's checksum verifies.
// Seeds: a fixed one and a new one per run (printed on failure; rerun with SERVICES_PROPERTY_SEED).
import test from 'ava';
import { IPV6_OFF_DST, IPV6_OFF_SRC, addressEquals, buildDestUnreachable, getHost, getInstance, getNetwork, writeChecksum } from '../src/ipv6/index.ts';
import { parseTopology } from '../src/topology/index.ts';
import type { Machine, Service, Topology } from '../src/topology/index.ts';
import { Net } from './helpers/router-net.ts';
import { Rng, checksumValid, packet, randomTopology, replyTo, sixpn, text } from './helpers/router-gen.ts';

const TOPOLOGIES = 30;
const CASES = 300;
const PORTS = ['80/tcp', '443/tcp', '53/udp', '7/udp'];

function withServices(r: Rng): Topology {
  const g = randomTopology(r);
  const doc = structuredClone(g.doc) as Record<string, any>;
  let n = 1;
  for (const app of doc.apps) {
    const services = [];
    for (let k = r.int(0, 2); k > 0; k--) {
      const net = r.chance(0.5) ? g.networks[Number(app.org.slice(3))] : r.pick(g.networks);
      const ports = PORTS.filter(() => r.chance(0.5));
      services.push({ address: text(sixpn(net, 1, 0, n++)), ports: ports.length ? ports : ['80/tcp'] });
    }
    if (services.length) app.services = services;
  }
  return parseTopology(JSON.stringify(doc), `(random topology with services, seed ${r.seed})`);
}

interface Opened {
  client: Machine;
  service: Service;
  cport: number;
  port: number;
  proto: number;
}

const seen = { exposed: 0, replies: 0, sameOrg: 0, errors: 0 };

function run(seed: number): string | null {
  const r = new Rng(seed);
  for (let ti = 0; ti < TOPOLOGIES; ti++) {
    const topo = withServices(r);
    const net = new Net(topo);
    const opened: Opened[] = [];
    const machines = topo.machines.filter((m) => m.started);
    if (machines.length === 0 || topo.services.length === 0) continue;
    const hostsIds = topo.hosts.map((h) => h.id);
    let lastDelivered: { to: Machine; bytes: Buffer } | undefined;
    for (let ci = 0; ci < CASES; ci++) {
      let s = r.pick(machines);
      let pkt: Buffer;
      const proto = r.pick(['tcp', 'udp', 'tcp', 'icmp'] as const);
      const kind = r.int(0, 99);
      if (kind < 45) {
        const svc = r.chance(0.7) ? r.pick(topo.services) : r.pick(topo.services);
        const port = r.chance(0.8) ? r.pick(svc.ports).port : r.int(1, 0xffff);
        const flags = r.chance(0.8) ? 0x02 : r.pick([0x10, 0x12, 0x04, 0x11]);
        pkt = packet({ src: s.address, dst: svc.address, proto, id: r.int(1024, 0xffff), port, tcpFlags: flags });
      } else if (kind < 70 && lastDelivered !== undefined) {
        // the machine that got the last packet answers it, or answers with other ports
        s = lastDelivered.to;
        pkt = replyTo(lastDelivered.bytes);
        if (r.chance(0.3) && pkt[6] !== 58) pkt.writeUInt16BE(r.int(1, 0xffff), 40), writeChecksum(pkt, 0, 40, pkt.length - 40, pkt[6]);
        if (r.chance(0.3)) pkt = packet({ src: s.address, dst: pkt.subarray(IPV6_OFF_DST, 40), proto, id: r.int(1, 0xffff), port: r.int(1, 0xffff) });
        else if (r.chance(0.2)) {
          // an ICMPv6 error about the packet it got (sometimes about a made-up one)
          const about = Buffer.from(lastDelivered.bytes);
          if (r.chance(0.3)) about.writeUInt16BE(r.int(1, 0xffff), 40);
          const e = Buffer.alloc(1280);
          const n = buildDestUnreachable(e, 0, s.address, 0, about, 0, about.length, r.pick([1, 3, 4]));
          if (n > 0) pkt = e.subarray(0, n);
        }
      } else if (kind < 85) {
        // a probe of some host's client-source addresses
        const dst = sixpn(r.pick(topo.orgs).network, r.pick(hostsIds), 0, 0x100 + r.int(0, 4));
        pkt = packet({ src: s.address, dst, proto, id: r.int(1, 0xffff), port: r.int(1, 0xffff), tcpFlags: r.pick([0x02, 0x10, 0x12]) });
      } else {
        const m = r.pick(topo.machines);
        pkt = packet({ src: s.address, dst: m.address, proto, id: r.int(1, 0xffff), port: r.int(1, 0xffff) });
      }
      const j = net.fromMachine(s, pkt);
      for (const d of j.delivered) {
        const to = topo.machine(d.target)!;
        const b = d.bytes;
        if (!checksumValid(b)) return `seed ${seed}: bad checksum delivered to ${to.id}: ${b.toString('hex')} (sent ${pkt.toString('hex')})`;
        if (to.id === s.id) continue; // an error or reset back to the sender
        lastDelivered = { to, bytes: b };
        if (to.network === s.network) {
          // within one org; record the flows clients open to services so replies can be checked
          const svc = topo.serviceAt(pkt, IPV6_OFF_DST);
          if (svc !== undefined) opened.push({ client: s, service: svc, cport: pkt.readUInt16BE(40), port: pkt.readUInt16BE(42), proto: pkt[6] });
          if (svc !== undefined) seen.sameOrg++;
          continue;
        }
        const svc = topo.serviceAt(pkt, IPV6_OFF_DST);
        if (svc !== undefined) {
          // (a) an exposed service
          const served = svc.ports.some((p) => p.port === pkt.readUInt16BE(42) && (p.protocol === 'tcp' ? 6 : 17) === pkt[6]);
          const src = b.subarray(IPV6_OFF_SRC, IPV6_OFF_SRC + 16);
          if (svc.network !== s.network || to.app !== svc.app || !to.started || !served) {
            return `seed ${seed}: ${s.id} (${s.org}) reached ${to.id} (${to.org}) through ${svc.addressText} it may not use`;
          }
          if (getNetwork(src, 0) !== to.network || getHost(src, 0) !== s.host || getInstance(src, 0) !== 0) {
            return `seed ${seed}: ${to.id} saw the exposed flow come from ${text(src)}`;
          }
          opened.push({ client: s, service: svc, cport: pkt.readUInt16BE(40), port: pkt.readUInt16BE(42), proto: pkt[6] });
          seen.exposed++;
          continue;
        }
        // (b) a reply of an opened flow, from the service address
        const from = topo.serviceAt(b, IPV6_OFF_SRC);
        // an ICMPv6 error about a flow: its quote is what the client sent (client → service address)
        const error = b[6] === 58 && b[40] < 128 && b.length >= 92;
        const q = error ? b.subarray(48) : undefined;
        const ok = from !== undefined && from.app === s.app && addressEquals(b, IPV6_OFF_DST, to.address, 0) && (q === undefined
          ? opened.some((o) => o.client.id === to.id && o.service === from && o.proto === b[6] && o.port === b.readUInt16BE(40) && o.cport === b.readUInt16BE(42))
          : addressEquals(q, IPV6_OFF_SRC, to.address, 0) && addressEquals(q, IPV6_OFF_DST, from.address, 0) &&
            opened.some((o) => o.client.id === to.id && o.service === from && o.proto === q[6] && o.cport === q.readUInt16BE(40) && o.port === q.readUInt16BE(42)));
        seen.replies++;
        if (q !== undefined) seen.errors++;
        if (!ok) return `seed ${seed}: ${s.id} (${s.org}) → ${to.id} (${to.org}) passed: ${text(b, IPV6_OFF_SRC)} → ${text(b, IPV6_OFF_DST)} proto ${b[6]}`;
      }
      if (r.chance(0.02)) net.clock += r.pick([1000, 40_000, 200_000]), [...net.routers.values()].forEach((x) => x.expire());
    }
  }
  return null;
}

test('no cross-org packet passes but exposed service flows and their replies (fixed seed)', (t) => {
  t.is(run(0x5e41ce), null);
  t.log(seen);
  t.true(seen.exposed > 50 && seen.replies > 20 && seen.sameOrg > 50 && seen.errors > 5, 'the cases reach exposed services, their replies and errors');
});

test('no cross-org packet passes but exposed service flows and their replies (new seed)', (t) => {
  const seed = Number(process.env.SERVICES_PROPERTY_SEED ?? Math.floor(Math.random() * 0xffffffff));
  t.log(`seed ${seed}`);
  t.is(run(seed), null);
});

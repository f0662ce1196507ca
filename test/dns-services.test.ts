// `<app>.sixpn`: the AAAA of an app's service addresses, answered only to the org whose /48
// holds them (issue 13), over the real topology (examples/topology.example.json) and resolver.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { InternalResolver } from '../src/dns/index.ts';
import { addressBytes, formatAddress } from '../src/ipv6/index.ts';
import { dnsView, parseTopology } from '../src/topology/index.ts';

const topo = parseTopology(readFileSync(new URL('../examples/topology.example.json', import.meta.url), 'utf8'), 'example');
const resolver = new InternalResolver(dnsView(() => topo));
const ACME = addressBytes('fdaa:0:18:a7b:7d:f066:b83b:2'); // shop-web on ams1
const INITECH = addressBytes('fdaa:0:863:a7b:7d:0:10:2'); // ledger on ams1
const AAAA = 28, SOA = 6;

function query(name: string, qtype: number): Uint8Array {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  return Uint8Array.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, qtype >> 8, qtype & 0xff, 0, 1]);
}

/** rcode, the AAAA answers, and the owner of the authority SOA if any. */
function ask(name: string, from: Uint8Array, qtype = AAAA): { rcode: number; aaaa: string[]; answers: number; ns: number } {
  const out = new Uint8Array(1232);
  const n = resolver.answer(query(name, qtype), from, 'udp', out);
  const b = Buffer.from(out.subarray(0, n));
  const answers = b.readUInt16BE(6);
  const aaaa: string[] = [];
  // answers use a pointer to the question: 2 + type 2 + class 2 + ttl 4 + rdlength 2 + rdata
  let p = 12 + query(name, qtype).length - 12;
  for (let i = 0; i < answers; i++) {
    const type = b.readUInt16BE(p + 2);
    const len = b.readUInt16BE(p + 10);
    if (type === AAAA) aaaa.push(formatAddress(b, p + 12));
    p += 12 + len;
  }
  return { rcode: b[3] & 0xf, aaaa, answers, ns: b.readUInt16BE(8) };
}

test('<app>.sixpn answers the service addresses in the asker\'s org\'s /48', (t) => {
  t.deepEqual(ask('shop-web.sixpn', ACME), { rcode: 0, aaaa: ['fdaa:0:18:0:1::3'], answers: 1, ns: 0 });
  t.deepEqual(ask('ledger.sixpn', ACME).aaaa, ['fdaa:0:18:0:1::4'], 'initech\'s ledger, exposed in acme\'s /48');
  t.deepEqual(ask('SHOP-WEB.sixpn', ACME).aaaa, ['fdaa:0:18:0:1::3'], 'case-insensitive');
});

test('nobody else gets them: initech does not see its own ledger\'s address in acme\'s /48, nor acme\'s services', (t) => {
  t.is(ask('ledger.sixpn', INITECH).rcode, 3);
  t.is(ask('shop-web.sixpn', INITECH).rcode, 3);
  t.is(ask('shop-db.sixpn', ACME).rcode, 3, 'an app without a service address');
  t.is(ask('x.shop-web.sixpn', ACME).rcode, 3, 'nothing below <app>.sixpn');
  t.is(ask('shop-web.sixpn', addressBytes('fdaa:0:18:a7b:7d:ffff:ffff:2')).rcode, 5, 'an unknown asker: REFUSED');
});

test('the zone apex is its own SOA; negative answers carry it; .internal is unchanged', (t) => {
  const apex = ask('sixpn', ACME, SOA);
  t.deepEqual([apex.rcode, apex.answers], [0, 1]);
  t.is(ask('nosuch.sixpn', ACME).ns, 1);
  t.deepEqual(ask('shop-web.internal', ACME).aaaa, ['fdaa:0:18:a7b:7d:f066:b83b:2', 'fdaa:0:18:a7b:d6b:0:7d01:2'], 'machines as before');
});

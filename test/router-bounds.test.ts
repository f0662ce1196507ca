// The router's bounds (issue 11): ICMPv6 errors are rate-limited by a token bucket (RFC 4443
// §2.4 f) and counted when held back; the flows to migrated machines' old addresses are
// bounded (least recently used forgotten first, counted) and expire.
import test from 'ava';
import { IPV6_OFF_SRC } from '../src/ipv6/index.ts';
import { ICMP_ERROR_BURST, ICMP_ERRORS_PER_SECOND, MIGRATION_FLOWS_MAX, Router } from '../src/router/router.ts';
import { TokenBucket } from '../src/router/token-bucket.ts';
import { parseTopology } from '../src/topology/index.ts';
import { RecordingIO } from './helpers/router-net.ts';
import { addr, packet, replyTo, text } from './helpers/router-gen.ts';

const key = (i: number) => Buffer.alloc(32, i).toString('base64');
const T = parseTopology(JSON.stringify({
  version: 1,
  orgs: [{ name: 'acme', network: '0x18' }, { name: 'initech', network: '0x863' }],
  hosts: [
    { name: 'ams1', id: '0x0a7b0001', region: 'ams', publicKey: key(1), endpoint: '192.0.2.1:51820' },
    { name: 'ord1', id: '0x0a7b0002', region: 'ord', publicKey: key(2), endpoint: '192.0.2.2:51820' },
  ],
  apps: [{ name: 'web', org: 'acme' }, { name: 'ledger', org: 'initech' }],
  machines: [
    { id: 'acmeweb0000a01', app: 'web', region: 'ams', host: 'ams1', instance: '0x101' },
    // migrated ord1 → ams1: was fdaa:0:18:a7b:2:0:204:2
    { id: 'acmewebmoved02', app: 'web', region: 'ams', host: 'ams1', instance: '0x104', previous: ['fdaa:0:18:a7b:2:0:204:2'] },
    { id: 'initechled0a01', app: 'ledger', region: 'ams', host: 'ams1', instance: '0x401' },
  ],
  peers: [],
}), 'router-bounds');
const AMS1 = 0x0a7b0001;
const A1 = T.machine('acmeweb0000a01')!;
const MOVED = T.machine('acmewebmoved02')!;
const I1 = T.machine('initechled0a01')!;
const OLD = 'fdaa:0:18:a7b:2:0:204:2';

function router(opts: ConstructorParameters<typeof Router>[3] = {}) {
  const io = new RecordingIO(AMS1);
  const clock = { now: 0 };
  const r = new Router(T, AMS1, io, { now: () => clock.now, ...opts });
  const send = (m: typeof A1, b: Uint8Array) => {
    const buf = new Uint8Array(16 + b.length);
    buf.set(b, 16);
    r.fromMachine(m, buf, 16, b.length);
  };
  return { r, io, clock, send };
}

test('the defaults: 1000 ICMPv6 errors a second, bursts of 100; 65,536 migration flows', (t) => {
  t.is(ICMP_ERRORS_PER_SECOND, 1000);
  t.is(ICMP_ERROR_BURST, 100);
  t.is(MIGRATION_FLOWS_MAX, 65_536);
});

test('token bucket: a burst, then the rate; never more than the burst saved up; Infinity never refuses', (t) => {
  const b = new TokenBucket(10, 5);
  let n = 0;
  for (let i = 0; i < 20; i++) if (b.take(1000)) n++;
  t.is(n, 5, 'the burst');
  t.false(b.take(1050), 'half a token after 50 ms');
  t.true(b.take(1100), 'one after 100 ms');
  n = 0;
  for (let i = 0; i < 20; i++) if (b.take(60_000)) n++;
  t.is(n, 5, 'a minute idle saves up the burst, no more');
  const free = new TokenBucket(Infinity, 0);
  for (let i = 0; i < 1000; i++) if (!free.take(0)) return t.fail();
});

test('ICMPv6 errors over the rate are not sent and are counted; the drop itself is counted either way', (t) => {
  const { r, io, clock, send } = router({ icmpErrorsPerSecond: 10, icmpErrorBurst: 5 });
  const cross = packet({ src: I1.address, dst: A1.address, proto: 'udp', id: 1, port: 2 });
  for (let i = 0; i < 20; i++) send(I1, cross);
  t.is(r.counters.dropped_cross_org, 20);
  t.is(r.counters.icmp_sent, 5);
  t.is(r.counters.icmp_rate_limited, 15);
  t.is(io.calls.filter((c) => c.kind === 'machine' && c.target === I1.id).length, 5, 'five errors back to the sender');
  clock.now += 300;
  for (let i = 0; i < 20; i++) send(I1, cross);
  t.is(r.counters.icmp_sent, 8, '300 ms at 10/s: three more');
});

test('migration flows: bounded, the least recently used forgotten first (counted); they expire', (t) => {
  const { r, io, clock, send } = router({ migrationFlowsMax: 8 });
  const request = (port: number) => packet({ src: A1.address, dst: addr(OLD), proto: 'udp', id: 40_000 + port, port: 7000 });
  const replyOf = (port: number) => {
    io.calls.length = 0;
    send(A1, request(port));
    const delivered = io.calls.find((c) => c.kind === 'machine' && c.target === MOVED.id)!;
    io.calls.length = 0;
    send(MOVED, replyTo(delivered.bytes));
    return text(io.calls.find((c) => c.kind === 'machine' && c.target === A1.id)!.bytes, IPV6_OFF_SRC);
  };
  for (let p = 0; p < 8; p++) send(A1, request(p));
  t.is(r.migratedFlowCount, 8);
  t.is(replyOf(0), OLD, 'flow 0 is used again: now the most recent');
  for (let p = 8; p < 20; p++) send(A1, request(p));
  t.is(r.migratedFlowCount, 8, 'never more than the bound');
  t.is(r.counters.migrated_flows_evicted, 12);
  // flow 0 was refreshed just before 8…19 arrived, so it went after 1…7; 19 is the newest
  t.is(replyOf(19), OLD);
  io.calls.length = 0;
  send(MOVED, replyTo(packet({ src: A1.address, dst: MOVED.address, proto: 'udp', id: 40_001, port: 7000 })));
  t.is(text(io.calls[0].bytes, IPV6_OFF_SRC), MOVED.addressText, 'an evicted flow\'s reply keeps the new address');
  clock.now += 299_000;
  r.expire();
  t.true(r.migratedFlowCount > 0, 'not yet');
  clock.now += 2_000;
  r.expire();
  t.is(r.migratedFlowCount, 0, 'idle for the TTL (300 s): gone');
});

// The Prometheus metrics (src/metrics, src/host/metrics.ts, src/dns/stats.ts) without a network:
// a host's registry over fake live objects and real WireGuard devices, checked by Prometheus's
// own linter (`promtool check metrics`, Debian package prometheus) and for the values it reads;
// the DNS observer against query and answer packets; the HTTP server.
import test from 'ava';
import { execFile } from 'node:child_process';
import { DNS_LATENCY_BOUNDS_S, DnsStats, qtypeName, rcodeName } from '../src/dns/stats.ts';
import { hostMetrics, type HostMetricsSource } from '../src/host/metrics.ts';
import { parseAddress } from '../src/ipv6/index.ts';
import { silentLogger } from '../src/log.ts';
import { Metrics, MetricsServer, parseListenAddress } from '../src/metrics/index.ts';
import { deviceMetrics, tunMetrics, type DeviceSource } from '../src/metrics/device.ts';
import { COUNTERS, type Counter } from '../src/router/router.ts';
import { Device } from '../src/wg/device.ts';
import type { PortCounters } from '../src/tun/device-sockets.ts';
import { buildUdp } from './helpers/packets.ts';

const PROMTOOL = '/usr/bin/promtool';

function promtool(text: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const c = execFile(PROMTOOL, ['check', 'metrics'], (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: `${stdout}${stderr}` });
    });
    c.stdin!.end(text);
  });
}

function addr(text: string): Uint8Array {
  const a = new Uint8Array(16);
  if (!parseAddress(text, a, 0)) throw new Error(text);
  return a;
}

/** A DNS query or answer for NAME with QTYPE, RCODE and ID, as an IPv6/UDP packet. */
function dnsPacket(qtype: number, rcode: number, id: number, answer: boolean, asker: Uint8Array, port: number): Uint8Array {
  const name = [4, ...Buffer.from('web1'), 8, ...Buffer.from('internal'), 0];
  const msg = new Uint8Array([id >> 8, id & 0xff, answer ? 0x81 : 0x01, answer ? 0x80 | rcode : 0, 0, 1, 0, 0, 0, 0, 0, 0, ...name, 0, qtype, 0, 1]);
  const out = new Uint8Array(200);
  const server = addr('fdaa::3');
  const n = answer
    ? buildUdp(out, 0, server, 0, asker, 0, 53, port, msg, 0, msg.length)
    : buildUdp(out, 0, asker, 0, server, 0, port, 53, msg, 0, msg.length);
  return out.subarray(0, n);
}

/** The exposition without the host label every series of a host carries (shorter patterns). */
const withoutHost = (text: string) => text.replace(/,host="[^"]*"/g, '').replace(/\{host="[^"]*"\}/g, '');

/** A packet as the router hands it over: (buf, off, len). */
const at = (p: Uint8Array): [Uint8Array, number, number] => [p, 0, p.length];

const port = (): PortCounters => ({ txErrors: { ENOBUFS: 3 }, txBufferFull: 2, txGsoRecords: 7, txGsoFallback: 0, rxGroRecords: 5, rxTruncated: 1, txSourceCleared: 0, txNoSocket: 0 });

function source(): { src: HostMetricsSource; mesh: Device; dns: DnsStats } {
  const io = { sendUdp: () => undefined, writeTun: () => undefined };
  const mesh = new Device(io);
  const gateway = new Device(io);
  const a = mesh.addPeer(new Uint8Array(32).fill(7));
  a.rxBytes = 1234;
  a.txBytes = 5678;
  a.lastHandshakeUnixMs = 1_700_000_000_500;
  const b = gateway.addPeer(new Uint8Array(32).fill(9));
  mesh.counters.rxDatagrams = 99;
  mesh.counters.rxAuthFailed = 4;
  const router = Object.fromEntries(COUNTERS.map((c, i) => [c, i])) as Record<Counter, number>;
  const tuns = { rxBadOffload: 0, rxSuperPackets: 0, txCoalesced: 2, txQueueFull: 11, txErrors: { EIO: 1 }, txTooLong: 0 };
  const dns = new DnsStats();
  const devices: DeviceSource[] = [
    { device: 'mesh', dev: mesh, port: port(), offloads: () => 'udp-gso udp-gro', peers: () => [{ peer: a, name: 'ams1' }] },
    { device: 'gateway', dev: gateway, port: port(), offloads: () => '', peers: () => [{ peer: b, name: 'laptop', org: 'acme' }] },
  ];
  const machine = { machine: { id: 'm1', app: 'web', org: 'acme', state: 'started' }, ns: 'm1', ifname: 'sx-m1' };
  const src: HostMetricsSource = {
    host: 'ord1',
    router,
    offload: { whole: 1, segmented: 2, segments: 3, checksummed: 4, invalid: 0 },
    machineTuns: () => tuns,
    machines: () => [machine as never],
    devices: () => devices,
    machineOffloads: () => 'tso4 tso6 csum',
    egress: () => ({
      ifname: 'sx-egress', netns: null, uplink: 'eth0', addresses: ['2001:db8::11'], proxyNdp: [], sysctls: [],
      entries: 12, mappings: 10, capacity: 1000, tableBytes: 4096,
      io: { fromMachines: 1, toTun: 1, tunWriteErrors: 0, hairpinned: 0, rejected: 0, prohibitedSent: 0, prohibitedLimited: 0, droppedOut: 0, oversize: 0, fromTun: 1, tunReadErrors: 0, delivered: 1, droppedIn: 0 } as never,
      tun: { offloadFlags: 0, rxErrors: 0, rxBadOffload: 0, rxSuperPackets: 0, txCoalesced: 0, txQueueFull: 2, txErrors: { EIO: 1 }, txTooLong: 0 },
      nat: { created: 5, expired: 2 },
    }),
    dns: () => ({ counters: { udpQueries: 3, tcpQueries: 1 }, stats: dns }),
    topology: () => ({ revision: 42, applies: 3, lastApplyUnixMs: 1_700_000_000_000, connected: true }),
  };
  return { src, mesh, dns };
}

test('a host registry passes promtool check metrics and reads the live objects', async (t) => {
  const { src, mesh, dns } = source();
  const asker = addr('fdaa:0:18:a7b:7d:f066:b83b:2');
  dns.query(...at(dnsPacket(28, 0, 0x1234, false, asker, 40000)), 1000);
  dns.reply(...at(dnsPacket(28, 0, 0x1234, true, asker, 40000)), 1000.3);
  dns.reply(...at(dnsPacket(1, 3, 0x77, true, asker, 40001)), 1001); // no query seen: counted, no latency
  const full = await hostMetrics(src).text();
  t.regex(full, /^sixpn_host_info\{host="ord1"\} 1$/m);
  t.regex(full, /^sixpn_nat66_sessions\{host="ord1"\} 12$/m, 'every series names the host');
  const text = withoutHost(full);
  const lint = await promtool(full);
  t.is(lint.code, 0, lint.out);
  t.is(lint.out.trim(), '', 'promtool has nothing to say');
  t.regex(text, /^sixpn_router_dropped_packets_total\{reason="cross_org"\} \d+$/m);
  t.regex(text, /^sixpn_router_forwarded_packets_total\{to="mesh"\} 1$/m);
  t.regex(text, /^sixpn_router_icmp_sent_total 16$/m);
  t.regex(text, /^sixpn_wg_rx_dropped_total\{device="mesh",reason="auth_failed"\} 4$/m);
  t.regex(text, /^sixpn_wg_rx_datagrams_total\{device="mesh"\} 99$/m);
  t.regex(text, /^sixpn_aead_workers 0$/m, "no worker pool configured in this thread");
  t.regex(text, /^sixpn_aead_jobs_in_flight 0$/m);
  t.regex(text, /^sixpn_wg_peer_rx_bytes_total\{device="mesh",peer="ams1"\} 1234$/m);
  t.regex(text, /^sixpn_wg_peer_tx_bytes_total\{device="mesh",peer="ams1"\} 5678$/m);
  t.regex(text, /^sixpn_wg_peer_last_handshake_timestamp_seconds\{device="mesh",peer="ams1"\} 1700000000.5$/m);
  t.regex(text, /^sixpn_wg_peer_rx_bytes_total\{device="gateway",peer="laptop",org="acme"\} 0$/m);
  t.regex(text, /^sixpn_wg_udp_tx_errors_total\{device="mesh",errno="ENOBUFS"\} 3$/m);
  t.regex(text, /^sixpn_wg_offload_enabled\{device="mesh",offload="udp-gro"\} 1$/m);
  t.regex(text, /^sixpn_wg_offload_enabled\{device="gateway",offload="udp-gso"\} 0$/m);
  t.regex(text, /^sixpn_machine_tun_tx_dropped_total\{reason="queue_full"\} 11$/m);
  t.regex(text, /^sixpn_machine_tun_tx_errors_total\{errno="EIO"\} 1$/m);
  t.regex(text, /^sixpn_machine_info\{machine="m1",app="web",org="acme",state="started",namespace="m1",interface="sx-m1"\} 1$/m);
  t.regex(text, /^sixpn_nat66_sessions 12$/m);
  t.regex(text, /^sixpn_nat66_mappings 10$/m);
  t.regex(text, /^sixpn_nat66_sessions_created_total 5$/m);
  t.regex(text, /^sixpn_dns_answers_total\{qtype="AAAA",rcode="NOERROR"\} 1$/m);
  t.regex(text, /^sixpn_dns_answers_total\{qtype="A",rcode="NXDOMAIN"\} 1$/m);
  t.regex(text, /^sixpn_dns_answer_duration_seconds_bucket\{le="0.0005"\} 1$/m);
  t.regex(text, /^sixpn_dns_answer_duration_seconds_bucket\{le="0.00025"\} 0$/m);
  t.regex(text, /^sixpn_dns_answer_duration_seconds_bucket\{le="\+Inf"\} 1$/m);
  t.regex(text, /^sixpn_dns_answer_duration_seconds_count 1$/m);
  t.regex(text, /^sixpn_topology_revision 42$/m);
  t.regex(text, /^sixpn_topology_last_apply_timestamp_seconds 1700000000$/m);
  t.regex(text, /^sixpn_store_connected 1$/m);
  t.regex(text, /^process_cpu_seconds_total /m, 'the process metrics are there');
  // read at scrape time: a change shows on the next scrape
  mesh.counters.rxAuthFailed = 5;
  t.regex(withoutHost(await hostMetrics(src).text()), /^sixpn_wg_rx_dropped_total\{device="mesh",reason="auth_failed"\} 5$/m);
});

test('promtool refuses what the conventions forbid (the check is real)', async (t) => {
  const lint = await promtool('# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter 1\n');
  t.regex(lint.out, /counter metrics should have "_total" suffix/);
});

test('sixpn-wg device metrics with the TUN side pass promtool', async (t) => {
  const dev = new Device({ sendUdp: () => undefined, writeTun: () => undefined });
  const p = dev.addPeer(new Uint8Array(32).fill(1));
  const m = new Metrics({ process: false });
  deviceMetrics(m, () => [{ device: 'wg0', dev, port: port(), offloads: () => 'tun-csum tso4 tso6 udp-gso', peers: () => [{ peer: p, name: Buffer.from(p.publicKey).toString('base64') }] }]);
  tunMetrics(m, 'sixpn_wg_tun', 'the TUN', { device: 'wg0' }, () => ({ rxBadOffload: 1, rxSuperPackets: 2, txCoalesced: 3, txQueueFull: 4, txErrors: { 'errno 5': 6 } }));
  const text = await m.text();
  const lint = await promtool(text);
  t.is(lint.code, 0, lint.out);
  t.regex(text, /^sixpn_wg_tun_tx_errors_total\{device="wg0",errno="errno 5"\} 6$/m);
  t.regex(text, /^sixpn_wg_tun_tx_dropped_total\{device="wg0",reason="queue_full"\} 4$/m);
  t.regex(text, /^sixpn_wg_offload_enabled\{device="wg0",offload="tso6"\} 1$/m);
  t.regex(text, /^sixpn_wg_peer_tx_bytes_total\{device="wg0",peer="AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="\} 0$/m);
});

test('DnsStats: answers by type and rcode, latency only for queries it saw, bounded and expired', (t) => {
  const s = new DnsStats();
  const asker = addr('fdaa:0:18:a7b:7d:f066:b83b:2');
  for (let i = 0; i < 3; i++) s.query(...at(dnsPacket(1, 0, i, false, asker, 5000)), 0);
  s.reply(...at(dnsPacket(1, 0, 0, true, asker, 5000)), 0.02); // 20 µs
  s.reply(...at(dnsPacket(1, 0, 1, true, asker, 5001)), 0.5); // other port: not the query
  s.reply(...at(dnsPacket(1, 2, 2, true, asker, 5000)), 3000); // 3 s
  t.is(s.answers.get('A NOERROR'), 2);
  t.is(s.answers.get('A SERVFAIL'), 1);
  t.is(s.latencyCount, 2);
  const cum = s.cumulative();
  t.is(cum.length, DNS_LATENCY_BOUNDS_S.length + 1);
  t.is(cum[0], 1); // ≤ 50 µs
  t.is(cum[DNS_LATENCY_BOUNDS_S.indexOf(2.5)], 1);
  t.is(cum[DNS_LATENCY_BOUNDS_S.indexOf(5)], 2);
  s.expire(20_000);
  t.is(s.unanswered, 1, 'the query answered from another port is forgotten');
  t.is(qtypeName(65), 'HTTPS');
  t.is(qtypeName(4242), 'other');
  t.is(rcodeName(3), 'NXDOMAIN');
  t.is(rcodeName(15), 'RCODE15');
  // not DNS: ignored
  const other = dnsPacket(1, 0, 9, false, asker, 5000);
  other[40 + 3] = 54; // destination port 54
  s.query(...at(other), 0);
  s.expire(1e9);
  t.is(s.unanswered, 1);
});

test('MetricsServer answers GET /metrics, 404 elsewhere; listen addresses', async (t) => {
  const m = new Metrics({ process: false });
  m.gauge('sixpn_test_value', 'A value.', [], (e) => e(7));
  const srv = await MetricsServer.listen(m, '127.0.0.1:0', silentLogger);
  try {
    t.regex(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const r = await fetch(srv.url);
    t.is(r.status, 200);
    t.regex(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    t.regex(await r.text(), /^sixpn_test_value 7$/m);
    t.is((await fetch(srv.url.replace('/metrics', '/nope'))).status, 404);
  } finally {
    await srv.close();
  }
  t.deepEqual(parseListenAddress('[::1]:9586'), { host: '::1', port: 9586 });
  t.deepEqual(parseListenAddress(':9586'), { host: '::', port: 9586 });
  t.deepEqual(parseListenAddress('localhost:80'), { host: 'localhost', port: 80 });
  t.throws(() => parseListenAddress('9586'), { message: /not HOST:PORT/ });
});

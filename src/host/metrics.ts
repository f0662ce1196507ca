// The metrics of `sixpn up` (issue 14), read from the host's live objects at each scrape: the
// router's counters, the machines and their TUNs, the mesh and gateway WireGuard devices with
// their peers, SNAT66, DNS, the offloads in use and the topology in force. Served on the host
// config's `metrics` address (src/metrics), in the host's network namespace.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DnsStats } from '../dns/stats.ts';
import { DNS_LATENCY_BOUNDS_S } from '../dns/stats.ts';
import { Metrics, type Emit } from '../metrics/index.ts';
import { deviceMetrics, tunMetrics, type DeviceSource, type TunCountersLike } from '../metrics/device.ts';
import { COUNTERS, type Counter } from '../router/router.ts';
import type { EgressStatus } from './egress.ts';
import type { OffloadCounters } from './machine-offload.ts';
import type { LocalMachine } from './machines.ts';

/** What the metrics read from a running host (SixpnHost gives it). */
export interface HostMetricsSource {
  readonly host: string;
  readonly router: Readonly<Record<Counter, number>>;
  readonly offload: OffloadCounters | null;
  /** The machines' TUN counters, summed (machines closed included). */
  machineTuns(): TunCountersLike;
  machines(): Iterable<LocalMachine>;
  devices(): readonly DeviceSource[];
  /** Offloads in use: the machine TUNs' (names, or "none"). */
  machineOffloads(): string;
  egress(): EgressStatus | null;
  dns(): { counters: Record<string, number>; stats: DnsStats; tun?: TunCountersLike | null } | null;
  topology(): { revision: number; applies: number; lastApplyUnixMs: number; connected: boolean | null };
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The registry of one host; `collect` reads `src` at each scrape. */
export function hostMetrics(src: HostMetricsSource): Metrics {
  const m = new Metrics();
  m.registry.setDefaultLabels({ host: src.host }); // every series names its host (dashboards select by it)
  m.gauge('sixpn_host_info', 'This host (value 1; its name in the host label).', [], (e) => e(1));
  routerMetrics(m, src);
  machineMetrics(m, src);
  deviceMetrics(m, () => src.devices());
  egressMetrics(m, src);
  dnsMetrics(m, src);
  m.gauge('sixpn_topology_revision', 'The store revision of the topology in force (etcd), or the number of topologies applied (file).', [],
    (e) => e(src.topology().revision));
  m.counter('sixpn_topology_applies_total', 'Topologies applied since start (the first one included).', [], (e) => e(src.topology().applies));
  m.gauge('sixpn_topology_last_apply_timestamp_seconds', 'When the topology in force was applied, Unix time.', [],
    (e) => e(src.topology().lastApplyUnixMs / 1000));
  m.gauge('sixpn_store_connected', 'Whether the topology store is reachable (1) or not (0); absent for a topology file.', [], (e) => {
    const c = src.topology().connected;
    if (c !== null) e(c ? 1 : 0);
  });
  return m;
}

function routerMetrics(m: Metrics, src: HostMetricsSource): void {
  const forwarded = COUNTERS.filter((c) => c.startsWith('forwarded_'));
  const dropped = COUNTERS.filter((c) => c.startsWith('dropped_'));
  m.counter('sixpn_router_forwarded_packets_total', 'Packets the router forwarded, by where they went.', ['to'],
    (e) => { for (const c of forwarded) e(src.router[c], { to: c.slice('forwarded_'.length) }); });
  m.counter('sixpn_router_dropped_packets_total', 'Packets the router dropped, by reason.', ['reason'],
    (e) => { for (const c of dropped) e(src.router[c], { reason: c.slice('dropped_'.length) }); });
  for (const c of COUNTERS) {
    if (forwarded.includes(c) || dropped.includes(c)) continue;
    m.counter(`sixpn_router_${c === 'dns' ? 'dns_packets' : c === 'migrated_rewrite' ? 'migrated_rewrites' : c}_total`,
      `Router counter ${c}.`, [], (e) => e(src.router[c]));
  }
  const off: ReadonlyArray<[keyof OffloadCounters, string, string]> = [
    ['whole', 'sixpn_offload_whole_packets_total', 'Offloaded machine packets passed on whole (to the egress or a machine of this host).'],
    ['segmented', 'sixpn_offload_segmented_packets_total', 'Machine TCP segments (TSO) cut into MSS-sized packets.'],
    ['segments', 'sixpn_offload_segments_total', 'Packets the cut segments gave.'],
    ['checksummed', 'sixpn_offload_checksums_completed_total', 'Partial checksums completed.'],
    ['invalid', 'sixpn_offload_invalid_packets_total', 'Offloaded packets that could not be cut or completed (dropped).'],
  ];
  for (const [k, name, help] of off) m.counter(name, help, [], (e) => { if (src.offload) e(src.offload[k]); });
}

function machineMetrics(m: Metrics, src: HostMetricsSource): void {
  m.gauge('sixpn_machine_info', 'A machine set up on this host (value 1), with its app, org, state, namespace and interface.',
    ['machine', 'app', 'org', 'state', 'namespace', 'interface'], (e) => {
      for (const lm of src.machines()) {
        const x = lm.machine;
        e(1, { machine: x.id, app: x.app, org: x.org, state: x.state, namespace: lm.ns, interface: lm.ifname });
      }
    });
  m.gauge('sixpn_machines', 'Machines set up on this host.', [], (e) => e([...src.machines()].length));
  tunMetrics(m, 'sixpn_machine_tun', 'the machine TUNs', {}, () => src.machineTuns());
  m.gauge('sixpn_offload_enabled', 'Whether the machine TUNs use offloads (TSO, partial checksums, coalesced writes).', ['interface'],
    (e) => e(src.machineOffloads() === 'none' ? 0 : 1, { interface: 'machines' }));
}

function egressMetrics(m: Metrics, src: HostMetricsSource): void {
  const with_ = (e: Emit, f: (s: EgressStatus) => void) => {
    const s = src.egress();
    if (s !== null) f(s);
  };
  m.gauge('sixpn_nat66_sessions', 'SNAT66 sessions (conntrack entries).', [], (e) => with_(e, (s) => e(s.entries)));
  m.gauge('sixpn_nat66_mappings', 'SNAT66 mappings (external address and port in use).', [], (e) => with_(e, (s) => e(s.mappings)));
  m.gauge('sixpn_nat66_sessions_capacity', 'SNAT66 sessions the table holds at most.', [], (e) => with_(e, (s) => e(s.capacity)));
  m.gauge('sixpn_nat66_table_bytes', 'Memory of the SNAT66 tables.', [], (e) => with_(e, (s) => e(s.tableBytes)));
  m.gauge('sixpn_egress_addresses', 'Egress addresses of this host.', [], (e) => with_(e, (s) => e(s.addresses.length)));
  // Nat66Counters and EgressCounters: one counter each, named after the field
  const NAT = ['created', 'expired', 'invalid', 'unsupported', 'notTracked', 'unsolicited', 'filtered', 'badChecksum', 'tableFull',
    'machineFull', 'portsFull', 'fragments', 'fragmentsDropped', 'errorsIn', 'errorsOut', 'errorsDropped', 'hairpins'];
  for (const k of NAT) {
    const name = k === 'created' || k === 'expired' ? `sixpn_nat66_sessions_${k}_total` : `sixpn_nat66_${snake(k)}_total`;
    m.counter(name, `SNAT66 counter ${k}.`, [], (e) => with_(e, (s) => e(s.nat[k] ?? 0)));
  }
  const IO = ['fromMachines', 'toTun', 'tunWriteErrors', 'hairpinned', 'rejected', 'prohibitedSent', 'prohibitedLimited', 'droppedOut',
    'oversize', 'fromTun', 'tunReadErrors', 'delivered', 'droppedIn'] as const;
  for (const k of IO) m.counter(`sixpn_egress_${snake(k)}_packets_total`, `Egress TUN packets: ${k}.`, [], (e) => with_(e, (s) => e(s.io[k])));
  tunMetrics(m, 'sixpn_egress_tun', 'the egress TUN', {}, () => src.egress()?.tun ?? NO_TUN);
}

const NO_TUN: TunCountersLike = { txCoalesced: 0, txQueueFull: 0 };

function dnsMetrics(m: Metrics, src: HostMetricsSource): void {
  tunMetrics(m, 'sixpn_dns_tun', 'the DNS TUN (TCP to the DNS servers)', {}, () => src.dns()?.tun ?? NO_TUN);
  m.counter('sixpn_dns_answers_total', 'UDP DNS answers sent, by query type and response code.', ['qtype', 'rcode'], (e) => {
    const d = src.dns();
    if (d === null) return;
    for (const [k, n] of d.stats.answers) {
      const [qtype, rcode] = k.split(' ');
      e(n, { qtype, rcode });
    }
  });
  m.histogram('sixpn_dns_answer_duration_seconds', 'Time from a UDP DNS query to its answer.', {
    bounds: DNS_LATENCY_BOUNDS_S,
    read: () => {
      const s = src.dns()?.stats;
      return s ? { cumulative: s.cumulative(), sum: s.latencySumS, count: s.latencyCount } : { cumulative: DNS_LATENCY_BOUNDS_S.map(() => 0).concat(0), sum: 0, count: 0 };
    },
  });
  m.counter('sixpn_dns_unanswered_total', 'UDP DNS queries with no answer within 10 s.', [], (e) => { const d = src.dns(); if (d) e(d.stats.unanswered); });
  const SERVICE: ReadonlyArray<[string, string]> = [
    ['udpQueries', 'sixpn_dns_udp_queries_total'], ['udpForwarded', 'sixpn_dns_udp_forwarded_total'],
    ['udpTruncated', 'sixpn_dns_udp_truncated_total'], ['tcpConnections', 'sixpn_dns_tcp_connections_total'],
    ['tcpRefused', 'sixpn_dns_tcp_refused_total'], ['tcpQueries', 'sixpn_dns_tcp_queries_total'],
    ['tcpForwarded', 'sixpn_dns_tcp_forwarded_total'],
  ];
  for (const [k, name] of SERVICE) m.counter(name, `DNS service counter ${k}.`, [], (e) => { const d = src.dns(); if (d) e(d.counters[k] ?? 0); });
}

/** The name of this process's network namespace under /run/netns (as `ip netns identify`), or null (the initial one, or unnamed). */
export function networkNamespace(): string | null {
  try {
    const self = statSync('/proc/self/ns/net');
    for (const name of readdirSync('/run/netns')) {
      try {
        const s = statSync(join('/run/netns', name));
        if (s.ino === self.ino && s.dev === self.dev) return name;
      } catch {
        // a namespace removed meanwhile
      }
    }
  } catch {
    // no /run/netns: no named namespaces
  }
  return null;
}

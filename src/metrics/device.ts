// The metrics of a WireGuard device (src/wg), the same in sixpn-wg and in sixpn up's mesh and
// gateway: the device's drop counters, its sockets' counters (DeviceSockets.counters), its offloads
// and, per peer, bytes and the last handshake. The `device` label names the device
// (`wg0`; `mesh`, `gateway` in sixpn up); peers are named by the caller (a host name, an
// external peer's name with its org, or the public key in base64 as `wg show` prints it).
import { AeadPool } from '../noise/aead-pool.ts';
import type { Device, DeviceCounters } from '../wg/device.ts';
import type { Peer } from '../wg/peer.ts';
import type { PortCounters } from '../tun/device-sockets.ts';
import type { Emit, Metrics } from './index.ts';

/** One device as the metrics read it, each time they are scraped. */
export interface DeviceSource {
  readonly device: string;
  readonly dev: Device;
  readonly port: PortCounters;
  /** Offloads in use, as names ("udp-gso udp-gro", "tso4 tso6 …", "none"). */
  offloads(): string;
  /** Its peers with their names (and org, for the gateway's external peers). */
  peers(): Iterable<{ readonly peer: Peer; readonly name: string; readonly org?: string }>;
}

// DeviceCounters by the metric and label they are exported as.
const RX_DROPS: ReadonlyArray<[keyof DeviceCounters, string]> = [
  ['rxInvalid', 'invalid'], ['rxMac', 'mac'], ['rxHandshakeRejected', 'handshake_rejected'],
  ['rxRateLimited', 'rate_limited'], ['rxNoKeypair', 'no_keypair'], ['rxAuthFailed', 'auth_failed'],
  ['rxReplay', 'replay'], ['rxBadInner', 'bad_inner'], ['rxSourceNotAllowed', 'source_not_allowed'],
];
const TX_DROPS: ReadonlyArray<[keyof DeviceCounters, string]> = [
  ['txNoPeer', 'no_peer'], ['txNoEndpoint', 'no_endpoint'], ['txStagedDropped', 'staged_queue_full'],
];
/** Every offload a device may report, so a turned-off one shows as 0 rather than missing. */
export const OFFLOAD_NAMES = ['udp-gso', 'udp-gro', 'tun-csum', 'tso4', 'tso6', 'uso4', 'uso6'];

/** Declares the device metrics on `m`, read from `sources()` at each scrape. */
export function deviceMetrics(m: Metrics, sources: () => readonly DeviceSource[]): void {
  const each = (emit: Emit, f: (s: DeviceSource, emit: Emit) => void) => {
    for (const s of sources()) f(s, emit);
  };
  const d = ['device'];
  m.gauge('sixpn_aead_workers', 'Worker threads that seal and open transport data (0: the main thread does).', [],
    (e) => e(AeadPool.current()?.size ?? 0));
  m.gauge('sixpn_aead_jobs_in_flight', 'Batches handed to the worker threads and not delivered yet.', [],
    (e) => e(AeadPool.current()?.inFlight ?? 0));
  m.counter('sixpn_wg_rx_datagrams_total', 'UDP datagrams received by the WireGuard device.', d,
    (e) => each(e, (s) => e(s.dev.counters.rxDatagrams, { device: s.device })));
  m.counter('sixpn_wg_rx_dropped_total', 'Received datagrams or packets the WireGuard device dropped, by reason.', ['device', 'reason'],
    (e) => each(e, (s) => { for (const [k, reason] of RX_DROPS) e(s.dev.counters[k], { device: s.device, reason }); }));
  m.counter('sixpn_wg_cookie_replies_sent_total', 'Cookie replies sent to handshake initiations while under load.', d,
    (e) => each(e, (s) => e(s.dev.counters.rxCookieSent, { device: s.device })));
  m.counter('sixpn_wg_tx_dropped_total', 'Packets to send that the WireGuard device dropped, by reason.', ['device', 'reason'],
    (e) => each(e, (s) => { for (const [k, reason] of TX_DROPS) e(s.dev.counters[k], { device: s.device, reason }); }));
  m.counter('sixpn_wg_udp_tx_errors_total', 'Datagrams the kernel refused to send, by errno.', ['device', 'errno'],
    (e) => each(e, (s) => { for (const [errno, n] of Object.entries(s.port.txErrors)) e(n, { device: s.device, errno }); }));
  m.counter('sixpn_wg_udp_tx_buffer_full_total', 'Datagrams not sent because the socket buffer was full.', d,
    (e) => each(e, (s) => e(s.port.txBufferFull, { device: s.device })));
  m.counter('sixpn_wg_udp_tx_gso_records_total', 'Send records that carried several datagrams (UDP_SEGMENT).', d,
    (e) => each(e, (s) => e(s.port.txGsoRecords, { device: s.device })));
  m.counter('sixpn_wg_udp_tx_gso_fallback_total', 'UDP_SEGMENT sends the kernel refused, sent again one datagram at a time.', d,
    (e) => each(e, (s) => e(s.port.txGsoFallback, { device: s.device })));
  m.counter('sixpn_wg_udp_rx_gro_records_total', 'Receives that held several datagrams (UDP_GRO).', d,
    (e) => each(e, (s) => e(s.port.rxGroRecords, { device: s.device })));
  m.counter('sixpn_wg_udp_rx_truncated_total', 'Datagrams received cut short (larger than a buffer slot).', d,
    (e) => each(e, (s) => e(s.port.rxTruncated, { device: s.device })));
  m.counter('sixpn_wg_udp_tx_source_cleared_total', 'Pinned source addresses that stopped working (unpinned, datagram sent again).', d,
    (e) => each(e, (s) => e(s.port.txSourceCleared, { device: s.device })));
  m.counter('sixpn_wg_udp_tx_no_socket_total', 'Datagrams to an address family the device has no socket for (dropped).', d,
    (e) => each(e, (s) => e(s.port.txNoSocket, { device: s.device })));
  m.gauge('sixpn_wg_offload_enabled', 'Whether an offload is in use on the device (1) or not (0), after probing the kernel.', ['device', 'offload'],
    (e) => each(e, (s) => {
      const on = new Set(s.offloads().split(' '));
      for (const offload of OFFLOAD_NAMES) e(on.has(offload) ? 1 : 0, { device: s.device, offload });
    }));
  m.gauge('sixpn_wg_peers', 'Peers configured on the device.', d,
    (e) => each(e, (s) => e(s.dev.peers.size, { device: s.device })));
  const p = ['device', 'peer', 'org'];
  const peers = (e: Emit, f: (peer: Peer) => number) => each(e, (s) => {
    for (const x of s.peers()) e(f(x.peer), { device: s.device, peer: x.name, ...(x.org !== undefined ? { org: x.org } : {}) });
  });
  m.counter('sixpn_wg_peer_rx_bytes_total', 'Bytes received from the peer (transport messages).', p, (e) => peers(e, (x) => x.rxBytes));
  m.counter('sixpn_wg_peer_tx_bytes_total', 'Bytes sent to the peer (transport messages).', p, (e) => peers(e, (x) => x.txBytes));
  m.gauge('sixpn_wg_peer_last_handshake_timestamp_seconds', 'When the last handshake with the peer completed, Unix time (0: never).', p,
    (e) => peers(e, (x) => x.lastHandshakeUnixMs / 1000));
}

/** A TUN's counters as the packet pump keeps them (src/tun/pump.ts TunCounters); what a TUN does not count reads as 0. */
export interface TunCountersLike {
  readonly rxErrors?: number;
  readonly rxBadOffload?: number;
  readonly rxSuperPackets?: number;
  readonly txCoalesced: number;
  readonly txQueueFull: number;
  readonly txErrors?: Readonly<Record<string, number>>;
  readonly txTooLong?: number;
}

/**
 * Declares the counters of TUNs under `prefix` (`sixpn_wg_tun` for sixpn-wg's, with its device
 * label; `sixpn_machine_tun` for sixpn up's machines, summed), read at each scrape.
 */
export function tunMetrics(m: Metrics, prefix: string, what: string, labels: Record<string, string>, read: () => TunCountersLike): void {
  const names = Object.keys(labels);
  m.counter(`${prefix}_rx_errors_total`, `Reads from ${what} that the kernel failed.`, names,
    (e) => e(read().rxErrors ?? 0, labels));
  m.counter(`${prefix}_rx_bad_offload_total`, `Packets read from ${what} whose offload header could not be honoured (dropped).`, names,
    (e) => e(read().rxBadOffload ?? 0, labels));
  m.counter(`${prefix}_rx_super_packets_total`, `Super-packets (TSO/USO) read from ${what} and cut into segments.`, names,
    (e) => e(read().rxSuperPackets ?? 0, labels));
  m.counter(`${prefix}_tx_coalesced_total`, `Packets written to ${what} as part of a super-packet (beyond the first of each).`, names,
    (e) => e(read().txCoalesced, labels));
  m.counter(`${prefix}_tx_dropped_total`, `Packets not written to ${what}, by reason.`, [...names, 'reason'], (e) => {
    const c = read();
    e(c.txQueueFull, { ...labels, reason: 'queue_full' });
    e(c.txTooLong ?? 0, { ...labels, reason: 'too_long' });
  });
  m.counter(`${prefix}_tx_errors_total`, `Packets the kernel refused on ${what}, by errno.`, [...names, 'errno'],
    (e) => { for (const [errno, n] of Object.entries(read().txErrors ?? {})) e(n, { ...labels, errno }); });
}

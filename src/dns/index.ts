/**
 * sixpn DNS: the `.internal` server (`InternalResolver` over a `DnsView`), the forwarder for
 * other names and the UDP reply packet, all sans-IO. The I/O around them (UDP in-process, TCP
 * through a TUN the host kernel terminates, upstream sockets) is the host process's edge:
 * src/host/dns-service.ts.
 */
export type { DnsAsker, DnsMachine, DnsPeer, DnsService, DnsView } from './view.ts';
export { ANSWER_FORWARD, DEFAULT_MAX_UDP_PAYLOAD, DEFAULT_TTL_S, InternalResolver, answer } from './resolver.ts';
export type { ResolverOptions, Transport } from './resolver.ts';
export {
  DEFAULT_FORWARD_TIMEOUT_MS, DEFAULT_MAX_OUTSTANDING, FWD_CLIENT, FWD_NONE, FWD_UPSTREAM, Forwarder,
  parseResolvConf,
} from './forwarder.ts';
export type { ForwardAction, ForwarderOptions, Upstream } from './forwarder.ts';
export { TCP_LENGTH_LEN, TcpDeframer, frameTcp } from './tcp.ts';
export { REGION_COORDS, greatCircleKm, regionDistanceKm } from './regions.ts';
export type { LatLon } from './regions.ts';
export { HIDDEN_PEER_PREFIX, ZONE_APEX } from './zone.ts';
export { DNS_PORT, TCP_MESSAGE_MAX, UDP_PAYLOAD_MIN } from './wire.ts';
export { IP_UDP_LEN, truncateToQuestion, writeUdpReply } from './reply.ts';

/**
 * src/tun — TUN queues, UDP sockets with batching and source-address control, and
 * interface/namespace setup. The only native code in sixpn is behind `native.ts`.
 *
 *   const q = tunOpen('sx%d', { multiQueue: true });     // fd stays with us, device can move
 *   await linkSetNetns(q.name, 'm1');                     // ip.ts: iproute2, no netlink code
 *   const batch = new TunBatch(64, 2048, { headroom: MESSAGE_TRANSPORT_HEADER_SIZE });
 *   const n = batch.read(q.fd, 100);                      // worker: block ≤ 100 ms, then check stop flag
 *
 * UDP: `udpOpen(6, '::', 51820, { reusePort: true })` per worker; `UdpBatch.recv` fills each
 * record with the sender and the local address it wrote to, and `UdpBatch.send` on the same
 * records replies from that address.
 */
export {
  IFNAMSIZ, META_CAP, META_ERR, META_LEN, META_OFF, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN,
  TUN_F_USO4, TUN_F_USO6, TUN_RECORD_WORDS, UDP_CHUNK, UDP_META_ADDR, UDP_META_FAMILY, UDP_META_IFINDEX,
  UDP_META_GSO, UDP_META_LOCAL, UDP_META_PORT, UDP_RECORD_WORDS, VNET_HDR_LEN, close, ifIndex, isErrno, tunOpen,
  errnoName, tunRead, tunSetOffload, tunWrite, udpOpen, udpRecv, udpSend, udpSetGro, udpSetMark, fdWatch, fdUnwatch,
} from './native.ts';
export type { FdWatch, NativeError, Slab, TunOpenOptions, TunQueue, UdpOpenOptions, UdpSocket } from './native.ts';
export { TunBatch, UdpBatch } from './batch.ts';
export { TunCounters, TunPump, offloadFlagNames, type TunPumpOptions } from './pump.ts';
export type { BatchOptions } from './batch.ts';
export { bytesToIp, ipToBytes, isV4Mapped } from './addr.ts';
export {
  IpCommandError, addrAdd, ip, linkAdd, linkDelete, linkSetMtu, linkSetNetns, linkUp, netnsAdd, netnsDelete,
  routeAdd,
} from './ip.ts';
export type { NetnsOption } from './ip.ts';

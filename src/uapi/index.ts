// src/uapi: the cross-platform userspace API that `wg` and `wg-quick` drive.
//   types     the contract with the device (UapiDevice, UapiSet, UapiDeviceState)
//   protocol  sans-IO: the streaming request parser (a whole set validated before it is applied)
//             and the get/errno formatters
//   text      keys, ports, prefixes and endpoints read as wireguard-go reads them
//   server    the unix socket /var/run/wireguard/IFNAME.sock: I/O, so not exported here (import
//             server.ts itself; this surface stays sans-IO, as src/dns and src/nat66)
//   memory    MemoryDevice, an in-memory device with the reference semantics of a set
export type * from './types.ts';
export * from './constants.ts';
export { UapiParser, formatErrno, formatGet, formatSet } from './protocol.ts';
export type { UapiRequest } from './protocol.ts';
export { formatCidr, formatEndpoint, parseCidr, parseEndpoint, parseHexKey, parseUint } from './text.ts';
export { MemoryDevice } from './memory.ts';
export type { MemoryDeviceOptions, MemoryPeer } from './memory.ts';

// Offloads: virtio_net_hdr, cutting super-packets read from a TUN (segment.ts) and building them
// for TUN writes (coalesce.ts). Pure; the packet pump in src/tun drives it.
export * from './vnet.ts';
export { L4Info, parseL4, pseudoSum, writeIpv4HeaderChecksum, writeL4Checksum } from './packet.ts';
export { SEGMENT_INVALID, Segmenter, completeChecksum, gsoSegment, gsoSegmentCount } from './segment.ts';
export { Coalescer, type Slots } from './coalesce.ts';

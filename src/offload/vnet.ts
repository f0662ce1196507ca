// The virtio_net_hdr that a TUN queue opened with IFF_VNET_HDR puts in front of every packet
// (linux/virtio_net.h), little-endian (no TUNSETVNETBE):
//
//   struct virtio_net_hdr { u8 flags; u8 gso_type; u16 hdr_len, gso_size, csum_start, csum_offset; }
//
// On read, the kernel may hand over
//   - a TCP super-packet of up to 64 KB (gso_type TCPV4/TCPV6, gso_size = MSS) or a UDP one
//     (UDP_L4, gso_size = datagram payload size): the cutting is left to us (segment.ts);
//   - a packet whose checksum is partial (flags NEEDS_CSUM): the field at csum_start +
//     csum_offset holds the pseudo-header sum, not complemented; the reader sums the rest.
// On write, we hand it super-packets built from in-order segments (coalesce.ts) the same way.
//
// This folder is the only place that knows these headers; it is pure (bytes in, bytes out).

import { readU16LE, writeU16LE } from '../bytes.ts';

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
export const VNET_GSO_ECN = 0x80;

export const VNET_OFF_FLAGS = 0;
export const VNET_OFF_GSO_TYPE = 1;
export const VNET_OFF_HDR_LEN = 2;
export const VNET_OFF_GSO_SIZE = 4;
export const VNET_OFF_CSUM_START = 6;
export const VNET_OFF_CSUM_OFFSET = 8;


/** True when the packet behind the header at buf[h] needs work: GSO, or a partial checksum. */
export function vnetOffloaded(buf: Uint8Array, h: number): boolean {
  return (buf[h] & VNET_F_NEEDS_CSUM) !== 0 || buf[h + VNET_OFF_GSO_TYPE] !== VNET_GSO_NONE;
}

/** gso_type without the ECN bit. */
export function vnetGsoType(buf: Uint8Array, h: number): number {
  return buf[h + VNET_OFF_GSO_TYPE] & ~VNET_GSO_ECN;
}

export function vnetGsoSize(buf: Uint8Array, h: number): number {
  return readU16LE(buf, h + VNET_OFF_GSO_SIZE);
}

/** A zero header: an ordinary packet with a complete checksum. */
export function clearVnetHdr(buf: Uint8Array, h: number): void {
  buf.fill(0, h, h + VNET_HDR_LEN);
}

/** Writes a virtio_net_hdr (a zero header is "nothing to do"). */
export function writeVnetHdr(
  buf: Uint8Array, h: number,
  v: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number },
): void {
  buf[h] = v.flags ?? 0;
  buf[h + VNET_OFF_GSO_TYPE] = v.gsoType ?? 0;
  writeU16LE(buf, h + VNET_OFF_HDR_LEN, v.hdrLen ?? 0);
  writeU16LE(buf, h + VNET_OFF_GSO_SIZE, v.gsoSize ?? 0);
  writeU16LE(buf, h + VNET_OFF_CSUM_START, v.csumStart ?? 0);
  writeU16LE(buf, h + VNET_OFF_CSUM_OFFSET, v.csumOffset ?? 0);
}

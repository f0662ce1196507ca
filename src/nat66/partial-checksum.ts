// Partial checksums (offload mode of Egress): a packet behind a virtio_net_hdr with NEEDS_CSUM
// — every 64 KB TSO/GSO segment, and what the kernel leaves to a checksum-offloading device —
// carries in its transport checksum field the sum of the pseudo-header only, not complemented;
// the device (or the kernel, segmenting) adds the sum of the transport header and data from
// csum_start on, and complements. Translating such a packet:
//   - an address change (pseudo-header) must change the field: the RFC 1624 update Nat66
//     applies is the same arithmetic on the complement of the field, so the field is
//     complemented before and after (0xffff stands in for a complement of 0, which Nat66 would
//     read as "no UDP checksum"; both are zero in ones' complement);
//   - a port or echo identifier change (transport header: summed later by the device) must not:
//     the first three words of the transport header are saved before and their updates undone.
// A partial checksum at another offset than TCP's or UDP's (16, 6) is completed in software and
// the flag cleared, so Nat66 sees an ordinary full checksum.
//   struct virtio_net_hdr { u8 flags; u8 gso_type; u16 hdr_len, gso_size, csum_start, csum_offset; }
// (little-endian on this host: a TUN without TUNSETVNETBE uses the host's order).

import { readU16LE } from '../bytes.ts';
import { TCP_OFF_CHECKSUM, UDP_OFF_CHECKSUM, fold, readU16, sumWords, updateChecksumWord, writeU16 } from '../ipv6/index.ts';
import { VNET_F_NEEDS_CSUM, VNET_HDR_LEN, VNET_OFF_CSUM_OFFSET, VNET_OFF_CSUM_START } from '../offload/vnet.ts';

// The header's layout is src/offload's (one definition); these names stay for existing callers.
export { VNET_HDR_LEN as VIRTIO_NET_HDR_LEN, VNET_F_NEEDS_CSUM as VIRTIO_NET_HDR_F_NEEDS_CSUM };

export class PartialChecksum {
  pos = -1; // the checksum field of the packet being translated, or -1
  private l4 = 0;
  private readonly words = new Uint16Array(3);

  // For the packet at buf[at] (virtio_net_hdr first, len bytes in all): prepares a partial
  // checksum for translation; true when it did (call close() after translating).
  open(buf: Uint8Array, at: number, len: number): boolean {
    this.pos = -1;
    if ((buf[at] & VNET_F_NEEDS_CSUM) === 0) return false;
    const start = readU16LE(buf, at + VNET_OFF_CSUM_START);
    const field = readU16LE(buf, at + VNET_OFF_CSUM_OFFSET);
    const l4 = at + VNET_HDR_LEN + start;
    const end = at + len;
    const pos = l4 + field;
    if (pos + 2 > end || l4 + 6 > end) return false; // nonsense: Nat66 judges the packet
    if (field !== TCP_OFF_CHECKSUM && field !== UDP_OFF_CHECKSUM) {
      // Not TCP or UDP (an ICMPv6 message would change deep inside): finish it here.
      writeU16(buf, pos, ~fold(sumWords(buf, l4, end - l4, 0)) & 0xffff);
      buf[at] &= ~VNET_F_NEEDS_CSUM;
      return false;
    }
    this.l4 = l4;
    this.pos = pos;
    for (let k = 0; k < 3; k++) this.words[k] = readU16(buf, l4 + 2 * k);
    let g = ~readU16(buf, pos) & 0xffff;
    if (g === 0) g = 0xffff;
    writeU16(buf, pos, g);
    return true;
  }

  // After translation: undoes the updates for transport-header words, complements back.
  close(buf: Uint8Array): void {
    const pos = this.pos;
    if (pos < 0) return;
    for (let k = 0; k < 3; k++) {
      const o = this.l4 + 2 * k;
      if (o === pos) continue;
      const now = readU16(buf, o);
      if (now !== this.words[k]) updateChecksumWord(buf, pos, now, this.words[k], false);
    }
    writeU16(buf, pos, ~readU16(buf, pos) & 0xffff);
    this.pos = -1;
  }
}

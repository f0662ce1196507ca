// Offload mode's glue between the machine TUNs and the router (issue 5; "offload" in the host
// config, on by default). A machine's packet arrives behind its virtio_net_hdr. An ordinary one
// is routed as always (its header zeroed: passed on with it, it asks nothing). An offloaded one
// (a 64 KB TCP segment, a partial checksum) goes whole to the egress or a machine of this host
// when the router sends it there; else it is cut into MSS-sized packets, or its checksum
// completed (src/offload), and those are routed like any. The router's checks run on
// every packet either way; it never sees a virtio_net_hdr.
//
// How the router's outputs know a packet is the one read from the machine, header just in
// front: `fromMachine` remembers (buf, off) of the packet being routed, and toMachine/toEgress
// compare. Anything else (an ICMPv6 error, a piece of a cut segment, a packet from the mesh)
// gets a zero header in front.
import type { Router } from '../router/router.ts';
import { SEGMENT_INVALID, Segmenter, VNET_GSO_NONE, VNET_HDR_LEN, completeChecksum, vnetOffloaded } from '../offload/index.ts';
import type { Machine } from '../topology/index.ts';
import { VNET_HDR_LEN as TUN_VNET_HDR_LEN } from '../tun/index.ts';
import type { Egress } from './egress.ts';
import { VNET_SLOT, type MachineTuns } from './machines.ts';

const SEG_AT = 32; // where a piece of a cut segment starts in the scratch buffer (headroom, header)

/** Offload mode's own counts (in `sixpn status` as "offload"). */
export class OffloadCounters {
  whole = 0; // offloaded packets passed on unchanged (egress, a machine of this host)
  segmented = 0; // 64 KB segments cut into MSS-sized packets
  segments = 0; // … the packets they gave
  checksummed = 0; // partial checksums completed
  invalid = 0; // offloaded packets that could not be cut or completed: dropped
}

export class MachineOffload {
  readonly counters = new OffloadCounters();
  private readonly router: Router;
  private readonly seg = new Uint8Array(VNET_SLOT); // the piece of a segment being routed
  private readonly segmenter = new Segmenter();
  private egressScratch: Uint8Array | null = null; // a plain packet for the egress, header in front
  // the packet being routed from a machine, whose virtio_net_hdr is just in front
  private curBuf: Uint8Array | null = null;
  private curOff = -1;

  constructor(router: Router) {
    if (TUN_VNET_HDR_LEN !== VNET_HDR_LEN) throw new Error(`unexpected virtio_net_hdr size ${TUN_VNET_HDR_LEN}`);
    this.router = router;
  }

  /** A machine's packet behind its virtio_net_hdr at buf[h]; `total` counts the header. */
  fromMachine(m: Machine, buf: Uint8Array, h: number, total: number): void {
    if (total < VNET_HDR_LEN) return;
    const off = h + VNET_HDR_LEN;
    const len = total - VNET_HDR_LEN;
    const r = this.router;
    const c = this.counters;
    this.curBuf = buf;
    this.curOff = off;
    try {
      if (!vnetOffloaded(buf, h)) {
        buf.fill(0, h, off);
        r.fromMachine(m, buf, off, len);
      } else if (r.fromMachine(m, buf, off, len, true)) {
        c.whole++;
      } else if (buf[h + 1] === VNET_GSO_NONE) {
        if (!completeChecksum(buf, h, off, len)) return void c.invalid++;
        c.checksummed++;
        buf.fill(0, h, off);
        r.fromMachine(m, buf, off, len);
      } else {
        const s = this.seg;
        const count = this.segmenter.begin(buf, h, off, len);
        if (count === SEGMENT_INVALID) return void c.invalid++;
        this.curBuf = s;
        this.curOff = SEG_AT;
        for (let k = 0; k < count; k++) {
          const n = this.segmenter.write(k, s, SEG_AT);
          if (n <= 0) break;
          s.fill(0, SEG_AT - VNET_HDR_LEN, SEG_AT); // the mesh may have sealed over it
          r.fromMachine(m, s, SEG_AT, n);
        }
        c.segmented++;
        c.segments += count;
      }
    } finally {
      this.curBuf = null;
      this.curOff = -1;
    }
  }

  /** The router's toMachine: the packet with its own header when it has one, else a zero one. */
  toMachine(machines: MachineTuns, m: Machine, buf: Uint8Array, off: number, len: number): void {
    if (buf === this.curBuf && off === this.curOff) machines.queue(m, buf, off - VNET_HDR_LEN, len + VNET_HDR_LEN);
    else machines.queuePlain(m, buf, off, len);
  }

  /** The router's toEgress for machine slot `slot`, egress id `id`: always with a header in front. */
  toEgress(egress: Egress, slot: number, id: number, buf: Uint8Array, off: number, len: number): boolean {
    if (buf === this.curBuf && off === this.curOff) return egress.send(slot, buf, off - VNET_HDR_LEN, len + VNET_HDR_LEN, id);
    // not a machine's packet as read (the router only sends those here): a zero header in front
    const s = (this.egressScratch ??= new Uint8Array(VNET_SLOT));
    if (len + VNET_HDR_LEN > s.length) return true;
    s.fill(0, 0, VNET_HDR_LEN);
    s.set(buf.subarray(off, off + len), VNET_HDR_LEN);
    return egress.send(slot, s, 0, len + VNET_HDR_LEN, id);
  }
}

// src/nat66: SNAT66 for machines' internet egress — a sans-IO translator with its own connection
// tracker (seed 000: hosts translate machines' 6PN addresses to an egress address).
//   constants  verdicts, filtering modes, RFC timeouts, TCP states
//   nat        Nat66: outbound / inbound / hairpin, limits, tick, counters
//   table      mapping and session tables in typed arrays, port allocation, expiry wheel
//   egress-set the egress addresses by id, found by address in one probe or two
//   tcp        the TCP state machine and its timeouts
//   icmp       ICMPv6 error translation, both ways
//   fragments  inbound non-first fragments follow their first fragment
//   conntrack-text  `conntrack -L`-style lines of the table
//   slots      machine names ↔ the slot numbers Nat66 and Egress use
//   partial-checksum  translating packets whose checksum the TUN left partial (offload mode)
// Sans-IO only. The I/O side lives in the host process's edge layer (src/host):
//   src/host/egress.ts           Egress: Nat66 on the egress TUN — batches, delivery, tick, status
//   src/host/ipv6-forwarding.ts  the host kernel's side: forwarding sysctls, proxy NDP

export * from './constants.ts';
export { Nat66, Nat66Counters, type Nat66Options } from './nat.ts';
export { ConnTable } from './table.ts';
export { tcpTrack, tcpTimeout, tcpMayCreate } from './tcp.ts';
export { IcmpErrors, parseQuoted, type ErrorCounters } from './icmp.ts';
export { EgressSet } from './egress-set.ts';
export { conntrackLines } from './conntrack-text.ts';
export { MachineSlots } from './slots.ts';
export { PartialChecksum, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_LEN } from './partial-checksum.ts';

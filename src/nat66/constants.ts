// SNAT66 constants: verdicts, specification timeouts, implementation defaults, TCP states.

// ---- Verdicts of Nat66.outbound / Nat66.inbound ----
// The packet was rewritten in place unless the verdict says otherwise.

export const NAT66_FORWARD = 0; // outbound, translated: send it out of the egress TUN
export const NAT66_DELIVER = 1; // inbound, translated: deliver it to machine `nat.machine`
export const NAT66_HAIRPIN = 2; // outbound to one of our egress addresses, translated twice: deliver to `nat.machine`
export const NAT66_DROP = 3; // drop silently (unsolicited, invalid, filtered); bytes may be half rewritten
export const NAT66_REJECT = 4; // no mapping for this flow: drop and answer Destination Unreachable,
//                                code 1 (administratively prohibited); the packet is untouched (Nat66.buildProhibited)

// ---- Filtering behaviour, RFC 4787 §5 ----

export const FILTER_ADDRESS_AND_PORT = 0; // only remote endpoints the internal endpoint sent to (RFC 4787 §5; the strictest, default here)
export const FILTER_ENDPOINT_INDEPENDENT = 1; // anyone may reach a live mapping (RFC 4787 REQ-8: for application transparency)

// ---- Specification constants (REFERENCE.md "NAT66 numbers") ----

export const UDP_TIMEOUT_MS = 300_000; // RFC 4787 REQ-5: ≥ 2 min, 5 min recommended
export const TCP_ESTABLISHED_TIMEOUT_MS = 7_440_000; // RFC 5382 REQ-5: established idle ≥ 2 h 4 min
export const TCP_TRANSITORY_TIMEOUT_MS = 240_000; // RFC 5382 REQ-5: partially open or closing ≥ 4 min; RST: RFC 7857 §2
export const ICMP_QUERY_TIMEOUT_MS = 60_000; // RFC 5508 §3.2: ICMP query session ≥ 60 s
export const FRAGMENT_TIMEOUT_MS = 60_000; // RFC 8200 §4.5: reassembly gives up after 60 s
export const PORT_RANGE_LOW_END = 1023; // RFC 4787 REQ-3 / RFC 6056 §2.1: well-known ports stay below 1024

// ---- Implementation constants ----

export const DEFAULT_CAPACITY = 262_144; // conntrack entries (sessions) in the table
export const DEFAULT_PER_MACHINE_LIMIT = 16_384; // sessions one machine may hold
export const DEFAULT_MAX_MACHINES = 4096; // machine slots: ids 0 … maxMachines − 1
export const DEFAULT_MAX_EGRESS = 64; // egress addresses (host and per-app static)
export const DEFAULT_WHEEL_GRANULARITY_MS = 1000; // expiry timer wheel slot width
export const DEFAULT_FRAGMENT_SLOTS = 1024; // inbound fragment cache, direct mapped
export const EGRESS_PORTS = 65536; // port / echo identifier space per egress address and protocol

// Protocol indexes: one port space per egress address and protocol.
export const PI_TCP = 0;
export const PI_UDP = 1;
export const PI_ICMP = 2;
export const PI_COUNT = 3;

// ---- TCP session states (RFC 9293 §3.3.2 as seen from the middle; names as conntrack prints) ----

export const TCP_NONE = 0; // not TCP
export const TCP_SYN_SENT = 1; // the internal endpoint sent SYN
export const TCP_SYN_RECV = 2; // SYN seen both ways (SYN-ACK or simultaneous open), final ACK pending
export const TCP_ESTABLISHED = 3; // three-way handshake done (or picked up mid-stream)
export const TCP_FIN_WAIT = 4; // the internal endpoint closed first
export const TCP_CLOSE_WAIT = 5; // the remote endpoint closed first
export const TCP_LAST_ACK = 6; // FIN both ways, not both acknowledged
export const TCP_TIME_WAIT = 7; // FIN both ways, both acknowledged
export const TCP_CLOSE = 8; // RST seen
export const TCP_STATE_NAMES = [
  '', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE',
];

// TCP header flags, RFC 9293 §3.1.
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

// ---- Session flags ----

export const F_REPLIED = 0x01; // a packet came back from the remote endpoint ([UNREPLIED] until then)
export const F_ASSURED = 0x02; // UDP/ICMP: replied; TCP: reached ESTABLISHED with a reply
export const F_FIN_OUT = 0x04; // the internal endpoint sent FIN (its sequence in finSeqOut)
export const F_FIN_IN = 0x08; // the remote endpoint sent FIN (finSeqIn)
export const F_FIN_OUT_ACKED = 0x10; // the remote acknowledged the internal FIN
export const F_FIN_IN_ACKED = 0x20; // the internal endpoint acknowledged the remote FIN
export const F_SYNACK_IN = 0x40; // in SYN_RECV: the remote sent the SYN-ACK (the final ACK goes out)

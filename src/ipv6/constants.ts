// IPv6, extension-header, transport and ICMPv6 wire constants.
//
// Offsets named IPV6_OFF_* are relative to the first byte of the IPv6 header; offsets named
// TCP_/UDP_/ICMPV6_OFF_* are relative to the first byte of that upper-layer header.

// ---- Specification constants: IPv6 (RFC 8200 §3) ----

export const IPV6_VERSION = 6; // value of the 4-bit version field
export const IPV6_HEADER_LEN = 40; // fixed header size, bytes
export const IPV6_ADDR_LEN = 16; // address size, bytes
export const IPV6_OFF_VERSION = 0; // high nibble: version; then traffic class and flow label
export const IPV6_OFF_PAYLOAD_LEN = 4; // u16: bytes after the fixed header, extensions included
export const IPV6_OFF_NEXT_HEADER = 6; // u8: type of the header after the fixed header
export const IPV6_OFF_HOP_LIMIT = 7; // u8: decremented by each forwarding node
export const IPV6_OFF_SRC = 8; // 16 bytes: source address
export const IPV6_OFF_DST = 24; // 16 bytes: destination address
export const IPV6_MIN_MTU = 1280; // every link carries this much, RFC 8200 §5
export const IPV6_MAX_PAYLOAD_LEN = 65535; // largest payload without a jumbogram (RFC 2675, unsupported)
export const IPV6_DEFAULT_HOP_LIMIT = 64; // hop limit of packets this node originates

// ---- Protocol numbers (IANA "Assigned Internet Protocol Numbers") ----

export const IPPROTO_HOPOPTS = 0; // Hop-by-Hop Options header, RFC 8200 §4.3
export const IPPROTO_TCP = 6; // TCP, RFC 9293
export const IPPROTO_UDP = 17; // UDP, RFC 768
export const IPPROTO_ROUTING = 43; // Routing header, RFC 8200 §4.4
export const IPPROTO_FRAGMENT = 44; // Fragment header, RFC 8200 §4.5
export const IPPROTO_ESP = 50; // Encapsulating Security Payload, RFC 4303 (opaque: ends the walk)
export const IPPROTO_AH = 51; // Authentication Header, RFC 4302
export const IPPROTO_ICMPV6 = 58; // ICMPv6, RFC 4443
export const IPPROTO_NONE = 59; // No Next Header, RFC 8200 §4.7
export const IPPROTO_DSTOPTS = 60; // Destination Options header, RFC 8200 §4.6

// ---- Extension headers (RFC 8200 §4) ----

export const EXT_OFF_NEXT_HEADER = 0; // u8: next header, in every extension header
export const EXT_OFF_LEN = 1; // u8: Hdr Ext Len, 8-octet units not counting the first 8
export const EXT_LEN_UNIT = 8; // HBH, routing and destination options lengths count 8 octets
export const AH_LEN_UNIT = 4; // AH length counts 4-octet units minus 2, RFC 4302 §2.2
export const FRAG_HEADER_LEN = 8; // Fragment header size, RFC 8200 §4.5
export const FRAG_OFF_OFFSET = 2; // u16: 13-bit fragment offset (8-octet units), 2 reserved bits, M flag
export const FRAG_OFF_ID = 4; // u32: identification
export const FRAG_OFFSET_MASK = 0xfff8; // fragment offset in the u16 at FRAG_OFF_OFFSET, already ×8
export const FRAG_MORE_FLAG = 0x0001; // M flag: more fragments follow
export const MAX_EXT_HEADERS = 8; // implementation bound on the extension-header walk

// ---- TCP (RFC 9293 §3.1) and UDP (RFC 768) ----

export const TCP_OFF_SRC_PORT = 0; // u16: source port
export const TCP_OFF_DST_PORT = 2; // u16: destination port
export const TCP_OFF_SEQ = 4; // u32: sequence number
export const TCP_OFF_ACK = 8; // u32: acknowledgment number
export const TCP_OFF_DATA_OFFSET = 12; // high nibble: header length in 32-bit words
export const TCP_OFF_FLAGS = 13; // u8: CWR ECE URG ACK PSH RST SYN FIN
export const TCP_OFF_CHECKSUM = 16; // u16: checksum over the pseudo-header and segment
export const TCP_MIN_HEADER_LEN = 20; // header without options, bytes
export const UDP_OFF_SRC_PORT = 0; // u16: source port
export const UDP_OFF_DST_PORT = 2; // u16: destination port
export const UDP_OFF_LEN = 4; // u16: header plus data, bytes
export const UDP_OFF_CHECKSUM = 6; // u16: checksum, never 0 over IPv6 (RFC 8200 §8.1)
export const UDP_HEADER_LEN = 8; // header size, bytes

// ---- ICMPv6 (RFC 4443) ----

export const ICMPV6_OFF_TYPE = 0; // u8: message type
export const ICMPV6_OFF_CODE = 1; // u8: message code
export const ICMPV6_OFF_CHECKSUM = 2; // u16: checksum over the pseudo-header and message, §2.3
export const ICMPV6_OFF_MTU = 4; // u32: MTU of a Packet Too Big message, §3.2
export const ICMPV6_OFF_POINTER = 4; // u32: pointer of a Parameter Problem message, §3.4
export const ICMPV6_OFF_ECHO_ID = 4; // u16: identifier of an echo message, §4.1
export const ICMPV6_OFF_ECHO_SEQ = 6; // u16: sequence number of an echo message, §4.1
export const ICMPV6_HEADER_LEN = 8; // type, code, checksum and the 32-bit field after them
export const ICMPV6_MIN_LEN = 4; // type, code and checksum: the least a message can be
export const ICMPV6_ERROR_MAX_LEN = IPV6_MIN_MTU; // an error must fit the minimum MTU, §2.4 (c)

// Message types, RFC 4443 §2.1. Types 0–127 are errors, 128–255 informational.
export const ICMPV6_DST_UNREACH = 1; // Destination Unreachable, §3.1
export const ICMPV6_PACKET_TOO_BIG = 2; // Packet Too Big, §3.2
export const ICMPV6_TIME_EXCEEDED = 3; // Time Exceeded, §3.3
export const ICMPV6_PARAM_PROBLEM = 4; // Parameter Problem, §3.4
export const ICMPV6_INFO_MIN = 128; // first informational type
export const ICMPV6_ECHO_REQUEST = 128; // Echo Request, §4.1
export const ICMPV6_ECHO_REPLY = 129; // Echo Reply, §4.2
export const ICMPV6_ROUTER_SOLICIT = 133; // Router Solicitation, RFC 4861 §4.1
export const ICMPV6_ROUTER_ADVERT = 134; // Router Advertisement, RFC 4861 §4.2
export const ICMPV6_NEIGHBOR_SOLICIT = 135; // Neighbor Solicitation, RFC 4861 §4.3
export const ICMPV6_NEIGHBOR_ADVERT = 136; // Neighbor Advertisement, RFC 4861 §4.4
export const ICMPV6_REDIRECT = 137; // Redirect, RFC 4861 §4.5 (no errors in reply to it, RFC 4443 §2.4 e.1)

// Destination Unreachable codes, RFC 4443 §3.1.
export const ICMPV6_UNREACH_NO_ROUTE = 0; // no route to destination
export const ICMPV6_UNREACH_ADMIN = 1; // communication administratively prohibited
export const ICMPV6_UNREACH_BEYOND_SCOPE = 2; // beyond scope of source address
export const ICMPV6_UNREACH_ADDR = 3; // address unreachable
export const ICMPV6_UNREACH_PORT = 4; // port unreachable
export const ICMPV6_UNREACH_POLICY = 5; // source address failed ingress/egress policy
export const ICMPV6_UNREACH_REJECT_ROUTE = 6; // reject route to destination

// Time Exceeded codes, RFC 4443 §3.3.
export const ICMPV6_TIME_EXCEEDED_HOP_LIMIT = 0; // hop limit exceeded in transit
export const ICMPV6_TIME_EXCEEDED_REASSEMBLY = 1; // fragment reassembly time exceeded

// Parameter Problem codes, RFC 4443 §3.4 and RFC 7112 §5.
export const ICMPV6_PARAM_HEADER = 0; // erroneous header field encountered
export const ICMPV6_PARAM_NEXT_HEADER = 1; // unrecognized Next Header type encountered
export const ICMPV6_PARAM_OPTION = 2; // unrecognized IPv6 option encountered
export const ICMPV6_PARAM_INCOMPLETE_CHAIN = 3; // first fragment lacks the header chain, RFC 7112

// ---- 6PN address layout (DESIGN.md "Addresses") ----
// fdaa (16) | network, the org (32) | host (32) | instance (32) | free (16)

export const SIXPN_PREFIX = 0xfdaa; // first 16 bits of every 6PN address (a ULA, RFC 4193)
export const SIXPN_OFF_NETWORK = 2; // u32: network id of the org
export const SIXPN_OFF_HOST = 6; // u32: host id
export const SIXPN_OFF_INSTANCE = 10; // u32: instance (machine) id
export const SIXPN_OFF_FREE = 14; // u16: free for the machine; a machine's own address has 2
export const SIXPN_ORG_PREFIX_LEN = 48; // an org owns fdaa:NNNN:NNNN::/48
export const SIXPN_MACHINE_PREFIX_LEN = 112; // a machine owns a /112
export const SIXPN_PEER_PREFIX_LEN = 120; // an external WireGuard peer gets a /120
export const SIXPN_MACHINE_SUFFIX = 2; // a machine's address is ::2 in its /112
export const SIXPN_DNS_SUFFIX = 3; // DNS: fdaa::3 for machines, <org /48>::3 for peers

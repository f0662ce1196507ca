// A pcapng writer (the PCAP Next Generation format, draft-ietf-opsawg-pcapng): the blocks
// `sixpn capture` writes, little-endian. A file is one Section Header Block, then an Interface
// Description Block per interface before the first packet on it, then Enhanced Packet Blocks
// (each names its interface by the IDB's index in the section), and at the end an Interface
// Statistics Block per interface with the packets received and dropped. Every block is
//   type u32 | total length u32 | body, padded to 4 bytes | options | total length u32
// and an option is code u16 | length u16 | value, padded to 4 (opt_endofopt: code 0, length 0).
// Pure: bytes out; the caller writes them.

export const BLOCK_SHB = 0x0a0d0d0a;
export const BLOCK_IDB = 0x00000001;
export const BLOCK_ISB = 0x00000005;
export const BLOCK_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

/** LINKTYPE_RAW: the packet starts with its IP header (v4 or v6 by the version nibble). */
export const LINKTYPE_RAW = 101;
/**
 * LINKTYPE_IPV6: the packet starts with its IPv6 header. What sixpn writes: every captured packet
 * is IPv6, and libpcap 1.10 (tcpdump -r) refuses a second LINKTYPE_RAW interface in one file
 * ("an interface has a type 101 different from the type of the first interface").
 */
export const LINKTYPE_IPV6 = 229;
/** The largest packet kept whole; longer ones are cut (the EPB keeps their original length). */
export const SNAPLEN = 65_535;

/** epb_flags direction (bits 0-1): received on the interface, or sent on it. */
export const DIR_INBOUND = 1;
export const DIR_OUTBOUND = 2;

const OPT_END = 0;
const OPT_COMMENT = 1;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;
const ISB_STARTTIME = 2;
const ISB_ENDTIME = 3;
const ISB_IFRECV = 4;
const ISB_OSDROP = 7;

const pad4 = (n: number) => (n + 3) & ~3;
const utf8 = new TextEncoder();

type Option = { code: number; value: Uint8Array };

function optionsLength(opts: readonly Option[]): number {
  if (opts.length === 0) return 0;
  let n = 4; // opt_endofopt
  for (const o of opts) n += 4 + pad4(o.value.length);
  return n;
}

function writeOptions(v: DataView, out: Uint8Array, at: number, opts: readonly Option[]): number {
  if (opts.length === 0) return at;
  for (const o of opts) {
    v.setUint16(at, o.code, true);
    v.setUint16(at + 2, o.value.length, true);
    out.set(o.value, at + 4);
    at += 4 + pad4(o.value.length);
  }
  v.setUint32(at, OPT_END, true); // code 0, length 0
  return at + 4;
}

/** A block of `type` with `bodyLen` bytes of fixed body (filled by `body`) and `opts`. */
function block(type: number, bodyLen: number, opts: readonly Option[], body: (v: DataView, out: Uint8Array, at: number) => void): Uint8Array {
  const total = 12 + pad4(bodyLen) + optionsLength(opts);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, total, true);
  body(v, out, 8);
  writeOptions(v, out, 8 + pad4(bodyLen), opts);
  v.setUint32(total - 4, total, true);
  return out;
}

const text = (code: number, s: string): Option => ({ code, value: utf8.encode(s) });

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(Math.max(0, Math.floor(n))), true);
  return b;
}

/** A timestamp in µs as the (high, low) u32 pair of the EPB and ISB. */
function setTimestamp(v: DataView, at: number, micros: number): void {
  const t = Math.max(0, Math.floor(micros));
  v.setUint32(at, Math.floor(t / 0x1_0000_0000), true);
  v.setUint32(at + 4, t % 0x1_0000_0000, true);
}

/** The Section Header Block that starts the file (section length unknown: -1). */
export function sectionHeader(application: string, comment?: string): Uint8Array {
  const opts = [text(SHB_USERAPPL, application), ...(comment !== undefined ? [text(OPT_COMMENT, comment)] : [])];
  return block(BLOCK_SHB, 16, opts, (v, _o, at) => {
    v.setUint32(at, BYTE_ORDER_MAGIC, true);
    v.setUint16(at + 4, 1, true); // major
    v.setUint16(at + 6, 0, true); // minor
    v.setBigInt64(at + 8, -1n, true);
  });
}

/** An Interface Description Block: IPv6 (LINKTYPE_IPV6), SNAPLEN, µs timestamps (if_tsresol 6), its name. */
export function interfaceDescription(name: string, description?: string): Uint8Array {
  const opts = [text(IF_NAME, name), ...(description !== undefined ? [text(IF_DESCRIPTION, description)] : []), { code: IF_TSRESOL, value: Uint8Array.of(6) }];
  return block(BLOCK_IDB, 8, opts, (v, _o, at) => {
    v.setUint16(at, LINKTYPE_IPV6, true);
    v.setUint16(at + 2, 0, true);
    v.setUint32(at + 4, SNAPLEN, true);
  });
}

/**
 * An Enhanced Packet Block on interface `iface` (its IDB's index) at `micros` (µs since the
 * epoch): `data` is the packet as captured (at most SNAPLEN), `origLen` its length on the wire;
 * `direction` DIR_INBOUND / DIR_OUTBOUND, or 0 (not given).
 */
export function enhancedPacket(iface: number, micros: number, data: Uint8Array, origLen = data.length, direction = 0): Uint8Array {
  const cap = Math.min(data.length, SNAPLEN);
  const opts = direction !== 0 ? [{ code: EPB_FLAGS, value: u32(direction & 3) }] : [];
  return block(BLOCK_EPB, 20 + cap, opts, (v, out, at) => {
    v.setUint32(at, iface, true);
    setTimestamp(v, at + 4, micros);
    v.setUint32(at + 12, cap, true);
    v.setUint32(at + 16, Math.max(origLen, cap), true);
    out.set(data.subarray(0, cap), at + 20);
  });
}

/** An Interface Statistics Block: packets received and dropped (isb_osdrop) from start to end. */
export function interfaceStatistics(iface: number, micros: number, s: { startMicros: number; received: number; dropped: number }): Uint8Array {
  const opts = [
    { code: ISB_STARTTIME, value: timestampOption(s.startMicros) },
    { code: ISB_ENDTIME, value: timestampOption(micros) },
    { code: ISB_IFRECV, value: u64(s.received) },
    { code: ISB_OSDROP, value: u64(s.dropped) },
  ];
  return block(BLOCK_ISB, 12, opts, (v, _o, at) => {
    v.setUint32(at, iface, true);
    setTimestamp(v, at + 4, micros);
  });
}

function timestampOption(micros: number): Uint8Array {
  const b = new Uint8Array(8);
  setTimestamp(new DataView(b.buffer), 0, micros);
  return b;
}

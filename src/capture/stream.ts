// The capture stream on the status socket, between `sixpn up` (src/host/capture.ts) and
// `sixpn capture` (src/cli/capture.ts). The client sends one line,
//   capture {"machines": [ID…], "peers": [NAME|ORG/NAME…], "mesh": BOOL, "filter": EXPR, "count": N}
// and reads frames until the server ends the stream (or the client closes it):
//   length u32 (of what follows) | type u8 | body
//   FRAME_INTERFACE  id u16 | name (UTF-8)                       before the first packet on it
//   FRAME_PACKET     iface u16 | direction u8 | 0 u8 | µs since the epoch f64 | original length u32 | bytes
//   FRAME_STATS      JSON {captured, dropped, perInterface: {id: {captured, dropped}}}   every second and last
//   FRAME_END        JSON {reason} or {error}                      the last frame
// Big-endian. Pure: frames to bytes and bytes to frames.

export const FRAME_INTERFACE = 1;
export const FRAME_PACKET = 2;
export const FRAME_STATS = 3;
export const FRAME_END = 4;

/** What `sixpn capture` asks for. */
export interface CaptureRequest {
  machines: string[];
  peers: string[];
  mesh: boolean;
  filter: string;
  /** stop after this many packets (0: until the client closes) */
  count: number;
}

export interface CaptureStats {
  captured: number;
  dropped: number;
  perInterface: Record<string, { captured: number; dropped: number }>;
}

export type Frame =
  | { type: typeof FRAME_INTERFACE; id: number; name: string }
  | { type: typeof FRAME_PACKET; iface: number; direction: number; micros: number; origLen: number; data: Uint8Array }
  | { type: typeof FRAME_STATS; stats: CaptureStats }
  | { type: typeof FRAME_END; reason?: string; error?: string };

const PACKET_HEAD = 4 + 1 + 2 + 1 + 1 + 8 + 4;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Parses the request line's JSON; throws a one-line error on a bad one. */
export function parseRequest(json: string): CaptureRequest {
  let r: Partial<CaptureRequest>;
  try {
    r = JSON.parse(json) as Partial<CaptureRequest>;
  } catch {
    throw new Error('capture: the request is not JSON');
  }
  const strings = (v: unknown, what: string) => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`capture: "${what}" must be a list of names`);
    return v as string[];
  };
  const count = r.count ?? 0;
  if (!Number.isInteger(count) || count < 0) throw new Error('capture: "count" must be a whole number ≥ 0');
  const req = { machines: strings(r.machines, 'machines'), peers: strings(r.peers, 'peers'), mesh: r.mesh === true, filter: typeof r.filter === 'string' ? r.filter : '', count };
  if (req.machines.length === 0 && req.peers.length === 0 && !req.mesh) throw new Error('capture: name a machine, a peer or the mesh');
  return req;
}

/** The header of a packet frame (its bytes follow): write `data` right after it. */
export function packetFrameHead(iface: number, direction: number, micros: number, origLen: number, capLen: number): Uint8Array {
  const b = new Uint8Array(PACKET_HEAD);
  const v = new DataView(b.buffer);
  v.setUint32(0, PACKET_HEAD - 4 + capLen);
  v.setUint8(4, FRAME_PACKET);
  v.setUint16(5, iface);
  v.setUint8(7, direction);
  v.setFloat64(9, micros);
  v.setUint32(17, origLen);
  return b;
}

/** A whole packet frame in one buffer: the header, then buf[off, off + capLen). */
export function packetFrame(iface: number, direction: number, micros: number, origLen: number, buf: Uint8Array, off: number, capLen: number): Uint8Array {
  const out = new Uint8Array(PACKET_HEAD + capLen);
  out.set(packetFrameHead(iface, direction, micros, origLen, capLen), 0);
  out.set(buf.subarray(off, off + capLen), PACKET_HEAD);
  return out;
}

/** Where the packet bytes start in a packet frame made by packetFrame. */
export const PACKET_FRAME_DATA = PACKET_HEAD;

function textFrame(type: number, head: Uint8Array, body: string): Uint8Array {
  const t = utf8.encode(body);
  const out = new Uint8Array(5 + head.length + t.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1 + head.length + t.length);
  v.setUint8(4, type);
  out.set(head, 5);
  out.set(t, 5 + head.length);
  return out;
}

export function interfaceFrame(id: number, name: string): Uint8Array {
  return textFrame(FRAME_INTERFACE, Uint8Array.of(id >>> 8, id & 0xff), name);
}

export function statsFrame(stats: CaptureStats): Uint8Array {
  return textFrame(FRAME_STATS, new Uint8Array(0), JSON.stringify(stats));
}

export function endFrame(end: { reason?: string; error?: string }): Uint8Array {
  return textFrame(FRAME_END, new Uint8Array(0), JSON.stringify(end));
}

/** Reads frames out of the chunks of a stream as they come. */
export class FrameReader {
  private buf = new Uint8Array(0);

  /** The frames completed by `chunk` (a frame cut across chunks waits for the rest). */
  push(chunk: Uint8Array): Frame[] {
    const all = this.buf.length === 0 ? chunk : concat(this.buf, chunk);
    const frames: Frame[] = [];
    let at = 0;
    while (all.length - at >= 5) {
      const v = new DataView(all.buffer, all.byteOffset + at);
      const len = v.getUint32(0);
      if (len < 1) throw new Error('capture stream: an empty frame');
      if (all.length - at < 4 + len) break;
      frames.push(decode(all.subarray(at + 4, at + 4 + len)));
      at += 4 + len;
    }
    this.buf = all.slice(at);
    return frames;
  }
}

function decode(f: Uint8Array): Frame {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  switch (f[0]) {
    case FRAME_INTERFACE:
      return { type: FRAME_INTERFACE, id: v.getUint16(1), name: fromUtf8.decode(f.subarray(3)) };
    case FRAME_PACKET:
      if (f.length < PACKET_HEAD - 4) throw new Error('capture stream: a short packet frame');
      return { type: FRAME_PACKET, iface: v.getUint16(1), direction: f[3], micros: v.getFloat64(5), origLen: v.getUint32(13), data: f.subarray(PACKET_HEAD - 4) };
    case FRAME_STATS:
      return { type: FRAME_STATS, stats: JSON.parse(fromUtf8.decode(f.subarray(1))) as CaptureStats };
    case FRAME_END:
      return { type: FRAME_END, ...(JSON.parse(fromUtf8.decode(f.subarray(1))) as { reason?: string; error?: string }) };
    default:
      throw new Error(`capture stream: unknown frame type ${f[0]}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * The native shim: typed access to build/Release/sixpn_native.node (src/tun/native/sixpn_native.c).
 *
 * The C file does only what Node lacks — TUNSETIFF/TUNSETOFFLOAD ioctls, poll() with a timeout,
 * batched TUN reads/writes, recvmmsg/sendmmsg with IP_PKTINFO/IPV6_PKTINFO, SO_REUSEPORT and
 * SO_RCVBUFFORCE — and no protocol logic. JS owns the memory: every batch call takes a slab
 * (bytes) and a meta Int32Array of fixed-size records describing the packets in it, and returns
 * a count. The record layout comes from the addon itself (the constants below); see the table
 * at the top of the C file.
 *
 * Blocking: fds are non-blocking; a call waits (poll) up to `timeoutMs` only when nothing is
 * ready (-1 = forever, 0 = never). Workers block in native code with a bounded timeout and check
 * a stop flag (an Atomics word) between calls; the main thread passes 0.
 *
 * Errors: fd-level failures throw a {@link NativeError} (code "EBADF", errno -9, syscall);
 * per-packet failures are errno values in the record's META_ERR word (0 = ok).
 */
import { createRequire } from 'node:module';

/** Anything whose bytes can hold packets: Buffer, Uint8Array, DataView, ArrayBuffer. */
export type Slab = ArrayBufferView | ArrayBuffer;

/** An opened TUN queue. `name` is the actual interface name (the kernel picks one for ""). */
export interface TunQueue {
  readonly fd: number;
  readonly name: string;
}

/** An opened UDP socket: its fd, the bound port, and the buffer sizes the kernel granted. */
export interface UdpSocket {
  readonly fd: number;
  readonly port: number;
  readonly rcvbuf: number;
  readonly sndbuf: number;
}

/** Errors thrown by the addon look like Node's system errors. */
export interface NativeError extends Error {
  code: string;
  /** negative errno, as in Node (`-9` for EBADF) */
  errno: number;
  syscall: string;
}

interface Binding {
  tunOpen(name: string, multiQueue: boolean, vnetHdr: boolean): TunQueue;
  tunSetOffload(fd: number, flags: number): void;
  tunRead(fd: number, slab: Slab, meta: Int32Array, maxPackets: number, timeoutMs: number): number;
  tunWrite(fd: number, slab: Slab, meta: Int32Array, count: number, timeoutMs: number): number;
  udpOpen(
    family: number, address: string, port: number, reusePort: boolean, v6only: boolean,
    rcvbuf: number, sndbuf: number, dontFragment: boolean,
  ): UdpSocket;
  udpRecv(fd: number, slab: Slab, meta: Int32Array, maxPackets: number, timeoutMs: number): number;
  udpSend(fd: number, slab: Slab, meta: Int32Array, count: number, timeoutMs: number): number;
  ifIndex(name: string): number;
  udpSetMark(fd: number, mark: number): void;
  udpSetGro(fd: number, on: boolean): void;
  close(fd: number): void;
  fdWatch(fd: number, callback: (events: number) => void): FdWatch;
  fdUnwatch(handle: FdWatch): void;
  readonly META_OFF: number;
  readonly META_CAP: number;
  readonly META_LEN: number;
  readonly META_ERR: number;
  readonly TUN_RECORD_WORDS: number;
  readonly UDP_META_FAMILY: number;
  readonly UDP_META_PORT: number;
  readonly UDP_META_ADDR: number;
  readonly UDP_META_LOCAL: number;
  readonly UDP_META_IFINDEX: number;
  readonly UDP_META_GSO: number;
  readonly UDP_RECORD_WORDS: number;
  readonly UDP_CHUNK: number;
  readonly IFNAMSIZ: number;
  readonly VNET_HDR_LEN: number;
  readonly TUN_F_CSUM: number;
  readonly TUN_F_TSO4: number;
  readonly TUN_F_TSO6: number;
  readonly TUN_F_TSO_ECN: number;
  readonly TUN_F_USO4: number;
  readonly TUN_F_USO6: number;
}

const ADDON_PATH = '../../build/Release/sixpn_native.node';

function loadBinding(): Binding {
  const require = createRequire(import.meta.url);
  try {
    return require(ADDON_PATH) as Binding;
  } catch (err) {
    throw new Error(
      `sixpn: cannot load the native addon ${new URL(ADDON_PATH, import.meta.url).pathname} ` +
        '(build it with `npm ci` or `npm rebuild`; needs g++, make, python3 and Node headers)',
      { cause: err },
    );
  }
}

const binding = loadBinding();

// Record layout, in int32 words (byte offset = word × 4). Defined once, in C.
/** slab byte offset of the packet (in) */
export const META_OFF = binding.META_OFF;
/** bytes available at META_OFF for a read/recv (in) */
export const META_CAP = binding.META_CAP;
/** packet length: out for read/recv, in for write/send */
export const META_LEN = binding.META_LEN;
/** 0 or an errno for this packet (out); on recv, EMSGSIZE = cut to META_CAP */
export const META_ERR = binding.META_ERR;
/** words per TUN record: OFF, CAP, LEN, ERR */
export const TUN_RECORD_WORDS = binding.TUN_RECORD_WORDS;
/** peer address family, 4 or 6 */
export const UDP_META_FAMILY = binding.UDP_META_FAMILY;
/** peer port, host order */
export const UDP_META_PORT = binding.UDP_META_PORT;
/** first of 4 words: the peer address, 16 bytes (IPv4 as ::ffff:a.b.c.d) */
export const UDP_META_ADDR = binding.UDP_META_ADDR;
/** first of 4 words: our address the datagram came to / the source to send from (:: = any) */
export const UDP_META_LOCAL = binding.UDP_META_LOCAL;
/** arrival interface index / outgoing interface (0 = routing decides) */
export const UDP_META_IFINDEX = binding.UDP_META_IFINDEX;
/**
 * segment size: on send, > 0 sends LEN bytes as datagrams of this size, the last one shorter
 * (UDP_SEGMENT); after recv, > 0 when the kernel coalesced datagrams of this size (UDP_GRO)
 */
export const UDP_META_GSO = binding.UDP_META_GSO;
/** words per UDP record */
export const UDP_RECORD_WORDS = binding.UDP_RECORD_WORDS;
/** datagrams per recvmmsg/sendmmsg syscall (larger batches are split) */
export const UDP_CHUNK = binding.UDP_CHUNK;
/** interface names are shorter than this (including the NUL) */
export const IFNAMSIZ = binding.IFNAMSIZ;
/** bytes of struct virtio_net_hdr in front of each packet on a vnetHdr queue */
export const VNET_HDR_LEN = binding.VNET_HDR_LEN;
/** tunSetOffload flags */
export const TUN_F_CSUM = binding.TUN_F_CSUM;
export const TUN_F_TSO4 = binding.TUN_F_TSO4;
export const TUN_F_TSO6 = binding.TUN_F_TSO6;
export const TUN_F_TSO_ECN = binding.TUN_F_TSO_ECN;
export const TUN_F_USO4 = binding.TUN_F_USO4;
export const TUN_F_USO6 = binding.TUN_F_USO6;

export interface TunOpenOptions {
  /** IFF_MULTI_QUEUE: open the same name again for one more queue (one per worker). */
  multiQueue?: boolean;
  /** IFF_VNET_HDR: each packet is preceded by a VNET_HDR_LEN-byte virtio_net_hdr. */
  vnetHdr?: boolean;
}

/**
 * Opens a TUN queue (IFF_TUN | IFF_NO_PI, O_NONBLOCK | O_CLOEXEC). `name` may be "" or a
 * pattern like "sx%d". The device exists while one of its fds is open, also after it has been
 * moved to another namespace (`ip link set … netns …`): the fd stays with this process.
 */
export function tunOpen(name: string, opts: TunOpenOptions = {}): TunQueue {
  return binding.tunOpen(name, opts.multiQueue === true, opts.vnetHdr === true);
}

/** TUNSETOFFLOAD on a vnetHdr queue: the TUN_F_* offloads this reader handles. */
export function tunSetOffload(fd: number, flags: number): void {
  binding.tunSetOffload(fd, flags);
}

/**
 * Reads up to `maxPackets` packets, record i into slab[OFF, OFF + CAP), setting LEN. Waits up
 * to `timeoutMs` only if none is ready. Returns the number read (0 on timeout).
 */
export const tunRead: (fd: number, slab: Slab, meta: Int32Array, maxPackets: number, timeoutMs: number) => number =
  binding.tunRead;

/**
 * Writes records [0, count) (slab[OFF, OFF + LEN)). Per-packet errors land in ERR. Returns the
 * number of records processed; fewer than `count` only if the queue stayed full for `timeoutMs`.
 */
export const tunWrite: (fd: number, slab: Slab, meta: Int32Array, count: number, timeoutMs: number) => number =
  binding.tunWrite;

export interface UdpOpenOptions {
  /** SO_REUSEPORT: sockets (one per worker) share the port; the kernel spreads flows. */
  reusePort?: boolean;
  /** IPV6_V6ONLY for family 6 (default true: open a separate family-4 socket for IPv4). */
  v6only?: boolean;
  /** receive buffer bytes (SO_RCVBUFFORCE as root, else SO_RCVBUF capped by rmem_max) */
  rcvbuf?: number;
  /** send buffer bytes (SO_SNDBUFFORCE as root) */
  sndbuf?: number;
  /** IP(V6)_PMTUDISC_DO: sends larger than the path MTU fail with EMSGSIZE, never fragment. */
  dontFragment?: boolean;
}

/**
 * Opens and binds a UDP socket (O_NONBLOCK | O_CLOEXEC) with IP_PKTINFO / IPV6_RECVPKTINFO on.
 * `address` is "::", "0.0.0.0", a local address, or "fe80::1%eth0". Port 0 picks a free port.
 */
export function udpOpen(family: 4 | 6, address: string, port: number, opts: UdpOpenOptions = {}): UdpSocket {
  return binding.udpOpen(
    family, address, port, opts.reusePort === true, opts.v6only !== false,
    opts.rcvbuf ?? 0, opts.sndbuf ?? 0, opts.dontFragment === true,
  );
}

/**
 * Receives up to `maxPackets` datagrams (recvmmsg), record i into slab[OFF, OFF + CAP): LEN,
 * ERR (EMSGSIZE if cut), FAMILY, PORT, ADDR (sender), LOCAL (our address it was sent to),
 * IFINDEX. Waits up to `timeoutMs` only if none is ready. Returns the number received.
 */
export const udpRecv: (fd: number, slab: Slab, meta: Int32Array, maxPackets: number, timeoutMs: number) => number =
  binding.udpRecv;

/**
 * Sends records [0, count) (sendmmsg) to FAMILY/ADDR/PORT, from LOCAL/IFINDEX when set — so a
 * received record, payload rewritten, is a reply from the address the peer wrote to. Per-packet
 * errors (EMSGSIZE, EINVAL, ENETUNREACH, …) land in ERR. Returns records processed; fewer than
 * `count` only if the socket buffer stayed full for `timeoutMs`.
 */
export const udpSend: (fd: number, slab: Slab, meta: Int32Array, count: number, timeoutMs: number) => number =
  binding.udpSend;

/** SO_MARK on a socket (the fwmark of `wg set`); 0 clears it. Needs CAP_NET_ADMIN. */
export function udpSetMark(fd: number, mark: number): void {
  binding.udpSetMark(fd, mark >>> 0 | 0);
}

/** UDP_GRO on a socket: receives may then hold several datagrams (see UDP_META_GSO). */
export function udpSetGro(fd: number, on: boolean): void {
  binding.udpSetGro(fd, on);
}

/** if_nametoindex() in this thread's network namespace; throws ENODEV for an unknown name. */
export function ifIndex(name: string): number {
  return binding.ifIndex(name);
}

/** Closes an fd from tunOpen/udpOpen. Stop threads blocked on it first (numbers are reused). */
export function close(fd: number): void {
  binding.close(fd);
}

/** An opaque handle from {@link fdWatch}. */
export interface FdWatch {
  readonly __fdWatch: never;
}

/**
 * Calls `callback` on this thread's event loop whenever `fd` is readable (libuv uv_poll), so
 * the loop can drain it with tunRead/udpRecv(…, timeoutMs = 0) without a thread blocked on it.
 * `callback` gets the readiness events, or a negative libuv error. The watch keeps the loop
 * alive until {@link fdUnwatch}; stop it before closing the fd.
 */
export function fdWatch(fd: number, callback: (events: number) => void): FdWatch {
  return binding.fdWatch(fd, callback);
}

/** Stops a watch started by {@link fdWatch} (idempotent). */
export function fdUnwatch(handle: FdWatch): void {
  binding.fdUnwatch(handle);
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 5: 'EIO', 6: 'ENXIO', 11: 'EAGAIN', 13: 'EACCES', 19: 'ENODEV', 22: 'EINVAL', 90: 'EMSGSIZE',
  97: 'EAFNOSUPPORT', 99: 'EADDRNOTAVAIL', 100: 'ENETDOWN', 101: 'ENETUNREACH', 105: 'ENOBUFS',
  111: 'ECONNREFUSED', 113: 'EHOSTUNREACH',
};

/** The name of a per-packet errno from META_ERR ("EMSGSIZE"), or "errno N" for others. */
export function errnoName(err: number): string {
  return ERRNO_NAMES[err] ?? `errno ${err}`;
}

/** True if `err` is a {@link NativeError} (or any Node system error) with this code. */
export function isErrno(err: unknown, code: string): err is NativeError {
  return err instanceof Error && (err as Partial<NativeError>).code === code;
}

/**
 * The live DNS service of one host: the I/O around the sans-IO `InternalResolver` and
 * `Forwarder`. Part of the host process's edge layer (src/host); src/dns stays sans-IO.
 *
 * The router hands it every packet addressed to a DNS address (fdaa::3, or an org's ::3) from a
 * machine or external peer of this host (`packet`); replies go back as whole IPv6 packets through
 * `io.deliver` (the router's `fromLocal`, which delivers only packets from a DNS address to a
 * machine or peer of this host and of the same org).
 *
 * - UDP to port 53, unfragmented (nearly every query), is answered in-process: `.internal` names
 *   by the resolver, other names through a UDP forwarder to the upstream resolvers (a normal
 *   socket in the host namespace). The reply packet is built here, addresses and ports swapped.
 *   A reply that would not fit the path MTU is cut to header and question with TC=1, so the
 *   client retries over TCP (upstreams size their replies to the client's EDNS buffer, which can
 *   exceed the tunnel's MTU).
 * - Everything else (TCP, fragments, ICMPv6 echo, other ports) is written unchanged into a TUN
 *   in the host namespace (`6pndns`) that owns fdaa::3/128 and the ::3/128 of every org present
 *   on this host, with fdaa::/16 routed back through it. The kernel's own TCP stack terminates
 *   the connections with the machine's source address preserved — that address is how the
 *   resolver knows the asker and its org — and node:net servers bound to the DNS addresses
 *   answer. Whatever the kernel sends out of that TUN (segments, RSTs, ICMPv6) goes back to the
 *   router. TCP queries for other names are forwarded upstream over TCP, one connection per query.
 *
 * Bounds: TCP connections in total, idle time per connection, forwarded queries in flight per
 * connection and in total, bytes queued for a slow reader (its reading pauses), one upstream
 * TCP connection per forwarded TCP query, each closed after its reply or the timeout. Malformed
 * input gets FORMERR, a closed connection or nothing; never an exception out of a handler.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, isIP, type Server, type Socket } from 'node:net';
import { readU16 } from '../bytes.ts';
import { FWD_CLIENT, FWD_NONE, FWD_UPSTREAM, Forwarder, type ForwardAction, type Upstream } from '../dns/forwarder.ts';
import { IP_UDP_LEN, truncateToQuestion, writeUdpReply } from '../dns/reply.ts';
import { ANSWER_FORWARD, InternalResolver, type ResolverOptions } from '../dns/resolver.ts';
import { TCP_LENGTH_LEN, TcpDeframer, frameTcp } from '../dns/tcp.ts';
import type { DnsView } from '../dns/view.ts';
import { DNS_HEADER_LEN, DNS_PORT, RCODE_SERVFAIL, TCP_MESSAGE_MAX, writeHeaderOnly } from '../dns/wire.ts';
import { IPPROTO_UDP, IPV6_OFF_DST, IPV6_OFF_SRC, Ipv6Info, PARSE_OK, encodeSixpn, formatAddress, parseAddress, parsePacket } from '../ipv6/index.ts';
import type { Logger } from '../log.ts';
import { hostUpstreams, upstreamKey } from './dns-upstreams.ts';
import { MESSAGE_TRANSPORT_HEADER_SIZE } from '../noise/constants.ts';
import { MACHINE_MTU } from '../router/router.ts';
import {
  TUN_F_CSUM, TUN_F_TSO6, TUN_F_TSO_ECN, TunPump, close as closeFd, ip, tunOpen, tunSetOffload, type TunCounters,
} from '../tun/index.ts';

export interface DnsServiceIO {
  /** A reply packet (IPv6, from a DNS address) for the router to deliver. */
  deliver(buf: Uint8Array, off: number, len: number): void;
  /** Called after replies were delivered outside the router's own path (sockets, timers, TUN). */
  flush(): void;
}

export interface DnsServiceOptions {
  readonly view: DnsView;
  /** Resolvers for names outside `.internal`; default: the nameservers of /etc/resolv.conf. */
  readonly upstreams?: readonly Upstream[];
  /** Org network ids whose ::3 this host answers at (besides fdaa::3); read at every `sync()`. */
  readonly networks: () => Iterable<number>;
  readonly log: Logger;
  /** The kernel side's TUN in this namespace; default `6pndns`. */
  readonly ifname?: string;
  /** MTU toward machines and peers: UDP replies must fit; default MACHINE_MTU. */
  readonly mtu?: number;
  readonly resolver?: ResolverOptions;
  /** Per-upstream timeout of forwarded queries; default 2000 ms. */
  readonly forwardTimeoutMs?: number;
  /** DNS-over-TCP connections open at once (RFC 7766 §6.2.2); default 256. */
  readonly maxTcpConnections?: number;
  /** A connection with nothing to do for this long is closed (RFC 7766 §6.2.3); default 10 s. */
  readonly tcpIdleMs?: number;
  /**
   * Offload mode (the host's "offload"): the kernel TUN is a vnet_hdr queue with checksum and
   * TSO6 offload, so the kernel's DNS-over-TCP replies come as 64 KB segments (cut once by the
   * pump) and queries from machines go in as coalesced super-packets. Default false.
   */
  readonly offload?: boolean;
}

/** The offloads of the DNS TUN in offload mode (TUNSETOFFLOAD). */
export const DNS_TUN_OFFLOADS = TUN_F_CSUM | TUN_F_TSO6 | TUN_F_TSO_ECN;

export const DNS_TUN = '6pndns';
// In front of every packet handed to the router, room for the WireGuard transport header: the
// mesh and gateway devices seal in place.
const HEADROOM = MESSAGE_TRANSPORT_HEADER_SIZE;
const PAYLOAD_AT = HEADROOM + IP_UDP_LEN; // replies are written here, headers go in front
const MAX_INFLIGHT_PER_CONN = 32; // forwarded queries of one TCP connection
const MAX_TCP_OUTSTANDING = 256; // forwarded TCP queries, each with its own upstream connection
const MAX_QUEUED_PER_CONN = 256 * 1024; // unread replies: pause reading the client's queries
const TUN_SLOT = 2048;
const TUN_BATCH = 32; // packets per TUN read or write call
const TUN_VNET_SLOT = 65_536 + 256; // offload mode: a 64 KB segment with its header
const TUN_VNET_BATCH = 8;

interface UdpClient {
  readonly asker: Uint8Array; // the machine or peer (reply destination)
  readonly server: Uint8Array; // the DNS address it asked (reply source)
  readonly port: number;
}

interface TcpClient {
  readonly sock: Socket;
  readonly asker: Uint8Array;
  readonly deframer: TcpDeframer;
  inflight: number;
  closed: boolean;
}

interface Kernel {
  fd: number;
  name: string;
  /** reads in batches; writes queued and written at the end of the task (autoFlush) */
  readonly pump: TunPump;
}

export class DnsService {
  readonly resolver: InternalResolver;
  readonly upstreams: readonly Upstream[];
  readonly ifname: string;
  readonly mtu: number;
  readonly tcpIdleMs: number;
  readonly maxTcpConnections: number;
  readonly counters = { udpQueries: 0, udpForwarded: 0, udpTruncated: 0, tcpConnections: 0, tcpRefused: 0, tcpQueries: 0, tcpForwarded: 0, toKernel: 0, fromKernel: 0 };
  readonly #io: DnsServiceIO;
  readonly #opts: DnsServiceOptions;
  readonly #log: Logger;
  readonly #udpFwd: Forwarder<UdpClient> | null;
  readonly #tcpFwd: Forwarder<TcpClient> | null;
  readonly #upIndex = new Map<string, number>();
  readonly #info = new Ipv6Info();
  readonly #pkt = new Uint8Array(PAYLOAD_AT + TCP_MESSAGE_MAX);
  readonly #tcpOut = new Uint8Array(TCP_LENGTH_LEN + TCP_MESSAGE_MAX);
  readonly #pktOut = this.#pkt.subarray(PAYLOAD_AT);
  readonly #tcpMsg = this.#tcpOut.subarray(TCP_LENGTH_LEN);
  readonly #servers = new Map<string, Server>(); // DNS address text → its TCP server
  readonly #conns = new Set<TcpClient>();
  readonly #upTcp = new Set<Socket>();
  #udp4: UdpSocket | null = null;
  #udp6: UdpSocket | null = null;
  #kernel: Kernel | null = null;
  #timer: NodeJS.Timeout | null = null;
  #syncing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(opts: DnsServiceOptions, io: DnsServiceIO) {
    this.#opts = opts;
    this.#io = io;
    this.#log = opts.log;
    this.upstreams = hostUpstreams(opts.upstreams);
    this.upstreams.forEach((u, i) => this.#upIndex.set(upstreamKey(u.address, u.port)!, i));
    const forward = this.upstreams.length > 0;
    this.resolver = new InternalResolver(opts.view, { ...opts.resolver, forwardExternal: forward });
    const timeoutMs = opts.forwardTimeoutMs;
    this.#udpFwd = forward ? new Forwarder<UdpClient>({ upstreams: this.upstreams, timeoutMs }) : null;
    this.#tcpFwd = forward ? new Forwarder<TcpClient>({ upstreams: this.upstreams, timeoutMs, maxOutstanding: MAX_TCP_OUTSTANDING }) : null;
    this.ifname = opts.ifname ?? DNS_TUN;
    this.mtu = opts.mtu ?? MACHINE_MTU;
    this.tcpIdleMs = opts.tcpIdleMs ?? 10_000;
    this.maxTcpConnections = opts.maxTcpConnections ?? 256;
  }

  /**
   * Starts the service. UDP works at once; the kernel side (TUN, addresses, TCP servers) is set
   * up here too, and if it cannot be (no TUN, no IPv6), that is logged and only UDP is served.
   */
  static async start(opts: DnsServiceOptions, io: DnsServiceIO): Promise<DnsService> {
    const s = new DnsService(opts, io);
    const up = s.upstreams.map((u) => (u.address.includes(':') ? `[${u.address}]:${u.port}` : `${u.address}:${u.port}`));
    try {
      await s.#openKernel();
      await s.sync();
      opts.log.info(`dns: fdaa::3 and each org's ::3, UDP in-process, TCP through ${s.ifname}; upstreams ${up.join(', ') || 'none (other names REFUSED)'}`);
    } catch (err) {
      opts.log.error(`dns: only UDP is served (the kernel side failed: ${(err as Error).message})`);
    }
    return s;
  }

  /** Brings the DNS addresses and their TCP servers in line with `networks()` (call on topology changes). */
  sync(): Promise<void> {
    this.#syncing = this.#syncing.then(() => this.#syncNow()).catch((e: Error) => this.#log.error(`dns: ${e.message}`));
    return this.#syncing;
  }

  // ---- from the router ----

  /** A packet (from a machine or peer of this host) addressed to a DNS address. */
  packet(buf: Uint8Array, off: number, len: number): void {
    if (this.#closed) return;
    const info = this.#info;
    if (parsePacket(buf, off, len, info) !== PARSE_OK) return;
    const u = info.l4Off;
    if (info.protocol === IPPROTO_UDP && !info.fragment && info.l4Len >= 8 && readU16(buf, u + 2) === DNS_PORT) {
      const ulen = readU16(buf, u + 4);
      if (ulen < 8 + DNS_HEADER_LEN || ulen > info.l4Len) return;
      return this.#udpQuery(buf, off, u, ulen);
    }
    this.#toKernel(buf, off, info.packetLen);
  }

  // ---- UDP, in-process ----

  #udpQuery(buf: Uint8Array, off: number, u: number, ulen: number): void {
    this.counters.udpQueries++;
    const query = buf.subarray(u + 8, u + ulen);
    const asker = buf.subarray(off + IPV6_OFF_SRC, off + IPV6_OFF_SRC + 16);
    const server = buf.subarray(off + IPV6_OFF_DST, off + IPV6_OFF_DST + 16);
    const port = readU16(buf, u);
    const out = this.#pktOut;
    const n = this.resolver.answer(query, asker, 'udp', out);
    if (n > 0) return this.#udpReply(server, asker, port, n);
    if (n !== ANSWER_FORWARD || this.#udpFwd === null) return;
    this.counters.udpForwarded++;
    const client: UdpClient = { asker: asker.slice(), server: server.slice(), port };
    this.#udpAction(this.#udpFwd.query(query, client, performance.now(), out));
    this.#arm();
  }

  /** Sends the reply at `#pkt[PAYLOAD_AT …)` as a UDP packet from `server`:53 to `asker`:`port`. */
  #udpReply(server: Uint8Array, asker: Uint8Array, port: number, n: number): void {
    const out = this.#pkt;
    if (IP_UDP_LEN + n > this.mtu) {
      n = truncateToQuestion(out.subarray(PAYLOAD_AT, PAYLOAD_AT + n));
      if (n === 0) return;
      this.counters.udpTruncated++;
    }
    this.#io.deliver(out, HEADROOM, writeUdpReply(out, HEADROOM, server, asker, port, n));
  }

  /** An action of the UDP forwarder whose bytes are at `#pkt[PAYLOAD_AT …)`. */
  #udpAction(a: ForwardAction<UdpClient>): void {
    if (a.kind === FWD_CLIENT) return this.#udpReply(a.client!.server, a.client!.asker, a.client!.port, a.length);
    if (a.kind !== FWD_UPSTREAM) return;
    const up = this.upstreams[a.upstream];
    const sock = this.#upstreamSocket(isIP(up.address.replace(/%.*$/, '')) === 4 ? 4 : 6);
    // dgram may hold the bytes until the send completes: give it its own copy
    const bytes = Buffer.from(this.#pkt.subarray(PAYLOAD_AT, PAYLOAD_AT + a.length));
    sock?.send(bytes, up.port, up.address, () => undefined);
  }

  #upstreamSocket(family: 4 | 6): UdpSocket | null {
    let s = family === 4 ? this.#udp4 : this.#udp6;
    if (s !== null || this.#closed) return s;
    s = createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
    s.on('error', (e) => this.#log.error(`dns: upstream socket: ${e.message}`));
    s.on('message', (msg, rinfo) => this.#fromUpstream(msg, rinfo));
    s.bind(0);
    s.unref();
    if (family === 4) this.#udp4 = s;
    else this.#udp6 = s;
    return s;
  }

  #fromUpstream(msg: Buffer, rinfo: RemoteInfo): void {
    const i = this.#upIndex.get(upstreamKey(rinfo.address, rinfo.port) ?? '');
    if (i === undefined || this.#udpFwd === null || this.#closed) return;
    const a = this.#udpFwd.reply(msg, i, performance.now(), this.#pktOut);
    if (a.kind === FWD_NONE) return;
    this.#udpAction(a);
    this.#io.flush();
  }

  // ---- timeouts of forwarded queries ----

  #arm(): void {
    if (this.#timer !== null || this.#closed) return;
    const a = this.#udpFwd?.nextDeadline();
    const b = this.#tcpFwd?.nextDeadline();
    const next = a === undefined ? b : b === undefined ? a : Math.min(a, b);
    if (next === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#poll();
    }, Math.max(1, Math.ceil(next - performance.now()) + 1));
    this.#timer.unref();
  }

  #poll(): void {
    if (this.#closed) return;
    const now = performance.now();
    if (this.#udpFwd !== null) {
      for (let a = this.#udpFwd.poll(now, this.#pktOut); a.kind !== FWD_NONE; a = this.#udpFwd.poll(now, this.#pktOut)) {
        this.#udpAction(a);
      }
    }
    if (this.#tcpFwd !== null) {
      for (let a = this.#tcpFwd.poll(now, this.#tcpMsg); a.kind !== FWD_NONE; a = this.#tcpFwd.poll(now, this.#tcpMsg)) {
        this.#tcpAction(a);
      }
    }
    this.#io.flush();
    this.#arm();
  }

  // ---- the kernel side: TUN, addresses, TCP ----

  async #openKernel(): Promise<void> {
    const offload = this.#opts.offload === true;
    const tun = tunOpen(this.ifname, { vnetHdr: offload });
    if (offload) {
      try {
        tunSetOffload(tun.fd, DNS_TUN_OFFLOADS);
      } catch (err) {
        closeFd(tun.fd);
        throw err;
      }
    }
    const pump = new TunPump(tun.fd, {
      vnet: offload, cut: true, headroom: HEADROOM,
      readBatch: offload ? TUN_VNET_BATCH : TUN_BATCH, readSlot: offload ? TUN_VNET_SLOT : TUN_SLOT,
      writeBatch: offload ? TUN_VNET_BATCH : TUN_BATCH, writeSlot: offload ? TUN_VNET_SLOT : TUN_SLOT, autoFlush: true,
      onPacket: (buf, off, len) => {
        this.counters.fromKernel++;
        this.#io.deliver(buf, off, len);
      },
      afterRead: () => this.#io.flush(),
      onFail: (err) => this.#log.error(`dns: ${tun.name}: ${err.message}`),
    });
    const k: Kernel = { fd: tun.fd, name: tun.name, pump };
    this.#kernel = k;
    // no link-local address: the kernel sends no router solicitations or MLD reports out of it
    await ip(['link', 'set', 'dev', k.name, 'addrgenmode', 'none']);
    await ip(['link', 'set', 'dev', k.name, 'mtu', String(this.mtu), 'up']);
    await ip(['-6', 'route', 'replace', 'fdaa::/16', 'dev', k.name]);
  }

  /** A TCP packet for the kernel's DNS servers: queued, written at the end of the task (what is not taken: tunCounters). */
  #toKernel(buf: Uint8Array, off: number, len: number): void {
    const k = this.#kernel;
    if (k === null || k.fd < 0) return;
    this.counters.toKernel++;
    k.pump.write(buf, off, len);
  }

  /** The DNS TUN's pump counters (reads failed, writes not taken by reason); null before it is open. */
  get tunCounters(): TunCounters | null {
    return this.#kernel?.pump.counters ?? null;
  }

  async #syncNow(): Promise<void> {
    const k = this.#kernel;
    if (k === null || this.#closed) return;
    const want = new Set<string>(['fdaa::3']);
    const a = new Uint8Array(16);
    for (const net of this.#opts.networks()) {
      encodeSixpn(a, 0, net, 0, 0, 3);
      want.add(formatAddress(a, 0));
    }
    for (const [addr, server] of [...this.#servers]) {
      if (want.has(addr)) continue;
      this.#servers.delete(addr);
      server.close();
      await ip(['-6', 'addr', 'del', `${addr}/128`, 'dev', k.name]).catch(() => undefined);
    }
    for (const addr of want) {
      if (this.#servers.has(addr) || this.#closed) continue;
      try {
        await ip(['-6', 'addr', 'replace', `${addr}/128`, 'dev', k.name, 'nodad']);
        this.#servers.set(addr, await this.#listen(addr));
      } catch (err) {
        this.#log.error(`dns: ${addr}: ${(err as Error).message}`);
      }
    }
  }

  #listen(addr: string): Promise<Server> {
    const server = createServer({ noDelay: true }, (s) => this.#accept(s));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: addr, port: DNS_PORT, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (e) => this.#log.error(`dns: TCP ${addr}: ${e.message}`));
        resolve(server);
      });
    });
  }

  #accept(sock: Socket): void {
    sock.on('error', () => undefined);
    const asker = new Uint8Array(16);
    const remote = sock.remoteAddress ?? '';
    // only machines and peers reach the DNS addresses through the TUN: a connection from
    // elsewhere (the host's uplink, when it forwards) is closed before it is read
    const sixpn = isIP(remote) === 6 && parseAddress(remote, asker, 0) && asker[0] === 0xfd && asker[1] === 0xaa;
    if (this.#closed || this.#conns.size >= this.maxTcpConnections || !sixpn) {
      this.counters.tcpRefused++;
      sock.destroy();
      return;
    }
    this.counters.tcpConnections++;
    const c: TcpClient = { sock, asker, deframer: new TcpDeframer(), inflight: 0, closed: false };
    this.#conns.add(c);
    sock.setTimeout(this.tcpIdleMs, () => sock.destroy());
    sock.on('data', (chunk: Buffer) => this.#tcpData(c, chunk));
    sock.on('drain', () => sock.resume());
    sock.on('close', () => {
      c.closed = true;
      this.#conns.delete(c);
    });
  }

  #tcpData(c: TcpClient, chunk: Buffer): void {
    if (c.closed) return;
    if (!c.deframer.push(chunk)) return void c.sock.destroy(); // a length below a DNS header
    for (let m = c.deframer.next(); m !== undefined && !c.closed; m = c.deframer.next()) this.#tcpQuery(c, m);
    if (c.sock.writableLength > MAX_QUEUED_PER_CONN) c.sock.pause(); // resumed on 'drain'
    this.#arm();
  }

  #tcpQuery(c: TcpClient, msg: Uint8Array): void {
    this.counters.tcpQueries++;
    const n = this.resolver.answer(msg, c.asker, 'tcp', this.#tcpMsg);
    if (n > 0) return this.#tcpWrite(c, n);
    if (n !== ANSWER_FORWARD || this.#tcpFwd === null) return;
    if (c.inflight >= MAX_INFLIGHT_PER_CONN) {
      const len = writeHeaderOnly(msg, this.#tcpMsg, RCODE_SERVFAIL);
      if (len > 0) this.#tcpWrite(c, len);
      return;
    }
    this.counters.tcpForwarded++;
    c.inflight++;
    const a = this.#tcpFwd.query(msg, c, performance.now(), this.#tcpMsg);
    if (a.kind === FWD_NONE) c.inflight--;
    this.#tcpAction(a);
  }

  /** Frames and writes the message at `#tcpOut[2 … 2 + n)`. */
  #tcpWrite(c: TcpClient, n: number): void {
    if (c.closed || c.sock.destroyed) return;
    const len = frameTcp(this.#tcpOut, n);
    c.sock.write(Buffer.from(this.#tcpOut.subarray(0, len)));
  }

  /** An action of the TCP forwarder whose bytes are at `#tcpOut[2 …)`. */
  #tcpAction(a: ForwardAction<TcpClient>): void {
    if (a.kind === FWD_CLIENT) {
      a.client!.inflight--;
      return this.#tcpWrite(a.client!, a.length);
    }
    if (a.kind !== FWD_UPSTREAM || this.#closed) return;
    const i = a.upstream;
    const up = this.upstreams[i];
    const frame = Buffer.from(this.#tcpOut.subarray(0, frameTcp(this.#tcpOut, a.length)));
    const d = new TcpDeframer();
    const s = connect({ host: up.address, port: up.port, noDelay: true });
    this.#upTcp.add(s);
    s.setTimeout(this.#tcpFwd!.timeoutMs, () => s.destroy()); // the forwarder's poll retries or fails it
    s.on('error', () => undefined);
    s.on('close', () => this.#upTcp.delete(s));
    s.on('data', (chunk: Buffer) => {
      if (!d.push(chunk)) return void s.destroy();
      const m = d.next();
      if (m === undefined) return;
      s.destroy();
      const r = this.#tcpFwd!.reply(m, i, performance.now(), this.#tcpMsg);
      if (r.kind === FWD_CLIENT) this.#tcpAction(r);
    });
    s.write(frame);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    for (const c of this.#conns) c.sock.destroy();
    for (const s of this.#upTcp) s.destroy();
    await Promise.all([...this.#servers.values()].map((s) => new Promise((r) => s.close(r))));
    this.#servers.clear();
    this.#udp4?.close();
    this.#udp6?.close();
    const k = this.#kernel;
    if (k !== null && k.fd >= 0) {
      k.pump.stop();
      closeFd(k.fd); // the interface, its addresses and the route go with it
      k.fd = -1;
    }
  }
}

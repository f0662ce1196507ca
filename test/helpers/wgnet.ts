// In-memory WireGuard devices on a fake network with a fake clock.
import { Device, type Clock, type DeviceIO } from '../../src/wg/device.ts';
import { Endpoint } from '../../src/wg/endpoint.ts';
import { generatePrivateKeyBytes, StaticIdentity, chosenBackend } from '../../src/noise/index.ts';

export class FakeClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  wallMs(): number {
    return 1_800_000_000_000 + this.t;
  }
}

export interface Node {
  name: string;
  device: Device;
  endpoint: Endpoint; // where others reach it
  tun: Uint8Array[]; // packets written to its TUN
  publicKey: Uint8Array;
  online: boolean; // false: its datagrams are lost
}

export class FakeNet {
  readonly clock = new FakeClock();
  readonly nodes: Node[] = [];
  private readonly queue: Array<{ to: Endpoint; from: Endpoint; data: Uint8Array }> = [];
  sent = 0;
  /** Optional tap on every datagram (for captures in tests). */
  tap: ((from: Endpoint, to: Endpoint, data: Uint8Array) => boolean) | null = null;

  /**
   * `batch`: the device seals and opens in batches (batchSeal, batchOpen, as DeviceSockets runs
   * it); pump() then delivers what is queued in rounds, flushing the devices after each round.
   */
  add(name: string, endpoint: string, opts: { underLoad?: number; batch?: boolean } = {}): Node {
    const node = { name, endpoint: Endpoint.parse(endpoint), tun: [] as Uint8Array[], online: true } as Node;
    const io: DeviceIO = {
      sendUdp: (buf, off, len, to) => {
        this.sent++;
        if (!node.online) return;
        const from = new Endpoint();
        from.copyFrom(node.endpoint);
        this.queue.push({ to: copyEp(to), from, data: buf.slice(off, off + len) });
      },
      writeTun: (buf, off, len) => void node.tun.push(buf.slice(off, off + len)),
    };
    node.device = new Device(io, { clock: this.clock, mtu: 1420, underLoadHandshakesPerSecond: opts.underLoad, jitterMs: () => Math.floor(Math.random() * 334), batchSeal: opts.batch, batchOpen: opts.batch });
    const key = generatePrivateKeyBytes();
    node.device.setPrivateKey(key);
    node.publicKey = new StaticIdentity(chosenBackend, key).publicKey;
    this.nodes.push(node);
    return node;
  }

  /** Delivers queued datagrams until the network is quiet. */
  pump(limit = 10_000): number {
    let n = 0;
    this.flush();
    while (this.queue.length > 0 && n < limit) {
      // one round: what is queued now, as one read batch per device (then the devices flush)
      for (let round = this.queue.length; round > 0 && n < limit; round--) {
        const { to, from, data } = this.queue.shift()!;
        n++;
        const dst = this.nodes.find((x) => x.endpoint.sameRemote(to));
        if (!dst || !dst.online) continue;
        if (this.tap && !this.tap(from, to, data)) continue;
        dst.device.receiveDatagram(data, 0, data.length, from);
      }
      this.flush();
    }
    return n;
  }

  /** Delivers what batching devices hold (opens first: they may send), as their sockets would. */
  flush(): void {
    for (const node of this.nodes) node.device.flushOpens();
    for (const node of this.nodes) node.device.settleBatches(); // a worker pool's jobs too
  }

  /** Delivers datagrams (each with its source) to `node` as one read batch, then flushes (opens, seals). */
  deliver(node: Node, datagrams: Array<[Uint8Array, Endpoint]>): void {
    for (const [d, from] of datagrams) node.device.receiveDatagram(d.slice(), 0, d.length, from);
    this.flush();
  }

  /** Advances the clock in steps, ticking every device and pumping. */
  advance(ms: number, step = 100): void {
    const end = this.clock.t + ms;
    while (this.clock.t < end) {
      this.clock.t = Math.min(end, this.clock.t + step);
      for (const n of this.nodes) n.device.tick();
      this.pump();
    }
  }
}

function copyEp(e: Endpoint): Endpoint {
  const c = new Endpoint();
  c.copyFrom(e);
  return c;
}

/** Peers a and b with each other: allowed IPs on each side, endpoints, optional PSK. */
export function connect(a: Node, b: Node, aAllowed: string[], bAllowed: string[], psk: Uint8Array | null = null): void {
  const pa = a.device.addPeer(b.publicKey);
  pa.endpoint = copyEp(b.endpoint);
  pa.setPresharedKey(psk);
  for (const c of bAllowed) a.device.allowedIps.insert(cidr(c), pa);
  const pb = b.device.addPeer(a.publicKey);
  pb.endpoint = copyEp(a.endpoint);
  pb.setPresharedKey(psk);
  for (const c of aAllowed) b.device.allowedIps.insert(cidr(c), pb);
}

export function cidr(text: string) {
  const [addr, len] = text.split('/');
  if (addr.includes(':')) {
    const ep = Endpoint.parse(`[${addr}]:1`);
    return { family: 6 as const, addr: ep.addr.slice(0, 16), prefixLen: Number(len) };
  }
  return { family: 4 as const, addr: new Uint8Array(addr.split('.').map(Number)), prefixLen: Number(len) };
}

/** A minimal IPv4 or IPv6 packet (UDP protocol number, payload bytes), with 16 bytes of headroom. */
export function ipPacket(src: string, dst: string, payload: Uint8Array | number = 32): { buf: Uint8Array; off: number; len: number } {
  const body = typeof payload === 'number' ? new Uint8Array(payload).map((_, i) => i) : payload;
  const v6 = src.includes(':');
  const hdr = v6 ? 40 : 20;
  const len = hdr + body.length;
  const buf = new Uint8Array(16 + len + 32);
  const p = 16;
  if (v6) {
    buf[p] = 0x60;
    buf[p + 4] = body.length >> 8;
    buf[p + 5] = body.length & 0xff;
    buf[p + 6] = 17;
    buf[p + 7] = 64;
    buf.set(cidr(`${src}/128`).addr, p + 8);
    buf.set(cidr(`${dst}/128`).addr, p + 24);
  } else {
    buf[p] = 0x45;
    buf[p + 2] = len >> 8;
    buf[p + 3] = len & 0xff;
    buf[p + 8] = 64;
    buf[p + 9] = 17;
    buf.set(cidr(`${src}/32`).addr, p + 12);
    buf.set(cidr(`${dst}/32`).addr, p + 16);
  }
  buf.set(body, p + hdr);
  return { buf, off: p, len };
}

export function send(node: Node, src: string, dst: string, payload: Uint8Array | number = 32): void {
  const { buf, off, len } = ipPacket(src, dst, payload);
  node.device.sendPacket(buf, off, len);
}

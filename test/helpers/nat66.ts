// The SNAT66 namespace lab (issue 5): the same machines-to-internet topology twice, once through
// sixpn's Egress and once through the Linux kernel's nftables masquerade, sharing one provider
// router and one internet.
//
//   m1 ─TUN─┐                                                   ┌ 2001:db8:f::10  (servers: ping,
//   m2 ─TUN─┤ hostS: this process plays the router's part       │ 2001:db8:f::20   ncat, iperf3,
//           │ (machine TUN fds here) → Egress → egress TUN ─┐   │                  socket agent)
//           │ kernel forwards egress TUN ⇄ uplink           uplink ─ router ─(MTU 1280)─ inet
//   k1 ─veth┤ hostK: kernel forwarding, nft masquerade ─────uplink ┘
//   k2 ─veth┘
//   p1 ─TUN── hostP: like hostS, its egress address on-link on the uplink (proxy NDP)
//   o1 ─TUN── hostO: like hostS in offload mode: vnet_hdr TUNs, 64 KB TCP segments (TSO/GSO)
//
// hostS's egress address 2001:db8:e::5 is routed by the provider router to hostS's uplink
// address, the way a provider routes a /128 to a host; the host kernel does not own it. hostK's
// masquerade needs an address the kernel owns: its uplink address 2001:db8:2::6 is its egress.
// The servers advertise the TCP MSS of a 1500-byte LAN (advmss 1440), as servers beyond a
// narrower link would, so the machines' full-size segments meet the 1280-byte link at the router
// and a transfer completes only if Packet Too Big makes it back through the NAT (PMTUD).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { threadId } from 'node:worker_threads';
import { EGRESS_OFFLOADS, Egress, type EgressOptions } from '../../src/host/egress.ts';
import type { Nat66Options } from '../../src/nat66/index.ts';
import { MACHINE_MTU } from '../../src/router/router.ts';
import { fold, pseudoHeaderSum } from '../../src/ipv6/index.ts';
import {
  TunBatch, VNET_HDR_LEN, close as closeFd, fdUnwatch, fdWatch, ip, tunOpen, tunSetOffload, type FdWatch,
} from '../../src/tun/index.ts';
import { Lab, sh } from './netns.ts';

export const NFT = '/usr/sbin/nft'; // full path: under npx, node_modules/.bin has an unrelated `nft`
export const INET_A = '2001:db8:f::10';
export const INET_B = '2001:db8:f::20';
const ROUTER_INET = '2001:db8:f::1';
export const EGRESS_S = '2001:db8:e::5';
export const EGRESS_K = '2001:db8:2::6';
export const EGRESS_P = '2001:db8:3::11';
export const EGRESS_O = '2001:db8:e::9';
export { MACHINE_MTU };
const AGENT = fileURLToPath(new URL('./nat66-agent.ts', import.meta.url));

/** Scaled-down timeouts, ms, applied to both NATs. */
export interface Timeouts {
  udpMs: number;
  icmpMs: number;
  tcpTransitoryMs: number;
  tcpEstablishedMs: number;
}

export interface LabOptions {
  inetMtu?: number; // the router ↔ internet link (default 1280)
  timeouts?: Timeouts; // default: each NAT's own defaults
  onLink?: boolean; // also hostP with an on-link egress address (default false)
  onLinkNat?: Nat66Options; // hostP's translator options (over the scaled timeouts)
  linux?: boolean; // also hostK (default true)
  offload?: boolean; // also hostO, Egress and machine TUNs in offload mode (default false)
  machines?: number; // per site (default 2)
  agents?: boolean; // socket agents in the machines and the internet (default true)
  egress?: Partial<EgressOptions>;
}

// ---- socket agent ----

type Answer = Record<string, unknown> & { seq?: number; ok?: boolean; fail?: string };

export class Agent {
  readonly ns: string;
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, (a: Answer) => void>();

  private constructor(ns: string, child: ChildProcess) {
    this.ns = ns;
    this.child = child;
  }

  static async start(lab: Lab, ns: string): Promise<Agent> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, AGENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    lab.children.push(child);
    const a = new Agent(ns, child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (line) => {
        const msg = JSON.parse(line) as Answer;
        if (msg.ready === true) return resolve();
        const f = a.pending.get(msg.seq!);
        a.pending.delete(msg.seq!);
        f?.(msg);
      });
      child.once('exit', (code) => reject(new Error(`agent in ${ns} exited ${code}: ${stderr}`)));
    });
    return a;
  }

  // The answers are loosely typed JSON.
  async call(op: string, args: Record<string, unknown> = {}): Promise<Record<string, any>> {
    const seq = ++this.seq;
    const answer = new Promise<Answer>((resolve) => this.pending.set(seq, resolve));
    this.child.stdin!.write(JSON.stringify({ op, seq, ...args }) + '\n');
    const a = await answer;
    if (a.fail !== undefined) throw new Error(`agent ${this.ns} ${op}: ${a.fail}`);
    return a;
  }

  close(): void {
    this.child.stdin!.end();
    this.child.kill('SIGKILL');
  }
}

// ---- sites ----

export interface SiteMachine {
  name: string; // m1, k1, …
  ns: string;
  addr: string;
  agent: Agent | null;
}

export interface NatSite {
  kind: 'sixpn' | 'linux';
  host: string; // namespace
  egress: string; // the address the internet sees
  machines: SiteMachine[];
  /** Conntrack entries now. */
  entries(): Promise<number>;
  /** Conntrack entries, conntrack -L / /proc/net/nf_conntrack lines. */
  lines(): Promise<string[]>;
}

export interface TunMachine extends SiteMachine {
  slot: number;
  app: string; // the egress address is chosen per app (Egress.egressOf)
  ifname: string;
  fd: number;
  watch: FdWatch | null;
  out: TunBatch;
  outCount: number;
  delivered: number; // packets the site wrote into this machine's TUN
}

/** hostS / hostP: this process holds the machines' TUN fds and plays the router for them. */
export class SixpnSite implements NatSite {
  readonly kind = 'sixpn';
  readonly host: string;
  readonly egress: string;
  readonly machines: TunMachine[] = [];
  engine!: Egress;
  readonly vnetHdr: boolean;
  private readonly hdr: number; // virtio_net_hdr bytes in front of each packet (offload mode)
  private readonly slot: number;
  private readonly inBatch: TunBatch;
  private readonly pending = new Set<TunMachine>();
  fromMachines = 0; // packets read from machine TUNs
  toEgress = 0; // … of them handed to Egress.send (global destinations)
  readonly largest = { out: 0, in: 0 }; // IPv6 packet bytes (offload mode: 64 KB segments)
  partialChecked = 0; // offload mode: NEEDS_CSUM packets delivered, their pseudo-header sum checked
  partialBad = 0; // … that did not match the translated header

  constructor(host: string, egress: string, vnetHdr = false) {
    this.host = host;
    this.egress = egress;
    this.vnetHdr = vnetHdr;
    this.hdr = vnetHdr ? VNET_HDR_LEN : 0;
    this.slot = vnetHdr ? 65_600 : 2048;
    this.inBatch = new TunBatch(64, this.slot);
  }

  async entries(): Promise<number> {
    return this.engine.size;
  }

  async lines(): Promise<string[]> {
    return this.engine.list();
  }

  /** Packets the harness delivered to machines (inbound, hairpinned, ICMP errors). */
  delivered(): number {
    return this.machines.reduce((n, m) => n + m.delivered, 0);
  }

  async addMachine(lab: Lab, name: string, addr: string): Promise<TunMachine> {
    const ns = await lab.ns(name);
    const tun = tunOpen(lab.name(`t${name}`), { vnetHdr: this.vnetHdr });
    if (this.vnetHdr) tunSetOffload(tun.fd, EGRESS_OFFLOADS); // the machine's kernel sends 64 KB TCP segments
    const m: TunMachine = {
      name, ns, addr, agent: null, slot: this.machines.length, app: 'app', ifname: tun.name, fd: tun.fd, watch: null,
      out: new TunBatch(64, this.slot), outCount: 0, delivered: 0,
    };
    this.machines.push(m);
    await ip(['link', 'set', 'dev', tun.name, 'netns', ns]);
    await ip(['addr', 'add', `${addr}/112`, 'dev', tun.name, 'nodad'], { netns: ns });
    await ip(['link', 'set', 'dev', tun.name, 'mtu', String(MACHINE_MTU), 'up'], { netns: ns });
    await ip(['-6', 'route', 'replace', 'fdaa::/16', 'dev', tun.name], { netns: ns });
    await ip(['-6', 'route', 'replace', 'default', 'dev', tun.name], { netns: ns });
    m.watch = fdWatch(m.fd, () => this.fromMachine(m));
    return m;
  }

  // The router's part for a machine's packets: global unicast (2000::/3) goes to the egress,
  // hop limit decremented; the rest (neighbour discovery, MLD, 6PN) is not this harness's.
  private fromMachine(m: TunMachine): void {
    const b = this.inBatch;
    const h = this.hdr;
    for (let round = 0; round < 4; round++) {
      const n = m.fd < 0 ? 0 : b.read(m.fd, 0);
      for (let i = 0; i < n; i++) {
        const off = b.offset(i);
        const ip6 = off + h;
        this.fromMachines++;
        if (b.error(i) !== 0 || (b.slab[ip6 + 24] & 0xe0) !== 0x20 || b.slab[ip6 + 7] <= 1) continue;
        b.slab[ip6 + 7]--;
        this.toEgress++;
        if (b.length(i) - h > this.largest.out) this.largest.out = b.length(i) - h;
        this.engine.send(m.slot, b.slab, off, b.length(i), this.engine.egressOf(m.app));
      }
      if (n < b.size) break;
    }
    this.engine.flush();
    this.flushMachines();
  }

  deliver(slot: number, buf: Uint8Array, off: number, len: number): void {
    const m = this.machines[slot];
    if (m === undefined || m.fd < 0 || len > m.out.slotSize) return;
    if (len - this.hdr > this.largest.in) this.largest.in = len - this.hdr;
    if (this.hdr !== 0 && (buf[off] & 1) !== 0) this.checkPartial(buf, off);
    if (m.outCount === m.out.size) this.flushMachine(m);
    const i = m.outCount++;
    m.out.slab.set(buf.subarray(off, off + len), m.out.offset(i));
    m.out.setLength(i, len);
    m.delivered++;
    this.pending.add(m);
  }

  // A NEEDS_CSUM packet's checksum field must hold the pseudo-header sum of its (translated)
  // header: what the kernel would have put there for these addresses.
  private checkPartial(buf: Uint8Array, off: number): void {
    const ip6 = off + this.hdr;
    const pos = ip6 + (buf[off + 6] | (buf[off + 7] << 8)) + (buf[off + 8] | (buf[off + 9] << 8));
    const want = fold(pseudoHeaderSum(buf, ip6, (buf[ip6 + 4] << 8) | buf[ip6 + 5], buf[ip6 + 6])) & 0xffff;
    const have = (buf[pos] << 8) | buf[pos + 1];
    this.partialChecked++;
    if (!(have === want || (have === 0 && want === 0xffff) || (have === 0xffff && want === 0))) this.partialBad++;
  }

  flushMachines(): void {
    for (const m of this.pending) this.flushMachine(m);
    this.pending.clear();
  }

  private flushMachine(m: TunMachine): void {
    const n = m.outCount;
    m.outCount = 0;
    if (n > 0 && m.fd >= 0) m.out.write(m.fd, n, 0);
  }

  async close(): Promise<void> {
    for (const m of this.machines) {
      if (m.watch) fdUnwatch(m.watch);
      m.watch = null;
      if (m.fd >= 0) closeFd(m.fd);
      m.fd = -1;
    }
    await this.engine?.close();
  }
}

/** hostK: the Linux kernel forwards and masquerades (nftables); machines on veths. */
export class LinuxSite implements NatSite {
  readonly kind = 'linux';
  readonly host: string;
  readonly egress: string;
  readonly machines: SiteMachine[] = [];

  constructor(host: string, egress: string) {
    this.host = host;
    this.egress = egress;
  }

  async lines(): Promise<string[]> {
    const out = await sh('ip', ['netns', 'exec', this.host, 'cat', '/proc/net/nf_conntrack']);
    return out.split('\n').filter((l) => l.trim() !== '');
  }

  async entries(): Promise<number> {
    return (await this.lines()).length;
  }
}

async function sysctl(ns: string, ...kv: string[]): Promise<void> {
  await sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...kv]);
}

export class Nat66Lab {
  // ava runs test files in worker threads of one process: the thread joins the pid in names
  readonly lab = new Lab(`n${(threadId % 36).toString(36)}`);
  router = '';
  inet = '';
  sixpn!: SixpnSite;
  linux: LinuxSite | null = null;
  onLink: SixpnSite | null = null;
  offload: SixpnSite | null = null;
  inetAgent: Agent | null = null;
  private readonly agents: Agent[] = [];

  static async create(opts: LabOptions = {}): Promise<Nat66Lab> {
    const l = new Nat66Lab();
    try {
      await l.build(opts);
    } catch (err) {
      await l.cleanup();
      throw err;
    }
    return l;
  }

  get sites(): NatSite[] {
    return [this.sixpn, ...(this.linux ? [this.linux] : [])];
  }

  private async build(opts: LabOptions): Promise<void> {
    const lab = this.lab;
    const count = opts.machines ?? 2;
    this.router = await lab.ns('r');
    this.inet = await lab.ns('i');
    await sysctl(this.router, 'net.ipv6.conf.all.forwarding=1');
    const mtu = opts.inetMtu ?? 1280;
    const [, inetIf] = await lab.veth(this.router, [`${ROUTER_INET}/64`], this.inet, [`${INET_A}/64`, `${INET_B}/64`], mtu);
    const advmss = mtu < 1500 ? ['advmss', '1440'] : [];
    await ip(['-6', 'route', 'add', 'default', 'via', ROUTER_INET, 'dev', inetIf, ...advmss], { netns: this.inet });

    const t = opts.timeouts;
    const nat = t === undefined ? {} : {
      udpTimeoutMs: t.udpMs, icmpTimeoutMs: t.icmpMs, tcpTransitoryTimeoutMs: t.tcpTransitoryMs,
      tcpEstablishedTimeoutMs: t.tcpEstablishedMs, wheelGranularityMs: 100,
    };

    // hostS: the egress /128 is routed to its uplink address
    this.sixpn = await this.sixpnSite('s', '1', EGRESS_S, false, count, { ...opts.egress, nat: { ...nat, ...opts.egress?.nat }, tickMs: t ? 100 : undefined });
    // hostP: on-link egress address, found by neighbour discovery (proxy NDP)
    if (opts.onLink === true) {
      this.onLink = await this.sixpnSite('p', '3', EGRESS_P, true, 1, { nat: { ...nat, ...opts.onLinkNat }, tickMs: t ? 100 : undefined });
    }

    // hostO: offload mode
    if (opts.offload === true) {
      this.offload = await this.sixpnSite('o', '4', EGRESS_O, false, 1, { nat, tickMs: t ? 100 : undefined, vnetHdr: true });
    }

    // hostK: kernel masquerade
    if (opts.linux !== false) {
      const host = await lab.ns('k');
      const site = new LinuxSite(host, EGRESS_K);
      this.linux = site;
      const [, up] = await lab.veth(this.router, ['2001:db8:2::1/64'], host, [`${EGRESS_K}/64`]);
      await ip(['-6', 'route', 'add', 'default', 'via', '2001:db8:2::1', 'dev', up], { netns: host });
      await sysctl(host, 'net.ipv6.conf.all.forwarding=1');
      await sh('ip', ['netns', 'exec', host, NFT, '-f', lab.file('nat.nft', [
        'table ip6 sixpnlab {',
        '  chain post {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    oifname "${up}" masquerade`,
        '  }',
        '}',
        '',
      ].join('\n'))]);
      if (t !== undefined) {
        const s = (ms: number): string => String(Math.max(1, Math.round(ms / 1000)));
        await sysctl(host,
          `net.netfilter.nf_conntrack_udp_timeout=${s(t.udpMs)}`, `net.netfilter.nf_conntrack_udp_timeout_stream=${s(t.udpMs)}`,
          `net.netfilter.nf_conntrack_icmpv6_timeout=${s(t.icmpMs)}`,
          `net.netfilter.nf_conntrack_tcp_timeout_established=${s(t.tcpEstablishedMs)}`);
      }
      for (let i = 1; i <= count; i++) {
        const name = `k${i}`;
        const ns = await lab.ns(name);
        const prefix = `fdaa:0:18:a7b:7e:0:${i}`;
        const [mIf] = await lab.veth(ns, [`${prefix}:2/112`], host, [`${prefix}:1/112`], MACHINE_MTU);
        await ip(['-6', 'route', 'add', 'default', 'via', `${prefix}:1`, 'dev', mIf], { netns: ns });
        site.machines.push({ name, ns, addr: `${prefix}:2`, agent: null });
      }
    }

    await this.settle();
    if (opts.agents !== false) {
      this.inetAgent = await Agent.start(lab, this.inet);
      this.agents.push(this.inetAgent);
      for (const site of [...this.sites, ...(this.onLink ? [this.onLink] : []), ...(this.offload ? [this.offload] : [])]) {
        for (const m of site.machines) {
          m.agent = await Agent.start(lab, m.ns);
          this.agents.push(m.agent);
        }
      }
    }
  }

  private async sixpnSite(
    tag: string, net: string, egress: string, onLink: boolean, count: number, extra: Partial<EgressOptions>,
  ): Promise<SixpnSite> {
    const lab = this.lab;
    const host = await lab.ns(`h${tag}`);
    const site = new SixpnSite(host, egress, extra.vnetHdr === true);
    const [, up] = await lab.veth(this.router, [`2001:db8:${net}::1/64`], host, [`2001:db8:${net}::2/64`]);
    await ip(['-6', 'route', 'add', 'default', 'via', `2001:db8:${net}::1`, 'dev', up], { netns: host });
    if (!onLink) await ip(['-6', 'route', 'add', `${egress}/128`, 'via', `2001:db8:${net}::2`], { netns: this.router });
    site.engine = await Egress.open({
      ...extra,
      address: egress,
      netns: host,
      ifname: lab.name(`e${tag}`),
      deliver: (slot, buf, off, len) => site.deliver(slot, buf, off, len),
      afterRound: () => site.flushMachines(),
    });
    const instance = { s: '7d', p: '7f', o: '80' }[tag] ?? '81';
    for (let i = 1; i <= count; i++) await site.addMachine(lab, `${tag === 's' ? 'm' : tag}${i}`, `fdaa:0:18:a7b:${instance}:0:${i}:2`);
    return site;
  }

  /** Waits until duplicate address detection is over everywhere (link-local addresses are
   *  tentative for a second or two after a link comes up; neighbour discovery waits for them). */
  async settle(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (const ns of this.lab.namespaces) {
      while ((await ip(['-6', 'addr', 'show', 'tentative'], { netns: ns })).trim() !== '' && Date.now() < end) await sleep(100);
    }
  }

  /** Runs a command in a namespace (stdout). */
  exec(ns: string, cmd: string, args: string[], timeout = 30_000): Promise<string> {
    return this.lab.exec(ns, cmd, args, { timeout });
  }

  /** Starts a long-running command in a namespace (killed at cleanup). */
  start(ns: string, cmd: string, args: string[]): ChildProcess {
    return this.lab.start(ns, cmd, args);
  }

  async cleanup(): Promise<void> {
    for (const a of this.agents) a.close();
    await this.sixpn?.close().catch(() => undefined);
    await this.onLink?.close().catch(() => undefined);
    await this.offload?.close().catch(() => undefined);
    await this.lab.cleanup();
  }
}

/** "ADDR PORT" → [addr, port]. */
export function whoami(text: string): [string, number] {
  const [addr, port] = text.trim().split(/\s+/);
  return [addr, Number(port)];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

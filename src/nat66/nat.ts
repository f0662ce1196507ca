// SNAT66: the sans-IO core. Packets in (buf, off, len) are rewritten in place; the clock is the
// caller's (ms); `tick(nowMs)` expires entries; no allocation per packet.
//
// outbound(buf, off, len, machine, egress, nowMs), for a packet from a machine to the internet:
//   1. parse (RFC 8200); non-first fragments only get the egress source address;
//   2. ICMPv6 errors about inbound packets go to IcmpErrors.outbound (icmp.ts);
//   3. find or create the mapping of the internal endpoint on that egress address (RFC 4787
//      REQ-1, REQ-3), then the session toward the remote endpoint — or REJECT when a limit or
//      the port range says no (the packet is left untouched for the Destination Unreachable);
//   4. track TCP state, refresh the timeout (outbound refresh, RFC 4787 REQ-6);
//   5. rewrite source address and port (or echo identifier), checksum by RFC 1624;
//   6. when the destination is one of our egress addresses, hairpin it (RFC 4787 REQ-9):
//      translate it inbound as well and hand it to the machine that owns that mapping.
// inbound(buf, off, len, nowMs), for a packet from the internet to an egress address:
//   1. parse; non-first fragments follow their first fragment (fragments.ts);
//   2. ICMPv6 errors are translated back to the internal endpoint (icmp.ts);
//   3. the external port names the mapping; address-and-port-dependent filtering also wants a
//      live session with this remote endpoint (RFC 4787 REQ-8), else the packet is dropped
//      silently — an inbound SYN included (RFC 5382 REQ-4: no answer for 6 s at least;
//      with filtering, none at all);
//   4. rewrite destination address and port; `machine` says where it goes.
// UDP with checksum 0 is dropped both ways: IPv6 forbids it (RFC 8200 §8.1; RFC 6936's tunnel
// exception does not apply) and computing one would mean reading the whole datagram.

import {
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_UNREACH_ADMIN,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_OFF_DST,
  IPV6_OFF_SRC,
  Ipv6Info,
  PARSE_OK,
  buildDestUnreachable,
  checksumOffset,
  parsePacket,
  readU16,
  readU32,
  rewriteAddress,
  setEchoIdentifier,
  updateChecksumWord,
  verifyChecksum,
  writeU16,
} from '../ipv6/index.ts';
import {
  DEFAULT_CAPACITY,
  DEFAULT_FRAGMENT_SLOTS,
  DEFAULT_MAX_EGRESS,
  DEFAULT_MAX_MACHINES,
  DEFAULT_PER_MACHINE_LIMIT,
  DEFAULT_WHEEL_GRANULARITY_MS,
  F_ASSURED,
  F_REPLIED,
  FILTER_ADDRESS_AND_PORT,
  FRAGMENT_TIMEOUT_MS,
  ICMP_QUERY_TIMEOUT_MS,
  NAT66_DELIVER,
  NAT66_DROP,
  NAT66_FORWARD,
  NAT66_HAIRPIN,
  NAT66_REJECT,
  PI_ICMP,
  PI_TCP,
  PI_UDP,
  TCP_ESTABLISHED_TIMEOUT_MS,
  TCP_TRANSITORY_TIMEOUT_MS,
  UDP_TIMEOUT_MS,
} from './constants.ts';
import { EgressSet } from './egress-set.ts';
import { FragmentCache } from './fragments.ts';
import { IcmpErrors } from './icmp.ts';
import { conntrackLines } from './conntrack-text.ts';
import { ConnTable } from './table.ts';
import { tcpMayCreate, tcpTimeout, tcpTrack } from './tcp.ts';

export interface Nat66Options {
  capacity?: number; // sessions (conntrack entries); the table limit
  mappingCapacity?: number; // mappings; default: capacity (one per session at worst)
  perMachineLimit?: number; // sessions one machine may hold
  maxMachines?: number; // machine ids are 0 … maxMachines − 1 (the caller's slot numbers)
  maxEgress?: number; // egress addresses
  filtering?: number; // FILTER_ADDRESS_AND_PORT (default) or FILTER_ENDPOINT_INDEPENDENT
  udpTimeoutMs?: number;
  tcpEstablishedTimeoutMs?: number;
  tcpTransitoryTimeoutMs?: number;
  icmpTimeoutMs?: number;
  udpInboundRefresh?: boolean; // inbound UDP/echo replies refresh too (RFC 4787 REQ-6 "MAY"); default false
  verifyInbound?: boolean; // drop inbound packets whose transport checksum fails; default false
  wheelGranularityMs?: number; // expiry precision of tick()
  fragmentSlots?: number;
  seed?: number; // hash seed (random by default) and port randomisation
}

// Why packets were dropped or rejected, and what was created and translated.
export class Nat66Counters {
  created = 0; // sessions
  expired = 0; // sessions removed by tick or found expired
  invalid = 0; // unparsable, routing header, port 0, UDP checksum 0, bad machine or egress id
  unsupported = 0; // outbound protocols other than TCP, UDP, ICMPv6 echo (REJECT)
  notTracked = 0; // packets that may not create a session (outbound RST/FIN, echo reply, …)
  unsolicited = 0; // inbound to no mapping
  filtered = 0; // inbound to a mapping, from an endpoint it did not send to
  badChecksum = 0; // inbound, with verifyInbound
  tableFull = 0; // REJECT: capacity
  machineFull = 0; // REJECT: per-machine limit
  portsFull = 0; // REJECT: no external port left in the range
  fragments = 0; // non-first fragments translated
  fragmentsDropped = 0; // non-first inbound fragments with no first fragment seen
  errorsIn = 0; // ICMPv6 errors translated inbound
  errorsOut = 0; // … outbound
  errorsDropped = 0; // ICMPv6 errors about no flow of ours
  hairpins = 0;
}

export class Nat66 {
  /** The tracker's tables: for inspection (tests); only this class and its helpers change them. */
  readonly table: ConnTable;
  readonly counters = new Nat66Counters();
  readonly filtering: number;
  readonly perMachineLimit: number;
  readonly maxMachines: number;
  readonly udpTimeoutMs: number;
  readonly tcpEstablishedTimeoutMs: number;
  readonly tcpTransitoryTimeoutMs: number;
  readonly icmpTimeoutMs: number;
  readonly udpInboundRefresh: boolean;
  readonly verifyInbound: boolean;
  private readonly egresses: EgressSet;
  /** After DELIVER or HAIRPIN: the machine the packet goes to. */
  get machine(): number {
    return this.target;
  }
  private target = -1;
  private readonly errors: IcmpErrors; // ICMPv6 error translation (icmp.ts)
  private readonly info = new Ipv6Info();
  private readonly frags: FragmentCache;

  constructor(opts: Nat66Options = {}) {
    const capacity = opts.capacity ?? DEFAULT_CAPACITY;
    this.filtering = opts.filtering ?? FILTER_ADDRESS_AND_PORT;
    this.perMachineLimit = opts.perMachineLimit ?? DEFAULT_PER_MACHINE_LIMIT;
    this.maxMachines = opts.maxMachines ?? DEFAULT_MAX_MACHINES;
    this.udpTimeoutMs = opts.udpTimeoutMs ?? UDP_TIMEOUT_MS;
    this.tcpEstablishedTimeoutMs = opts.tcpEstablishedTimeoutMs ?? TCP_ESTABLISHED_TIMEOUT_MS;
    this.tcpTransitoryTimeoutMs = opts.tcpTransitoryTimeoutMs ?? TCP_TRANSITORY_TIMEOUT_MS;
    this.icmpTimeoutMs = opts.icmpTimeoutMs ?? ICMP_QUERY_TIMEOUT_MS;
    this.udpInboundRefresh = opts.udpInboundRefresh ?? false;
    this.verifyInbound = opts.verifyInbound ?? false;
    const maxEgress = opts.maxEgress ?? DEFAULT_MAX_EGRESS;
    if (!(capacity >= 1 && maxEgress >= 1 && maxEgress <= 16384 && this.maxMachines >= 1)) {
      throw new RangeError('nat66: capacity, maxEgress (≤ 16384) and maxMachines must be ≥ 1');
    }
    const seed = opts.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    const maxTimeout = Math.max(this.udpTimeoutMs, this.tcpEstablishedTimeoutMs, this.tcpTransitoryTimeoutMs, this.icmpTimeoutMs);
    this.table = new ConnTable(
      capacity, opts.mappingCapacity ?? capacity, this.maxMachines, maxEgress, maxTimeout,
      opts.wheelGranularityMs ?? DEFAULT_WHEEL_GRANULARITY_MS, seed,
    );
    this.egresses = new EgressSet(maxEgress);
    this.frags = new FragmentCache(opts.fragmentSlots ?? DEFAULT_FRAGMENT_SLOTS, seed ^ 0x27d4eb2f);
    this.errors = new IcmpErrors(this.table, this.egresses, this.filtering, this.counters);
  }

  // Registers an egress address (the host's, or an app's static one) and returns its id, the
  // `egress` argument of outbound(); the same address gives the same id.
  addEgress(addr: Uint8Array, off = 0): number {
    const known = this.egresses.find(addr, off);
    if (known >= 0) return known;
    const id = this.egresses.add(addr, off);
    this.table.addEgress(id);
    return id;
  }

  // The egress id of the address at buf[off], or -1 (egress-set.ts).
  findEgress(buf: Uint8Array, off: number): number {
    return this.egresses.find(buf, off);
  }

  get egressCount(): number {
    return this.egresses.count;
  }

  get size(): number {
    return this.table.sCount; // sessions, including expired ones the next tick removes
  }

  /** Sessions the table can hold. */
  get capacity(): number {
    return this.table.sCap;
  }

  get mappings(): number {
    return this.table.mCount;
  }

  machineEntries(machine: number): number {
    return this.table.machineCount[machine] ?? 0;
  }

  // Live entries as `conntrack -L` prints them (conntrack-text.ts).
  list(nowMs: number): string[] {
    return conntrackLines(this.table, this.egresses.addr, nowMs);
  }

  // Table bytes (typed arrays of the tracker and the fragment cache).
  byteLength(): number {
    return this.table.byteLength() + this.frags.byteLength() + this.egresses.byteLength();
  }

  // Expires sessions (and mappings with no session left); returns how many sessions went. Call
  // it every second or so; `budget` bounds the work of one call (the rest waits for the next).
  tick(nowMs: number, budget = Infinity): number {
    const n = this.table.tick(nowMs, budget);
    this.counters.expired += n;
    return n;
  }

  // Removes every session of a machine that stopped or moved; returns how many.
  flushMachine(machine: number): number {
    const t = this.table;
    let n = 0;
    for (let s = 0; s < t.sCap; s++) {
      const m = t.sMap[s];
      if (m >= 0 && t.mMachine[m] === machine) {
        t.deleteSession(s);
        n++;
      }
    }
    this.frags.forgetMachine(machine);
    return n;
  }

  // For a REJECT verdict: Destination Unreachable, administratively prohibited (RFC 4443 §3.1
  // code 1) about the packet in pkt[pktOff, pktOff + pktLen), from (src, srcOff), into out.
  // Returns its length or a negative ICMPV6_SUPPRESS_* code (src/ipv6 buildDestUnreachable).
  buildProhibited(
    out: Uint8Array, outOff: number, src: Uint8Array, srcOff: number,
    pkt: Uint8Array, pktOff: number, pktLen: number,
  ): number {
    return buildDestUnreachable(out, outOff, src, srcOff, pkt, pktOff, pktLen, ICMPV6_UNREACH_ADMIN);
  }

  // ---- outbound ----

  outbound(buf: Uint8Array, off: number, len: number, machine: number, egress: number, nowMs: number): number {
    const c = this.counters;
    const info = this.info;
    this.target = -1;
    if (!(machine >>> 0 === machine && machine < this.maxMachines && egress >>> 0 === egress && egress < this.egresses.count)) {
      c.invalid++;
      return NAT66_DROP;
    }
    if (parsePacket(buf, off, len, info) !== PARSE_OK || info.hasRouting) {
      c.invalid++;
      return NAT66_DROP;
    }
    const srcOff = off + IPV6_OFF_SRC;
    const dstOff = off + IPV6_OFF_DST;
    if (info.nonFirstFragment) {
      // No ports and no checksum here (RFC 8200 §4.5): only the source changes.
      if (this.egresses.find(buf, dstOff) >= 0) {
        c.invalid++; // hairpinned fragments are not reassembled
        return NAT66_DROP;
      }
      for (let i = 0; i < 16; i++) buf[srcOff + i] = this.egresses.addr[16 * egress + i];
      c.fragments++;
      return NAT66_FORWARD;
    }

    const proto = info.protocol;
    const l4 = info.l4Off;
    let pi: number;
    let sport: number;
    let dport: number;
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      pi = proto === IPPROTO_TCP ? PI_TCP : PI_UDP;
      sport = readU16(buf, l4);
      dport = readU16(buf, l4 + 2);
      if (sport === 0 || dport === 0 || (pi === PI_UDP && readU16(buf, l4 + 6) === 0)) {
        c.invalid++;
        return NAT66_DROP;
      }
    } else if (proto === IPPROTO_ICMPV6) {
      const type = buf[l4];
      if (type < ICMPV6_ECHO_REQUEST) return this.errors.outbound(buf, off, info, machine, egress, nowMs);
      if (type !== ICMPV6_ECHO_REQUEST || buf[l4 + 1] !== 0) {
        c.notTracked++; // echo replies (no inbound request gets through), NDP, MLD, …
        return NAT66_DROP;
      }
      pi = PI_ICMP;
      sport = readU16(buf, l4 + 4); // RFC 4443 §4.1 identifier, mapped like a port (RFC 5508 §3.1)
      dport = 0;
    } else {
      c.unsupported++;
      return NAT66_REJECT;
    }
    const tcpFlags = pi === PI_TCP ? buf[l4 + 13] : 0;

    // Mapping, then session (RFC 4787 §4.1: endpoint-independent mapping).
    const t = this.table;
    let m = t.findMapping(egress, pi, buf, srcOff, sport);
    let s = m >= 0 ? t.findSession(m, buf, dstOff, dport) : -1;
    if (s >= 0 && t.sExpire[s] <= nowMs) {
      t.deleteSession(s); // expired, not yet ticked away: start over
      c.expired++;
      s = -1;
      m = t.findMapping(egress, pi, buf, srcOff, sport);
    }
    if (s < 0) {
      if (pi === PI_TCP && !tcpMayCreate(tcpFlags)) {
        c.notTracked++;
        return NAT66_DROP;
      }
      if (t.sCount >= t.sCap) {
        // Full: reap what has expired since the last tick, else refuse (existing flows stay).
        if (this.tick(nowMs) === 0) {
          c.tableFull++;
          return NAT66_REJECT;
        }
        m = t.findMapping(egress, pi, buf, srcOff, sport); // the tick may have taken it
      }
      if (t.machineCount[machine] >= this.perMachineLimit) {
        c.machineFull++;
        return NAT66_REJECT;
      }
      if (m < 0) {
        m = t.createMapping(egress, pi, buf, srcOff, sport, machine); // hash: the failed findMapping's
        if (m < 0) {
          if (t.mCount >= t.mCap) c.tableFull++;
          else c.portsFull++;
          return NAT66_REJECT;
        }
      }
      t.findSession(m, buf, dstOff, dport); // hash for createSession
      s = t.createSession(m, buf, dstOff, dport, nowMs, nowMs + this.tcpTransitoryTimeoutMs);
      c.created++;
    }

    // State and timeout: every outbound packet refreshes (RFC 4787 REQ-6, RFC 5382 REQ-5).
    let timeout: number;
    if (pi === PI_TCP) {
      const dataLen = info.l4Len - ((buf[l4 + 12] >>> 4) << 2);
      tcpTrack(t, s, true, tcpFlags, readU32(buf, l4 + 4), readU32(buf, l4 + 8), dataLen);
      timeout = tcpTimeout(t.sState[s], t.sFlags[s], this.tcpEstablishedTimeoutMs, this.tcpTransitoryTimeoutMs);
    } else {
      timeout = pi === PI_UDP ? this.udpTimeoutMs : this.icmpTimeoutMs;
    }
    t.setExpire(s, nowMs + timeout);

    // Rewrite source address and port / identifier (RFC 1624 checksum updates).
    const csum = l4 + checksumOffset(proto);
    rewriteAddress(buf, srcOff, this.egresses.addr, 16 * egress, csum, proto);
    const ext = t.mExt[m];
    if (ext !== sport) {
      if (pi === PI_ICMP) {
        setEchoIdentifier(buf, l4, ext);
      } else {
        writeU16(buf, l4, ext);
        updateChecksumWord(buf, csum, sport, ext, pi === PI_UDP);
      }
    }

    const target = this.egresses.find(buf, dstOff);
    if (target < 0) return NAT66_FORWARD;
    // Hairpinning (RFC 4787 REQ-9): the source is now our external endpoint;
    // translate the destination as if the packet had come in from the internet.
    if (pi === PI_ICMP) {
      c.unsolicited++; // echo requests to an egress address are not answered
      return NAT66_DROP;
    }
    const v = this.translateIn(buf, off, info, pi, target, nowMs);
    if (v !== NAT66_DELIVER) return v;
    c.hairpins++;
    return NAT66_HAIRPIN;
  }

  // ---- inbound ----

  inbound(buf: Uint8Array, off: number, len: number, nowMs: number): number {
    const c = this.counters;
    const info = this.info;
    this.target = -1;
    if (parsePacket(buf, off, len, info) !== PARSE_OK || info.hasRouting) {
      c.invalid++;
      return NAT66_DROP;
    }
    const dstOff = off + IPV6_OFF_DST;
    const egress = this.egresses.find(buf, dstOff);
    if (egress < 0) {
      c.unsolicited++;
      return NAT66_DROP;
    }
    if (this.egresses.find(buf, off + IPV6_OFF_SRC) >= 0) {
      c.invalid++; // our own address from outside: spoofed (it would pass as hairpinned traffic)
      return NAT66_DROP;
    }
    if (info.nonFirstFragment) {
      const i = this.frags.find(buf, off + IPV6_OFF_SRC, info.fragId, egress, nowMs);
      if (i < 0) {
        c.fragmentsDropped++;
        return NAT66_DROP;
      }
      this.frags.copyInternal(i, buf, dstOff);
      this.target = this.frags.machineOf(i);
      c.fragments++;
      return NAT66_DELIVER;
    }
    const proto = info.protocol;
    const l4 = info.l4Off;
    if (
      this.verifyInbound && !info.fragment && proto >= 0 && checksumOffset(proto) >= 0 &&
      !verifyChecksum(buf, off, l4, info.l4Len, proto)
    ) {
      c.badChecksum++;
      return NAT66_DROP;
    }
    let pi: number;
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      pi = proto === IPPROTO_TCP ? PI_TCP : PI_UDP;
      if (pi === PI_UDP && readU16(buf, l4 + 6) === 0) {
        c.invalid++;
        return NAT66_DROP;
      }
    } else if (proto === IPPROTO_ICMPV6) {
      const type = buf[l4];
      if (type < ICMPV6_ECHO_REQUEST) {
        const v = this.errors.inbound(buf, off, info, egress, nowMs);
        if (v === NAT66_DELIVER) this.target = this.errors.machine;
        return v;
      }
      if (type !== ICMPV6_ECHO_REPLY || buf[l4 + 1] !== 0) {
        c.unsolicited++; // echo requests and the rest: not ours to answer
        return NAT66_DROP;
      }
      pi = PI_ICMP;
    } else {
      c.unsolicited++;
      return NAT66_DROP;
    }
    return this.translateIn(buf, off, info, pi, egress, nowMs);
  }

  // Filtering and the destination rewrite, for inbound and hairpinned packets.
  private translateIn(buf: Uint8Array, off: number, info: Ipv6Info, pi: number, egress: number, nowMs: number): number {
    const c = this.counters;
    const t = this.table;
    const l4 = info.l4Off;
    const proto = info.protocol;
    const ext = readU16(buf, pi === PI_ICMP ? l4 + 4 : l4 + 2);
    const rport = pi === PI_ICMP ? 0 : readU16(buf, l4);
    const m = t.ownerOf(egress, pi, ext);
    if (m < 0) {
      c.unsolicited++;
      return NAT66_DROP;
    }
    let s = t.findSession(m, buf, off + IPV6_OFF_SRC, rport);
    if (s >= 0 && t.sExpire[s] <= nowMs) s = -1; // expired: as good as gone
    if (s < 0) {
      // RFC 4787 REQ-8: address-and-port-dependent filtering wants this very session;
      // endpoint-independent filtering lets anyone reach a live mapping, without creating state
      // (the internal endpoint's answer creates its session).
      if (this.filtering === FILTER_ADDRESS_AND_PORT || t.mExpire[m] <= nowMs) {
        c.filtered++;
        return NAT66_DROP;
      }
    } else if (pi === PI_TCP) {
      const dataLen = info.l4Len - ((buf[l4 + 12] >>> 4) << 2);
      tcpTrack(t, s, false, buf[l4 + 13], readU32(buf, l4 + 4), readU32(buf, l4 + 8), dataLen);
      t.setExpire(s, nowMs + tcpTimeout(t.sState[s], t.sFlags[s], this.tcpEstablishedTimeoutMs, this.tcpTransitoryTimeoutMs));
    } else {
      t.sFlags[s] |= F_REPLIED | F_ASSURED;
      if (this.udpInboundRefresh) t.setExpire(s, nowMs + (pi === PI_UDP ? this.udpTimeoutMs : this.icmpTimeoutMs));
    }

    const csum = l4 + checksumOffset(proto);
    rewriteAddress(buf, off + IPV6_OFF_DST, t.mAddr, 16 * m, csum, proto);
    const port = t.mPort[m];
    if (port !== ext) {
      if (pi === PI_ICMP) {
        setEchoIdentifier(buf, l4, port);
      } else {
        writeU16(buf, l4 + 2, port);
        updateChecksumWord(buf, csum, ext, port, pi === PI_UDP);
      }
    }
    if (info.fragment) {
      // A first fragment: its followers get the same destination (fragments.ts).
      this.frags.remember(buf, off + IPV6_OFF_SRC, info.fragId, egress, t.mAddr, 16 * m, t.mMachine[m], nowMs + FRAGMENT_TIMEOUT_MS);
    }
    this.target = t.mMachine[m];
    return NAT66_DELIVER;
  }
}

// The connection tracker's tables: mappings, sessions, port ownership and the expiry wheel.
//
// Two levels, as RFC 4787 §4.1 and RFC 6146 §3.1 describe a NAT's state:
//   mapping  (egress, protocol, internal address, internal port) ↔ external port. Endpoint-
//            independent (RFC 4787 REQ-1): one per internal endpoint and egress address, shared
//            by every destination. It lives while it has sessions.
//   session  (mapping, remote address, remote port): one conntrack entry, with its expiry, TCP
//            state and flags. Address-and-port-dependent filtering checks that it exists.
// Everything is a typed-array column indexed by slot, allocated once; no object per flow:
//   mapping  addr 16 + port 2 + ext 2 + proto 1 + egress 2 + machine 4 + refs 4 + next 4 + hash 4
//            + expire 8 = 47 bytes, plus a 4-byte hash bucket
//   session  mapping 4 + remote 16 + rport 2 + expire 8 + state 1 + flags 1 + FIN seqs 8 + next 4
//            + hash 4 + wheel links 8 = 56 bytes, plus a 4-byte hash bucket
// so ≤ 111 bytes per entry when every entry has its own mapping. Lookups are chained hash
// tables (Int32Array heads and links) over a seeded 32-bit hash of the key (murmur3-style
// mixing; the seed is random so remote endpoints cannot aim at one chain). Addresses are
// compared as four 32-bit words read in host (little-endian) order from the packet.
// Per egress address and protocol, an Int32Array of 65,536 says which mapping owns each
// external port (+1; 0: free): the inbound lookup is one array read, and no external port is
// ever shared (RFC 4787 REQ-1, and simpler than sharing per destination).
// Expiry: a timer wheel of `granularity`-wide slots (intrusive doubly linked lists); a refresh
// moves an entry only when its slot changes; `tick` walks the slots that passed.

import { EGRESS_PORTS, PI_COUNT, PI_ICMP, PORT_RANGE_LOW_END } from './constants.ts';

const HOST_LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

// One murmur3-style mixing step of 32-bit word k into hash h.
export function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

// Address word i (0–3) of buf[off…] as the Int32Array view of the same bytes would read it.
function word(buf: Uint8Array, o: number): number {
  return buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16) | (buf[o + 3] << 24);
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export class ConnTable {
  // ---- mappings ----
  readonly mCap: number;
  readonly mAddr: Uint8Array; // internal address, 16 bytes per slot
  readonly mAddr32: Int32Array;
  readonly mPort: Uint16Array; // internal port or echo identifier
  readonly mExt: Uint16Array; // external port or echo identifier
  readonly mPi: Uint8Array; // PI_TCP, PI_UDP, PI_ICMP
  readonly mEgress: Uint16Array;
  readonly mMachine: Uint32Array;
  readonly mRefs: Uint32Array; // sessions using it; 0: free slot
  readonly mExpire: Float64Array; // latest expiry of its sessions (endpoint-independent filtering)
  readonly mNext: Int32Array; // hash chain, or free list
  readonly mHash: Int32Array;
  readonly mBucket: Int32Array;
  mFree = 0;
  mCount = 0;

  // ---- sessions ----
  readonly sCap: number;
  readonly sMap: Int32Array; // mapping slot; -1: free slot
  readonly sRemote: Uint8Array; // remote address, 16 bytes per slot
  readonly sRemote32: Int32Array;
  readonly sRport: Uint16Array; // remote port (0 for echo)
  readonly sExpire: Float64Array; // ms, on the caller's clock
  readonly sState: Uint8Array; // TCP_* state
  readonly sFlags: Uint8Array; // F_* flags
  readonly sFinOut: Uint32Array; // acknowledgment number that acknowledges the internal FIN
  readonly sFinIn: Uint32Array; // … the remote FIN
  readonly sNext: Int32Array;
  readonly sHash: Int32Array;
  readonly sBucket: Int32Array;
  readonly wNext: Int32Array; // expiry wheel links
  readonly wPrev: Int32Array;
  sFree = 0;
  sCount = 0;

  // ---- expiry wheel ----
  readonly wheel: Int32Array;
  readonly granularity: number;
  cursor = -1; // last slot number (time / granularity) tick walked

  // ---- ports and limits ----
  readonly portOwner: Int32Array[] = []; // [egress * PI_COUNT + pi][port] = mapping + 1
  readonly portsUsedLow: Uint32Array; // per egress and protocol: ports 1–1023 owned
  readonly portsUsedHigh: Uint32Array; // … ports 1024–65535 (ICMP: all 65,536 identifiers)
  readonly machineCount: Uint32Array; // sessions per machine

  private readonly seed: number;
  private rng: number;
  private k0 = 0; // key words of the last lookup
  private k1 = 0;
  private k2 = 0;
  private k3 = 0;
  lastHash = 0; // hash of the last failed findSession / findMapping, for create*

  constructor(
    capacity: number,
    mappingCapacity: number,
    maxMachines: number,
    maxEgress: number,
    maxTimeoutMs: number,
    granularityMs: number,
    seed: number,
  ) {
    if (!HOST_LITTLE_ENDIAN) throw new Error('nat66: big-endian hosts are not supported');
    const n = capacity;
    const m = mappingCapacity;
    this.sCap = n;
    this.mCap = m;
    this.mAddr = new Uint8Array(16 * m);
    this.mAddr32 = new Int32Array(this.mAddr.buffer);
    this.mPort = new Uint16Array(m);
    this.mExt = new Uint16Array(m);
    this.mPi = new Uint8Array(m);
    this.mEgress = new Uint16Array(m);
    this.mMachine = new Uint32Array(m);
    this.mRefs = new Uint32Array(m);
    this.mExpire = new Float64Array(m);
    this.mNext = new Int32Array(m);
    this.mHash = new Int32Array(m);
    this.mBucket = new Int32Array(pow2AtLeast(m)).fill(-1);
    for (let i = 0; i < m; i++) this.mNext[i] = i + 1 < m ? i + 1 : -1;

    this.sMap = new Int32Array(n).fill(-1);
    this.sRemote = new Uint8Array(16 * n);
    this.sRemote32 = new Int32Array(this.sRemote.buffer);
    this.sRport = new Uint16Array(n);
    this.sExpire = new Float64Array(n);
    this.sState = new Uint8Array(n);
    this.sFlags = new Uint8Array(n);
    this.sFinOut = new Uint32Array(n);
    this.sFinIn = new Uint32Array(n);
    this.sNext = new Int32Array(n);
    this.sHash = new Int32Array(n);
    this.sBucket = new Int32Array(pow2AtLeast(n)).fill(-1);
    this.wNext = new Int32Array(n);
    this.wPrev = new Int32Array(n);
    for (let i = 0; i < n; i++) this.sNext[i] = i + 1 < n ? i + 1 : -1;

    this.granularity = granularityMs;
    this.wheel = new Int32Array(pow2AtLeast(Math.ceil(maxTimeoutMs / granularityMs) + 2)).fill(-1);
    this.portsUsedLow = new Uint32Array(maxEgress * PI_COUNT);
    this.portsUsedHigh = new Uint32Array(maxEgress * PI_COUNT);
    this.machineCount = new Uint32Array(maxMachines);
    this.seed = seed | 0;
    this.rng = (seed ^ 0x9e3779b9) | 1;
  }

  // Table bytes: every typed array this table allocated.
  byteLength(): number {
    let b = 0;
    for (const a of [
      this.mAddr, this.mPort, this.mExt, this.mPi, this.mEgress, this.mMachine, this.mRefs,
      this.mExpire, this.mNext, this.mHash, this.mBucket, this.sMap, this.sRemote, this.sRport,
      this.sExpire, this.sState, this.sFlags, this.sFinOut, this.sFinIn, this.sNext, this.sHash,
      this.sBucket, this.wNext, this.wPrev, this.wheel, this.portsUsedLow, this.portsUsedHigh,
      this.machineCount, ...this.portOwner,
    ]) b += a.byteLength;
    return b;
  }

  // Gives an egress slot its port-ownership arrays (768 KiB: 3 protocols × 65,536 × 4 bytes).
  addEgress(egress: number): void {
    for (let pi = 0; pi < PI_COUNT; pi++) this.portOwner[egress * PI_COUNT + pi] = new Int32Array(EGRESS_PORTS);
  }

  private loadKey(buf: Uint8Array, off: number): void {
    this.k0 = word(buf, off);
    this.k1 = word(buf, off + 4);
    this.k2 = word(buf, off + 8);
    this.k3 = word(buf, off + 12);
  }

  // ---- mappings ----

  // The mapping of internal endpoint (address at buf[addrOff], port) on (egress, pi), or -1.
  findMapping(egress: number, pi: number, buf: Uint8Array, addrOff: number, port: number): number {
    this.loadKey(buf, addrOff);
    let h = mix(this.seed ^ 0x5bd1e995, (egress << 18) | (pi << 16) | port);
    h = finish(mix(mix(mix(mix(h, this.k0), this.k1), this.k2), this.k3));
    const a = this.mAddr32;
    for (let m = this.mBucket[h & (this.mBucket.length - 1)]; m >= 0; m = this.mNext[m]) {
      if (
        this.mHash[m] === h && this.mPort[m] === port && this.mPi[m] === pi &&
        this.mEgress[m] === egress && a[4 * m] === this.k0 && a[4 * m + 1] === this.k1 &&
        a[4 * m + 2] === this.k2 && a[4 * m + 3] === this.k3
      ) return m;
    }
    this.lastHash = h;
    return -1;
  }

  // Creates the mapping that the failed findMapping just looked for (same arguments), with an
  // external port chosen by allocPort; -1 when no slot or no port is left.
  createMapping(egress: number, pi: number, buf: Uint8Array, addrOff: number, port: number, machine: number): number {
    const m = this.mFree;
    if (m < 0) return -1;
    const ext = this.allocPort(egress, pi, port);
    if (ext < 0) return -1;
    this.mFree = this.mNext[m];
    this.mCount++;
    for (let i = 0; i < 16; i++) this.mAddr[16 * m + i] = buf[addrOff + i];
    this.mPort[m] = port;
    this.mExt[m] = ext;
    this.mPi[m] = pi;
    this.mEgress[m] = egress;
    this.mMachine[m] = machine;
    this.mRefs[m] = 0;
    this.mExpire[m] = 0;
    const h = this.lastHash;
    this.mHash[m] = h;
    const b = h & (this.mBucket.length - 1);
    this.mNext[m] = this.mBucket[b];
    this.mBucket[b] = m;
    this.portOwner[egress * PI_COUNT + pi][ext] = m + 1;
    return m;
  }

  // The mapping that owns external port `ext` of (egress, pi), or -1.
  ownerOf(egress: number, pi: number, ext: number): number {
    return this.portOwner[egress * PI_COUNT + pi][ext] - 1;
  }

  // External port for internal port `want` (RFC 4787 REQ-3, RFC 6056): `want` itself when free
  // (port preservation); else one from the same range — 1–1023 for a port below 1024, 1024–65535
  // otherwise, any identifier for ICMP — starting at a pseudo-random point (RFC 6056 §3.3.1
  // style). -1 when the range is full.
  allocPort(egress: number, pi: number, want: number): number {
    const ix = egress * PI_COUNT + pi;
    const owner = this.portOwner[ix];
    const low = pi !== PI_ICMP && want <= PORT_RANGE_LOW_END;
    let lo: number;
    let size: number;
    if (pi === PI_ICMP) {
      lo = 0;
      size = EGRESS_PORTS;
    } else if (low) {
      lo = 1; // port 0 is never a port
      size = PORT_RANGE_LOW_END;
    } else {
      lo = PORT_RANGE_LOW_END + 1;
      size = EGRESS_PORTS - lo;
    }
    const used = low ? this.portsUsedLow : this.portsUsedHigh;
    if (used[ix] >= size) return -1;
    used[ix]++;
    if (owner[want] === 0 && (want !== 0 || pi === PI_ICMP)) return want;
    // xorshift32: cheap, not a secret (the internal port is kept when free anyway).
    let r = this.rng;
    r ^= r << 13;
    r ^= r >>> 17;
    r ^= r << 5;
    this.rng = r;
    let p = lo + ((r >>> 0) % size);
    while (owner[p] !== 0) p = p + 1 < lo + size ? p + 1 : lo;
    return p;
  }

  private deleteMapping(m: number): void {
    const b = this.mHash[m] & (this.mBucket.length - 1);
    let prev = -1;
    for (let x = this.mBucket[b]; x >= 0; prev = x, x = this.mNext[x]) {
      if (x !== m) continue;
      if (prev < 0) this.mBucket[b] = this.mNext[m];
      else this.mNext[prev] = this.mNext[m];
      break;
    }
    const ix = this.mEgress[m] * PI_COUNT + this.mPi[m];
    const ext = this.mExt[m];
    this.portOwner[ix][ext] = 0;
    if (this.mPi[m] !== PI_ICMP && ext <= PORT_RANGE_LOW_END) this.portsUsedLow[ix]--;
    else this.portsUsedHigh[ix]--;
    this.mRefs[m] = 0;
    this.mNext[m] = this.mFree;
    this.mFree = m;
    this.mCount--;
  }

  // ---- sessions ----

  // The session of mapping m with remote (address at buf[addrOff], rport), or -1. Expired
  // sessions are found too: the caller compares sExpire with its clock.
  findSession(m: number, buf: Uint8Array, addrOff: number, rport: number): number {
    this.loadKey(buf, addrOff);
    let h = mix(this.seed, m);
    h = finish(mix(mix(mix(mix(mix(h, rport), this.k0), this.k1), this.k2), this.k3));
    const a = this.sRemote32;
    for (let s = this.sBucket[h & (this.sBucket.length - 1)]; s >= 0; s = this.sNext[s]) {
      if (
        this.sHash[s] === h && this.sMap[s] === m && this.sRport[s] === rport &&
        a[4 * s] === this.k0 && a[4 * s + 1] === this.k1 && a[4 * s + 2] === this.k2 && a[4 * s + 3] === this.k3
      ) return s;
    }
    this.lastHash = h;
    return -1;
  }

  // Creates the session that the failed findSession just looked for (same arguments). The
  // caller checked that a slot is free (sCount < sCap) and the machine's limit.
  createSession(m: number, buf: Uint8Array, addrOff: number, rport: number, nowMs: number, expire: number): number {
    const s = this.sFree;
    this.sFree = this.sNext[s];
    this.sCount++;
    this.sMap[s] = m;
    for (let i = 0; i < 16; i++) this.sRemote[16 * s + i] = buf[addrOff + i];
    this.sRport[s] = rport;
    this.sState[s] = 0;
    this.sFlags[s] = 0;
    this.sFinOut[s] = 0;
    this.sFinIn[s] = 0;
    const h = this.lastHash;
    this.sHash[s] = h;
    const b = h & (this.sBucket.length - 1);
    this.sNext[s] = this.sBucket[b];
    this.sBucket[b] = s;
    this.mRefs[m]++;
    this.machineCount[this.mMachine[m]]++;
    if (this.cursor < 0) this.cursor = Math.floor(nowMs / this.granularity);
    this.sExpire[s] = expire;
    this.wheelLink(s, expire);
    if (expire > this.mExpire[m]) this.mExpire[m] = expire;
    return s;
  }

  // Deletes session s; its mapping goes with its last session.
  deleteSession(s: number): void {
    const m = this.sMap[s];
    const b = this.sHash[s] & (this.sBucket.length - 1);
    let prev = -1;
    for (let x = this.sBucket[b]; x >= 0; prev = x, x = this.sNext[x]) {
      if (x !== s) continue;
      if (prev < 0) this.sBucket[b] = this.sNext[s];
      else this.sNext[prev] = this.sNext[s];
      break;
    }
    this.wheelUnlink(s);
    this.sMap[s] = -1;
    this.sNext[s] = this.sFree;
    this.sFree = s;
    this.sCount--;
    this.machineCount[this.mMachine[m]]--;
    if (--this.mRefs[m] === 0) this.deleteMapping(m);
  }

  // Sets the expiry of session s, moving it on the wheel only when its slot changes.
  setExpire(s: number, expire: number): void {
    const g = this.granularity;
    if (Math.floor(expire / g) !== Math.floor(this.sExpire[s] / g)) {
      this.wheelUnlink(s);
      this.sExpire[s] = expire;
      this.wheelLink(s, expire);
    } else {
      this.sExpire[s] = expire;
    }
    const m = this.sMap[s];
    if (expire > this.mExpire[m]) this.mExpire[m] = expire;
  }

  private wheelLink(s: number, expire: number): void {
    const slot = Math.floor(expire / this.granularity) & (this.wheel.length - 1);
    const head = this.wheel[slot];
    this.wNext[s] = head;
    this.wPrev[s] = -1;
    if (head >= 0) this.wPrev[head] = s;
    this.wheel[slot] = s;
  }

  private wheelUnlink(s: number): void {
    const next = this.wNext[s];
    const prev = this.wPrev[s];
    if (prev >= 0) this.wNext[prev] = next;
    else this.wheel[Math.floor(this.sExpire[s] / this.granularity) & (this.wheel.length - 1)] = next;
    if (next >= 0) this.wPrev[next] = prev;
  }

  // Deletes the sessions whose expiry is ≤ nowMs, walking the wheel slots passed since the last
  // tick (all of them at most once). At most `budget` deletions: the rest wait for the next
  // tick (lookups already treat them as gone), so a mass expiry cannot stall the caller.
  // Returns how many expired.
  tick(nowMs: number, budget: number): number {
    const target = Math.floor(nowMs / this.granularity);
    if (this.cursor < 0 || target < this.cursor) return 0;
    const mask = this.wheel.length - 1;
    const steps = Math.min(target - this.cursor, mask);
    let expired = 0;
    for (let k = 0; k <= steps; k++) {
      let s = this.wheel[(this.cursor + k) & mask];
      while (s >= 0) {
        if (expired >= budget) {
          this.cursor += k; // resume in this slot
          return expired;
        }
        const next = this.wNext[s];
        if (this.sExpire[s] <= nowMs) {
          this.deleteSession(s);
          expired++;
        }
        s = next;
      }
    }
    this.cursor = target;
    return expired;
  }
}

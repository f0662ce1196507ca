// Flows to an old address of a migrated machine (seed 002), for the router: the request was
// rewritten to the new address, and the replies, delivered on the client's host (which rewrote
// the request and so holds the flow), get the old address back as their source. Keyed
// (proto, client, new address, ports as the reply has them) → old address, in order of last
// use (a use moves a flow to the end), so expiry and eviction take from the front.

import { IPPROTO_ICMPV6, IPV6_OFF_DST, IPV6_OFF_SRC } from '../ipv6/index.ts';
import type { Ipv6Info } from '../ipv6/index.ts';
import type { Topology } from '../topology/index.ts';
import { flowPorts, hex16 } from './packet-util.ts';

export const MIGRATION_FLOW_TTL_MS = 300_000;
/** Flows to old addresses remembered at most; the least recently used goes first. */
export const MIGRATION_FLOWS_MAX = 65_536;

export class MigrationFlows {
  private readonly flows = new Map<string, { old: Uint8Array; expires: number }>();
  private readonly max: number;
  private readonly onEvict: () => void;
  constructor(max: number, onEvict: () => void) {
    this.max = max;
    this.onEvict = onEvict;
  }

  get size(): number {
    return this.flows.size;
  }

  /** The request of a flow to `old`, about to be rewritten to `now` (the machine's address). */
  remember(buf: Uint8Array, off: number, info: Ipv6Info, old: Uint8Array, now: Uint8Array, time: number): void {
    // key as the reply will see it: client = reply's dst, server (new address) = reply's src
    const ports = flowPorts(buf, info);
    const swapped = info.protocol === IPPROTO_ICMPV6 ? ports : ((ports << 16) | (ports >>> 16)) >>> 0;
    const key = `${info.protocol}|${hex16(buf, off + IPV6_OFF_SRC)}|${hex16(now, 0)}|${swapped}`;
    const flows = this.flows;
    if (!flows.delete(key) && flows.size >= this.max) {
      for (const oldest of flows.keys()) {
        flows.delete(oldest);
        this.onEvict();
        break;
      }
    }
    flows.set(key, { old, expires: time + MIGRATION_FLOW_TTL_MS }); // at the end: last used
  }

  /** The old address a reply's source goes back to, if it belongs to such a flow. */
  restore(buf: Uint8Array, off: number, info: Ipv6Info, t: Topology, time: number): Uint8Array | undefined {
    if (this.flows.size === 0) return undefined;
    const src = t.machineAt(buf, off + IPV6_OFF_SRC);
    if (src === undefined || src.previous.length === 0) return undefined;
    const key = `${info.protocol}|${hex16(buf, off + IPV6_OFF_DST)}|${hex16(buf, off + IPV6_OFF_SRC)}|${flowPorts(buf, info)}`;
    const f = this.flows.get(key);
    if (f === undefined) return undefined;
    f.expires = time + MIGRATION_FLOW_TTL_MS;
    this.flows.delete(key); // to the end: the most recently used
    this.flows.set(key, f);
    return f.old;
  }

  /** Flows to addresses the topology no longer keeps stop being rewritten. */
  setTopology(t: Topology): void {
    for (const [k, v] of this.flows) if (t.movedFrom(v.old, 0) === undefined) this.flows.delete(k);
  }

  /** Drops expired flows: the oldest are first, so it stops early. */
  expire(time: number): void {
    for (const [k, v] of this.flows) {
      if (v.expires >= time) break;
      this.flows.delete(k);
    }
  }
}

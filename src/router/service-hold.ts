// Autostart's waiting room for the service table (services.ts): a flow to a service with no
// started machine and autostart on has its first packets copied here (bounded per service and in
// all) while the host starts a machine through the topology store; once the topology has one
// they are replayed as if they came in then, and at the timeout they are refused (ICMPv6 address
// unreachable from the service address). Without autostart, or past the bounds, refused at once.

import { ICMPV6_UNREACH_ADDR } from '../ipv6/index.ts';
import type { Machine, Peer, Service } from '../topology/index.ts';
import type { ServiceRouter } from './services.ts';

/** Packets held per service and in all, and how long they wait for a started machine. */
export const HOLD_PER_SERVICE = 64;
export const HOLD_MAX = 1024;
export const HOLD_TIMEOUT_MS = 10_000;
/** Headroom and tailroom of a held copy (the mesh device seals in place). */
const HOLD_ROOM = 16;
const HOLD_TAIL = 64;

interface Held {
  readonly sender: Machine | Peer;
  readonly buf: Uint8Array;
  readonly len: number;
}

interface Hold {
  readonly service: Service;
  readonly deadline: number;
  readonly packets: Held[];
}

export class Holds {
  private readonly r: ServiceRouter;
  private readonly timeoutMs: number;
  /** Whether the service has a started machine to send to now. */
  private readonly ready: (svc: Service) => boolean;
  private readonly holds = new Map<string, Hold>(); // service address text → held packets
  count = 0;
  onAutostart?: (service: Service) => void;

  constructor(r: ServiceRouter, timeoutMs: number, ready: (svc: Service) => boolean) {
    this.r = r;
    this.timeoutMs = timeoutMs;
    this.ready = ready;
  }

  /** A packet of a flow that found no started machine of `svc`: held, or refused. */
  hold(svc: Service, sender: Machine | Peer, buf: Uint8Array, off: number, len: number): void {
    const r = this.r;
    let h = this.holds.get(svc.addressText);
    if (!svc.autostart || this.count >= HOLD_MAX || (h !== undefined && h.packets.length >= HOLD_PER_SERVICE)) {
      r.count('service_refused_none');
      return r.refuse(buf, off, len, 1, ICMPV6_UNREACH_ADDR, svc.address);
    }
    const first = h === undefined;
    if (h === undefined) {
      h = { service: svc, deadline: r.now() + this.timeoutMs, packets: [] };
      this.holds.set(svc.addressText, h);
    }
    const copy = new Uint8Array(HOLD_ROOM + len + HOLD_TAIL);
    copy.set(buf.subarray(off, off + len), HOLD_ROOM);
    h.packets.push({ sender, buf: copy, len });
    this.count++;
    r.count('service_held');
    if (first) this.onAutostart?.(svc); // last: a store that answers at once releases the packet too
  }

  /** Replays the packets of services that have a started machine now; refuses those past their time. */
  release(): void {
    if (this.holds.size === 0) return;
    const r = this.r;
    const now = r.now();
    for (const [k, h] of this.holds) {
      const svc = r.topology.serviceAt(h.service.address, 0);
      const ready = svc !== undefined && this.ready(svc);
      if (!ready && now < h.deadline && svc !== undefined) continue;
      this.holds.delete(k);
      this.count -= h.packets.length;
      for (const p of h.packets) {
        if (ready) r.replay(p.sender, p.buf, HOLD_ROOM, p.len);
        else {
          r.count('service_refused_none');
          r.refuse(p.buf, HOLD_ROOM, p.len, 1, ICMPV6_UNREACH_ADDR, h.service.address);
        }
      }
    }
  }
}

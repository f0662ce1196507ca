// Autostop's clock for the service table (services.ts): the last packet delivered to each machine
// of this host whose app has a service with `autostop`, and which of them have been idle past it.
// Packets count from any sender (clients on other hosts reach a machine as ordinary 6PN traffic,
// so the machine's own host is the one that sees them all).

import type { Machine, Topology } from '../topology/index.ts';

export interface IdleMachine {
  readonly machine: Machine;
  /** The app's minRunning (the largest among its autostop services). */
  readonly minRunning: number;
}

export class Activity {
  /** Apps with an autostop service → the shortest idle time and the largest minRunning. */
  private apps = new Map<string, { idleMs: number; minRunning: number }>();
  /** Machine id → time of the last packet delivered to it. */
  private readonly last = new Map<string, number>();

  get watching(): boolean {
    return this.apps.size !== 0;
  }

  /** A packet delivered to `m` at `now`. */
  touch(m: Machine, now: number): void {
    if (this.apps.has(m.app)) this.last.set(m.id, now);
  }

  /** `appsChanged` false: an edit that left every app alone (the services' times are kept). */
  setTopology(t: Topology, appsChanged = true): void {
    if (appsChanged) this.watchApps(t);
    for (const id of [...this.last.keys()]) if (!t.machine(id)?.started) this.last.delete(id); // counts anew when started
  }

  private watchApps(t: Topology): void {
    const apps = new Map<string, { idleMs: number; minRunning: number }>();
    for (const s of t.services) {
      if (s.autostopSeconds === 0) continue;
      const a = apps.get(s.app);
      apps.set(s.app, { idleMs: Math.min(a?.idleMs ?? Infinity, s.autostopSeconds * 1000), minRunning: Math.max(a?.minRunning ?? 0, s.minRunning) });
    }
    this.apps = apps;
  }

  /**
   * Started machines of host `hostId` of such apps that got no packet for the idle time (a
   * machine never seen counts from the first call) and have no flow open (`flows`).
   */
  idle(t: Topology, hostId: number, now: number, flows: (id: string) => number): IdleMachine[] {
    const out: IdleMachine[] = [];
    for (const m of t.machinesOnHost(hostId)) {
      const a = this.apps.get(m.app);
      if (a === undefined || !m.started) continue;
      const last = this.last.get(m.id);
      if (last === undefined) this.last.set(m.id, now);
      else if (now - last >= a.idleMs && flows(m.id) === 0) out.push({ machine: m, minRunning: a.minRunning });
    }
    return out;
  }
}

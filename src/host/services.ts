// The host's side of service addresses and static egress (issue 13), wiring only:
//   - static egress per app (seed 000): the app's `egress` address for this host's region is
//     set on the SNAT66 egress (egress.ts), so its machines' flows leave from it;
//   - autostart: the router (src/router/services.ts) holds a flow's first packets and asks here;
//     a stopped machine of the app is started through the topology store (autoscale.ts), and the
//     router releases the packets when the new topology arrives;
//   - autostop: now and then the router lists the machines of this host idle past their
//     service's time; they are stopped through the store, keeping minRunning.
// Store edits run one at a time; a failure is logged and tried again on the next occasion.
import type { Logger } from '../log.ts';
import type { Router } from '../router/router.ts';
import { autostartIn, autostopIn } from '../topology/index.ts';
import type { App, Host, Service, Topology, TopologyDiff, TopologyStore } from '../topology/index.ts';
import type { Egress } from './egress.ts';

export interface HostServicesOptions {
  readonly host: Host;
  readonly log: Logger;
  readonly router: Router;
  readonly store: TopologyStore;
  readonly egress: () => Egress | null;
}

export class HostServices {
  private readonly o: HostServicesOptions;
  private readonly appEgress = new Map<string, string>(); // app → its address set on the egress
  private readonly starting = new Set<string>(); // apps with an autostart edit under way
  private stopping = false;
  private warned = false;
  /** Machines started and stopped by this host (status). */
  readonly counts = { autostarted: 0, autostopped: 0, failed: 0 };

  constructor(o: HostServicesOptions) {
    this.o = o;
    o.router.services.onAutostart = (svc) => this.autostart(svc);
  }

  /** Each app's static egress address in this host's region, on the egress; gone ones cleared. */
  async syncEgress(t: Topology): Promise<void> {
    const apps = new Map<string, App | undefined>(t.apps.map((a) => [a.name, a]));
    for (const name of this.appEgress.keys()) if (!apps.has(name)) apps.set(name, undefined);
    await this.egressOf(apps);
  }

  /** Follows one edit: the static egress of the apps its diff names only (as syncEgress would set them). */
  async applyEgress(diff: TopologyDiff): Promise<void> {
    const d = diff.apps;
    const apps = new Map<string, App | undefined>(d.removed.map((a) => [a.name, undefined]));
    for (const a of [...d.updated.map((c) => c.after), ...d.added]) apps.set(a.name, a);
    if (apps.size > 0) await this.egressOf(apps);
  }

  /** The apps named (undefined: gone): their static egress for this region set, or cleared. */
  private async egressOf(apps: ReadonlyMap<string, App | undefined>): Promise<void> {
    const region = this.o.host.region;
    const want = new Map<string, string>();
    for (const [name, a] of apps) {
      const e = a?.egress.find((x) => x.region === region);
      if (e !== undefined) want.set(name, e.text);
    }
    const egress = this.o.egress();
    if (egress === null) {
      if (want.size > 0 && !this.warned) {
        this.o.log.error(`static egress of ${[...want.keys()].join(', ')} in ${region}: this host has no egress (no "egress" in the topology or host config)`);
        this.warned = true;
      }
      return;
    }
    for (const app of apps.keys()) {
      const text = this.appEgress.get(app);
      if (text === undefined || want.get(app) === text) continue;
      egress.clearAppAddress(app);
      this.appEgress.delete(app);
    }
    for (const [app, text] of want) {
      if (this.appEgress.get(app) === text) continue;
      await egress.setAppAddress(app, text);
      this.appEgress.set(app, text);
      this.o.log.info(`app ${app}: static egress ${text}`, { app });
    }
  }

  /** For `sixpn status`: the router's service flows and held packets, what this host started and stopped, static egress. */
  status(): Record<string, unknown> {
    const t = this.o.router.services;
    return {
      flows: t.size, held: t.heldPackets, flowsPerMachine: Object.fromEntries(t.flowsPerMachine()),
      ...this.counts, staticEgress: this.egressOfApps(),
    };
  }

  /** The app's static egress addresses set now (status, tests). */
  egressOfApps(): Record<string, string> {
    return Object.fromEntries(this.appEgress);
  }

  private autostart(svc: Service): void {
    if (this.starting.has(svc.app)) return;
    this.starting.add(svc.app);
    const { host, log, store } = this.o;
    store.update(`autostart ${svc.app}`, (doc) => autostartIn(doc, svc.app, host.id, host.region))
      .then((r) => {
        if (r.result !== undefined) {
          this.counts.autostarted++;
          log.info(`autostart: machine ${r.result} of ${svc.app} started for a flow to ${svc.addressText}`, { app: svc.app, machine: r.result });
        }
      })
      .catch((err: Error) => {
        this.counts.failed++;
        log.error(`autostart of ${svc.app}: ${err.message}`, { app: svc.app });
      })
      .finally(() => this.starting.delete(svc.app));
  }

  /** Stops the machines of this host idle past their service's autostop time (call now and then). */
  autostop(): void {
    if (this.stopping) return;
    const idle = this.o.router.services.idleMachines();
    if (idle.length === 0) return;
    const byApp = new Map<string, { ids: string[]; minRunning: number }>();
    for (const { machine, minRunning } of idle) {
      const e = byApp.get(machine.app) ?? { ids: [], minRunning };
      e.ids.push(machine.id);
      byApp.set(machine.app, e);
    }
    this.stopping = true;
    const { log, store } = this.o;
    store.update('autostop', (doc) => [...byApp].flatMap(([app, e]) => autostopIn(doc, app, e.ids, e.minRunning)))
      .then((r) => {
        this.counts.autostopped += r.result.length;
        if (r.result.length > 0) log.info(`autostop: ${r.result.join(', ')} stopped (no flows)`);
      })
      .catch((err: Error) => {
        this.counts.failed++;
        log.error(`autostop: ${err.message}`);
      })
      .finally(() => (this.stopping = false));
  }
}

// Autostart and autostop of service machines (issue 13) as edits of the topology document, for
// a store's validated update (stores.ts): the host whose router saw the flow (autostart) or the
// idle machines (autostop) asks, the store commits. Each edit decides again on the document it
// is given, so two hosts asking at once never start two machines for one hold nor stop below
// minRunning.

import { setMachineStateIn } from './alloc.ts';
import { topologyFromDocument } from './stores.ts';
import type { TopologyDocument } from './stores.ts';

/**
 * Starts one stopped machine of `app`, unless one is started already: one on host `hostId` first,
 * then one in `region`, then any. Returns the id started, or undefined (nothing to do).
 */
export function autostartIn(doc: TopologyDocument, app: string, hostId: number, region: string | undefined): string | undefined {
  const t = topologyFromDocument(doc, '(autostart)');
  const ms = t.machinesOfApp(app);
  if (ms.some((m) => m.started)) return undefined;
  const rank = (m: { host: number; region: string }) => (m.host === hostId ? 0 : m.region === region ? 1 : 2);
  const pick = [...ms].sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : 1))[0];
  if (pick === undefined) return undefined;
  setMachineStateIn(doc, pick.id, 'started');
  return pick.id;
}

/**
 * Stops those of `ids` (machines of `app`) that are still started, keeping `minRunning` machines
 * of the app started. Returns the ids stopped.
 */
export function autostopIn(doc: TopologyDocument, app: string, ids: readonly string[], minRunning: number): string[] {
  const t = topologyFromDocument(doc, '(autostop)');
  let started = t.machinesOfApp(app).filter((m) => m.started).length;
  const out: string[] = [];
  for (const id of ids) {
    const m = t.machine(id);
    if (m === undefined || m.app !== app || !m.started || started <= minRunning) continue;
    setMachineStateIn(doc, id, 'stopped');
    started--;
    out.push(id);
  }
  return out;
}

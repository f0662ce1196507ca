// An edit of machines applied to a running topology at the cost of the edit (issue 12): a host
// watching a store of 50,000 machines does not validate and index them all again because one was
// started. The changed entries are validated on their own as the whole-document validation would
// (validate-machines.ts, against the topology's orgs, apps and hosts), then against the other
// machines and the peers through the topology's indexes:
//   - a machine id is new or one of the edited ones;
//   - an instance is unique on its host: no other machine's current /112 there, no peer /120;
//   - its current /112 is no other machine's previous one;
//   - each previous /112 is no other machine's current or previous one.
// Only then is the topology changed, in place and in one task (Topology.replaceMachines), and the
// diff of the edit returned. Anything else (orgs, apps, hosts, peers) goes through the whole
// document, as before.

import { getInstance } from '../ipv6/index.ts';
import { diffMachines, type TopologyDiff } from './diff.ts';
import { formatId32 } from './model.ts';
import type { Machine } from './model.ts';
import type { Topology } from './topology.ts';
import type { Problem } from './validate.ts';
import { validateMachineEntries } from './validate-machines.ts';

/** A machine entry as the store now holds it: `entry` undefined when it was removed. */
export interface MachineChange {
  readonly id: string;
  readonly entry: unknown;
}

/**
 * Applies the changes to `t` in place and returns their diff, or the problems (and `t` is left
 * as it was). `file` names the source in problems (a store location and revision).
 */
export function patchMachines(t: Topology, changes: readonly MachineChange[], file: string): { diff: TopologyDiff } | { problems: Problem[] } {
  const edited = new Set(changes.map((c) => c.id));
  const entries = changes.filter((c) => c.entry !== undefined).map((c) => c.entry);
  const checked = validateMachineEntries(entries, t, file);
  if (checked.machines === undefined) return { problems: checked.problems };
  const problems: Problem[] = [];
  const add = (m: Machine, message: string) => problems.push({ file, entry: `machines "${m.id}"`, message });
  for (const m of checked.machines) {
    if (!edited.has(m.id)) {
      add(m, `the entry of machine "${[...edited][0]}" holds machine id "${m.id}"`);
      continue;
    }
    const other = t.machineOn(m.host, m.instance);
    if (other !== undefined && !edited.has(other.id)) {
      add(m, `instance: ${formatId32(m.instance)} is already used on host ${formatId32(m.host)} by machine "${other.id}"`);
    }
    const peer = t.peersOnGateway(m.host).find((p) => getInstance(p.prefix, 0) === m.instance);
    if (peer !== undefined) add(m, `instance: ${formatId32(m.instance)} is already used on host ${formatId32(m.host)} by peer "${peer.name}" (${peer.prefixText})`);
    const was = t.movedOn(m.host, m.instance).find((x) => x.machine.network === m.network && !edited.has(x.machine.id));
    if (was !== undefined) add(m, `${m.addressText} is a previous address of machine "${was.machine.id}"`);
    m.previous.forEach((p, j) => {
      const inst = getInstance(p.address, 0);
      const cur = t.machineOn(p.host, inst);
      if (cur !== undefined && cur.network === m.network && !edited.has(cur.id)) {
        add(m, `previous[${j}]: ${p.text} is the current address of machine "${cur.id}"`);
      }
      const prev = t.movedOn(p.host, inst).find((x) => x.machine.network === m.network && !edited.has(x.machine.id));
      if (prev !== undefined) add(m, `previous[${j}]: ${p.text} is a previous address of machine "${prev.machine.id}"`);
    });
  }
  if (problems.length > 0) return { problems };
  const before = [...edited].map((id) => t.machine(id)).filter((m): m is Machine => m !== undefined);
  t.replaceMachines(before, checked.machines);
  t.source = file;
  return { diff: diffMachines(before, checked.machines) };
}

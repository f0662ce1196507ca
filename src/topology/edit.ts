// Edits of a topology document (the parsed JSON) as an operator or `sixpn demo` makes them:
// stop or start a machine, migrate it to another host. Each returns a new document; write it
// with writeFileAtomic and every host's watcher applies it.
//
// A migration changes the machine's address (the host field, seed 002), so it records the old
// address, with the host it was on, in the machine's `previous` list: routers keep rewriting the
// old address to the new one for as long as the entry stays in the file.

import { formatAddress, getInstance, parseAddress } from '../ipv6/index.ts';
import { topologyFromDocument } from './stores.ts';
import type { MachineState } from './model.ts';
import { deriveMachineAddress, formatId32, parseId32 } from './model.ts';

type Doc = Record<string, unknown>;
type Entry = Record<string, unknown>;

function machineEntry(doc: Doc, id: string): Entry {
  const list = Array.isArray(doc.machines) ? (doc.machines as Entry[]) : [];
  const m = list.find((e) => typeof e === 'object' && e !== null && e.id === id);
  if (!m) throw new Error(`no machine "${id}" in the topology document`);
  return m;
}

/** A copy of the document with the machine's state set. */
export function setMachineState(doc: Doc, id: string, state: MachineState): Doc {
  const next = structuredClone(doc);
  machineEntry(next, id).state = state;
  return next;
}

/** A copy of the document with the machine removed. */
export function removeMachine(doc: Doc, id: string): Doc {
  const next = structuredClone(doc);
  const m = machineEntry(next, id);
  next.machines = (next.machines as Entry[]).filter((e) => e !== m);
  return next;
}

/**
 * A copy of the document with the machine moved to `toHost` (a host name), with `instance` as
 * its new instance id (default: its old one, if free on the new host, else the lowest free one),
 * and its old address appended to `previous`. Throws if the document or the move is invalid.
 */
export function moveMachine(doc: Doc, id: string, toHost: string, instance?: number): Doc {
  const topology = topologyFromDocument(doc, '(document)');
  const m = topology.machine(id);
  const host = topology.hostByName(toHost) ?? topology.host(parseId32(toHost) ?? 0);
  if (!m) throw new Error(`no machine "${id}" in the topology document`);
  if (!host) throw new Error(`no host "${toHost}" in the topology document`);
  if (host.id === m.host) throw new Error(`machine "${id}" is already on host "${host.name}"`);
  const used = new Set(topology.machinesOnHost(host.id).map((x) => x.instance));
  for (const p of topology.peersOnGateway(host.id)) used.add(getInstance(p.prefix, 0));
  for (const x of topology.machines) {
    if (x !== m) for (const p of x.previous) if (p.host === host.id) used.add(getInstance(p.address, 0));
  }
  let inst = instance ?? m.instance;
  if (instance === undefined) for (let i = 1; used.has(inst); i++) inst = i;
  const next = structuredClone(doc);
  const e = machineEntry(next, id);
  // Moving back to an old /112 takes it out of `previous`.
  const now = formatAddress(deriveMachineAddress(m.network, host.id, inst), 0);
  const kept = (Array.isArray(e.previous) ? e.previous : []).filter((p: unknown) => {
    const text = typeof p === 'string' ? p : (p as Entry).address;
    const a = new Uint8Array(16);
    return !(typeof text === 'string' && parseAddress(text, a, 0) && formatAddress(a, 0) === now);
  });
  // The old host by id: the entry stays valid if that host is removed later.
  const old = topology.host(m.host)!;
  e.previous = [...kept, { address: m.addressText, host: formatId32(old.id), comment: `was on ${old.name}` }];
  e.host = host.name;
  if (e.region !== undefined) e.region = host.region; // a machine's region is its host's
  e.instance = `0x${inst.toString(16).padStart(8, '0')}`;
  topologyFromDocument(next, `(machine ${id} moved to host ${host.name}, instance ${formatId32(inst)})`);
  return next;
}

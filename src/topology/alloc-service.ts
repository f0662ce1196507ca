// Operator edits of service addresses (issue 13), in a store's validated update like alloc.ts:
// `allocateService` gives an app the lowest free `<org /48>:0:1::N` of the org it names (its own
// by default; another org's to expose the app there), with its ports and autostart settings;
// `releaseService` takes one away.

import { formatAddress, parseAddress } from '../ipv6/index.ts';
import { EditError } from './alloc.ts';
import { SERVICE_HOST, SERVICE_INDEX_MAX, deriveServiceAddress } from './model.ts';
import { topologyFromDocument } from './stores.ts';
import type { Entry, TopologyDocument } from './stores.ts';

export interface ServiceSpec {
  readonly app: string;
  /** The org whose /48 holds the address; default the app's. */
  readonly org?: string;
  /** `PORT/tcp` or `PORT/udp`. */
  readonly ports: readonly string[];
  readonly autostart?: boolean;
  readonly autostop?: number;
  readonly minRunning?: number;
}

/** Adds a service address to the app; returns its entry (the address is validated with it). */
export function allocateService(doc: TopologyDocument, spec: ServiceSpec): Entry {
  const obj = `service of app "${spec.app}"`;
  const t = topologyFromDocument(doc, '(service allocate)');
  const app = t.app(spec.app);
  if (app === undefined) throw new EditError(obj, `app "${spec.app}" does not exist`);
  const org = t.org(spec.org ?? app.org);
  if (org === undefined) throw new EditError(obj, `org "${spec.org}" does not exist`);
  if (spec.ports.length === 0) throw new EditError(obj, 'no ports (give --port PORT/tcp or PORT/udp)');
  const used = new Set(t.services.filter((s) => s.network === org.network).map((s) => s.addressText));
  let address: string | undefined;
  for (let n = 1; n <= SERVICE_INDEX_MAX && address === undefined; n++) {
    const a = formatAddress(deriveServiceAddress(org.network, n), 0);
    if (!used.has(a)) address = a;
  }
  if (address === undefined) throw new EditError(obj, `no free service address left in org "${org.name}" (fdaa:…:0:${SERVICE_HOST}::/112)`);
  const e: Entry = {
    address, ports: [...spec.ports],
    ...(spec.autostart ? { autostart: true } : {}),
    ...(spec.autostop ? { autostop: spec.autostop } : {}),
    ...(spec.minRunning ? { minRunning: spec.minRunning } : {}),
  };
  const entry = doc.apps.find((a) => a.name === spec.app)!;
  entry.services = [...(Array.isArray(entry.services) ? entry.services : []), e];
  return e;
}

/** Removes the service address `address` from whichever app has it; returns that app. */
export function releaseService(doc: TopologyDocument, address: string): string {
  const t = topologyFromDocument(doc, '(service release)');
  const canonical = (x: unknown): string => {
    const b = new Uint8Array(16);
    return typeof x === 'string' && parseAddress(x, b, 0) ? formatAddress(b, 0) : String(x);
  };
  const want = canonical(address);
  const s = t.services.find((x) => x.addressText === want);
  if (s === undefined) throw new EditError(`service ${address}`, 'no app has this service address');
  const entry = doc.apps.find((a) => a.name === s.app)!;
  const left = (entry.services as Entry[]).filter((e) => canonical(e.address) !== want);
  if (left.length > 0) entry.services = left;
  else delete entry.services;
  return s.app;
}

// A machine's network namespace, as the host process prepares it (DESIGN.md "One host"): the
// namespace (named by the machine id, created if missing), the TUN the router keeps the fd of,
// moved in with the machine's address, MTU and routes (fdaa::/16 and default), and the
// machine's /etc/hosts alias and resolver written as /etc/netns/<ns>/hosts and resolv.conf
// (`ip netns exec` bind-mounts them over /etc). Everything through iproute2; setup only.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MACHINE_MTU } from '../router/router.ts';
import type { Machine } from '../topology/index.ts';
import { ip } from '../tun/index.ts';

/** Where `ip netns exec` finds a namespace's own /etc files. */
export const NETNS_ETC = '/etc/netns';
/** The name of a machine's own 6PN address in its /etc/hosts, as localhost is 127.0.0.1's: bind to it. */
export const LOCAL_6PN_NAME = 'local-6pn';

/**
 * The name of the machine's TUN on this host: unique per host and machine, so during a
 * migration the old host's interface may still be in the namespace when the new host moves its
 * own in.
 */
export function machineIfname(m: Machine): string {
  return `6pn${(m.host & 0xffff).toString(16).padStart(4, '0')}${(m.instance >>> 0).toString(16).padStart(8, '0')}`;
}

/** Creates the namespace `ns` unless it exists. */
export async function ensureNamespace(ns: string): Promise<void> {
  const namespaces = await ip(['netns', 'list']);
  if (!new RegExp(`^${ns}\\b`, 'm').test(namespaces)) await ip(['netns', 'add', ns]);
}

/**
 * The metric of a host's routes in a machine's namespace: one per host. A restarted host
 * replaces its own routes; where two hosts' TUNs share the namespace (a migration between host
 * processes on one kernel), the routes of each live and die with its own interface, so the
 * first host's teardown cannot take the routes the second one set (replace would have moved
 * them to the second's interface and they would go with either that was deleted last).
 */
export function machineRouteMetric(m: Machine): number {
  return 1024 + (m.host & 0xffff);
}

/** Moves the TUN `ifname` into `ns` and gives it the machine's address, MTU and routes. */
export async function configureMachineLink(ns: string, ifname: string, m: Machine): Promise<void> {
  const metric = String(machineRouteMetric(m));
  await ip(['link', 'set', 'dev', ifname, 'netns', ns]);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  await ip(['-n', ns, 'addr', 'add', `${m.addressText}/112`, 'dev', ifname, 'nodad']);
  await ip(['-n', ns, 'link', 'set', 'dev', ifname, 'mtu', String(MACHINE_MTU), 'up']);
  await ip(['-n', ns, '-6', 'route', 'replace', 'fdaa::/16', 'dev', ifname, 'metric', metric]);
  await ip(['-n', ns, '-6', 'route', 'replace', 'default', 'dev', ifname, 'metric', metric]);
}

/** The /etc/hosts of a machine: localhost, and its 6PN address as LOCAL_6PN_NAME and its own names. */
export function machineHosts(m: Machine): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${m.addressText}\t${LOCAL_6PN_NAME} ${m.id}.vm.${m.app}.internal ${m.id}\n`;
}

/** /etc/netns/<ns>/hosts (machineHosts) and resolv.conf (nameserver fdaa::3). */
export function writeNetnsFiles(ns: string, m: Machine): void {
  const etc = join(NETNS_ETC, ns);
  mkdirSync(etc, { recursive: true });
  writeFileSync(join(etc, 'hosts'), machineHosts(m));
  writeFileSync(join(etc, 'resolv.conf'), 'nameserver fdaa::3\noptions edns0\n');
}

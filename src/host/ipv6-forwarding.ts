// The host kernel's side of the egress path (DESIGN.md "One host"): what must be true in the
// host's network namespace so that the kernel forwards between the egress TUN and the uplink.
//
//   1. The egress address is one the kernel does NOT own (it never answers for it: no RST to an
//      unsolicited SYN, no echo reply); a /128 route sends it to the egress TUN. Nothing else is
//      routed there: hairpinned packets never leave the process.
//   2. net.ipv6.conf.all.forwarding = 1: the kernel forwards TUN → uplink and uplink → TUN.
//   3. Forwarding turns off router-advertisement processing where accept_ra is 1, which would
//      drop an uplink's RA-learnt default route: such an uplink gets accept_ra = 2 first.
//   4. How the upstream router finds the egress address: on a real host the provider routes the
//      /128 (or a prefix) to the host's uplink address, and nothing more is needed. When the
//      address is instead inside an on-link prefix of the uplink, the upstream router asks for
//      it with neighbour solicitations; the kernel answers for it only as a proxy
//      (proxy_ndp = 1 on the uplink and a proxy neighbour entry; answering needs forwarding).
//   5. The TUN gets no link-local address (addrgenmode none), so the kernel sends it no router
//      solicitations or MLD reports, and no router advertisements are accepted on it.
// Everything runs through iproute2 and sysctl(8) — `ip -n NS` and `ip netns exec NS sysctl`
// when a namespace is named, the /proc/sys files directly otherwise. Setup only, not the
// packet path.

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { IPV6_ADDR_LEN, parseCidr, prefixMatch } from '../ipv6/index.ts';
import { IpCommandError, ip } from '../tun/index.ts';

const SYSCTL_TIMEOUT_MS = 10_000;

// A sysctl key in slash form ("net/ipv6/conf/eth0.100/accept_ra"), so interface names with dots
// stay whole.
export function confKey(ifname: string, name: string): string {
  return `net/ipv6/conf/${ifname}/${name}`;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: SYSCTL_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
    });
  });
}

export async function sysctlGet(key: string, netns?: string): Promise<string> {
  if (netns === undefined) return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  return (await run('ip', ['netns', 'exec', netns, 'sysctl', '-n', key])).trim();
}

export async function sysctlSet(key: string, value: string, netns?: string): Promise<void> {
  if (netns === undefined) writeFileSync(`/proc/sys/${key}`, value);
  else await run('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', `${key}=${value}`]);
}

interface JsonRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  type?: string;
}

function routes(args: string[], netns?: string): Promise<JsonRoute[]> {
  return ip(['-6', '-j', 'route', 'show', ...args], { netns }).then((out) => (out.trim() ? JSON.parse(out) as JsonRoute[] : []));
}

// The interface of the IPv6 default route, or undefined when there is none.
export async function defaultUplink(netns?: string): Promise<string | undefined> {
  const r = await routes(['default'], netns);
  return r.find((x) => x.dev !== undefined)?.dev;
}

// True when `addr` lies in a prefix the kernel considers on-link on `uplink` (a connected route
// without a gateway): the upstream router will look for it with neighbour discovery.
export async function isOnLink(addr: Uint8Array, uplink: string, netns?: string): Promise<boolean> {
  const prefix = new Uint8Array(IPV6_ADDR_LEN);
  for (const r of await routes(['dev', uplink], netns)) {
    if (r.gateway !== undefined || r.dst === undefined || r.dst === 'default' || (r.type ?? 'unicast') !== 'unicast') continue;
    const len = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/128`, prefix, 0);
    if (len >= 8 && prefixMatch(addr, 0, prefix, 0, len) && !(prefix[0] === 0xfe && (prefix[1] & 0xc0) === 0x80)) return true;
  }
  return false;
}

// Items 2, 3 and 5 above. Returns the sysctls it changed, as "key: old → new" lines.
export async function enableForwarding(tun: string, uplink: string | undefined, netns?: string): Promise<string[]> {
  const changed: string[] = [];
  const set = async (key: string, want: string, only?: (old: string) => boolean): Promise<void> => {
    const old = await sysctlGet(key, netns);
    if (old === want || (only !== undefined && !only(old))) return;
    await sysctlSet(key, want, netns);
    changed.push(`${key}: ${old} → ${want}`);
  };
  // accept_ra 1 means "only when not forwarding": keep the uplink's RA-learnt routes.
  if (uplink !== undefined) await set(confKey(uplink, 'accept_ra'), '2', (old) => old === '1');
  await set('net/ipv6/conf/all/forwarding', '1');
  await set(confKey(tun, 'accept_ra'), '0');
  return changed;
}

// Item 4: answer neighbour solicitations for `addr` on `uplink`.
export async function addProxyNeighbour(addr: string, uplink: string, netns?: string): Promise<void> {
  await sysctlSet(confKey(uplink, 'proxy_ndp'), '1', netns);
  try {
    await ip(['-6', 'neigh', 'add', 'proxy', addr, 'dev', uplink], { netns });
  } catch (err) {
    if (!(err instanceof IpCommandError && /File exists/.test(err.stderr))) throw err;
  }
}

export async function deleteProxyNeighbour(addr: string, uplink: string, netns?: string): Promise<void> {
  await ip(['-6', 'neigh', 'del', 'proxy', addr, 'dev', uplink], { netns }).catch(() => undefined);
}

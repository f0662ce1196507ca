// The DNS service's upstreams (names outside `.internal`): from the host config, else the host's
// /etc/resolv.conf, never a 6PN address; and the key a sender is known by.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseResolvConf, type Upstream } from '../dns/forwarder.ts';
import { formatAddress, parseAddress } from '../ipv6/index.ts';

/** Upstreams from the host config, else /etc/resolv.conf; never a 6PN address (a loop). */
export function hostUpstreams(configured: readonly Upstream[] | undefined, resolvConf = '/etc/resolv.conf'): Upstream[] {
  let list: readonly Upstream[] = configured ?? [];
  if (list.length === 0) {
    try {
      list = parseResolvConf(readFileSync(resolvConf, 'utf8'));
    } catch {
      list = [];
    }
  }
  const seen = new Set<string>();
  const out: Upstream[] = [];
  for (const u of list) {
    const k = upstreamKey(u.address, u.port);
    if (k === undefined || seen.has(k) || /^fdaa:/i.test(k)) continue;
    seen.add(k);
    out.push({ address: u.address, port: u.port });
  }
  return out;
}

/** The address and port as the socket layer reports a sender: canonical text, no zone. */
export function upstreamKey(address: string, port: number): string | undefined {
  const a = address.replace(/%.*$/, '');
  if (isIP(a) === 4) return `${a}|${port}`;
  const b = new Uint8Array(16);
  return isIP(a) === 6 && parseAddress(a, b, 0) ? `${formatAddress(b, 0)}|${port}` : undefined;
}

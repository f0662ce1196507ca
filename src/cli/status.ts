// `sixpn status [HOST…] [--json] [--watch[=SECONDS]]`: what each running `sixpn up` reports on
// its status socket, as a page a person reads — the host, its topology and store, its
// machines, its mesh and gateway peers (endpoint, last handshake, bytes), the egress, and only
// the counters that are not zero — or the status JSON as it is (`--json`, one line per host).
// `--watch` redraws every SECONDS (default 2) until interrupted. `sixpn conntrack [HOST]` too.
// Neither loads the native addon (test/cli-no-addon.test.ts): only the status socket's client.
import { readdirSync } from 'node:fs';
import { STATUS_DIR, askStatus, statusSocketPath } from '../host/status.ts';

type Rec = Record<string, unknown>;

/** A table: columns padded to their widest cell, two spaces apart, indented. */
export function table(rows: readonly (readonly string[])[], indent = '    '): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** A Unix time in ms as "12 s ago", "3 min ago", "2 h ago"; 0 as "never". */
export function formatAgo(unixMs: number, nowMs: number): string {
  if (!unixMs) return 'never';
  const s = Math.max(0, Math.round((nowMs - unixMs) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

/** The counters of `c` that are not zero, as "name value" pairs (nested records: name.key). */
function nonZero(c: unknown, prefix = ''): Array<[string, number]> {
  if (typeof c !== 'object' || c === null) return [];
  const out: Array<[string, number]> = [];
  for (const [k, v] of Object.entries(c as Rec)) {
    if (typeof v === 'number' && v !== 0) out.push([`${prefix}${k}`, v]);
    else if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(...nonZero(v, `${prefix}${k}.`));
  }
  return out;
}

/** Counter groups on wrapped lines: "  router: forwarded_mesh 12, dropped_cross_org 1". */
function counterLines(groups: Array<[string, unknown]>): string[] {
  const lines: string[] = [];
  for (const [name, c] of groups) {
    const pairs = nonZero(c);
    if (pairs.length === 0) continue;
    let line = `    ${name}:`;
    for (const [i, [k, v]] of pairs.entries()) {
      const item = ` ${k} ${v}${i < pairs.length - 1 ? ',' : ''}`;
      if (line.length + item.length > 100) {
        lines.push(line);
        line = `      ${item.trimStart()}`;
      } else line += item;
    }
    lines.push(line);
  }
  return lines.length > 0 ? lines : ['    (all zero)'];
}

const str = (v: unknown, dflt = '-') => (v === null || v === undefined || v === '' ? dflt : String(v));

/** The readable page of one host's status (the JSON of the status socket). */
export function formatStatus(s: Rec, nowMs = Date.now()): string {
  const out: string[] = [];
  const metrics = s.metrics as Rec | undefined;
  out.push(`host ${str(s.host)} (mesh port ${str(s.meshPort)}, gateway port ${str(s.gatewayPort)})`);
  const applied = s.applied as Rec | undefined;
  const st = s.store as Rec | null | undefined;
  const topo = [`  topology ${str(s.topology)}`];
  if (applied) topo.push(`applied ${formatAgo(Number(applied.lastUnixMs), nowMs)} (${str(applied.count)} since start)`);
  if (s.machinesReady === false) topo.push('machines still being set up');
  out.push(topo.join(', '));
  if (st) {
    const state = st.connected ? 'connected' : `DISCONNECTED since ${str(st.since)}, forwarding with the last applied topology`;
    out.push(`  store ${str(st.location)}: ${state}, revision ${str(st.revision)}${st.reloads ? `, ${st.reloads} full reloads` : ''}`);
    if (st.lastError) out.push(`    last problem: ${String(st.lastError).split('\n')[0]}`);
  }
  if (metrics) {
    const where = metrics.namespace ? ` (network namespace ${metrics.namespace})` : '';
    out.push(`  metrics ${metrics.url ? `${metrics.url}${where}` : metrics.error ? `not served: ${metrics.error}` : 'off'}`);
  }
  const off = s.offloads as Rec | undefined;
  if (off) out.push(`  offloads: machine TUNs ${str(off.machineTuns, 'none')}; mesh ${str(off.mesh, 'none')}; gateway ${str(off.gateway, 'none')}; crypto ${Number(off.aeadWorkers ?? 0) > 0 ? `on ${str(off.aeadWorkers)} worker threads` : 'on the main thread'}`);

  const machines = (s.machines as Rec[] | undefined) ?? [];
  out.push(`  machines (${machines.length}):`);
  if (machines.length > 0) {
    out.push(...table([['ID', 'APP', 'ORG', 'ADDRESS', 'STATE'], ...machines.map((m) => [str(m.id), str(m.app), str(m.org), str(m.address), str(m.state)])]));
  }
  const peers = (s.peers as Rec[] | undefined) ?? [];
  out.push(`  mesh peers (${peers.length}):`);
  if (peers.length > 0) {
    out.push(...table([['HOST', 'ENDPOINT', 'HANDSHAKE', 'RX', 'TX'],
      ...peers.map((p) => [str(p.host), str(p.endpoint, '(none)'), formatAgo(Number(p.lastHandshakeUnixMs), nowMs), formatBytes(Number(p.rxBytes ?? 0)), formatBytes(Number(p.txBytes ?? 0))])]));
  }
  const ext = (s.externalPeers as Rec[] | undefined) ?? [];
  out.push(`  gateway peers (${ext.length}):`);
  if (ext.length > 0) {
    out.push(...table([['PEER', 'ORG', 'ADDRESS', 'ENDPOINT', 'HANDSHAKE', 'RX', 'TX'],
      ...ext.map((p) => [str(p.name), str(p.org), str(p.address), str(p.endpoint, '(not yet)'), formatAgo(Number(p.lastHandshakeUnixMs), nowMs),
        formatBytes(Number(p.rxBytes ?? 0)), formatBytes(Number(p.txBytes ?? 0))])]));
  }
  const egress = s.egress as Rec | null | undefined;
  if (egress) {
    const addrs = (egress.addresses as string[] | undefined) ?? [];
    out.push(`  egress ${addrs.join(', ') || '-'} via ${str(egress.uplink, 'the default route')} (${str(egress.ifname)}): ` +
      `${str(egress.entries)} sessions, ${str(egress.mappings)} mappings of ${str(egress.capacity)}, ${formatBytes(Number(egress.tableBytes ?? 0))} of tables`);
  } else out.push('  egress: none (no egress address for this host)');
  const svc = s.services as Rec | undefined;
  if (svc && (Number(svc.flows) > 0 || Number(svc.held) > 0 || Object.keys((svc.staticEgress as Rec | undefined) ?? {}).length > 0)) {
    const apps = Object.entries((svc.staticEgress as Record<string, string> | undefined) ?? {}).map(([a, e]) => `${a} ${e}`).join(', ');
    out.push(`  services: ${str(svc.flows)} flows, ${str(svc.held)} packets held for autostart, ${str(svc.autostarted)} autostarted, ` +
      `${str(svc.autostopped)} autostopped${apps ? `; static egress ${apps}` : ''}`);
  }
  out.push('  counters (not zero):');
  out.push(...counterLines([
    ['router', s.router], ['mesh', s.mesh], ['mesh sockets', s.meshIo], ['gateway', s.gateway], ['gateway sockets', s.gatewayIo],
    ['machine TUNs', s.machineTuns], ['offload', s.offload], ['dns', s.dns],
    ['egress', egress?.io], ['egress TUN', egress?.tun], ['snat66', egress?.nat],
  ]));
  return out.join('\n');
}

export interface StatusOptions {
  json: boolean;
  /** seconds between redraws, or 0 (once) */
  watch: number;
}

/** Parses the options of `sixpn status`; throws on an unknown one. */
export function parseStatusArgs(argv: readonly string[]): { opts: StatusOptions; hosts: string[] } {
  const opts: StatusOptions = { json: false, watch: 0 };
  const hosts: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--watch' || a === '-w') {
      opts.watch = 2;
      if (/^[0-9.]+$/.test(argv[i + 1] ?? '')) opts.watch = Number(argv[++i]);
    } else if (a.startsWith('--watch=')) opts.watch = Number(a.slice(8));
    else if (a.startsWith('-')) throw new Error(`unknown option ${a} (expected --json, --watch[=SECONDS])`);
    else hosts.push(a);
  }
  if (!(opts.watch >= 0) || (opts.watch > 0 && opts.watch < 0.2)) throw new Error('--watch: SECONDS must be at least 0.2');
  return { opts, hosts };
}

async function fetchStatus(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await askStatus(path, 'status')) as Record<string, unknown>;
}

function runningHosts(names: string[]): string[] {
  if (names.length > 0) return names;
  try {
    return readdirSync(STATUS_DIR).filter((f) => f.endsWith('.sock')).map((f) => f.slice(0, -5));
  } catch {
    return [];
  }
}

/** `sixpn conntrack [HOST]`: the SNAT66 table, as `conntrack -L` prints it. */
export async function conntrack(argv: string[]): Promise<number> {
  const hosts = runningHosts(argv.filter((a) => !a.startsWith('--')));
  if (hosts.length === 0) {
    console.error('sixpn conntrack: no running `sixpn up` found (nothing in /run/sixpn)');
    return 1;
  }
  let entries = 0;
  for (const h of hosts) {
    const text = await askStatus(statusSocketPath(h), 'conntrack');
    process.stdout.write(text);
    entries += text.split('\n').filter(Boolean).length;
  }
  console.error(`sixpn conntrack: ${entries} flow entries have been shown.`);
  return 0;
}

/** `sixpn status [HOST…] [--json] [--watch[=SECONDS]]` (the page: src/cli/status.ts). */
export async function status(argv: string[]): Promise<number> {
  const { opts, hosts: named } = parseStatusArgs(argv);
  const once = async (): Promise<{ text: string; failed: number; found: number }> => {
    const hosts = runningHosts(named);
    const parts: string[] = [];
    let failed = 0;
    for (const h of hosts) {
      try {
        const s = await fetchStatus(statusSocketPath(h));
        parts.push(opts.json ? JSON.stringify(s) : formatStatus(s));
      } catch (err) {
        parts.push(`sixpn status: ${h}: ${(err as Error).message}`);
        failed++;
      }
    }
    return { text: parts.join(opts.json ? '\n' : '\n\n'), failed, found: hosts.length };
  };
  if (opts.watch === 0) {
    const r = await once();
    if (r.found === 0) {
      console.error('sixpn status: no running `sixpn up` found (nothing in /run/sixpn)');
      return 1;
    }
    for (const line of r.text.split('\n')) (line.startsWith('sixpn status: ') ? console.error : console.log)(line);
    return r.failed === 0 ? 0 : 1;
  }
  // --watch: redraw until interrupted
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  while (!stop) {
    const r = await once();
    const page = r.found === 0 ? 'sixpn status: no running `sixpn up` found (nothing in /run/sixpn)' : r.text;
    process.stdout.write(`${process.stdout.isTTY ? '\x1b[H\x1b[2J' : ''}${new Date().toISOString()}  every ${opts.watch} s (Ctrl-C to stop)\n${page}\n`);
    const until = Date.now() + opts.watch * 1000;
    while (!stop && Date.now() < until) await new Promise((res) => setTimeout(res, Math.min(100, until - Date.now())));
  }
  return 0;
}

// `sixpn up -c HOST_CONFIG [flags]` and `sixpn status [HOST]`.
import { readdirSync } from 'node:fs';
import { SixpnHost } from '../host/sixpn-host.ts';
import { STATUS_DIR, askStatus, statusSocketPath } from '../host/status.ts';
import { loadHostConfig, openStore, parseStoreSpec } from '../topology/index.ts';
import type { HostConfig, StoreStatus, TopologySourceFactory } from '../topology/index.ts';
import { createLogger } from '../log.ts';

export async function up(argv: string[]): Promise<number> {
  const { config, rest } = loadHostConfig(argv);
  if (rest.length > 0) throw new Error(`unknown arguments: ${rest.join(' ')}`);
  const log = createLogger('sixpn', { name: `sixpn[${config.host}]`, defaultLevel: 'info' });
  const { config: withStore, close: closeStore } = await chooseStore(config, log);
  const host = await SixpnHost.start(withStore, log);
  return new Promise((resolve) => {
    const stop = (sig: string) => {
      log.info(`${sig}: shutting down`);
      void host.close().then(() => closeStore()).then(() => resolve(0));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    if (process.send) process.send('ready');
  });
}

/**
 * The topology store of `sixpn up` (issue 12): the file of the host config (watched by the host
 * itself), or etcd, loaded here whole before the host starts and then watched; the host gets it
 * as its source. Store trouble is logged when it starts and when it ends.
 */
async function chooseStore(config: HostConfig, log: { info(m: string): void; error(m: string): void }): Promise<{ config: HostConfig; close: () => Promise<void> }> {
  if (!config.store) return { config, close: async () => {} };
  const spec = parseStoreSpec(config.store.url, config.store);
  if (spec.kind === 'file') return { config: { ...config, topology: spec.file }, close: async () => {} };
  const store = await openStore(spec);
  let handlers: { change: Parameters<TopologySourceFactory>[1]; error: Parameters<TopologySourceFactory>[2] } | undefined;
  let source;
  try {
    source = await store.watch(
      (next, diff, previous) => handlers?.change(next, diff, previous),
      (err) => (handlers ? handlers.error(err) : log.error(err.message)),
      {
        onStatus: (s: StoreStatus) => {
          if (s.connected) log.info(`store ${s.location}: connected again, resuming from revision ${s.revision + 1}`);
          else log.error(`store ${s.location}: ${s.lastError ?? 'unreachable'}; forwarding with the topology of revision ${s.revision}, reconnecting`);
        },
      },
    );
  } catch (err) {
    await store.close();
    throw err;
  }
  log.info(`store ${store.location}: topology loaded at revision ${source.status().revision}`);
  const factory: TopologySourceFactory = (_file, change, error) => {
    handlers = { change, error };
    return source;
  };
  return { config: { ...config, source: factory }, close: () => store.close() };
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

export async function status(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const hosts = runningHosts(argv.filter((a) => !a.startsWith('--')));
  if (hosts.length === 0) {
    console.error('sixpn status: no running `sixpn up` found (nothing in /run/sixpn)');
    return 1;
  }
  let failed = 0;
  for (const h of hosts) {
    let s: Record<string, unknown>;
    try {
      s = await fetchStatus(statusSocketPath(h));
    } catch (err) {
      console.error(`sixpn status: ${h}: ${(err as Error).message}`);
      failed++;
      continue;
    }
    if (json) {
      console.log(JSON.stringify(s));
      continue;
    }
    const router = s.router as Record<string, number>;
    const mesh = s.mesh as Record<string, number>;
    console.log(`host ${s.host} (mesh port ${s.meshPort})`);
    const st = s.store as Record<string, unknown> | null | undefined;
    if (st) {
      console.log(`  store: ${st.location} ${st.connected ? 'connected' : `DISCONNECTED since ${st.since}, forwarding with the last applied topology`}, revision ${st.revision}${st.reloads ? `, ${st.reloads} full reloads` : ''}`);
      if (st.lastError) console.log(`    last problem: ${String(st.lastError).split('\n')[0]}`);
    }
    const off = s.offloads as Record<string, string> | undefined;
    if (off) console.log(`  offloads: machine TUNs ${off.machineTuns}; mesh ${off.mesh}; gateway ${off.gateway}`);
    console.log('  machines:');
    for (const m of s.machines as Array<Record<string, string>>) console.log(`    ${m.id}  ${m.app.padEnd(12)} ${m.address.padEnd(36)} ${m.state}`);
    console.log('  mesh peers:');
    for (const p of s.peers as Array<Record<string, string | number>>) {
      const ago = p.lastHandshakeUnixMs ? `${Math.round((Date.now() - Number(p.lastHandshakeUnixMs)) / 1000)} s ago` : 'never';
      console.log(`    ${String(p.host).padEnd(10)} ${String(p.endpoint).padEnd(28)} handshake ${ago}, rx ${p.rxBytes} B, tx ${p.txBytes} B`);
    }
    console.log('  router counters:');
    for (const [k, v] of Object.entries(router)) if (v !== 0) console.log(`    ${k.padEnd(22)} ${v}`);
    const egress = s.egress as Record<string, unknown> | null;
    if (egress) console.log(`  egress: ${JSON.stringify(egress)}`);
    const meshDrops = Object.entries(mesh).filter(([k, v]) => v !== 0 && k !== 'rxDatagrams');
    if (meshDrops.length) console.log(`  mesh: ${meshDrops.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  return failed === 0 ? 0 : 1;
}

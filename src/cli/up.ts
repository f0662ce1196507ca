// `sixpn up -c HOST_CONFIG [flags]`, `sixpn status [HOST…]` and `sixpn conntrack [HOST]`.
import { readdirSync } from 'node:fs';
import { SixpnHost } from '../host/sixpn-host.ts';
import { STATUS_DIR, askStatus, statusSocketPath } from '../host/status.ts';
import { loadHostConfig, openStore, parseStoreSpec } from '../topology/index.ts';
import type { HostConfig, StoreStatus, TopologySourceFactory } from '../topology/index.ts';
import { createLogger } from '../log.ts';
import { formatStatus, parseStatusArgs } from './status.ts';

export async function up(argv: string[]): Promise<number> {
  const { config, rest } = loadHostConfig(argv);
  if (rest.length > 0) throw new Error(`unknown arguments: ${rest.join(' ')}`);
  const log = createLogger('sixpn', { name: `sixpn[${config.host}]`, defaultLevel: 'info' });
  const { config: withStore, close: closeStore } = await chooseStore(config, log);
  const host = await SixpnHost.start(withStore, log).catch((err: unknown) => {
    throw oneLine(err);
  });
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
 * A topology refused at start with one problem, said on one line (`topology F refused:
 * ENTRY: PROBLEM`); with several, the list as the topology gives it (one line each).
 */
function oneLine(err: unknown): unknown {
  const e = err as { code?: string; file?: string; problems?: ReadonlyArray<{ file: string; entry: string; message: string }> };
  if (e?.code !== 'ETOPOLOGY' || e.problems?.length !== 1) return err;
  const p = e.problems[0];
  return new Error(`topology ${p.file} refused: ${p.entry}: ${p.message.split('\n')[0]}`, { cause: err });
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

// `sixpn up -c HOST_CONFIG [flags]` (`sixpn status` and `sixpn conntrack`: status.ts, which
// loads no native code).
import { SixpnHost } from '../host/sixpn-host.ts';
import { parseStoreSpec } from '../topology/index.ts';
import { openStore } from '../store/index.ts';
import { loadHostConfig } from '../host/config-files.ts';
import type { HostConfig, StoreStatus, TopologySourceFactory } from '../topology/index.ts';
import { createLogger } from '../log.ts';
import { parseWorkers } from '../noise/index.ts';

export async function up(argv: string[]): Promise<number> {
  const { config: given, rest } = loadHostConfig(argv);
  // "workers" unset: SIXPN_WORKERS, as for sixpn-wg (then the default)
  const config = given.workers !== undefined || !process.env.SIXPN_WORKERS ? given : { ...given, workers: parseWorkers(process.env.SIXPN_WORKERS) };
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
  return { config: { ...config, source: factory, writer: store }, close: () => store.close() };
}

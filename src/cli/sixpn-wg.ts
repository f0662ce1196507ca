// sixpn-wg — a userspace WireGuard for the stock `wg` and `wg-quick` tools, used like
// wireguard-go: `sixpn-wg [-f|--foreground] IFNAME`. Without -f it starts a detached copy of
// itself and returns once that copy has created the TUN and the UAPI socket.
import { spawn } from 'node:child_process';
import { createWriteStream, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { UapiServer, isValidInterfaceName, uapiSocketPath } from '../uapi/server.ts';
import { KeyLog } from '../keylog.ts';
import { createLogger, type Logger } from '../log.ts';
import { Metrics, MetricsServer } from '../metrics/index.ts';
import { deviceMetrics, tunMetrics } from '../metrics/device.ts';
import { WgInterface, offloadsFromEnv } from '../tun/wg-interface.ts';
import { AeadPool, parseWorkers } from '../noise/index.ts';
import { explainStartError } from './start-errors.ts';

const USAGE = `usage: sixpn-wg [-f|--foreground] INTERFACE-NAME
       sixpn-wg --stats INTERFACE-NAME     datagrams received and dropped, per reason

A userspace WireGuard implementation, configured with wg(8) through
/var/run/wireguard/INTERFACE-NAME.sock. LOG_LEVEL=debug|verbose|error|silent (default error).
Offloads (TUN TSO/USO, UDP GSO/GRO) are on where the kernel has them; SIXPN_OFFLOAD=0 turns
them off, SIXPN_TUN_OFFLOAD=0, SIXPN_UDP_GSO=0 or SIXPN_UDP_GRO=0 one of them.
SIXPN_METRICS=ADDR:PORT serves Prometheus metrics at http://ADDR:PORT/metrics.
SIXPN_KEYLOG=FILE appends each handshake's keys to FILE (0600) for Wireshark's wg.keylog_file.
SIXPN_WORKERS=N seals and opens on N worker threads (0-8; default 0: on the main thread);
SIXPN_BATCH=0 seals and opens one packet per call instead of in batches.
Without -f it detaches once the interface and the socket exist.`;

const READY_FD_ENV = 'SIXPN_WG_READY_FD';


async function foreground(name: string): Promise<number> {
  const log = createLogger('sixpn-wg', { name: `sixpn-wg[${name}]`, defaultLevel: 'error' });
  let host: WgInterface | null = null;
  let server: UapiServer | null = null;
  let metrics: MetricsServer | null = null;
  const keylog = process.env.SIXPN_KEYLOG ? KeyLog.open(process.env.SIXPN_KEYLOG, log) : null;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => (done = r));
  const shutdown = (why: string, code = 0) => {
    log.info(`shutting down: ${why}`);
    host?.close();
    keylog?.close();
    void metrics?.close();
    void server?.close().finally(() => done(code));
    if (server === null) done(code);
  };
  const readyFd = process.env[READY_FD_ENV];
  try {
    AeadPool.configure(parseWorkers(process.env.SIXPN_WORKERS)); // before the device: its queues use it
    host = await WgInterface.create(name, log, (reason) => shutdown(reason), keylog?.deviceOptions() ?? {}, offloadsFromEnv(process.env));
    try {
      server = await UapiServer.listen(name, host.uapi, {
        onSocketDeleted: () => shutdown('UAPI socket deleted'),
        onError: (err) => log.error(`uapi: ${err instanceof Error ? err.message : String(err)}`),
      });
    } catch (err) {
      host.close();
      throw err;
    }
  } catch (err) {
    // the detaching parent shows this line (it has no terminal of ours to read)
    if (readyFd !== undefined) writeSync(Number(readyFd), `error ${explainStartError(err)}\n`);
    throw err;
  }
  const metricsAddress = process.env.SIXPN_METRICS;
  if (metricsAddress) metrics = await serveMetrics(host, metricsAddress, log);
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  log.info(`device ${name} started (UDP port ${host.device.listenPort})`);
  if (readyFd !== undefined) {
    const ready = createWriteStream('', { fd: Number(readyFd) });
    ready.end('ready\n');
  }
  return finished;
}

/** SIXPN_METRICS: the device's metrics (src/metrics/device.ts), its peers named by public key as `wg show` prints them. */
async function serveMetrics(host: WgInterface, address: string, log: Logger): Promise<MetricsServer> {
  const m = new Metrics();
  deviceMetrics(m, () => [{
    device: host.name,
    dev: host.device,
    port: host.port.counters,
    offloads: () => host.offloads,
    peers: () => [...host.device.peers.values()].map((peer) => ({ peer, name: Buffer.from(peer.publicKey).toString('base64') })),
  }]);
  tunMetrics(m, 'sixpn_wg_tun', 'the TUN', { device: host.name }, () => host.tunCounters);
  return MetricsServer.listen(m, address, log);
}

/** Starts `sixpn-wg -f NAME` detached and waits until it reports the device is up. */
function detach(name: string): Promise<number> {
  const verbose = ['debug', 'verbose', 'info'].includes(process.env.LOG_LEVEL ?? '');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], '--foreground', name], {
    detached: true,
    stdio: ['ignore', 'ignore', verbose ? 'inherit' : 'ignore', 'pipe'],
    env: { ...process.env, [READY_FD_ENV]: '3' },
  });
  return new Promise((resolve) => {
    let said = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.on('data', (d: Buffer) => (said += d.toString()));
    pipe.on('end', () => {
      if (said.startsWith('ready')) {
        child.unref();
        resolve(0);
      }
    });
    child.on('exit', (code) => {
      if (!said.startsWith('ready')) {
        const why = /^error (.*)$/m.exec(said)?.[1];
        console.error(why !== undefined ? `sixpn-wg: ${name}: ${why}` : `sixpn-wg: ${name} failed to start (exit ${code}); run with -f to see why`);
        resolve(1);
      }
    });
  });
}

/** `--stats IFNAME`: asks the running daemon for its counters (a `stats=1` UAPI request). */
function stats(name: string): Promise<number> {
  return new Promise((resolve) => {
    let data = '';
    const c = connect(uapiSocketPath(name), () => c.write('stats=1\n\n'));
    c.on('data', (d) => {
      data += d.toString();
      if (!data.includes('errno=')) return;
      c.end();
      const lines = data.trim().split('\n');
      const errno = Number(lines.pop()!.slice(6));
      if (errno !== 0) {
        console.error(`sixpn-wg: ${name}: stats failed (errno ${errno})`);
        return resolve(1);
      }
      for (const l of lines) {
        const [k, v] = l.split('=');
        console.log(`${k.padEnd(20)} ${v}`);
      }
      resolve(0);
    });
    c.on('error', (e) => {
      console.error(`sixpn-wg: ${name}: ${e.message}`);
      resolve(1);
    });
  });
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--stats' && argv.length === 2) return stats(argv[1]);
  let foregroundMode = false;
  const rest: string[] = [];
  for (const a of argv) {
    if (a === '-f' || a === '--foreground') foregroundMode = true;
    else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      return 0;
    } else if (a === '--version') {
      console.log('sixpn-wg 0.1.0');
      return 0;
    } else rest.push(a);
  }
  if (rest.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const name = rest[0];
  if (!isValidInterfaceName(name)) {
    console.error(`sixpn-wg: "${name}" is not a valid interface name`);
    return 2;
  }
  return foregroundMode ? foreground(name) : detach(name);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`sixpn-wg: ${explainStartError(err)}`);
    process.exit(1);
  },
);

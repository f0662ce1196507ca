// The UAPI socket: a unix stream socket at /var/run/wireguard/IFNAME.sock, which is all `wg`
// needs to find a userspace interface (wireguard-tools ipc.c asks the socket before the kernel).
//
// Creating it (wireguard-go ipc/uapi_linux.go UAPIOpen, done without touching the process umask):
//   1. mkdir -p the directory, mode 0755;
//   2. bind in a fresh 0700 directory beside it, chmod the socket 0600;
//   3. link(2) it to IFNAME.sock, which fails if that name exists: then a socket that accepts a
//      connection belongs to a live process (refuse: EADDRINUSE), one that refuses is stale
//      (unlink it, retry); anything else there is not ours to delete (refuse: EEXIST);
//   4. unlink the temporary name. The published name is never the one libuv unlinks at close, so
//      close() can check that the name still leads to our socket before removing it.
// While serving, the name is watched (fs.watch, and lstat every second): when it is deleted or
// replaced, onSocketDeleted runs, and the daemon exits (as wireguard-go does).
import { lstatSync, unlinkSync, watch, lstat, type FSWatcher, type Stats } from 'node:fs';
import { chmod, link, lstat as lstatAsync, mkdir, mkdtemp, rm, unlink } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { UapiDevice } from './types.ts';
import { UAPI_ENOANO, UAPI_EPROTO, UAPI_SOCKET_DIR, UAPI_SOCKET_SUFFIX } from './constants.ts';
import { UapiParser, formatErrno, formatGet, type UapiRequest } from './protocol.ts';

export interface UapiServerOptions {
  /** Directory of the socket; `wg` looks only in /var/run/wireguard (the default). */
  dir?: string;
  /** Called once when the socket file is deleted or replaced by another. */
  onSocketDeleted?: () => void;
  /** lstat poll period backing fs.watch, ms; 0 turns the watching off. Default 1000. */
  watchIntervalMs?: number;
  /** Unexpected failures: the device threw, a listener error. Never carries key material. */
  onError?: (err: unknown) => void;
  /** Connections served at once; more are refused. Default 256. */
  maxConnections?: number;
}

const PROBE_TIMEOUT_MS = 1000;
const PUBLISH_ATTEMPTS = 3;

/** Linux dev_valid_name: 1–15 bytes, not "." or "..", no "/", ":" or whitespace. */
export function isValidInterfaceName(name: string): boolean {
  return /^[^/:\s]{1,15}$/.test(name) && name !== '.' && name !== '..' && Buffer.byteLength(name) <= 15;
}

export function uapiSocketPath(name: string, dir: string = UAPI_SOCKET_DIR): string {
  return join(dir, name + UAPI_SOCKET_SUFFIX);
}

function errorWithCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** What answers at a socket path: a live server, nothing (stale), or no file at all. */
function probe(path: string): Promise<'live' | 'stale' | 'gone'> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const done = (r: 'live' | 'stale' | 'gone' | Error): void => {
      clearTimeout(timer);
      s.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const timer = setTimeout(() => done('live'), PROBE_TIMEOUT_MS); // a busy server is a live one
    s.once('connect', () => done('live'));
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') done('stale');
      else if (e.code === 'ENOENT') done('gone');
      else if (e.code === 'EAGAIN') done('live'); // its backlog is full
      else done(e);
    });
  });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(path);
  });
}

export class UapiServer {
  readonly name: string;
  readonly path: string;
  private readonly server: Server;
  private readonly device: UapiDevice;
  private readonly options: UapiServerOptions;
  private readonly ino: number;
  private readonly dev: number;
  private readonly sockets = new Set<Socket>();
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private deleted = false;

  /** Creates the socket and serves `device` on it. Rejects if a live process serves `name`. */
  static async listen(name: string, device: UapiDevice, options: UapiServerOptions = {}): Promise<UapiServer> {
    if (!isValidInterfaceName(name)) throw errorWithCode(`invalid interface name ${JSON.stringify(name)}`, 'EINVAL');
    const dir = options.dir ?? UAPI_SOCKET_DIR;
    const path = uapiSocketPath(name, dir);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const tmpDir = await mkdtemp(join(dir, `.${name}-`)); // 0700; no ".sock" suffix, so wg skips it
    const tmpPath = join(tmpDir, 's');
    const server = createServer({ allowHalfOpen: true });
    try {
      await listen(server, tmpPath);
      await chmod(tmpPath, 0o600);
      await publish(tmpPath, path);
      const st = await lstatAsync(path);
      return new UapiServer(name, path, server, device, options, st);
    } catch (e) {
      server.close();
      throw e;
    } finally {
      await rm(tmpDir, { recursive: true, force: true });
    }
  }

  private constructor(name: string, path: string, server: Server, device: UapiDevice, options: UapiServerOptions, st: Stats) {
    this.name = name;
    this.path = path;
    this.server = server;
    this.device = device;
    this.options = options;
    this.ino = st.ino;
    this.dev = st.dev;
    server.maxConnections = options.maxConnections ?? 256;
    server.on('connection', (s) => this.serve(s));
    server.on('error', (e) => this.options.onError?.(e));
    const interval = options.watchIntervalMs ?? 1000;
    if (interval > 0) this.watch(interval);
  }

  /** Connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Stops serving: unlinks the socket file at once (if it is still ours), drops the open
   * connections, and resolves when the listener is closed.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.unwatch();
    try {
      const st = lstatSync(this.path);
      if (st.ino === this.ino && st.dev === this.dev) unlinkSync(this.path);
    } catch {
      // already gone
    }
    for (const s of this.sockets) s.destroy();
    this.closing = new Promise((resolve) => this.server.close(() => resolve()));
    return this.closing;
  }

  // ---- the socket file ----

  private watch(intervalMs: number): void {
    const check = (): void => {
      if (this.deleted || this.closing !== null) return;
      lstat(this.path, (err, st) => {
        if (this.deleted || this.closing !== null) return;
        if (err !== null ? err.code === 'ENOENT' : st.ino !== this.ino || st.dev !== this.dev) this.onDeleted();
      });
    };
    try {
      this.watcher = watch(this.path, { persistent: false }, check);
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      this.watcher = null; // the poll still runs
    }
    this.timer = setInterval(check, intervalMs);
    this.timer.unref();
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private onDeleted(): void {
    this.deleted = true;
    this.unwatch();
    this.options.onSocketDeleted?.();
  }

  // ---- connections ----

  private serve(s: Socket): void {
    this.sockets.add(s);
    const parser = new UapiParser();
    let ended = false;
    let waiting = false;
    const pump = (): void => {
      while (!s.destroyed && !s.writableEnded) {
        if (s.writableNeedDrain) {
          // The client is not reading its replies: stop reading its requests until it does.
          if (!waiting) {
            waiting = true;
            s.pause();
            s.once('drain', () => {
              waiting = false;
              s.resume();
              pump();
            });
          }
          return;
        }
        const req = parser.next();
        if (req === null) break;
        this.answer(s, req);
        if (req.kind === 'error') {
          // Protocol error: reply, then close, as wireguard-go does.
          s.end(() => s.destroy());
          s.resume(); // discard what else arrives
          return;
        }
      }
      if (ended && !s.writableEnded) s.end();
    };
    s.on('data', (chunk: Buffer) => {
      parser.feed(chunk);
      pump();
    });
    s.on('end', () => {
      ended = true; // a request cut short by EOF is dropped unapplied
      pump();
    });
    s.on('error', () => s.destroy());
    s.on('close', () => this.sockets.delete(s));
  }

  private answer(s: Socket, req: UapiRequest): void {
    if (req.kind === 'get') {
      let reply: string[];
      try {
        reply = formatGet(this.device.uapiGet());
      } catch (e) {
        this.options.onError?.(e);
        reply = [formatErrno(UAPI_ENOANO)];
      }
      s.cork();
      for (const chunk of reply) s.write(chunk, 'latin1');
      s.uncork();
    } else if (req.kind === 'stats') {
      const stats = this.device.uapiStats?.();
      if (stats === undefined) s.write(formatErrno(UAPI_EPROTO));
      else s.write(Object.entries(stats).map(([k, v]) => `${k}=${v}\n`).join('') + formatErrno(0));
    } else if (req.kind === 'set') {
      let r: number;
      try {
        r = this.device.uapiSet(req.set);
      } catch (e) {
        this.options.onError?.(e);
        r = UAPI_ENOANO;
      }
      if (!Number.isInteger(r)) r = UAPI_ENOANO;
      s.write(formatErrno(r > 0 ? -r : r));
    } else {
      s.write(formatErrno(req.errno));
    }
  }
}

// Step 3 of the creation above.
async function publish(tmpPath: string, path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await link(tmpPath, path);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt + 1 >= PUBLISH_ATTEMPTS) throw e;
    }
    let st: Stats;
    try {
      st = await lstatAsync(path);
    } catch {
      continue; // gone meanwhile
    }
    if (!st.isSocket()) throw errorWithCode(`${path} exists and is not a socket`, 'EEXIST');
    const state = await probe(path);
    if (state === 'live') throw errorWithCode(`${path} is in use by a live process`, 'EADDRINUSE');
    if (state === 'stale') await unlink(path).catch(() => {});
  }
}

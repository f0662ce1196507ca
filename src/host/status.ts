// The status socket of a running `sixpn up` (/run/sixpn/<host>.sock): the server the host
// process runs, and the client `sixpn status` and `sixpn conntrack` use (tests and benchmarks
// with them). One request line: "status" answers the status as JSON, "conntrack" the SNAT66
// table as conntrack -L lines, "capture {…}" hands the connection to the capture tap (the
// stream of src/capture/stream.ts); a reader that sends nothing (`socat - UNIX:…`) gets the
// status after 200 ms.
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

export const STATUS_DIR = '/run/sixpn';

export function statusSocketPath(hostName: string): string {
  return join(STATUS_DIR, `${hostName}.sock`);
}

const SILENT_READER_MS = 200;

/** What the server answers with: the status (JSON-able) and the conntrack lines. */
export interface StatusSource {
  status(): unknown;
  conntrack(): string[];
  /** A `capture {…}` request: the connection is the capture's from here on (src/host/capture.ts). */
  capture?(socket: Socket, json: string): void;
}

/** The server of `sixpn up` at statusSocketPath(hostName); `close` removes the socket file. */
export class StatusServer {
  private readonly server: Server;
  readonly path: string;
  /** The socket file was held by a process that still answered (another `sixpn up` of this host name). */
  replacedLive = false;

  private constructor(server: Server, path: string) {
    this.server = server;
    this.path = path;
  }

  /**
   * Listens at statusSocketPath(hostName), in a root-only directory (0700), the socket 0600.
   * A socket file left by a process that is gone (SIGKILL) is replaced. One that answers is
   * replaced too (the newer process owns the name; `live` is then true): labs and the demo run
   * hosts of the same name in separate namespaces of one machine.
   */
  static async listen(hostName: string, source: StatusSource): Promise<StatusServer> {
    mkdirSync(STATUS_DIR, { recursive: true, mode: 0o700 });
    chmodSync(STATUS_DIR, 0o700);
    const path = statusSocketPath(hostName);
    let replacedLive = false;
    if (existsSync(path)) {
      replacedLive = await answers(path);
      rmSync(path, { force: true }); // stale (its process is gone), or taken over
    }
    const server = createServer((c) => {
      c.on('error', () => undefined);
      let line = '';
      let answered = false;
      const answer = (conntrack: boolean) => {
        if (answered) return;
        answered = true;
        clearTimeout(silent);
        if (conntrack) c.end(source.conntrack().map((l) => `${l}\n`).join(''));
        else c.end(JSON.stringify(source.status()) + '\n');
      };
      const silent = setTimeout(() => answer(false), SILENT_READER_MS);
      const onData = (d: Buffer) => {
        line += d.toString();
        const nl = line.indexOf('\n');
        if (nl < 0 || answered) return;
        if (line.startsWith('capture ') && source.capture !== undefined) {
          answered = true;
          clearTimeout(silent);
          c.off('data', onData);
          source.capture(c, line.slice(8, nl));
        } else answer(line.startsWith('conntrack'));
      };
      c.on('data', onData);
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
    chmodSync(path, 0o600);
    const s = new StatusServer(server, path);
    s.replacedLive = replacedLive;
    return s;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server.close(r));
    rmSync(this.path, { force: true });
  }
}

/** Whether something accepts connections at the socket `path` (false: refused, or not a socket). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path, () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
    c.setTimeout(1000, () => {
      c.destroy();
      resolve(true); // accepted but silent: alive, busy
    });
  });
}

/** Sends one request and resolves with the whole reply; rejects if the socket cannot be reached. */
export function askStatus(path: string, what: 'status' | 'conntrack'): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const c = connect(path, () => c.write(`${what}\n`));
    c.on('data', (d) => (data += d.toString()));
    c.on('end', () => resolve(data));
    c.on('error', reject);
  });
}

/** The status of the `sixpn up` at `path`, or undefined if it cannot be read. */
export async function readStatus(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await askStatus(path, 'status')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

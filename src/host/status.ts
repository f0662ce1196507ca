// The status socket of a running `sixpn up` (/run/sixpn/<host>.sock): the client `sixpn status`
// and `sixpn conntrack` use, and tests and benchmarks with them. One request line: "status"
// answers the status as JSON, "conntrack" the SNAT66 table as conntrack -L lines; a reader
// that sends nothing gets the status after 200 ms.
import { connect } from 'node:net';
import { join } from 'node:path';

export const STATUS_DIR = '/run/sixpn';

export function statusSocketPath(hostName: string): string {
  return join(STATUS_DIR, `${hostName}.sock`);
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

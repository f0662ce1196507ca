// `sixpn capture HOST (--machine ID | --peer NAME | --mesh)… -w FILE.pcapng [-c N] [--filter EXPR]`:
// the decrypted IPv6 packets the router of the running `sixpn up` of HOST sees for a machine, an
// external peer or the mesh, written live as pcapng (src/capture/pcapng.ts; `-w -` writes to
// stdout): one interface per machine, per peer and per mesh host (machine:ID, peer:ORG/NAME,
// mesh:HOST), the direction of each packet as seen by the router (inbound: from the machine,
// peer or host). Forwarding goes on; what the host could not queue is counted and reported
// (in the summary line and the file's interface statistics). Root or the status socket's owner.
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { parseFilter } from '../capture/filter.ts';
import { enhancedPacket, interfaceDescription, interfaceStatistics, sectionHeader } from '../capture/pcapng.ts';
import { FRAME_END, FRAME_INTERFACE, FRAME_PACKET, FRAME_STATS, FrameReader, type CaptureRequest, type CaptureStats } from '../capture/stream.ts';
import { statusSocketPath } from '../host/status.ts';

export const CAPTURE_USAGE = 'usage: sixpn capture HOST (--machine ID | --peer [ORG/]NAME | --mesh)… -w FILE.pcapng [-c N] [--filter EXPR]';

export interface CaptureArgs {
  host: string;
  file: string;
  request: CaptureRequest;
}

/** Parses the arguments; throws a one-line error with what is missing or wrong. */
export function parseCaptureArgs(argv: readonly string[]): CaptureArgs {
  const req: CaptureRequest = { machines: [], peers: [], mesh: false, filter: '', count: 0 };
  let file: string | undefined;
  const hosts: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${CAPTURE_USAGE}`);
      return v;
    };
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const val = () => inline ?? value();
    switch (flag) {
      case '--machine': case '-m': req.machines.push(val()); break;
      case '--peer': case '-p': req.peers.push(val()); break;
      case '--mesh': req.mesh = true; break;
      case '-w': case '--write': file = val(); break;
      case '--filter': case '-f': req.filter = val(); break;
      case '-c': case '--count': {
        const v = val();
        if (!/^[1-9][0-9]*$/.test(v)) throw new Error(`-c: a number of packets ≥ 1, not "${v}"`);
        req.count = Number(v);
        break;
      }
      default:
        if (a.startsWith('-') && a !== '-') throw new Error(`unknown option ${a}\n${CAPTURE_USAGE}`);
        hosts.push(a);
    }
  }
  if (hosts.length !== 1) throw new Error(`${hosts.length === 0 ? 'name the host' : `one host, not ${hosts.join(' ')}`}\n${CAPTURE_USAGE}`);
  if (req.machines.length === 0 && req.peers.length === 0 && !req.mesh) throw new Error(`what to capture: --machine ID, --peer NAME or --mesh\n${CAPTURE_USAGE}`);
  if (file === undefined) throw new Error(`-w FILE.pcapng (or -w - for stdout)\n${CAPTURE_USAGE}`);
  parseFilter(req.filter); // a bad filter is refused here, before anything is opened
  return { host: hosts[0], file, request: req };
}

/** Root, or the owner of the status socket: a clear refusal for anyone else. */
function checkAccess(path: string, host: string): void {
  const uid = process.getuid?.() ?? 0;
  let owner: number;
  try {
    owner = statSync(path).uid;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') throw new Error(`${path}: permission denied: capture needs root or the owner of the status socket`);
    throw new Error(`no running \`sixpn up\` for host ${host} (${path}: ${code === 'ENOENT' ? 'no such socket' : code})`);
  }
  if (uid !== 0 && uid !== owner) throw new Error(`${path}: capture needs root or the owner of the status socket (uid ${owner}; you are uid ${uid})`);
}

export async function capture(argv: string[]): Promise<number> {
  const args = parseCaptureArgs(argv);
  const path = statusSocketPath(args.host);
  checkAccess(path, args.host);
  const toStdout = args.file === '-';
  const fd = toStdout ? 1 : openSync(args.file, 'w', 0o600);
  const where = toStdout ? 'stdout' : args.file;
  const out = (b: Uint8Array) => {
    let at = 0;
    while (at < b.length) at += writeSync(fd, b, at, b.length - at);
  };
  const startMicros = Date.now() * 1000;
  out(sectionHeader('sixpn capture', `host ${args.host}`));
  const names: string[] = []; // local interface index → name
  const local = new Map<number, number>(); // the host's interface id → index in this file
  let written = 0;
  let stats: CaptureStats = { captured: 0, dropped: 0, perInterface: {} };
  let error: string | undefined;
  let said = false;
  const reader = new FrameReader();

  const socket = connect(path);
  const done = new Promise<void>((resolve, reject) => {
    socket.on('connect', () => socket.write(`capture ${JSON.stringify(args.request)}\n`));
    socket.on('error', (e) => reject(new Error(`${path}: ${e.message}`)));
    socket.on('close', () => resolve());
    socket.on('data', (chunk: Buffer) => {
      const blocks: Uint8Array[] = [];
      for (const f of reader.push(chunk)) {
        if (f.type === FRAME_INTERFACE) {
          local.set(f.id, names.length);
          names.push(f.name);
          blocks.push(interfaceDescription(f.name, `sixpn host ${args.host}`));
        } else if (f.type === FRAME_PACKET) {
          const i = local.get(f.iface);
          if (i === undefined || (args.request.count > 0 && written >= args.request.count)) continue;
          blocks.push(enhancedPacket(i, f.micros, f.data, f.origLen, f.direction));
          written++;
        } else if (f.type === FRAME_STATS) {
          stats = f.stats;
          if (!said) {
            said = true;
            console.error(`sixpn capture: host ${args.host}: ${names.join(', ') || 'the mesh'} → ${where}${args.request.filter ? ` (filter: ${args.request.filter})` : ''}; Ctrl-C to stop`);
          }
        } else if (f.type === FRAME_END) {
          if (f.error !== undefined) error = f.error;
        }
      }
      if (blocks.length > 0) out(Buffer.concat(blocks));
      if (args.request.count > 0 && written >= args.request.count) socket.destroy();
    });
  });
  const stop = () => socket.destroy();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await done;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (error !== undefined) {
    if (!toStdout) closeSync(fd);
    throw new Error(error);
  }
  const now = Date.now() * 1000;
  out(Buffer.concat(names.map((_, i) => {
    const id = [...local].find(([, x]) => x === i)?.[0] ?? i;
    const c = stats.perInterface[String(id)] ?? { captured: 0, dropped: 0 };
    return interfaceStatistics(i, now, { startMicros, received: c.captured + c.dropped, dropped: c.dropped });
  })));
  if (!toStdout) closeSync(fd);
  console.error(`sixpn capture: ${written} packets written to ${where}; ${stats.dropped} dropped by the host (its capture queue was full)`);
  return 0;
}

// The one logger of both programs (`sixpn up`, `sixpn-wg`), on pino.
//
// Why pino: it writes one JSON object per line (what log shippers parse), serializes fast enough
// to stay off the packet path's profile, and its child loggers carry bindings (`{ machine }`,
// `{ peer }`, `{ org }`) into every line without the caller formatting them. Its dependencies are
// small and it needs no build step.
//
//   const log = createLogger('sixpn', { name: `sixpn[${host}]`, defaultLevel: 'info' });
//   const mlog = log.child({ machine: m.id, app: m.app, org: m.org });
//   mlog.error('TUN read failed', { err: e.message });
//
// Output goes to stderr. When stderr is not a terminal (a service, a file, a pipe), every line is
// JSON: {"level":"error","time":"…","name":"sixpn[ord1]","machine":"…","msg":"…"}. On a terminal,
// the same record is printed for a person: `2026-12-01T… ERROR sixpn[ord1] machine=… msg`.
// LOG_LEVEL=debug|verbose|info|error|silent (verbose is debug; unknown values: the default).
// Keys are never logged: fields named like a key are replaced by "[redacted]" (pino's redact).
//
// Cores never import pino: they take the `Logger` interface (`import type`), which a test can
// fake with three functions and `child`.
import { writeSync } from 'node:fs';
import { pino, type Logger as PinoLogger } from 'pino';

/** The fields of a log line besides its message: the object it concerns (machine, peer, org, …). */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** What a module needs to log; `child` binds fields (the machine, peer or org) to every line. */
export interface Logger {
  error(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export type LogLevel = 'debug' | 'info' | 'error' | 'silent';

export interface LoggerOptions {
  /** The `name` of every line (e.g. `sixpn[ord1]`); default the program name. */
  name?: string;
  /** The level when LOG_LEVEL is unset or unknown. */
  defaultLevel?: LogLevel;
  /** Overrides LOG_LEVEL (tests). */
  level?: string;
  /** Readable lines instead of JSON; default: whether stderr is a terminal. */
  pretty?: boolean;
  /** Where lines go (tests); default stderr. */
  write?: (line: string) => void;
}

const REDACT = ['privateKey', 'presharedKey', 'key', '*.privateKey', '*.presharedKey'];

/** LOG_LEVEL as a level: debug (or verbose), info, error, silent; else `fallback`. */
export function parseLogLevel(value: string | undefined, fallback: LogLevel): LogLevel {
  if (value === 'debug' || value === 'verbose') return 'debug';
  if (value === 'info' || value === 'error' || value === 'silent') return value;
  return fallback;
}

/** The logger of a program: JSON lines off a terminal, readable lines on one. */
export function createLogger(program: string, opts: LoggerOptions = {}): Logger {
  const level = parseLogLevel(opts.level ?? process.env.LOG_LEVEL, opts.defaultLevel ?? 'info');
  const pretty = opts.pretty ?? process.stderr.isTTY === true;
  const write = opts.write ?? ((line: string) => void writeSync(2, line));
  const stream = { write: pretty ? (line: string) => write(readable(line)) : write };
  const p = pino(
    {
      name: opts.name ?? program,
      level,
      base: undefined, // no pid and hostname in every line
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    stream,
  );
  return new PinoAdapter(p);
}

/** A logger that drops everything (tests, tools). */
export const silentLogger: Logger = {
  error: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
};

class PinoAdapter implements Logger {
  readonly #p: PinoLogger;

  constructor(p: PinoLogger) {
    this.#p = p;
  }

  error(msg: string, fields?: LogFields): void {
    if (fields === undefined) this.#p.error(msg);
    else this.#p.error(fields, msg);
  }

  info(msg: string, fields?: LogFields): void {
    if (fields === undefined) this.#p.info(msg);
    else this.#p.info(fields, msg);
  }

  debug(msg: string, fields?: LogFields): void {
    if (fields === undefined) this.#p.debug(msg);
    else this.#p.debug(fields, msg);
  }

  child(fields: LogFields): Logger {
    return new PinoAdapter(this.#p.child(fields));
  }
}

/** One JSON line as a person reads it: time, LEVEL, name, the other fields as key=value, message. */
function readable(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, name, msg, ...rest } = rec;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${String(time)} ${String(level).toUpperCase()} ${String(name)}${fields.length ? ' ' + fields.join(' ') : ''}: ${String(msg)}\n`;
}

// What a `sixpn demo` made, and its removal: the demo's own cleanup, and `sixpn demo down` for
// one left running by `--keep` (its record is DEMO_STATE_FILE, root's). Everything the demo
// makes lives in its namespaces (veths, TUNs, the bridge, processes started in them) or is
// named here: the `sixpn up` processes, /etc/netns entries, UAPI and status sockets, its files.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { STATUS_DIR, readStatus } from '../host/status.ts';

const pexec = promisify(execFile);
/** The record of a demo left running by `sixpn demo --keep`. */
export const DEMO_STATE_FILE = join(STATUS_DIR, 'demo.json');

export interface DemoState {
  tag: string;
  /** its files (keys, configs, topology, logs); every process it started has it in its command line */
  dir: string;
  startedUnixMs: number;
  pids: number[];
  namespaces: string[];
  /** UAPI sockets and other files to remove */
  paths: string[];
  /** the status sockets of its hosts: removed when no process answers on them any more */
  statusSockets: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function nsPids(ns: string): Promise<number[]> {
  try {
    const { stdout } = await pexec('ip', ['netns', 'pids', ns]);
    return stdout.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number);
  } catch {
    return [];
  }
}

/** Whether pid runs and its command line names the demo's directory (not a recycled pid). */
function ours(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').some((a) => a.startsWith(dir));
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const namespaceExists = (ns: string) => existsSync(join('/run/netns', ns));

/** Is the demo of `s` still (partly) there: one of its processes or namespaces. */
export function demoRunning(s: DemoState): boolean {
  return s.pids.some((p) => ours(p, s.dir)) || s.namespaces.some(namespaceExists);
}

/** The record of the kept demo, or undefined (none, or unreadable). */
export function readDemoState(file = DEMO_STATE_FILE): DemoState | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DemoState;
  } catch {
    return undefined;
  }
}

export function writeDemoState(s: DemoState, file = DEMO_STATE_FILE): void {
  mkdirSync(STATUS_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
}

/**
 * Removes what the demo of `s` made: its processes (SIGTERM, then SIGKILL after 2 s), every
 * process left in its namespaces, the namespaces (and with them their interfaces), its paths and
 * its directory. Returns what it did, counted.
 */
export async function teardownDemo(s: DemoState): Promise<{ processes: number; namespaces: number; paths: number }> {
  const mine = s.pids.filter((p) => ours(p, s.dir));
  for (const p of mine) signal(p, 'SIGTERM');
  const end = Date.now() + 2000;
  while (mine.some(alive) && Date.now() < end) await sleep(50);
  for (const p of mine) if (alive(p)) signal(p, 'SIGKILL');
  let processes = mine.length;
  let namespaces = 0;
  for (const ns of s.namespaces) {
    if (!namespaceExists(ns)) continue;
    for (const pid of await nsPids(ns)) {
      signal(pid, 'SIGKILL');
      processes++;
    }
  }
  for (const ns of s.namespaces) {
    if (!namespaceExists(ns)) continue;
    await pexec('ip', ['netns', 'del', ns]).catch(() => undefined);
    namespaces++;
  }
  let paths = 0;
  for (const p of [...s.paths, ...s.namespaces.map((ns) => join('/etc/netns', ns))]) {
    if (!existsSync(p)) continue;
    rmSync(p, { recursive: true, force: true });
    paths++;
  }
  for (const p of s.statusSockets ?? []) {
    if (!existsSync(p) || (await readStatus(p)) !== undefined) continue; // a live host of that name is another's
    rmSync(p, { force: true });
    paths++;
  }
  rmSync(s.dir, { recursive: true, force: true });
  return { processes, namespaces, paths };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** `sixpn demo down`: removes the demo `sixpn demo --keep` left running. */
export async function demoDown(file = DEMO_STATE_FILE): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('sixpn demo down: run as root (it removes network namespaces)');
    return 1;
  }
  const s = readDemoState(file);
  if (s === undefined) {
    console.error(`sixpn demo down: no kept demo (nothing at ${file})`);
    return 1;
  }
  const done = await teardownDemo(s);
  rmSync(file, { force: true });
  console.log(`sixpn demo down: demo ${s.tag} removed: ${done.processes} processes stopped, ${done.namespaces} namespaces (with their interfaces) and ${done.paths} files removed`);
  return 0;
}

/** The refusal of a second `--keep`, or undefined when none runs (a stale record is dropped). */
export function keptDemoRefusal(file = DEMO_STATE_FILE): string | undefined {
  const s = readDemoState(file);
  if (s === undefined) return undefined;
  if (!demoRunning(s)) {
    rmSync(file, { force: true });
    return undefined;
  }
  return `sixpn demo: a kept demo (${s.tag}, started ${new Date(s.startedUnixMs).toISOString()}) is still running; end it first with:  sixpn demo down`;
}

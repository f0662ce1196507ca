// The tree's layering (docs/ARCHITECTURE.md), checked on the source itself:
//   1. imports go only downward: programs (src/cli) → edge (src/host, src/tun, the UAPI socket,
//      the logger) → cores (everything else); a type-only import of src/log.ts (the Logger
//      interface) is allowed from anywhere;
//   2. no core imports src/tun or node:fs, node:net, node:dgram, node:child_process;
//   3. no file in src/ is longer than LINE_LIMIT lines;
//   4. every top-level entry of src/ has a layer (a new folder is placed here and in the docs).
// Exceptions (to rule 3 only) are listed below, each with why it is there and what ends it; keep
// them few.
import test from 'ava';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const LINE_LIMIT = 500;

type Layer = 'core' | 'edge' | 'program';
const RANK: Record<Layer, number> = { core: 0, edge: 1, program: 2 };

// Every top-level entry of src/ and its layer; a file may override its folder's (FILE_LAYER).
const TOP_LAYER: Record<string, Layer> = {
  'bytes.ts': 'core', // the byte readers: a leaf
  'log.ts': 'edge', // pino and stderr; cores take `import type { Logger }` only
  metrics: 'edge', // prom-client and the HTTP server of /metrics, used by both programs
  'keylog.ts': 'edge', // the opt-in Wireshark key log file of both programs
  noise: 'core',
  ipv6: 'core',
  wg: 'core',
  uapi: 'core', // the protocol; its socket is FILE_LAYER below
  router: 'core',
  nat66: 'core',
  dns: 'core',
  topology: 'core',
  offload: 'core', // virtio_net_hdr, GSO cutting and GRO coalescing over buffers
  capture: 'core', // sixpn capture's pcapng writer, --filter and stream frames
  tun: 'edge',
  host: 'edge',
  store: 'edge', // the topology stores' I/O: the file (read, write, watch) and etcd
  cli: 'program',
};
const FILE_LAYER: Record<string, Layer> = {
  'src/uapi/server.ts': 'edge', // the unix socket /var/run/wireguard/IFNAME.sock
};

const IO_MODULES = new Set(['node:fs', 'node:fs/promises', 'node:net', 'node:dgram', 'node:child_process']);

// Files over LINE_LIMIT (rule 3).
const SIZE_EXCEPTIONS: Record<string, string> = {
  'src/tun/native/sixpn_native.c': 'all native code in one file, by design (DESIGN.md "Native code")',
};

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|c|h)$/.test(name)) out.push(relative(ROOT, p).split('\\').join('/'));
  }
  return out;
}

const FILES = walk(join(ROOT, 'src'));
const TS_FILES = FILES.filter((f) => f.endsWith('.ts'));

function layerOf(file: string): Layer | undefined {
  return FILE_LAYER[file] ?? TOP_LAYER[file.split('/')[1]];
}

interface Import {
  spec: string;
  typeOnly: boolean;
  target: string | undefined; // src-relative path of a local import
}

// `import … from 'x'`, `export … from 'x'`, `import 'x'`, `import('x')`; comments stripped first.
function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: Import[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    const target = spec.startsWith('.') ? normalize(join(dirname(file), spec)).split('\\').join('/') : undefined;
    out.push({ spec, typeOnly, target });
  };
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;'"]*?\bfrom\s+['"]([^'"]+)['"]/gm)) add(m[2], m[1] !== undefined);
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) add(m[1], false);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1], false);
  return out;
}

test('every top-level entry of src/ has a layer', (t) => {
  const unknown = readdirSync(join(ROOT, 'src')).filter((name) => TOP_LAYER[name] === undefined);
  t.deepEqual(unknown, [], 'place it in TOP_LAYER here and in docs/ARCHITECTURE.md');
});

test('imports go only downward: programs → edge → cores', (t) => {
  const bad: string[] = [];
  for (const file of TS_FILES) {
    const from = layerOf(file);
    if (from === undefined) continue; // reported by the test above
    for (const imp of importsOf(file)) {
      if (imp.target === undefined || !imp.target.startsWith('src/')) continue;
      const to = layerOf(imp.target);
      if (to === undefined || RANK[to] <= RANK[from]) continue;
      if (imp.typeOnly && imp.target === 'src/log.ts') continue; // the Logger interface
      bad.push(`${file} (${from}) imports ${imp.target} (${to})`);
    }
  }
  t.deepEqual(bad, []);
});

test('no core imports src/tun or node:fs, node:net, node:dgram, node:child_process', (t) => {
  const bad: string[] = [];
  for (const file of TS_FILES) {
    if (layerOf(file) !== 'core') continue;
    for (const imp of importsOf(file)) {
      if (IO_MODULES.has(imp.spec) || imp.target?.startsWith('src/tun/')) bad.push(`${file} imports ${imp.spec}`);
    }
  }
  t.deepEqual(bad, []);
});

test(`no file in src/ is longer than ${LINE_LIMIT} lines`, (t) => {
  const long: string[] = [];
  for (const file of FILES) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n').length - 1;
    if (lines > LINE_LIMIT && SIZE_EXCEPTIONS[file] === undefined) long.push(`${file}: ${lines} lines`);
  }
  t.deepEqual(long, []);
});

// An exception whose file is gone or back under the limit fails here, so the list cannot outlive
// its reasons: remove the entry in the same change that makes it unneeded.
test('the size exceptions are still needed', (t) => {
  const stale = Object.keys(SIZE_EXCEPTIONS).filter(
    (file) => !FILES.includes(file) || readFileSync(join(ROOT, file), 'utf8').split('\n').length - 1 <= LINE_LIMIT,
  );
  t.deepEqual(stale, [], 'SIZE_EXCEPTIONS no longer needed: remove them');
});

test('the import scanner sees the kinds of import the tree uses', (t) => {
  // a known runtime import, a known type-only one and a known re-export
  const host = importsOf('src/host/sixpn-host.ts');
  t.true(host.some((i) => i.target === 'src/router/router.ts' && !i.typeOnly));
  t.true(host.some((i) => i.target === 'src/log.ts' && i.typeOnly));
  t.true(importsOf('src/ipv6/index.ts').some((i) => i.target === 'src/bytes.ts'));
});

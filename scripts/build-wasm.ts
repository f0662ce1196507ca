// npm run build:wasm — compiles src/noise/wasm/chacha20poly1305.ts (AssemblyScript) into
// src/noise/wasm/chacha20poly1305.wasm with the exactly pinned `assemblyscript` devDependency.
// The output is deterministic: test/noise-wasm.test.ts rebuilds into a temporary directory and
// compares the bytes with the checked-in file.
//
//   node scripts/build-wasm.ts [--out DIR]     (default: src/noise/wasm)
import asc from 'assemblyscript/asc';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = path.join(ROOT, 'src/noise/wasm/chacha20poly1305.ts');

// Options that define the binary; the memory is imported and shared so that worker threads
// can use the same WebAssembly.Memory (maximum 16384 pages = 1 GiB).
export const ASC_FLAGS = [
  '-O3',
  '--converge',
  '--noAssert',
  '--runtime', 'stub',
  '--enable', 'simd',
  '--enable', 'threads',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory', '1',
  '--maximumMemory', '16384',
];

export async function buildWasm(outDir: string): Promise<string> {
  const out = path.join(outDir, 'chacha20poly1305.wasm');
  const { error, stderr } = await asc.main([SOURCE, '-o', out, ...ASC_FLAGS]);
  if (error) throw new Error(`asc failed: ${error.message}\n${stderr.toString()}`);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--out');
  const dir = i > 0 ? path.resolve(process.argv[i + 1]) : path.dirname(SOURCE);
  console.log(`wrote ${await buildWasm(dir)}`);
}

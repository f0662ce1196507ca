// The fuzzing harness's pieces: a target's shape, the corpus on disk (fuzz/corpus/<target>/),
// and byte mutations as a fast-check arbitrary, so a failing input shrinks to a small one.
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));

/**
 * One fuzz target. `run` takes one input and throws when something is wrong: an exception from
 * the code under test (a crash) or a broken invariant. A target keeps its state (a device, a
 * NAT table) across inputs, as the program does across packets; `reset` starts it afresh.
 */
export interface FuzzTarget {
  readonly name: string;
  /** Inputs from the fixtures and the code itself, mutated by the arbitrary. */
  readonly seeds: Uint8Array[];
  /** The input generator: mutated seeds and corpus entries, plus the target's own shapes. */
  arbitrary(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array>;
  run(input: Uint8Array): void;
  reset(): void;
}

/** Targets are made asynchronously (fixtures are read from disk). */
export type TargetFactory = () => Promise<FuzzTarget>;

/** The corpus of a target: every file under fuzz/corpus/<name>/ (kept crashes and seeds). */
export function readCorpus(name: string): Array<{ file: string; bytes: Uint8Array }> {
  const dir = join(CORPUS_DIR, name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().map((f) => ({ file: join(dir, f), bytes: new Uint8Array(readFileSync(join(dir, f))) }));
}

/** Keeps an input in the corpus (named by its hash); returns the file. */
export function saveToCorpus(name: string, bytes: Uint8Array, prefix: string): string {
  const dir = join(CORPUS_DIR, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${prefix}-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`);
  writeFileSync(file, bytes);
  return file;
}

// ---- mutations ----

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; n: number }
  | { op: 'truncate'; at: number }
  | { op: 'repeat'; at: number; n: number; times: number }
  | { op: 'interesting'; at: number; width: 1 | 2 | 4; value: number };

// values that sit on boundaries: lengths, counts, offsets, pointers
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x7fff, 0x8000, 0xc000, 0xffff, 0x7fffffff, 0xffffffff];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 32 }), times: fc.integer({ min: 1, max: 40 }) }),
  fc.record({
    op: fc.constant('interesting' as const), at: fc.nat(), width: fc.constantFrom(1 as const, 2 as const, 4 as const),
    value: fc.constantFrom(...INTERESTING),
  }),
);

function apply(input: Uint8Array, ms: readonly Mutation[], maxLength: number): Uint8Array {
  let b = input;
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + (m.op === 'insert' ? 1 : 0));
    switch (m.op) {
      case 'flip':
        if (b.length > 0) (b = b.slice())[at] ^= 1 << m.bit;
        break;
      case 'set':
        if (b.length > 0) (b = b.slice())[at] = m.value;
        break;
      case 'insert': {
        const o = new Uint8Array(b.length + m.bytes.length);
        o.set(b.subarray(0, at));
        o.set(m.bytes, at);
        o.set(b.subarray(at), at + m.bytes.length);
        b = o;
        break;
      }
      case 'delete': {
        const end = Math.min(b.length, at + m.n);
        const o = new Uint8Array(b.length - (end - at));
        o.set(b.subarray(0, at));
        o.set(b.subarray(end), at);
        b = o;
        break;
      }
      case 'truncate':
        b = b.slice(0, at);
        break;
      case 'repeat': {
        const chunk = b.subarray(at, Math.min(b.length, at + m.n));
        const o = new Uint8Array(b.length + chunk.length * m.times);
        o.set(b.subarray(0, at));
        for (let i = 0; i < m.times; i++) o.set(chunk, at + i * chunk.length);
        o.set(b.subarray(at), at + chunk.length * m.times);
        b = o;
        break;
      }
      case 'interesting':
        b = b.slice();
        for (let i = 0; i < m.width && at + i < b.length; i++) b[at + i] = (m.value >>> (8 * (m.width - 1 - i))) & 0xff;
        break;
    }
  }
  return b.length > maxLength ? b.subarray(0, maxLength) : b;
}

/** A seed (or corpus entry) with 0–8 mutations; random bytes now and then. */
export function mutatedBytes(seeds: readonly Uint8Array[], maxLength = 4096): fc.Arbitrary<Uint8Array> {
  const fromSeed = fc
    .tuple(fc.nat(Math.max(0, seeds.length - 1)), fc.array(mutation, { maxLength: 8 }))
    .map(([i, ms]) => apply(seeds[i] ?? new Uint8Array(0), ms, maxLength));
  if (seeds.length === 0) return fc.uint8Array({ maxLength });
  return fc.oneof({ arbitrary: fromSeed, weight: 8 }, { arbitrary: fc.uint8Array({ maxLength: 256 }), weight: 1 });
}

/** A tag byte in front of an input (a target with several entry points picks one by it). */
export function tagged(tag: number, body: Uint8Array): Uint8Array {
  const o = new Uint8Array(body.length + 1);
  o[0] = tag;
  o.set(body, 1);
  return o;
}

export const utf8 = new TextEncoder();
export const fromUtf8 = new TextDecoder('utf-8', { fatal: false });

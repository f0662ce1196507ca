// Runs one fuzz target: the corpus replayed first (every kept input must pass), then fast-check
// for a time budget in rounds. A failing input is shrunk by fast-check and kept in the corpus
// (fuzz/corpus/<target>/crash-<hash>.bin) so it is replayed from then on. The heap is sampled
// as it runs (peak) and measured after a full GC at the end of every round (growth).
import fc from 'fast-check';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readCorpus, saveToCorpus, type TargetFactory } from './lib.ts';

setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

export interface FuzzResult {
  target: string;
  runs: number;
  corpus: number;
  failures: Array<{ error: string; input: string; saved?: string }>;
  /** Heap used after a full GC at the end of each round, MB. */
  roundsHeapMb: number[];
  peakHeapMb: number;
  seconds: number;
}

export interface FuzzOptions {
  ms: number;
  seed?: number;
  rounds?: number;
  /** Keep failing inputs in fuzz/corpus (the CLI does; the test suite does not). */
  save?: boolean;
}

const MB = 1024 * 1024;
let peak = 0;
let sampleCountdown = 0;
function sampleHeap(): void {
  if (--sampleCountdown > 0) return;
  sampleCountdown = 256;
  const used = getHeapStatistics().used_heap_size;
  if (used > peak) peak = used;
}

const hex = (b: Uint8Array) => Buffer.from(b.subarray(0, 512)).toString('hex') + (b.length > 512 ? `… (${b.length} bytes)` : '');

export async function fuzzTarget(name: string, make: TargetFactory, opts: FuzzOptions): Promise<FuzzResult> {
  const t0 = performance.now();
  peak = 0;
  const target = await make();
  const result: FuzzResult = { target: name, runs: 0, corpus: 0, failures: [], roundsHeapMb: [], peakHeapMb: 0, seconds: 0 };
  // 1. the corpus: kept crashes and seeds, each run on a fresh target
  const corpus = readCorpus(name);
  for (const { file, bytes } of corpus) {
    target.reset();
    try {
      target.run(bytes);
    } catch (err) {
      result.failures.push({ error: `${file}: ${(err as Error).stack ?? err}`, input: hex(bytes) });
    }
  }
  result.corpus = corpus.length;
  target.reset();
  for (const s of target.seeds) {
    try {
      target.run(s);
    } catch (err) {
      result.failures.push({ error: `seed: ${(err as Error).stack ?? err}`, input: hex(s) });
    }
  }
  if (result.failures.length > 0) return finish();

  // 2. fast-check over mutated seeds and corpus entries and the target's own shapes
  const arb = target.arbitrary([...target.seeds, ...corpus.map((c) => c.bytes)]);
  const rounds = Math.max(1, opts.rounds ?? 4);
  const perRound = opts.ms / rounds;
  for (let r = 0; r < rounds && result.failures.length === 0; r++) {
    target.reset();
    let runs = 0;
    const prop = fc.property(arb, (input) => {
      runs++;
      sampleHeap();
      target.run(input);
    });
    const out = fc.check(prop, {
      numRuns: Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: perRound,
      markInterruptAsFailure: false,
      seed: (opts.seed ?? Date.now()) + r,
      // shrinking a stateful target: a bounded effort
      endOnFailure: false,
      timeout: 5000,
    });
    result.runs += runs;
    if (out.failed && out.counterexample !== null) {
      const input = out.counterexample[0];
      const saved = opts.save ? saveToCorpus(name, input, 'crash') : undefined;
      const err = out.errorInstance as Error | undefined;
      result.failures.push({ error: `${err?.stack ?? out.failures}\n(seed ${out.seed}, path ${out.counterexamplePath})`, input: hex(input), saved });
    }
    target.reset();
    fullGc();
    result.roundsHeapMb.push(getHeapStatistics().used_heap_size / MB);
  }
  return finish();

  function finish(): FuzzResult {
    result.peakHeapMb = Math.max(peak, getHeapStatistics().used_heap_size) / MB;
    result.seconds = (performance.now() - t0) / 1000;
    return result;
  }
}

/**
 * Heap growth without bound: after a full GC, the last round holds much more than the first
 * (rounds start from a reset target, so what a round leaves behind is a leak).
 */
export function heapGrowth(r: FuzzResult): number {
  if (r.roundsHeapMb.length < 2) return 0;
  return r.roundsHeapMb[r.roundsHeapMb.length - 1] - r.roundsHeapMb[0];
}
export const HEAP_GROWTH_LIMIT_MB = 64;

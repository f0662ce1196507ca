// A short pass of every fuzz target (fuzz/targets; `npm run fuzz -- --seconds N` runs them
// longer): the corpus in fuzz/corpus replayed, then a few seconds of fast-check each. No crash,
// no broken invariant, no heap growth between the rounds.
import test from 'ava';
import { HEAP_GROWTH_LIMIT_MB, fuzzTarget, heapGrowth } from '../fuzz/engine.ts';
import { TARGETS } from '../fuzz/targets/index.ts';

const MS = Number(process.env.SIXPN_FUZZ_MS ?? 2500);

for (const [name, make] of TARGETS) {
  test.serial(`fuzz ${name}: the corpus, then ${MS / 1000} s of fast-check, without a crash`, async (t) => {
    t.timeout(MS * 4 + 60_000);
    const r = await fuzzTarget(name, make, { ms: MS, rounds: 2, seed: Date.now() });
    t.log(`${r.runs} runs, corpus ${r.corpus}, heap after rounds ${r.roundsHeapMb.map((m) => m.toFixed(0)).join('/')} MB, peak ${r.peakHeapMb.toFixed(0)} MB`);
    for (const f of r.failures) t.log(`${f.error}\ninput: ${f.input}`);
    t.is(r.failures.length, 0);
    t.true(r.corpus > 0, 'the corpus is there');
    t.true(r.runs > 100, `${r.runs} runs`);
    t.true(heapGrowth(r) < HEAP_GROWTH_LIMIT_MB, `heap grew ${heapGrowth(r).toFixed(0)} MB`);
  });
}

// npm run fuzz -- [--seconds N] [--target NAME[,NAME]] [--seed S] [--write-seeds]
// Every target (fuzz/targets) for a share of N seconds (default 180): the corpus in
// fuzz/corpus/<target>/ first, then fast-check. Failing inputs are kept in the corpus
// (crash-*.bin); --write-seeds puts the targets' seeds there too (seed-*.bin). Prints
// one line per target and a JSON line; exits 1 on a crash, an unhandled rejection or heap
// growth past HEAP_GROWTH_LIMIT_MB.
import { HEAP_GROWTH_LIMIT_MB, fuzzTarget, heapGrowth } from './engine.ts';
import { saveToCorpus } from './lib.ts';
import { TARGETS } from './targets/index.ts';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
};
const seconds = Number(arg('--seconds') ?? 180);
const names = (arg('--target') ?? [...TARGETS.keys()].join(',')).split(',');
const seed = arg('--seed') === undefined ? Date.now() : Number(arg('--seed'));
for (const n of names) if (!TARGETS.has(n)) throw new Error(`unknown target "${n}" (targets: ${[...TARGETS.keys()].join(', ')})`);
if (!(seconds > 0)) throw new Error('--seconds: a positive number');

if (args.includes('--write-seeds')) {
  for (const n of names) {
    const t = await TARGETS.get(n)!();
    for (const s of t.seeds) saveToCorpus(n, s, 'seed');
    console.log(`${n}: ${t.seeds.length} seeds in fuzz/corpus/${n}/`);
  }
  process.exit(0);
}

let unhandled = 0;
process.on('unhandledRejection', (why) => {
  unhandled++;
  console.error('unhandled rejection:', why);
});

console.log(`fuzz: ${names.join(', ')} for ${seconds} s, seed ${seed} (node ${process.version})`);
const rounds = Math.max(2, Math.min(10, Math.round(seconds / names.length / 5)));
let failed = 0;
let runs = 0;
let peak = 0;
let growth = 0;
for (const name of names) {
  const r = await fuzzTarget(name, TARGETS.get(name)!, { ms: (seconds * 1000) / names.length, seed, rounds, save: true });
  const g = heapGrowth(r);
  runs += r.runs;
  peak = Math.max(peak, r.peakHeapMb);
  growth = Math.max(growth, g);
  const grew = g > HEAP_GROWTH_LIMIT_MB;
  console.log(`${r.failures.length === 0 && !grew ? 'ok  ' : 'FAIL'} ${name.padEnd(7)} ${String(r.runs).padStart(9)} runs  corpus ${r.corpus}  ` +
    `heap after rounds ${r.roundsHeapMb.map((m) => m.toFixed(0)).join('/')} MB, peak ${r.peakHeapMb.toFixed(0)} MB  (${r.seconds.toFixed(1)} s)`);
  for (const f of r.failures) console.log(`  ${f.error}\n  input: ${f.input}${f.saved ? `\n  kept in ${f.saved}` : ''}`);
  if (grew) console.log(`  heap grew ${g.toFixed(0)} MB over the run (limit ${HEAP_GROWTH_LIMIT_MB})`);
  failed += r.failures.length + (grew ? 1 : 0);
}
await new Promise((r) => setImmediate(r));
console.log(`peak heap ${peak.toFixed(0)} MB, rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB`);
console.log(JSON.stringify({ targets: names.length, runs, crashes: failed, unhandled_rejections: unhandled, peak_heap_mb: Math.round(peak), heap_growth_mb: Math.round(growth) }));
process.exitCode = failed === 0 && unhandled === 0 ? 0 : 1;

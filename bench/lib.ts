// Shared benchmark helpers: timing, medians and the machine description every result carries.
import * as os from 'node:os';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `body(n)` doing n operations until at least `minMs` elapsed; returns operations per second. */
export function opsPerSecond(body: (n: number) => void, minMs = 250): number {
  let n = 1;
  body(1); // warm up
  for (;;) {
    const t0 = process.hrtime.bigint();
    body(n);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= minMs) return (n * 1000) / ms;
    n = ms < 1 ? n * 10 : Math.ceil((n * minMs * 1.2) / ms);
  }
}

/** Median over `runs` of `measure()`. */
export function medianOf(runs: number, measure: () => number): number {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(measure());
  return median(xs);
}

export function machineDescription(): string {
  const cpus = os.cpus();
  return [
    `machine: ${cpus[0]?.model ?? 'unknown cpu'} × ${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()} ${os.arch()}`,
    `node: ${process.version} (v8 ${process.versions.v8}, openssl ${process.versions.openssl})`,
  ].join('\n');
}

export function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(1);
}

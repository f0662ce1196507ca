// The sliding replay window (RFC 6479): a numbered table of cases, then random sequences
// checked against a naive model.
import test from 'ava';
import { REPLAY_WINDOW_SIZE as W, ReplayWindow } from './helpers/noise.ts';

const REJ_HI = 0xffffffff;
const REJ_LO = 0xffffdfff; // REJECT_AFTER_MESSAGES = 2^64 - 2^13 - 1

// [case, hi, lo, expected]
const table: Array<[number, number, number, boolean]> = [
  [1, 0, 0, true], // first counter
  [2, 0, 1, true],
  [3, 0, 1, false], // replay
  [4, 0, 9, true], // skip ahead
  [5, 0, 8, true], // out of order, within window
  [6, 0, 7, true],
  [7, 0, 7, false], // replay of an out-of-order one
  [8, 0, W, true],
  [9, 0, W + 1, true], // newest is now W+1
  [10, 0, 0, false], // W+1 behind: too old
  [11, 0, 1, false], // exactly W behind, but seen
  [12, 0, 2, true], // W-1 behind, unseen
  [13, 0, 2, false],
  [14, 0, 3 * W, true], // jump further than the ring
  [15, 0, 2 * W, true], // exactly W behind: the window's edge, accepted
  [16, 0, 2 * W - 1, false], // W+1 behind: beyond the edge
  [17, 0, 2 * W, false], // edge, already seen
  [18, 0, 3 * W - 1, true],
  [19, 0, 0xffffffff, true], // just below 2^32
  [20, 1, 0, true], // 2^32: the high half counts
  [21, 0, 0xffffffff, false], // replay across the 2^32 boundary
  [22, 0, 0xfffffffe, true], // 2 behind across the boundary
  [23, 1, 1, true],
  [24, 0, 0xffffffff - W + 2, true], // W behind 2^32 + 1
  [25, 0, 0xffffffff - W + 1, false], // W+1 behind
  [26, REJ_HI, REJ_LO - 2, true], // far ahead: just below REJECT_AFTER_MESSAGES - 1
  [27, REJ_HI, REJ_LO - 1, true], // REJECT_AFTER_MESSAGES - 1: the last usable counter
  [28, REJ_HI, REJ_LO, false], // REJECT_AFTER_MESSAGES itself
  [29, REJ_HI, 0xffffffff, false], // 2^64 - 1
  [30, REJ_HI, REJ_LO - 1, false], // replay of the last usable counter
  [31, REJ_HI, REJ_LO - 3, true], // 2 behind the newest
  [32, 0, 5, false], // hugely old
];

test('numbered table of counter cases', (t) => {
  const w = new ReplayWindow();
  for (const [n, hi, lo, expected] of table) {
    t.is(w.validate(hi, lo), expected, `case ${n}: counter ${hi}:${lo}`);
  }
});

test('the window is at least 2048 messages', (t) => {
  t.true(W >= 2048);
  const w = new ReplayWindow();
  t.true(w.validate(0, 5000));
  for (let c = 5000 - 2048; c < 5000; c++) t.true(w.validate(0, c), `${c}`);
});

test('random sequences agree with a naive model (seen set + newest counter)', (t) => {
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let run = 0; run < 40; run++) {
    const w = new ReplayWindow();
    const seen = new Set<number>();
    let last = 0;
    // start some runs near 2^32 to cross the boundary of the halves
    let c = run % 4 === 0 ? 2 ** 32 - 3000 : 0;
    for (let i = 0; i < 5000; i++) {
      const r = rand();
      if (r < 0.5) c = c + 1;
      else if (r < 0.8) c = Math.max(0, c - Math.floor(rand() * (W + 200)));
      else if (r < 0.95) c = c + Math.floor(rand() * 3 * W);
      else c = last; // exact replay of the newest
      const expected = !seen.has(c) && (c > last || last - c <= W);
      const got = w.validate(Math.floor(c / 2 ** 32), c >>> 0);
      if (got !== expected) return t.fail(`run ${run} step ${i}: counter ${c} last ${last}: got ${got}`);
      if (got) {
        seen.add(c);
        if (c > last) last = c;
      }
    }
  }
  t.pass();
});

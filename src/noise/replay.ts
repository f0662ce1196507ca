// Sliding-window replay protection for transport counters (whitepaper §5.4.6, RFC 6479).
// A ring of REPLAY_RING_WORDS 32-bit words: bit (c mod 32) of word ((c >> 5) mod RING) records
// counter c. Moving forward clears the words the window slides over, one word at a time, so the
// cost does not depend on how far the counter jumps. Counters are 64-bit; they arrive as two
// 32-bit halves and are compared exactly (no precision is lost above 2^53).
import {
  REJECT_AFTER_MESSAGES_HI,
  REJECT_AFTER_MESSAGES_LO,
  REPLAY_RING_WORDS,
  REPLAY_WINDOW_SIZE,
} from './constants.ts';

const RING_MASK = REPLAY_RING_WORDS - 1;
const TWO32 = 2 ** 32;

export class ReplayWindow {
  private readonly ring = new Uint32Array(REPLAY_RING_WORDS);
  private lastHi = 0;
  private lastLo = 0;

  reset(): void {
    this.ring.fill(0);
    this.lastHi = 0;
    this.lastLo = 0;
  }

  /**
   * Validates counter (hi, lo) of an authenticated message and records it.
   * False when it was seen already, is more than REPLAY_WINDOW_SIZE behind the newest counter,
   * or is at or past REJECT_AFTER_MESSAGES. Call only after the message authenticated.
   */
  validate(hi: number, lo: number): boolean {
    if (hi === REJECT_AFTER_MESSAGES_HI && lo >= REJECT_AFTER_MESSAGES_LO) return false;
    const { lastHi, lastLo, ring } = this;
    if (hi > lastHi || (hi === lastHi && lo > lastLo)) {
      // Move the window forward: clear the words between the last block and the new one.
      const blocksAhead = (hi - lastHi) * (TWO32 / 32) + ((lo >>> 5) - (lastLo >>> 5));
      const clear = blocksAhead > REPLAY_RING_WORDS ? REPLAY_RING_WORDS : blocksAhead;
      const current = lastLo >>> 5;
      for (let i = 1; i <= clear; i++) ring[(current + i) & RING_MASK] = 0;
      this.lastHi = hi;
      this.lastLo = lo;
    } else {
      // Behind (or equal to) the newest counter: too old if more than the window size behind.
      const behind = (lastHi - hi) * TWO32 + (lastLo - lo);
      if (behind > REPLAY_WINDOW_SIZE) return false;
    }
    const word = (lo >>> 5) & RING_MASK;
    const bit = 1 << (lo & 31);
    const old = ring[word];
    if ((old & bit) !== 0) return false;
    ring[word] = old | bit;
    return true;
  }
}

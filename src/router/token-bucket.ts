// A token bucket (RFC 4443 §2.4 f names it for ICMPv6 error rate limiting): `perSecond` tokens
// a second on average, at most `burst` at once; the caller's clock in milliseconds.
export class TokenBucket {
  private readonly perMs: number;
  private readonly burst: number;
  private tokens: number;
  private refilledAt = -Infinity;

  /** `perSecond` Infinity: every take() succeeds. */
  constructor(perSecond: number, burst: number) {
    this.perMs = perSecond / 1000;
    this.burst = burst;
    this.tokens = burst;
  }

  /** Takes one token at time `nowMs`; false when the bucket is empty. */
  take(nowMs: number): boolean {
    if (this.perMs === Infinity) return true;
    if (nowMs > this.refilledAt) {
      this.tokens = Math.min(this.burst, this.tokens + (nowMs - this.refilledAt) * this.perMs);
      this.refilledAt = nowMs;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

// Per-source token buckets for handshake initiations under load (wireguard-go ratelimiter):
// 20 per second, bursts of 5, keyed by the source IP address. Entries idle for a second are
// swept on the device tick; the table is bounded.
const PACKETS_PER_SECOND = 20;
const PACKETS_BURSTABLE = 5;
const PACKET_COST_MS = 1000 / PACKETS_PER_SECOND;
const MAX_TOKENS_MS = PACKET_COST_MS * PACKETS_BURSTABLE;
const MAX_ENTRIES = 65_536;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; lastMs: number }>();

  /** True when a handshake from `source` (IP bytes) may be processed now. */
  allow(source: Uint8Array, nowMs: number): boolean {
    const key = Buffer.from(source.buffer, source.byteOffset, source.length).toString('hex');
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= MAX_ENTRIES) return false;
      b = { tokens: MAX_TOKENS_MS - PACKET_COST_MS, lastMs: nowMs };
      this.buckets.set(key, b);
      return true;
    }
    b.tokens = Math.min(MAX_TOKENS_MS, b.tokens + (nowMs - b.lastMs));
    b.lastMs = nowMs;
    if (b.tokens < PACKET_COST_MS) return false;
    b.tokens -= PACKET_COST_MS;
    return true;
  }

  sweep(nowMs: number): void {
    for (const [k, b] of this.buckets) if (nowMs - b.lastMs > 1000) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * A token bucket: `ratePerSecond` tokens refill continuously up to `burst`.
 * `take()` is O(1) with no timers, cheap enough to run per message. One per
 * connection, so a class: its state in four fields, `take` shared on the
 * prototype (a closure per bucket cost about three times the memory).
 */
export interface TokenBucket {
  /** Takes `cost` tokens (default 1); false when there are not enough. */
  take(cost?: number, now?: number): boolean;
}

class Bucket implements TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(cost = 1, now = performance.now()): boolean {
    this.tokens = Math.min(
      this.burst,
      this.tokens + ((now - this.last) * this.ratePerSecond) / 1000,
    );
    this.last = now;
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}

export const createTokenBucket = (ratePerSecond: number, burst: number): TokenBucket =>
  new Bucket(ratePerSecond, burst);

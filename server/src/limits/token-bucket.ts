/**
 * A token bucket: `ratePerSecond` tokens refill continuously up to `burst`.
 * `take()` is O(1) with no timers, cheap enough to run per message.
 */
export interface TokenBucket {
  /** Takes `cost` tokens (default 1); false when there are not enough. */
  take(cost?: number, now?: number): boolean;
}

export const createTokenBucket = (ratePerSecond: number, burst: number): TokenBucket => {
  let tokens = burst;
  let last = performance.now();
  return {
    take(cost = 1, now = performance.now()) {
      tokens = Math.min(burst, tokens + ((now - last) * ratePerSecond) / 1000);
      last = now;
      if (tokens < cost) return false;
      tokens -= cost;
      return true;
    },
  };
};

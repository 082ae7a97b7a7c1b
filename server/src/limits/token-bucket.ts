/**
 * A token bucket: `ratePerSecond` tokens refill continuously up to `burst`.
 * `take()` is O(1) with no timers, cheap enough to run per message.
 */
export interface TokenBucket {
  /** Takes one token; false when the bucket is empty. */
  take(now?: number): boolean;
}

export const createTokenBucket = (ratePerSecond: number, burst: number): TokenBucket => {
  let tokens = burst;
  let last = performance.now();
  return {
    take(now = performance.now()) {
      tokens = Math.min(burst, tokens + ((now - last) * ratePerSecond) / 1000);
      last = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
};

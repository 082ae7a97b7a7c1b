/**
 * Reconnect delays: exponential with "equal jitter" (half fixed, half random), so
 * nodes restarted together do not redial in lockstep, yet never retry at once.
 */
export interface Backoff {
  /** The delay before the next attempt; each call doubles the ceiling up to maxMs. */
  next(): number;
  /** After a successful connection: start again from baseMs. */
  reset(): void;
}

export const createBackoff = (
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): Backoff => {
  let attempt = 0;
  return {
    next() {
      const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt++, 30));
      return Math.round(ceiling / 2 + random() * (ceiling / 2));
    },
    reset() {
      attempt = 0;
    },
  };
};

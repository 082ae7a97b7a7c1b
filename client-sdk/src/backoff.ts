/**
 * Reconnect delays: exponential backoff with jitter, so that a thousand clients
 * dropped by one node restart do not come back in the same millisecond.
 *
 * The delay for attempt n (0-based) is `cap = min(maxMs, baseMs * 2^n)`, of which
 * the fraction `jitter` is random: `cap * (1 - jitter + jitter * random())`. With
 * the default jitter of 0.5 every delay lies in [cap/2, cap] ("equal jitter"): the
 * clients spread over half the window, and none retries sooner than cap/2.
 */

export interface BackoffOptions {
  /** Delay cap of the first retry, in ms. @default 500 */
  readonly baseMs?: number;
  /** Largest delay between two attempts, in ms. @default 30000 */
  readonly maxMs?: number;
  /** Fraction of each delay that is random, 0 to 1. @default 0.5 */
  readonly jitter?: number;
  /** Source of randomness in [0, 1); inject a seeded one to replay a test. @default Math.random */
  readonly random?: () => number;
}

export interface Backoff {
  /** Delay before retry number `attempt` (0 = first retry). */
  delayMs(attempt: number): number;
  /** A short random delay in [0, baseMs), for prompt but spread-out reconnects (node shutting down). */
  promptMs(): number;
}

export const BACKOFF_DEFAULTS = { baseMs: 500, maxMs: 30_000, jitter: 0.5 } as const;

export const createBackoff = (options: BackoffOptions = {}): Backoff => {
  const baseMs = options.baseMs ?? BACKOFF_DEFAULTS.baseMs;
  const maxMs = options.maxMs ?? BACKOFF_DEFAULTS.maxMs;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? BACKOFF_DEFAULTS.jitter));
  const random = options.random ?? Math.random;
  if (!(baseMs >= 0) || !(maxMs >= baseMs))
    throw new RangeError('backoff needs 0 <= baseMs <= maxMs');
  return {
    delayMs(attempt) {
      // 2^n overflows to Infinity for large n; min() keeps the cap finite.
      const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
      return Math.round(cap * (1 - jitter + jitter * random()));
    },
    promptMs: () => Math.round(baseMs * random()),
  };
};

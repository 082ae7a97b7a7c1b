/**
 * A token bucket: `ratePerSecond` tokens refill continuously up to `burst`.
 * `take()` is O(1) with no timers, cheap enough to run per message. One per
 * connection, so a class: its state in a few fields, `take` shared on the
 * prototype (a closure per bucket cost about three times the memory).
 *
 * Stalls of the node's event loop (see stall-clock.ts) raise the cap: the
 * tokens a client earned while the node could not read its messages may all be
 * spent on the messages it queued meanwhile, for CREDIT_MS after the stall.
 * Time alone never raises the cap, so a client that is merely quiet gains no
 * more than `burst`.
 */
import { stalledMs } from './stall-clock.js';

export interface TokenBucket {
  /**
   * Takes `cost` tokens (default 1); false when there are not enough. `now` and
   * `stalled` (the stall clock's reading) are for tests.
   */
  take(cost?: number, now?: number, stalled?: number): boolean;
}

/** How long tokens earned during a stall may be kept above the burst. */
const CREDIT_MS = 2000;

class Bucket implements TokenBucket {
  private tokens: number;
  private last: number;
  private stalledSeen: number;
  /** Until when tokens above `burst` (earned during a stall) may be kept. */
  private creditUntil = 0;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
    stalled: number,
  ) {
    this.tokens = burst;
    this.last = now;
    this.stalledSeen = stalled;
  }

  take(cost = 1, now = performance.now(), stalled = stalledMs()): boolean {
    const credit = ((stalled - this.stalledSeen) * this.ratePerSecond) / 1000;
    if (credit > 0) this.creditUntil = now + CREDIT_MS;
    const kept = now < this.creditUntil ? Math.max(this.burst, this.tokens) : this.burst;
    this.tokens = Math.min(
      kept + credit,
      this.tokens + ((now - this.last) * this.ratePerSecond) / 1000,
    );
    this.last = now;
    this.stalledSeen = stalled;
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}

export const createTokenBucket = (
  ratePerSecond: number,
  burst: number,
  now = performance.now(),
  stalled = stalledMs(),
): TokenBucket => new Bucket(ratePerSecond, burst, now, stalled);

/**
 * Redial delays of the mesh: the SDK's backoff (exponential, "equal jitter": half
 * fixed, half random), so nodes restarted together do not redial in lockstep,
 * yet never retry at once. This adds only the attempt counter a link keeps.
 */
import { createBackoff as createDelays } from '@stateweave/client/protocol';

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
  const delays = createDelays({ baseMs, maxMs, jitter: 0.5, random });
  let attempt = 0;
  return {
    next: () => delays.delayMs(attempt++),
    reset() {
      attempt = 0;
    },
  };
};

/**
 * The nonces of signed node-to-node requests this node accepted, so that each
 * is accepted once: a captured request replayed inside the clock window is
 * refused. Memory is bounded: a nonce is forgotten once its timestamp is out of
 * the window (the timestamp check refuses it from then on), and past
 * `maxEntries` the oldest is forgotten early — and every request signed at or
 * before the newest timestamp forgotten early is refused from then on, so a
 * forgotten nonce can never be replayed (under a flood of valid requests the
 * cost is refusing late ones, never accepting a replay). Only requests whose
 * MAC checked out are recorded: filling the cache needs the peer secret.
 */

export interface SeenNonces {
  /** True the first time `sender` uses `nonce` (signed at `signedAtMs`); false for a replay. */
  claim(sender: string, nonce: string, signedAtMs: number): boolean;
  readonly size: number;
}

export interface SeenNoncesOptions {
  /** How long a timestamp stays acceptable after it was signed (the clock skew accepted). */
  readonly windowMs: number;
  /** @default 100000 */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/** Expired entries dropped per claim at most (amortised; the cap bounds the rest). */
const EXPIRE_PER_CLAIM = 64;

export const createSeenNonces = (options: SeenNoncesOptions): SeenNonces => {
  const maxEntries = options.maxEntries ?? 100_000;
  const now = options.now ?? Date.now;
  /** `sender\nnonce` → signed-at, in insertion order (roughly by time). */
  const seen = new Map<string, number>();
  /** Requests signed at or before this are refused: their nonces may have been forgotten. */
  let floorMs = -Infinity;

  const forgetOldest = (): void => {
    const [key, signedAt] = seen.entries().next().value!;
    seen.delete(key);
    floorMs = Math.max(floorMs, signedAt);
  };

  return {
    claim(sender, nonce, signedAtMs) {
      const expired = now() - options.windowMs;
      for (let i = 0; i < EXPIRE_PER_CLAIM && seen.size > 0; i++) {
        if (seen.values().next().value! >= expired) break;
        forgetOldest();
      }
      if (signedAtMs <= floorMs) return false;
      const key = `${sender}\n${nonce}`;
      if (seen.has(key)) return false;
      while (seen.size >= maxEntries) forgetOldest();
      seen.set(key, signedAtMs);
      return true;
    },
    get size() {
      return seen.size;
    },
  };
};

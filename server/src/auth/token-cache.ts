/**
 * Remembers verified tokens, so a client that sends the same token with every
 * HTTP call pays for one signature check, not one per call (it was ~12% of the
 * node's CPU in the functions benchmark).
 *
 * An entry lives until the token expires, and at most `ttlMs`: that bounds how
 * long a token signed by a key since removed from the JWKS keeps working.
 * Only successes are kept; a bounded Map in insertion order drops the oldest.
 */
import type { Grant } from './grant.js';
import type { TokenVerifier } from './tokens.js';

export interface TokenCacheOptions {
  /** Tokens remembered at most. @default 10000 */
  readonly max?: number;
  /** Longest an entry is trusted without a fresh check. @default 60000 */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

export const cacheVerifiedTokens = (
  verifier: TokenVerifier,
  options: TokenCacheOptions = {},
): TokenVerifier => {
  const max = options.max ?? 10_000;
  const ttlMs = options.ttlMs ?? 60_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { grant: Grant; until: number }>();
  return {
    async verify(token) {
      const hit = cache.get(token);
      if (hit && hit.until > now()) return hit.grant;
      cache.delete(token);
      const grant = await verifier.verify(token);
      const until = Math.min(grant.expiresAt ?? Infinity, now() + ttlMs);
      if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      cache.set(token, { grant, until });
      return grant;
    },
  };
};

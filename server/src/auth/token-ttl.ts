/**
 * Token lifetimes: `--max-token-ttl` caps how far in the future a token's `exp`
 * may lie, since there is no revocation (a leaked token is good until `exp`).
 * Durations are seconds or a number with s, m, h or d, as `stateweave token --ttl`.
 */

/** Allowance for the issuer's clock running ahead of the node's. */
export const TTL_CLOCK_SKEW_SECONDS = 60;

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90`, `30m`, `1h`, `7d` as seconds; throws on anything else. */
export const parseTtlSeconds = (text: string): number => {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  const seconds = match ? Number(match[1]) * UNITS[match[2] || 's']! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0)
    throw new Error(`${JSON.stringify(text)} is not a lifetime (seconds, or 30m, 1h, 7d)`);
  return seconds;
};

/** Whether a token expiring at `exp` (epoch seconds) lies within `maxTtlSeconds` of `nowMs`. */
export const withinMaxTtl = (exp: number, maxTtlSeconds: number, nowMs = Date.now()): boolean =>
  exp - nowMs / 1000 <= maxTtlSeconds + TTL_CLOCK_SKEW_SECONDS;

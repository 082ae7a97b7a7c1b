/**
 * The bench's statistics: quantiles, medians, the bootstrap interval of a ratio of
 * medians, and the verdict on a target. Pure functions of numbers, unit-tested
 * (server/test/bench-stats.test.ts).
 */
import * as prng from 'lib0/prng';

/** The q-quantile of an ascending array (nearest rank); NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

/** Median of the finite values of `xs` (NaN and ±Infinity are a failed run's); NaN when none. */
export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? (v[m] ?? NaN) : ((v[m - 1] ?? NaN) + (v[m] ?? NaN)) / 2;
}

export interface Interval {
  lo: number;
  hi: number;
}

/** Resamples, and the seed: fixed, so a re-render of saved runs gives the same figures. */
export const BOOTSTRAP_RESAMPLES = 2000;
const BOOTSTRAP_SEED = 0x5eed;
/** Fewer runs than this on either side give no interval. */
export const MIN_RUNS_FOR_INTERVAL = 3;

/**
 * 95% interval of median(xs) / median(ys) by bootstrap over runs (2,000 resamples of
 * each side, fixed seed). Why: one run's p99 on a shared VM swings 3–5× between runs,
 * so a ratio of medians alone cannot say "faster" — only an interval that stays on
 * one side of a target can. Undefined with fewer than 3 finite values on a side.
 */
export function ratioInterval(
  xs: readonly number[] | undefined,
  ys: readonly number[] | undefined,
): Interval | undefined {
  const a = (xs ?? []).filter(Number.isFinite);
  const b = (ys ?? []).filter(Number.isFinite);
  if (a.length < MIN_RUNS_FOR_INTERVAL || b.length < MIN_RUNS_FOR_INTERVAL) return undefined;
  const generator = prng.create(BOOTSTRAP_SEED);
  const rand = (): number => prng.real53(generator);
  const resample = (v: number[]): number[] => v.map(() => v[Math.floor(rand() * v.length)] ?? NaN);
  const ratios: number[] = [];
  for (let i = 0; i < BOOTSTRAP_RESAMPLES; i++) {
    const d = median(resample(b));
    if (d > 0) ratios.push(median(resample(a)) / d);
  }
  ratios.sort((x, y) => x - y);
  return { lo: quantile(ratios, 0.025), hi: quantile(ratios, 0.975) };
}

/** A target's verdict; '–' when there are not runs enough for an interval. */
export type Verdict = 'met' | 'missed' | 'undecided' | '–';

/**
 * An issue target on the ratio a ÷ b: met when the whole 95% interval is on the
 * good side of `bound`, missed when it is all on the other, undecided otherwise.
 */
export function targetVerdict(
  aRuns: readonly number[] | undefined,
  bRuns: readonly number[] | undefined,
  bound: number,
  higherIsBetter = false,
): Verdict {
  const ci = ratioInterval(aRuns, bRuns);
  if (!ci) return '–';
  const [good, bad] = higherIsBetter
    ? [ci.lo >= bound, ci.hi < bound]
    : [ci.hi <= bound, ci.lo > bound];
  return good ? 'met' : bad ? 'missed' : 'undecided';
}

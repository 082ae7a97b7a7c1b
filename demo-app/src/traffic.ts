/**
 * Simulated traffic: `perSecond` calls a second for `seconds` seconds, each
 * timed in the browser, with the figures reported as the run goes. Bounded:
 * both numbers are clamped, and a call that would exceed `MAX_IN_FLIGHT`
 * unanswered calls is skipped (and counted), so a slow node is not buried.
 */
import { percentile } from './latency.js';

export const LIMITS = {
  perSecond: { min: 1, max: 100 },
  seconds: { min: 1, max: 30 },
} as const;
export const MAX_IN_FLIGHT = 100;
/** How long the run waits for the last answers after sending stopped. */
const DRAIN_MS = 15_000;
const TICK_MS = 100;

export interface TrafficPlan {
  readonly perSecond: number;
  readonly seconds: number;
}

export interface TrafficProgress {
  readonly running: boolean;
  readonly planned: number;
  readonly sent: number;
  readonly answered: number;
  readonly failed: number;
  readonly skipped: number;
  /** Answered calls per second of the run so far. */
  readonly callsPerSecond: number;
  readonly p50: number | undefined;
  readonly p99: number | undefined;
  readonly lastError: string | undefined;
}

export const clampPlan = ({ perSecond, seconds }: TrafficPlan): TrafficPlan => {
  const clamp = (x: number, { min, max }: { min: number; max: number }) =>
    Math.min(max, Math.max(min, Math.round(Number.isFinite(x) ? x : min)));
  return { perSecond: clamp(perSecond, LIMITS.perSecond), seconds: clamp(seconds, LIMITS.seconds) };
};

/**
 * Runs the plan; `call(i)` makes the i-th call. Resolves with the final figures
 * when every call is answered (or after a drain limit), or soon after `signal` aborts.
 */
export const runTraffic = (
  wanted: TrafficPlan,
  call: (i: number) => Promise<unknown>,
  onProgress: (progress: TrafficProgress) => void,
  signal: AbortSignal,
): Promise<TrafficProgress> => {
  const plan = clampPlan(wanted);
  const planned = plan.perSecond * plan.seconds;
  const started = performance.now();
  const latencies: number[] = [];
  let sent = 0;
  let failed = 0;
  let skipped = 0;
  let inFlight = 0;
  let lastError: string | undefined;
  let lastAnswerAt = started;

  const progress = (running: boolean): TrafficProgress => {
    const sorted = [...latencies].sort((a, b) => a - b);
    const seconds = Math.max(
      0.001,
      ((running ? performance.now() : lastAnswerAt) - started) / 1000,
    );
    return {
      running,
      planned,
      sent,
      answered: latencies.length,
      failed,
      skipped,
      callsPerSecond: latencies.length / seconds,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      lastError,
    };
  };

  const launch = (i: number): void => {
    inFlight++;
    sent++;
    const t0 = performance.now();
    void call(i)
      .then(
        () => {
          lastAnswerAt = performance.now();
          latencies.push(lastAnswerAt - t0);
        },
        (err: unknown) => {
          failed++;
          lastError = (err as Error).message;
        },
      )
      .finally(() => inFlight--);
  };

  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.min(planned, Math.floor((elapsed / 1000) * plan.perSecond));
      while (!signal.aborted && sent + skipped < due) {
        if (inFlight >= MAX_IN_FLIGHT) skipped++;
        else launch(sent + skipped);
      }
      const finished = sent + skipped >= planned && inFlight === 0;
      const gaveUp = elapsed > plan.seconds * 1000 + DRAIN_MS;
      if (finished || gaveUp || signal.aborted) {
        clearInterval(timer);
        const last = progress(false);
        onProgress(last);
        resolve(last);
      } else onProgress(progress(true));
    }, TICK_MS);
  });
};

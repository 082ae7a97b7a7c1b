/**
 * Call latencies as the browser measures them: the last samples of one kind of
 * call, their percentiles, as an external store (`useSyncExternalStore`) whose
 * snapshot changes only when a sample is added.
 */

/** The p-th percentile (0..100) of ascending `sorted`, nearest rank; undefined when empty. */
export const percentile = (sorted: readonly number[], p: number): number | undefined => {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
};

export interface LatencySnapshot {
  /** The last samples in ms, oldest first. */
  readonly samples: readonly number[];
  /** How many samples were ever added (the x of the latest is `total - 1`). */
  readonly total: number;
  readonly p50: number | undefined;
  readonly p99: number | undefined;
}

export interface LatencyLog {
  add(ms: number): void;
  subscribe(listener: () => void): () => void;
  get(): LatencySnapshot;
}

export const summarize = (samples: readonly number[], total: number): LatencySnapshot => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { samples, total, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
};

/** Keeps the last `keep` samples. */
export const createLatencyLog = (keep: number): LatencyLog => {
  let samples: number[] = [];
  let total = 0;
  let snapshot = summarize(samples, total);
  const listeners = new Set<() => void>();
  return {
    add(ms) {
      samples = [...samples.slice(Math.max(0, samples.length - keep + 1)), ms];
      total++;
      snapshot = summarize(samples, total);
      for (const listener of listeners) listener();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get: () => snapshot,
  };
};

/** Milliseconds as people read them: one decimal below 10 ms, whole above. */
export const formatMs = (ms: number): string =>
  (ms < 10 ? ms.toFixed(1) : Math.round(ms).toString()) + ' ms';

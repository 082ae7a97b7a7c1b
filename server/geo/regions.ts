/**
 * The regions of the harness and the one-way delays between them. Three
 * regions roughly like Frankfurt, Virginia and Singapore: one-way 40 ms between
 * eu and us, 75 ms between us and ap, 110 ms between eu and ap, and 1 ms inside
 * a region (client → node).
 */
export const REGIONS = ['eu', 'us', 'ap'] as const;
export type Region = (typeof REGIONS)[number];

export const INTRA_REGION_MS = 1;

const BETWEEN_MS: Record<string, number> = {
  'eu-us': 40,
  'ap-us': 75,
  'ap-eu': 110,
};

/** One-way delay from region `a` to region `b` (symmetric). */
export const oneWayMs = (a: Region, b: Region): number => {
  if (a === b) return INTRA_REGION_MS;
  const delay = BETWEEN_MS[[a, b].sort().join('-')];
  if (delay === undefined) throw new Error(`no delay between ${a} and ${b}`);
  return delay;
};

/** The region farthest from `from`. */
export const farthestFrom = (from: Region): Region =>
  [...REGIONS].sort((a, b) => oneWayMs(from, b) - oneWayMs(from, a))[0]!;

/** The delays as one line, for reports. */
export const describeDelays = (): string =>
  `one-way eu↔us ${oneWayMs('eu', 'us')} ms, us↔ap ${oneWayMs('us', 'ap')} ms, ` +
  `eu↔ap ${oneWayMs('eu', 'ap')} ms, inside a region ${INTRA_REGION_MS} ms`;

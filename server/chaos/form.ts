/** Which form of the suite runs: the short one (CI, ≤ 2 minutes) or the full one (docs/chaos.md). */
export interface Form {
  readonly full: boolean;
}

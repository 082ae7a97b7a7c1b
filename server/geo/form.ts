/** How long the harness runs: the short form (CI, a few seconds a scenario) or the full one. */
export interface GeoForm {
  readonly short: boolean;
}

/** `short` in the short form, `full` otherwise. */
export const pick = <T>(form: GeoForm, short: T, full: T): T => (form.short ? short : full);

/**
 * A skewed wall clock for one node process, for the chaos suite: preloaded with
 * `node --import` (NODE_OPTIONS), it shifts `Date.now()` and `new Date()` by
 * STATEWEAVE_CHAOS_CLOCK_SKEW_MS. `performance.now()` and timers keep running
 * as before, as they do on a machine whose wall clock is off. (libfaketime is
 * not installed here; the node has no clock option of its own, so this is how
 * its clock is skewed without touching its code.)
 */
const skewMs = Number(process.env.STATEWEAVE_CHAOS_CLOCK_SKEW_MS ?? 0);

if (Number.isFinite(skewMs) && skewMs !== 0) {
  const RealDate = globalThis.Date;
  const realNow = RealDate.now.bind(RealDate);
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + skewMs);
      else super(...(args as [string | number]));
    }
    static override now(): number {
      return realNow() + skewMs;
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}

export {};

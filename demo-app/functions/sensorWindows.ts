/**
 * The sensor join per 10 s window: the pairs `joinSensors` made whose sensor-a
 * reading was measured in the window, with their mean sum. `onStable` runs it once
 * every home of the stream's document holds what any home had when the window
 * closed, so the figures do not depend on which home computes them. Keyed by the
 * window's start; a reading that arrives after its window ran (an edge cut off
 * from every home) is picked up when the next window recounts the last few.
 */
import { defineFunction, type StableWindowInput } from '@stateweave/server/define';
import type { Pair, Reading } from './joinSensors.js';

/** One window's figures, in the map `windows` (by start, as a string). */
export interface SensorWindow {
  readonly start: number;
  readonly end: number;
  readonly readings: number;
  readonly pairs: number;
  /** Mean of the pairs' sums; null without pairs. */
  readonly meanSum: number | null;
}

const RECHECK = 6;

export default defineFunction({
  name: 'sensorWindows',
  on: 'sensors/*',
  onStable: { window: '10s' },
  handler({ doc }, { start, end }: StableWindowInput) {
    const readings = doc.getMap<Reading>('readings');
    const pairs = [...doc.getMap<Pair>('pairs').values()];
    const windows = doc.getMap<SensorWindow>('windows');
    const size = end - start;
    const inWindow = (t: number | undefined, s: number): boolean =>
      t !== undefined && t >= s && t < s + size;
    for (let k = RECHECK; k >= 0; k--) {
      const s = start - k * size;
      const previous = windows.get(String(s));
      if (k > 0 && !previous) continue; // only windows that ran are recounted
      const joined = pairs.filter((p) => inWindow(readings.get(p.a)?.t, s));
      const figures: SensorWindow = {
        start: s,
        end: s + size,
        readings: [...readings.values()].filter((r) => inWindow(r.t, s)).length,
        pairs: joined.length,
        meanSum: joined.length ? joined.reduce((sum, p) => sum + p.sum, 0) / joined.length : null,
      };
      if (JSON.stringify(previous) !== JSON.stringify(figures)) windows.set(String(s), figures);
    }
    return windows.get(String(start));
  },
});

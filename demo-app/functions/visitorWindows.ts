/**
 * Windowed visitor counts: for every 10 s window of a page, how many visitors were
 * first seen in it (`trackVisit` stores when, by the edge that took the visit).
 * `onStable` runs it once every home of the page's document holds what any home
 * had when the window closed, so whichever home computes it counts the same
 * visitors. Keyed by the window's start: a home that runs a window again (after
 * the primary moved) writes the same entry.
 *
 * Late visits: a visit written at an edge that was cut off from every home when
 * its window closed arrives after the window fired. Each run recounts the last
 * `RECHECK` windows and corrects an entry whose count grew (`corrections`).
 */
import { defineFunction, type StableWindowInput } from '@stateweave/server/define';

/** One window's figures, in the map `windows` (by start, as a string). */
export interface VisitorWindow {
  readonly start: number;
  readonly end: number;
  /** Visitors first seen in [start, end). */
  readonly newVisitors: number;
  /** Visitors first seen before `end`. */
  readonly total: number;
  /** Times a late visit changed this entry after it was first written. */
  readonly corrections: number;
}

const RECHECK = 6;

export default defineFunction({
  name: 'visitorWindows',
  on: 'analytics/*',
  onStable: { window: '10s' },
  handler({ doc }, { start, end }: StableWindowInput) {
    const seen = [...doc.getMap<number>('visitors').values()];
    const windows = doc.getMap<VisitorWindow>('windows');
    const size = end - start;
    const count = (from: number, to: number): number =>
      seen.filter((at) => at >= from && at < to).length;
    for (let k = RECHECK; k >= 0; k--) {
      const s = start - k * size;
      const previous = windows.get(String(s));
      if (k > 0 && !previous) continue; // only windows that ran are corrected
      const figures = {
        start: s,
        end: s + size,
        newVisitors: count(s, s + size),
        total: count(-Infinity, s + size),
      };
      if (!previous) windows.set(String(s), { ...figures, corrections: 0 });
      else if (previous.newVisitors !== figures.newVisitors || previous.total !== figures.total)
        windows.set(String(s), { ...figures, corrections: previous.corrections + 1 });
    }
    return { window: start, newVisitors: windows.get(String(start))?.newVisitors ?? 0 };
  },
});

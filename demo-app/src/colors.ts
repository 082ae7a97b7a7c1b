/**
 * A distinct colour per person on a document. Each tab starts from a colour
 * derived from its visitor id, and moves to the first free one whenever someone
 * present with a lower Yjs client id already shows it: two people who join at
 * the same moment settle without talking, because only the higher id moves.
 */
import type { Awareness } from '@stateweave/client';

const PALETTE = [
  '#e11d48',
  '#2563eb',
  '#16a34a',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#4d7c0f',
];

/** The i-th colour: the palette first, then hues a golden angle apart. */
export const colorAt = (i: number): string =>
  PALETTE[i] ?? `hsl(${Math.round((i * 137.508) % 360)} 70% 42%)`;

/** A starting index from a seed (stable per visitor). */
export const colorIndexFor = (seed: string): number => {
  let h = 0;
  for (const ch of seed) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % PALETTE.length;
};

interface UserState {
  user?: { name?: string; color?: string };
}

/**
 * Keeps `user.color` in this tab's awareness state distinct from everyone
 * present with a lower client id; calls `onColor` with every colour it takes.
 * Returns the function that stops it.
 */
export const keepDistinctColor = (
  awareness: Awareness,
  preferred: number,
  onColor: (color: string) => void,
): (() => void) => {
  const me = awareness.clientID;
  const check = (): void => {
    const local = awareness.getLocalState() as UserState | null;
    const mine = local?.user?.color;
    if (!local?.user || mine === undefined) return;
    const seniors = new Set<string>();
    const everyone = new Set<string>();
    for (const [id, state] of awareness.getStates()) {
      const color = (state as UserState).user?.color;
      if (id === me || color === undefined) continue;
      everyone.add(color);
      if (id < me) seniors.add(color);
    }
    if (!seniors.has(mine)) return;
    let i = preferred;
    while (everyone.has(colorAt(i)) || seniors.has(colorAt(i))) i++;
    const color = colorAt(i);
    awareness.setLocalStateField('user', { ...local.user, color, colorLight: `${color}33` });
    onColor(color);
  };
  awareness.on('change', check);
  check();
  return () => awareness.off('change', check);
};

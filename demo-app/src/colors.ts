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

/** `#rrggbb` of an HSL colour (s and l in 0–1): the caret extension accepts no other form. */
const hslToHex = (hue: number, s: number, l: number): string => {
  const a = s * Math.min(l, 1 - l);
  const channel = (n: number): string => {
    const k = (n + hue / 30) % 12;
    const v = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(v * 255)
      .toString(16)
      .padStart(2, '0');
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
};

/** The i-th colour: the palette first, then hues a golden angle apart (as `#rrggbb`). */
export const colorAt = (i: number): string =>
  PALETTE[i] ?? hslToHex(Math.round((i * 137.508) % 360), 0.7, 0.42);

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

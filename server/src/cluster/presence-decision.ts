/**
 * Where a document's users are, decided with hysteresis: the region whose
 * node leads the document's homes under `--placement presence`. Pure: the
 * same counts and clock give the same answer on every node.
 *
 * - A region *leads* when it has more active users than the current region,
 *   by at least one and by more than `margin` of the current region's count.
 * - A leader is adopted only after it has led for `dwellMs` without a break,
 *   and not sooner than `dwellMs` after the previous switch: users who come
 *   and go, or two regions level with each other, do not move the document.
 * - With no active user anywhere the choice stays; after `forgetMs` of that it
 *   is dropped (the document goes back to plain rendezvous placement), so the
 *   state held per document is bounded by the documents in use.
 */

export interface RegionChoice {
  /** The region that leads the homes; undefined: rendezvous placement, no region yet. */
  readonly region: string | undefined;
  /** When `region` was adopted (or this choice first made). */
  readonly since: number;
  /** A region that leads now, and since when without a break. */
  readonly challenger?: { readonly region: string; readonly since: number };
  /** Since when no region has had an active user. */
  readonly idleSince?: number;
}

export interface DecisionOptions {
  /** How long a challenger must lead, and the least time between two switches (ms). */
  readonly dwellMs: number;
  /** How far ahead a challenger must be, as a fraction of the current region's count. */
  readonly margin: number;
  /** How long a choice outlives the last active user (ms). */
  readonly forgetMs: number;
}

/** The region with the most users (ties: `current` if it is among them, else the first name). */
const strongest = (
  counts: ReadonlyMap<string, number>,
  current: string | undefined,
): [string, number] | undefined => {
  let best: [string, number] | undefined;
  for (const [region, n] of counts) {
    if (n <= 0) continue;
    if (
      !best ||
      n > best[1] ||
      (n === best[1] && best[0] !== current && (region === current || region < best[0]))
    )
      best = [region, n];
  }
  return best;
};

/** The next choice for a document given the active users per region now; undefined: none. */
export const decideRegion = (
  previous: RegionChoice | undefined,
  counts: ReadonlyMap<string, number>,
  now: number,
  options: DecisionOptions,
): RegionChoice | undefined => {
  const current = previous?.region;
  const best = strongest(counts, current);
  if (!best) {
    if (!previous) return undefined;
    const idleSince = previous.idleSince ?? now;
    if (now - idleSince >= options.forgetMs) return undefined;
    return { region: current, since: previous.since, idleSince };
  }
  const base: RegionChoice = { region: current, since: previous?.since ?? now };
  const [region, n] = best;
  if (region === current) return base;
  const currentCount = current === undefined ? 0 : (counts.get(current) ?? 0);
  const leads = n > currentCount && n > currentCount * (1 + options.margin);
  if (!leads) return base;
  const challenger =
    previous?.challenger?.region === region ? previous.challenger : { region, since: now };
  const settled = current === undefined || now - base.since >= options.dwellMs;
  if (now - challenger.since >= options.dwellMs && settled) return { region, since: now };
  return { ...base, challenger };
};

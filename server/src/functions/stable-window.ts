/**
 * The pure part of `onStable` windows (stable-windows.ts runs them): state
 * vectors compared pointwise, and the step that decides whether a closed time
 * window may fire. No I/O.
 *
 * A window [start, end) *closes* at `end`. The first round of the homes' state
 * vectors asked at or after `end` is its cut: their pointwise maximum, the
 * *frontier*, holds every update any home had when the window closed — all that
 * was written in it and reached a home. The window is *stable* once the pointwise
 * minimum of the homes' vectors (the *stable vector*: what every home has)
 * covers the frontier. Then any home that runs the window's function sees the
 * same writes for it, so the output is the same whichever node computes it.
 */
import * as Y from 'yjs';

/** A Yjs state vector: client id → number of structs of that client seen. */
export type Clocks = ReadonlyMap<number, number>;

/** Pointwise minimum: what every vector has (a client missing from one counts 0). */
export const minClocks = (vectors: readonly Clocks[]): Map<number, number> => {
  const out = new Map<number, number>();
  const [first, ...rest] = vectors;
  if (!first) return out;
  for (const [client, clock] of first) {
    let min = clock;
    for (const v of rest) min = Math.min(min, v.get(client) ?? 0);
    if (min > 0) out.set(client, min);
  }
  return out;
};

/** Pointwise maximum: what at least one vector has. */
export const maxClocks = (vectors: readonly Clocks[]): Map<number, number> => {
  const out = new Map<number, number>();
  for (const v of vectors)
    for (const [client, clock] of v) out.set(client, Math.max(out.get(client) ?? 0, clock));
  return out;
};

/** True when `have` has every client's clock of `need`. */
export const coversClocks = (have: Clocks, need: Clocks): boolean => {
  for (const [client, clock] of need) if ((have.get(client) ?? 0) < clock) return false;
  return true;
};

export const decodeClocks = (stateVector: Uint8Array): Map<number, number> =>
  Y.decodeStateVector(stateVector);

export const encodeClocks = (clocks: Clocks): Uint8Array => Y.encodeStateVector(new Map(clocks));

/** The start of the window of `windowMs` that holds `t` (windows are aligned to the epoch). */
export const windowStart = (t: number, windowMs: number): number =>
  Math.floor(t / windowMs) * windowMs;

/** The oldest window of one (function, document) that has not fired. */
export interface OpenWindow {
  readonly start: number;
  readonly end: number;
  /** The cut's maximum, once taken (from vectors asked at or after `end`). */
  readonly frontier: Clocks | undefined;
}

export type WindowStep =
  | { readonly kind: 'fire'; readonly window: OpenWindow & { readonly frontier: Clocks } }
  | {
      readonly kind: 'wait';
      /** `open`: before its end; `unreachable`: a home did not answer; `lagging`: a home lacks part of the frontier. */
      readonly why: 'open' | 'unreachable' | 'lagging';
      readonly window: OpenWindow;
    };

/**
 * Decides what to do with `window` at `now`, given every home's vector from
 * one round asked at or after the window's end (undefined when a home did not
 * answer, or no such round is there yet).
 */
export const stepWindow = (
  window: OpenWindow,
  now: number,
  homes: readonly Clocks[] | undefined,
): WindowStep => {
  if (now < window.end) return { kind: 'wait', why: 'open', window };
  if (!homes || homes.length === 0) return { kind: 'wait', why: 'unreachable', window };
  const frontier = window.frontier ?? maxClocks(homes);
  const cut = { ...window, frontier };
  return coversClocks(minClocks(homes), frontier)
    ? { kind: 'fire', window: cut }
    : { kind: 'wait', why: 'lagging', window: cut };
};

/** What a node stores per (function, document): the end of the last window fired, and its frontier. */
export interface FiredCursor {
  readonly end: number;
  readonly frontier: Clocks;
}

export const encodeCursor = (cursor: FiredCursor): Uint8Array =>
  new TextEncoder().encode(
    JSON.stringify({ end: cursor.end, frontier: [...cursor.frontier.entries()] }),
  );

/** The stored cursor, or undefined for bytes this code did not write. */
export const decodeCursor = (bytes: Uint8Array): FiredCursor | undefined => {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as {
      end?: unknown;
      frontier?: unknown;
    };
    if (typeof parsed.end !== 'number' || !Array.isArray(parsed.frontier)) return undefined;
    const frontier = new Map<number, number>();
    for (const pair of parsed.frontier as unknown[]) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'number' || typeof pair[1] !== 'number')
        return undefined;
      frontier.set(pair[0], pair[1]);
    }
    return { end: parsed.end, frontier };
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
};

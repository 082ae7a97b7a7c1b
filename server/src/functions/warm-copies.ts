/**
 * Which documents a worker keeps warm. Per worker, deployment version and
 * document, the state vector the sandbox's copy had after its last applied
 * invocation: the next one sends only the difference from the live document.
 * A task takes its entries out while it runs (until it is applied, the copy is
 * not known to match anything) and puts them back only when it was applied; a
 * worker keeps at most `limit` copies, the least recently used go first.
 */

/** A document copy lives in one version's context, so warmth is per version and document. */
export const warmKey = (version: string, doc: string): string => `${version}\0${doc}`;

export interface TakenCopies {
  /** Per key: the state vector of the worker's copy, or undefined when it has none. */
  readonly known: readonly (Uint8Array | undefined)[];
  /** Keys the worker should forget to stay within the limit. */
  readonly drop: readonly string[];
}

/** Takes `keys` out of a worker's warm set and picks what it must forget to make room. */
export const takeWarm = (
  warm: Map<string, Uint8Array>,
  keys: readonly string[],
  limit: number,
): TakenCopies => {
  const known = keys.map((key) => warm.get(key));
  for (const key of keys) warm.delete(key);
  const drop: string[] = [];
  for (const key of warm.keys()) {
    if (warm.size - drop.length < limit) break;
    drop.push(key);
  }
  for (const key of drop) warm.delete(key);
  return { known, drop };
};

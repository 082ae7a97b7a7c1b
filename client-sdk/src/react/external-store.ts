/**
 * A snapshot store for `useSyncExternalStore`: `read` runs on every change the
 * source reports, and the previous snapshot is kept when the new one is equal,
 * so React sees a stable reference and skips renders nothing changed for.
 */

export interface SnapshotStore<T> {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): T;
}

/** Shallow equality for arrays and plain objects; `Object.is` for anything else. */
export const shallowEqual = (a: unknown, b: unknown): boolean => {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false;
    for (const [key, value] of a) if (!b.has(key) || !Object.is(b.get(key), value)) return false;
    return true;
  }
  const keysA = Object.keys(a);
  if (keysA.length !== Object.keys(b).length) return false;
  const recA = a as Record<string, unknown>;
  const recB = b as Record<string, unknown>;
  return keysA.every((key) => Object.hasOwn(recB, key) && Object.is(recA[key], recB[key]));
};

/**
 * @param listen subscribes to the source; returns the unsubscribe function
 * @param read computes the current value (only after a change, never per render)
 */
export const createSnapshotStore = <T>(
  listen: (changed: () => void) => () => void,
  read: () => T,
  equal: (a: T, b: T) => boolean = shallowEqual,
): SnapshotStore<T> => {
  let snapshot = read();
  let dirty = false;
  return {
    subscribe(onChange) {
      // A change between render and subscribe would be missed: re-read once.
      dirty = true;
      return listen(() => {
        dirty = true;
        onChange();
      });
    },
    getSnapshot() {
      if (dirty) {
        dirty = false;
        const next = read();
        if (!equal(snapshot, next)) snapshot = next;
      }
      return snapshot;
    },
  };
};

/**
 * Hooks that re-render from a shared type: `useText`, `useMap`, `useArray`.
 * Each subscribes with `observe` (changes to the type itself, not inside nested
 * types) and hands React a snapshot that keeps its identity until the type
 * changes, as `useSyncExternalStore` requires (an equal re-read, e.g. right
 * after subscribing, keeps the old snapshot).
 */
import { useMemo, useSyncExternalStore } from 'react';
import type * as Y from 'yjs';
import { createSnapshotStore, type SnapshotStore } from './external-store.js';

type Observable = Y.Text | Y.Map<unknown> | Y.Array<unknown>;

const observeStore = <T>(type: Observable, read: () => T): SnapshotStore<T> =>
  createSnapshotStore((changed) => {
    type.observe(changed);
    return () => type.unobserve(changed);
  }, read);

const useObserved = <T>(type: Observable, read: () => T): T => {
  // `read` closes over `type`: the store is made again only for another type.
  const store = useMemo(() => observeStore(type, read), [type]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
};

/** The text of a `Y.Text`, re-rendering on every change. */
export const useText = (text: Y.Text): string => useObserved(text, () => text.toString());

/** The entries of a `Y.Map` as a read-only `Map` (a new one per change). */
export const useMap = <T>(map: Y.Map<T>): ReadonlyMap<string, T> =>
  useObserved(map as Y.Map<unknown>, () => new Map(map.entries()));

/** The items of a `Y.Array` (a new array per change). */
export const useArray = <T>(array: Y.Array<T>): readonly T[] =>
  useObserved(array as Y.Array<unknown>, () => array.toArray());

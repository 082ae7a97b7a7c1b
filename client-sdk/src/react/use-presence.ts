/**
 * Presence from a handle's `Awareness`: `useSelf` (this tab's state),
 * `useOthers` (everyone else's), `usePresence` (both, and a setter). They
 * re-render on awareness `change` events only, not on the periodic renewals
 * that keep a state alive.
 */
import { useCallback, useMemo, useSyncExternalStore } from 'react';
import type { DocHandle } from '../doc-handle.js';
import { createSnapshotStore, type SnapshotStore } from './external-store.js';

/** Another person's awareness state, with the Yjs client id it belongs to. */
export interface Peer<S> {
  readonly clientId: number;
  readonly state: S;
}

export interface Presence<S> {
  readonly self: S | null;
  readonly others: readonly Peer<S>[];
  /** Merges `fields` into this tab's state (`awareness.setLocalStateField` for each). */
  update(fields: Partial<S>): void;
}

const awarenessStore = <T>(handle: DocHandle, read: () => T): SnapshotStore<T> =>
  createSnapshotStore((changed) => {
    handle.awareness.on('change', changed);
    return () => handle.awareness.off('change', changed);
  }, read);

const readOthers = <S>(handle: DocHandle): readonly Peer<S>[] => {
  const peers: Peer<S>[] = [];
  for (const [clientId, state] of handle.awareness.getStates()) {
    if (clientId !== handle.doc.clientID) peers.push({ clientId, state: state as S });
  }
  return peers.sort((a, b) => a.clientId - b.clientId);
};

const samePeers = <S>(a: readonly Peer<S>[], b: readonly Peer<S>[]): boolean =>
  a.length === b.length &&
  a.every((peer, i) => peer.clientId === b[i]?.clientId && peer.state === b[i]?.state);

/** This tab's awareness state (`null` before anything is set, and after close). */
export const useSelf = <S extends object>(handle: DocHandle): S | null => {
  const store = useMemo(
    () => awarenessStore(handle, () => handle.awareness.getLocalState() as S | null),
    [handle],
  );
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
};

/** Everyone else with a state on this document, by client id. */
export const useOthers = <S extends object>(handle: DocHandle): readonly Peer<S>[] => {
  const store = useMemo(
    () =>
      createSnapshotStore(
        (changed) => {
          handle.awareness.on('change', changed);
          return () => handle.awareness.off('change', changed);
        },
        () => readOthers<S>(handle),
        samePeers,
      ),
    [handle],
  );
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
};

export const usePresence = <S extends object>(handle: DocHandle): Presence<S> => {
  const self = useSelf<S>(handle);
  const others = useOthers<S>(handle);
  const update = useCallback(
    (fields: Partial<S>) => {
      for (const [key, value] of Object.entries(fields))
        handle.awareness.setLocalStateField(key, value);
    },
    [handle],
  );
  return useMemo(() => ({ self, others, update }), [self, others, update]);
};

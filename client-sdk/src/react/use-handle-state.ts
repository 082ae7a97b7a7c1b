/**
 * `useStatus` and `useSaved`: what a person wants to see of a handle — is it
 * connected, and is everything I wrote stored on the node.
 */
import { useMemo, useSyncExternalStore } from 'react';
import type { ConnectionStatus } from '../connection.js';
import type { DocHandle } from '../doc-handle.js';
import type { StateweaveClientError } from '../errors.js';
import { createSnapshotStore } from './external-store.js';

export interface SavedState {
  /** Local updates the node has not yet acknowledged as stored. */
  readonly pending: number;
  /** The document synced at least once and nothing is pending. */
  readonly saved: boolean;
  /** true once the first handshake completed. */
  readonly synced: boolean;
  /** The latest error the handle reported (a refusal, a bad token…). */
  readonly error: StateweaveClientError | undefined;
}

/** Whether each handle has synced once: `isSynced` drops on every disconnect. */
const everSynced = new WeakSet<DocHandle>();

const useHandleStore = <T>(handle: DocHandle, read: () => T): T => {
  const store = useMemo(
    () =>
      createSnapshotStore((changed) => {
        const offs = [
          handle.on('status', changed),
          handle.on('pending', changed),
          handle.on('saved', changed),
          handle.on('synced', changed),
          handle.on('error', changed),
        ];
        // `synced` may have resolved before we subscribed (it emits no event again).
        let active = true;
        const settled = (): void => {
          if (active) changed();
        };
        void handle.synced.then(() => {
          everSynced.add(handle);
          settled();
        }, settled);
        return () => {
          active = false;
          for (const off of offs) off();
        };
      }, read),
    [handle], // `read` depends on the handle only
  );
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
};

const readSaved = (handle: DocHandle): SavedState => {
  if (handle.isSynced) everSynced.add(handle);
  const synced = everSynced.has(handle);
  return {
    pending: handle.pending,
    saved: synced && handle.pending === 0,
    synced,
    error: handle.lastError,
  };
};

/** The connection status: `connecting`, `connected`, `disconnected` or `offline`. */
export const useStatus = (handle: DocHandle): ConnectionStatus =>
  useHandleStore(handle, () => handle.status);

/** The pending count and whether everything is saved; re-renders as they change. */
export const useSaved = (handle: DocHandle): SavedState =>
  useHandleStore(handle, () => readSaved(handle));

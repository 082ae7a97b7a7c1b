/**
 * `useStatus` and `useSaved`: what a person wants to see of a handle — is it
 * connected, and is everything I wrote stored on the node.
 */
import { useEffect, useMemo, useRef, useSyncExternalStore } from 'react';
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
  /**
   * When the node last acknowledged everything pending (`Date.now()` of the
   * handle's latest `saved` event since a hook first watched it), or undefined.
   */
  readonly savedAt: number | undefined;
  /** How many `saved` events the handle emitted since a hook first watched it. */
  readonly saves: number;
}

export interface SavedOptions {
  /** Called on every `saved` event (the node stored everything pending), after render. */
  readonly onSaved?: (savedAt: number) => void;
}

/** Whether each handle has synced once: `isSynced` drops on every disconnect. */
const everSynced = new WeakSet<DocHandle>();
/** Each handle's `saved` events: counted once per handle, however many hooks watch it. */
const saveLog = new WeakMap<DocHandle, { at: number | undefined; count: number }>();
const logSaves = (handle: DocHandle): void => {
  if (saveLog.has(handle)) return;
  const log = { at: undefined as number | undefined, count: 0 };
  saveLog.set(handle, log);
  // Registered before the hooks' own listeners, so they read the new entry.
  handle.on('saved', () => {
    log.at = Date.now();
    log.count++;
  });
};

const useHandleStore = <T>(handle: DocHandle, read: () => T): T => {
  const store = useMemo(
    () =>
      createSnapshotStore((changed) => {
        logSaves(handle);
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
    savedAt: saveLog.get(handle)?.at,
    saves: saveLog.get(handle)?.count ?? 0,
  };
};

/** The connection status: `connecting`, `connected`, `disconnected` or `offline`. */
export const useStatus = (handle: DocHandle): ConnectionStatus =>
  useHandleStore(handle, () => handle.status);

/**
 * The pending count, whether everything is saved and when it last was;
 * re-renders as they change. `onSaved` runs once per `saved` event.
 */
export const useSaved = (handle: DocHandle, options: SavedOptions = {}): SavedState => {
  const state = useHandleStore(handle, () => readSaved(handle));
  const onSaved = useRef(options.onSaved);
  onSaved.current = options.onSaved;
  const reported = useRef(state.saves);
  useEffect(() => {
    // Once per event, not per render (and not again for a StrictMode re-run).
    if (state.saves === reported.current || state.savedAt === undefined) return;
    reported.current = state.saves;
    onSaved.current?.(state.savedAt);
  }, [state.saves, state.savedAt]);
  return state;
};

/**
 * Bounds on what one connection may say about presence (awareness): it may
 * speak for a few client ids (a tab, an editor pane; not 2,000 invented users)
 * and each state has a size limit (a cursor and a name, not 7 MiB relayed to
 * everyone). What passes is relayed; the rest is dropped and named by a code.
 */
import type { AwarenessEntry } from '@stateweave/client/protocol';
import { StateweaveError } from '../errors.js';

/** @default 4 */
export const DEFAULT_MAX_PRESENCE_IDS_PER_CONNECTION = 4;
/** @default 65536 (64 KiB) */
export const DEFAULT_MAX_PRESENCE_BYTES = 64 * 1024;

export interface PresenceLimits {
  /** Presence client ids one connection may speak for at once. */
  readonly maxIdsPerConnection: number;
  /** Largest presence state, as JSON bytes. */
  readonly maxStateBytes: number;
}

export interface PresenceScreen {
  readonly accepted: AwarenessEntry[];
  /** Why something was dropped (the first reason met), if anything was. */
  readonly refused: StateweaveError | undefined;
}

/**
 * Splits a connection's own entries (ids nobody else owns) into what may be
 * applied and what is refused. `spokenFor` holds the ids the connection already
 * has a state for; a null state (leaving) is always accepted. `updateBytes` is
 * the size of the whole update: when it is within the state limit no entry is
 * measured, so ordinary presence costs nothing extra.
 */
export const screenPresence = (
  entries: readonly AwarenessEntry[],
  updateBytes: number,
  spokenFor: readonly number[] | undefined,
  limits: PresenceLimits,
): PresenceScreen => {
  const measure = updateBytes > limits.maxStateBytes;
  const accepted: AwarenessEntry[] = [];
  let refused: StateweaveError | undefined;
  let ids = spokenFor?.length ?? 0;
  for (const entry of entries) {
    if (entry.state === null) {
      accepted.push(entry);
      continue;
    }
    if (measure) {
      const bytes = Buffer.byteLength(JSON.stringify(entry.state));
      if (bytes > limits.maxStateBytes) {
        refused ??= new StateweaveError(
          'PRESENCE_TOO_LARGE',
          `a presence state of ${bytes} bytes is over ${limits.maxStateBytes}`,
        );
        continue;
      }
    }
    if (!spokenFor?.includes(entry.clientId)) {
      if (ids >= limits.maxIdsPerConnection) {
        refused ??= new StateweaveError(
          'PRESENCE_LIMIT',
          `more than ${limits.maxIdsPerConnection} presence client ids on one connection`,
        );
        continue;
      }
      ids++;
    }
    accepted.push(entry);
  }
  return { accepted, refused };
};

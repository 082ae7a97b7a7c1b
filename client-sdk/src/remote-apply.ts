/**
 * Applying what the node sent. When it throws, the cause is either bad bytes
 * (the caller drops the connection: INVALID_FRAME) or a user's observer that
 * failed during the transaction. The latter is re-thrown on its own microtask,
 * like any listener error, and the connection stays: retrying would not help,
 * and the update itself was applied.
 */
import * as Y from 'yjs';
import { decodeAwarenessUpdate } from './protocol.js';

export const applyRemote = (apply: () => void, bytesAreValid: () => boolean): void => {
  try {
    apply();
  } catch (err) {
    if (!bytesAreValid()) throw err;
    queueMicrotask(() => {
      throw err;
    });
  }
};

export const isYjsUpdate = (update: Uint8Array): boolean => {
  try {
    Y.decodeUpdate(update);
    return true;
  } catch {
    return false; // lib0's decoding error: the bytes are not an update
  }
};

export const isAwarenessUpdate = (update: Uint8Array): boolean => {
  try {
    decodeAwarenessUpdate(update);
    return true;
  } catch {
    return false; // ProtocolError: not an awareness update
  }
};

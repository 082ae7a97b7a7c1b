/**
 * Restore: the update that turns a document's current state back into an older
 * one's content, as a new change on top (nobody's history is rewritten; every
 * client merges it like any edit).
 *
 * How: in a scratch copy of the old state, apply everything that happened
 * since, tracked by a Y.UndoManager over every top-level type, and undo it. The
 * undo inserts again what was deleted and deletes what was inserted; what it
 * adds, relative to the current state, is the restore update.
 */
import * as Y from 'yjs';
import { guessCtor } from '../hub/doc-json.js';

const SINCE = Symbol('changes since the version');

/** The update that makes `current` look like `old` (both are full states); undefined when nothing happened since. */
export const restoreUpdate = (current: Uint8Array, old: Uint8Array): Uint8Array | undefined => {
  const now = new Y.Doc({ gc: false });
  const scratch = new Y.Doc({ gc: false });
  try {
    Y.applyUpdate(now, current);
    Y.applyUpdate(scratch, old);
    // Every top-level type of either state, materialised with its guessed kind.
    const names = new Set([...now.share.keys(), ...scratch.share.keys()]);
    const types = [...names].map((name) => {
      const sample = now.share.get(name) ?? scratch.share.get(name)!;
      return scratch.get(name, guessCtor(sample) as unknown as Parameters<Y.Doc['get']>[1]);
    });
    const undo = new Y.UndoManager(types, { trackedOrigins: new Set([SINCE]), captureTimeout: 0 });
    const currentVector = Y.encodeStateVector(now);
    Y.applyUpdate(scratch, Y.encodeStateAsUpdate(now, Y.encodeStateVector(scratch)), SINCE);
    if (undo.undoStack.length === 0) return undefined;
    while (undo.undoStack.length > 0) undo.undo();
    undo.destroy();
    return Y.encodeStateAsUpdate(scratch, currentVector);
  } finally {
    now.destroy();
    scratch.destroy();
  }
};

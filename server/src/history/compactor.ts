/**
 * Compaction that keeps the history (hub/persister.ts calls it through the
 * `Compactor` port). The snapshot advances as before, but the log it covers is
 * kept, and a checkpoint (a stored state) is added once the log since the last
 * one weighs as much as the document: so the checkpoints cost at most what was
 * written, and a version is a checkpoint plus at most a document's worth of
 * updates to apply.
 *
 * Retention: the newest checkpoint older than the window becomes the base of the
 * history, and everything before it goes (log entries, their change-feed lines,
 * older checkpoints). Named checkpoints are never dropped.
 */
import type { DocName } from '../doc-name.js';
import * as Y from 'yjs';
import type { Logger } from '../log.js';
import type { Compactor } from '../hub/persister.js';
import type { Store } from '../storage/store.js';
import { createLogBytes } from './log-bytes.js';

export interface HistoryCompactorOptions {
  readonly store: Store;
  /** How long the history keeps past states and updates (> 0). */
  readonly retentionMs: number;
  readonly logger: Logger;
  /** @default Date.now */
  readonly now?: () => number;
}

/** The state of an empty document, the base of a history that starts at creation. */
const EMPTY_STATE = Y.encodeStateAsUpdate(new Y.Doc());

export interface HistoryCompactor extends Compactor {
  /** Drops what lies before the newest checkpoint older than the window (the retention sweep). */
  trim(doc: DocName): Promise<void>;
}

export const createHistoryCompactor = (options: HistoryCompactorOptions): HistoryCompactor => {
  const { store, retentionMs, logger } = options;
  const now = options.now ?? Date.now;

  const logBytes = createLogBytes({ store });

  const trim = async (doc: DocName): Promise<void> => {
    const cutoff = now() - retentionMs;
    const base = (await store.checkpoints(doc))
      .filter((c) => c.label === undefined && c.time <= cutoff)
      .at(-1);
    if (base && base.seq > 0) await store.trimHistory(doc, base.seq);
  };

  return {
    trim,
    async compact(doc, snapshot, throughSeq, exact, wasCompacted) {
      await store.compact(doc, snapshot, throughSeq, true);
      const bases = (await store.checkpoints(doc)).filter((c) => c.label === undefined);
      const last = bases.at(-1);
      if (last === undefined && !wasCompacted) {
        // The whole log from the empty document is here: the history starts there.
        await store.putCheckpoint(doc, { seq: 0, time: 0 }, EMPTY_STATE);
      }
      if (exact) {
        const since = await logBytes.since(doc, last, throughSeq);
        // A document compacted before it had a history starts its history now.
        const first = last === undefined && wasCompacted;
        if (since.lastTime !== undefined && (first || since.bytes >= snapshot.byteLength)) {
          const checkpoint = { seq: throughSeq, time: since.lastTime };
          await store.putCheckpoint(doc, checkpoint, snapshot);
          logBytes.checkpointed(doc, checkpoint);
          logger.debug({ doc, seq: throughSeq, bytes: snapshot.byteLength }, 'history checkpoint');
        }
      }
      await trim(doc);
    },
  };
};

/**
 * The bytes of a document's log since its newest checkpoint, which decide when
 * the compactor adds the next one. Kept as a running count per document: a
 * compaction reads only the entries appended since the one before, not the
 * whole log back to the checkpoint (for a large document that was every
 * entry since its last checkpoint, at every compaction).
 *
 * The count is a cache of what the log holds. It is trusted only while the
 * newest checkpoint is still the one it counts from (same seq and time); a
 * document it has not seen (a restart, a document evicted from the bound) or
 * whose history started again (deleted and written anew) is read back once.
 */
import type { DocName } from '../doc-name.js';
import type { Checkpoint, Store } from '../storage/store.js';

/** The log's bytes after a checkpoint through a seq, and the time of its last entry. */
export interface LogSince {
  readonly bytes: number;
  /** undefined when there is no entry in the range. */
  readonly lastTime: number | undefined;
}

export interface LogBytes {
  /**
   * The log of `doc` in (base.seq, throughSeq]; `base` is its newest unnamed
   * checkpoint, undefined for a history that starts at seq 0 now.
   */
  since(
    doc: DocName,
    base: Pick<Checkpoint, 'seq' | 'time'> | undefined,
    throughSeq: number,
  ): Promise<LogSince>;
  /** A checkpoint was stored at `checkpoint.seq`: the count starts again from it. */
  checkpointed(doc: DocName, checkpoint: Pick<Checkpoint, 'seq' | 'time'>): void;
}

export interface LogBytesOptions {
  readonly store: Store;
  /**
   * Documents whose count is kept; the least recently compacted beyond it is
   * forgotten (read back at its next compaction). @default 10000
   */
  readonly maxDocs?: number;
}

interface Count extends LogSince {
  readonly baseSeq: number;
  readonly baseTime: number;
  readonly throughSeq: number;
}

/** Log entries read per call. */
const PAGE = 1000;

export const createLogBytes = (options: LogBytesOptions): LogBytes => {
  const { store } = options;
  const maxDocs = options.maxDocs ?? 10_000;
  const counts = new Map<DocName, Count>();

  const remember = (doc: DocName, count: Count): void => {
    counts.delete(doc); // re-inserted last: the Map's order is the recency
    counts.set(doc, count);
    if (counts.size > maxDocs) counts.delete(counts.keys().next().value!);
  };

  /** Adds the entries in (afterSeq, throughSeq] to `from`. */
  const read = async (
    doc: DocName,
    afterSeq: number,
    throughSeq: number,
    from: LogSince,
  ): Promise<LogSince> => {
    let { bytes, lastTime } = from;
    for (let after = afterSeq; ;) {
      const { changes } = await store.readChanges({
        doc,
        afterSeq: after,
        throughSeq,
        limit: PAGE,
      });
      for (const change of changes) bytes += change.update.byteLength;
      if (changes.length > 0) lastTime = changes.at(-1)!.time;
      if (changes.length < PAGE) return { bytes, lastTime };
      after = changes.at(-1)!.seq;
    }
  };

  return {
    async since(doc, base, throughSeq) {
      const known = counts.get(doc);
      const valid =
        base !== undefined &&
        known !== undefined &&
        known.baseSeq === base.seq &&
        known.baseTime === base.time &&
        known.throughSeq <= throughSeq;
      const baseSeq = base?.seq ?? 0;
      const counted = valid
        ? await read(doc, known.throughSeq, throughSeq, known)
        : await read(doc, baseSeq, throughSeq, { bytes: 0, lastTime: undefined });
      remember(doc, { ...counted, baseSeq, baseTime: base?.time ?? 0, throughSeq });
      return counted;
    },

    checkpointed(doc, checkpoint) {
      remember(doc, {
        baseSeq: checkpoint.seq,
        baseTime: checkpoint.time,
        throughSeq: checkpoint.seq,
        bytes: 0,
        lastTime: undefined,
      });
    },
  };
};

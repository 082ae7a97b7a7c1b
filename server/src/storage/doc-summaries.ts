/**
 * The LevelDB store's document summaries (key `d\0<doc>`: stored bytes and the
 * time of the last change), so the document list reads one small value per
 * document instead of the document. A write does not know a document's size,
 * so the store's writes carry summary operations (`grow`, `compacted`,
 * `forget`) next to their puts and deletes; the group commit writes one batch
 * at a time, and `resolve` turns the batch's summary operations into puts of
 * the new summaries, reading the old ones (a small cache of recent ones saves
 * most reads). So a summary is always written in the same atomic batch as the
 * change it describes.
 */
import type { AbstractLevel } from 'abstract-level';
import type { BatchOp } from './group-commit.js';
import { decodeDocSummary, encodeDocSummary, type DocSummaryValue } from './entry-codec.js';
import type { DocName } from '../doc-name.js';
import type { DocQuery, DocSummary } from './store.js';
import { storedDocName } from './stored-name.js';

type Db = AbstractLevel<string | Uint8Array, string, Uint8Array>;

export type SummaryOp =
  /** A log entry of `bytes`, stored at `time` with sequence number `seq`. */
  | {
      readonly type: 'grow';
      readonly doc: string;
      readonly seq: number;
      readonly bytes: number;
      readonly time: number;
    }
  /** The snapshot now holds `snapshotBytes` and covers the log through `through`. */
  | {
      readonly type: 'compacted';
      readonly doc: string;
      readonly snapshotBytes: number;
      readonly through: number;
    }
  /** Everything stored for the document was removed. */
  | { readonly type: 'forget'; readonly doc: string };

export type StoreOp = BatchOp | SummaryOp;

export const summaryKey = (doc: string): string => `d\0${doc}`;
const FIRST = 'd\0';
const END = 'd\x01';
/**
 * Summaries of recently loaded or written documents kept in memory, so a
 * document being written is not read back (about 100 bytes each).
 */
const CACHE_SIZE = 8192;

export interface DocSummaries {
  /**
   * The batch's puts and deletes with its summary operations turned into puts
   * and deletes of summaries; call `written` once the batch is stored.
   */
  resolve(ops: readonly StoreOp[]): Promise<{ ops: BatchOp[]; written: () => void }>;
  docs(query: DocQuery): Promise<DocSummary[]>;
  names(): AsyncIterable<DocName>;
  /** Counts written batches: pass it to `loaded` from before the read. */
  readonly generation: number;
  /**
   * A summary read outside a write (with a load, which a room does before it
   * writes): cached unless a batch was written since `generation` (it may be stale).
   */
  loaded(doc: string, value: Uint8Array | undefined, generation: number): void;
}

export interface DocSummariesOptions {
  readonly db: Db;
  /** Bytes of the document's stored log entries after `seq`. */
  readonly logBytesAfter: (doc: string, seq: number) => Promise<number>;
}

const isSummaryOp = (op: StoreOp): op is SummaryOp =>
  op.type === 'grow' || op.type === 'compacted' || op.type === 'forget';

export const createDocSummaries = ({ db, logBytesAfter }: DocSummariesOptions): DocSummaries => {
  /** null: known to have no summary (nothing stored). */
  const cache = new Map<string, DocSummaryValue | null>();
  let generation = 0;
  const remember = (doc: string, value: DocSummaryValue | null): void => {
    cache.delete(doc);
    cache.set(doc, value);
    if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
  };

  return {
    async resolve(ops) {
      if (!ops.some(isSummaryOp)) return { ops: ops as BatchOp[], written: () => undefined };
      const out: BatchOp[] = [];
      const summaryOps: SummaryOp[] = [];
      for (const op of ops) {
        if (isSummaryOp(op)) summaryOps.push(op);
        else out.push(op);
      }
      // The summaries the batch starts from.
      const unknown = [
        ...new Set(summaryOps.filter((op) => !cache.has(op.doc)).map((op) => op.doc)),
      ];
      const current = new Map<string, DocSummaryValue | null>();
      if (unknown.length > 0) {
        const values = await db.getMany(unknown.map(summaryKey));
        unknown.forEach((doc, i) => {
          const value = values[i];
          current.set(doc, value ? decodeDocSummary(value) : null);
        });
      }
      for (const op of summaryOps)
        if (!current.has(op.doc)) current.set(op.doc, cache.get(op.doc) ?? null);
      const forgotten = new Set<string>();
      for (const op of summaryOps) {
        const before = current.get(op.doc) ?? null;
        switch (op.type) {
          case 'grow':
            current.set(op.doc, {
              bytes: (before?.bytes ?? 0) + op.bytes,
              time: Math.max(before?.time ?? 0, op.time),
            });
            break;
          case 'compacted': {
            // The log after `through`: stored ones, plus this batch's earlier ones.
            let bytes = op.snapshotBytes;
            if (!forgotten.has(op.doc)) bytes += await logBytesAfter(op.doc, op.through);
            for (const earlier of summaryOps) {
              if (earlier === op) break;
              if (earlier.type === 'grow' && earlier.doc === op.doc && earlier.seq > op.through)
                bytes += earlier.bytes;
            }
            current.set(op.doc, { bytes, time: before?.time ?? 0 });
            break;
          }
          case 'forget':
            forgotten.add(op.doc);
            current.set(op.doc, null);
            break;
        }
      }
      for (const [doc, value] of current)
        out.push(
          value
            ? { type: 'put', key: summaryKey(doc), value: encodeDocSummary(value) }
            : { type: 'del', key: summaryKey(doc) },
        );
      return {
        ops: out,
        written: () => {
          generation++;
          for (const [doc, value] of current) remember(doc, value);
        },
      };
    },

    get generation() {
      return generation;
    },

    loaded(doc, value, since) {
      if (since === generation && !cache.has(doc))
        remember(doc, value ? decodeDocSummary(value) : null);
    },

    async docs({ prefix = '', after, limit }) {
      const out: DocSummary[] = [];
      const start = summaryKey(prefix);
      const iterator = db.iterator({
        ...(after !== undefined && summaryKey(after) >= start
          ? { gt: summaryKey(after) }
          : { gte: start }),
        lt: END,
        limit,
      });
      try {
        for await (const [key, value] of iterator) {
          const name = storedDocName(key.slice(2));
          if (!name.startsWith(prefix)) break;
          const { bytes, time } = decodeDocSummary(value);
          out.push({ name, bytes, lastChange: time });
        }
      } finally {
        await iterator.close();
      }
      return out;
    },

    async *names() {
      for await (const key of db.keys({ gte: FIRST, lt: END })) yield storedDocName(key.slice(2));
    },
  };
};

/**
 * The Store on any abstract-level database: classic LevelDB on disk (`level`)
 * (classic-level); the in-memory store is `memory-store.ts`, re-exported here.
 *
 * Key layout (one keyspace per document; NUL cannot occur in a document name):
 *   s\0<doc>           merged snapshot (a Yjs update)
 *   l\0<doc>\0<seq>    log entry, seq as 16 hex digits (global, monotonic)
 *   m\0seq             upper bound of the sequence numbers handed out (reserved SEQ_RESERVE at a time)
 *   r\0<key>           a record written with an append (function invocation records)
 *   c\0<seq>           change index: document, time and writers of log entry seq
 *                      (the node's change feed, in seq order; entry-codec.ts)
 *   p\0<doc>           seq the snapshot covers when the log was kept (history)
 *   k\0<doc>\0<seq>    checkpoint header (time, size, label); v\0<doc>\0<seq> its state
 *   t\0<doc>           tombstone of a deleted document: seq of its deletion line (8 bytes), then its bytes
 *   d\0<doc>           summary for the document list: bytes and time of the last change (doc-summaries.ts)
 *   m\0docs            present once every stored document has a summary (written at open)
 * The global sequence means no per-document read before the first append.
 */
import type { AbstractBatchOperation, AbstractBatchOptions, AbstractLevel } from 'abstract-level';
import { statfs } from 'node:fs/promises';
import { Level } from 'level';
import { createGroupCommit, type BatchOp } from './group-commit.js';
import { writeBatch } from './level-batch.js';
import { createDocSummaries, summaryKey, type StoreOp } from './doc-summaries.js';
import {
  createClock,
  decodeChangeMeta,
  decodeCheckpoint,
  encodeChangeMeta,
  encodeCheckpoint,
  encodeDocSummary,
} from './entry-codec.js';
import type { DocName } from '../doc-name.js';
import { StoreError, type ChangeEntry, type Store, type StoredDoc } from './store.js';
import { storedDocName } from './stored-name.js';

const NO_UPDATE = new Uint8Array(0);
import { findTornTail, type TornTail } from './torn-log.js';

type Db = AbstractLevel<string | Uint8Array, string, Uint8Array>;

export interface LevelStoreOptions {
  /** fsync every batch (survives power loss, not only process crashes). @default false */
  readonly fsync?: boolean;
  /**
   * An append without records may wait this long for others to share its batch
   * (group-commit.ts: a LevelDB write costs a pool-thread round trip); its
   * acknowledgement waits with it. Writes with records (the output gate),
   * compactions and deletions never wait. @default 0
   */
  readonly commitWindowMs?: number;
  /** Called after each group-commit batch, for metrics and logs. */
  readonly onBatch?: (ops: number, ms: number, error: unknown) => void;
  /**
   * Free bytes on the database's file system, if known; before reopening after
   * a failed write the store asks, and refuses at once below `minFreeBytes`
   * (reopening writes a table and a manifest, and a failed open would stop reads).
   * @default none (reopen without asking)
   */
  readonly freeBytes?: () => Promise<number>;
  /** Free bytes needed to reopen after a failed write. @default 1048576 */
  readonly minFreeBytes?: number;
  /** Told when the database was reopened after a failed write (for the log). */
  readonly onReopen?: (error: unknown) => void;
  /** Told before opening when recovery will drop a torn write at the end of the log (torn-log.ts). */
  readonly onTornTail?: (tail: TornTail) => void;
}

const SEQ_KEY = 'm\0seq';
const SUMMARIES_KEY = 'm\0docs';
const SUMMARIZED = new Uint8Array([1]);
/**
 * Sequence numbers are reserved this many at a time: the batch that first uses a
 * number past the reservation also stores the new bound, atomically with it, so a
 * restart never hands out a stored number again (it skips the rest of the range).
 * Writing the bound with every batch instead doubled the operations of a batch
 * that carries one update.
 */
const SEQ_RESERVE = 1024;
const snapshotKey = (doc: string): string => `s\0${doc}`;
const logPrefix = (doc: string): string => `l\0${doc}\0`;
const logEnd = (doc: string): string => `l\0${doc}\x01`;
const seqKey = (doc: string, seq: number): string =>
  logPrefix(doc) + seq.toString(16).padStart(16, '0');
/** Records live apart from documents (prefix r), so list() never sees them. */
const recordKey = (key: string): string => `r\0${key}`;
const seqOf = (key: string): number => parseInt(key.slice(key.length - 16), 16);
const hex = (seq: number): string => seq.toString(16).padStart(16, '0');
const changeKey = (seq: number): string => `c\0${hex(seq)}`;
const snapshotSeqKey = (doc: string): string => `p\0${doc}`;
const checkpointPrefix = (doc: string): string => `k\0${doc}\0`;
const checkpointKey = (doc: string, seq: number): string => checkpointPrefix(doc) + hex(seq);
const checkpointEnd = (doc: string): string => `k\0${doc}\x01`;
const stateKey = (doc: string, seq: number): string => `v\0${doc}\0${hex(seq)}`;
const tombstoneKey = (doc: string): string => `t\0${doc}`;
/** Entries of the global change index one readChanges call looks at, at most. */
const SCAN_LIMIT = 10_000;

const encodeSeq = (seq: number): Uint8Array => {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(seq));
  return bytes;
};
const decodeSeq = (bytes: Uint8Array): number =>
  Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0));

const wrap = (what: string, err: unknown): StoreError =>
  new StoreError(`${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });

/** A Store over an already constructed abstract-level database (opened here). */
export const createAbstractLevelStore = async (
  db: Db,
  options: LevelStoreOptions = {},
): Promise<Store> => {
  try {
    await db.open();
  } catch (err) {
    throw wrap('opening the database', err);
  }
  const summaries = createDocSummaries({
    db,
    logBytesAfter: async (doc, seq) => {
      let bytes = 0;
      for await (const value of db.values({ gt: seqKey(doc, seq), lt: logEnd(doc) }))
        bytes += value.byteLength;
      return bytes;
    },
  });
  // `sync` is classic-level's option (fsync per batch); other engines ignore it.
  const batchOptions = { sync: options.fsync ?? false } as AbstractBatchOptions<string, Uint8Array>;
  /** The marker that every document has a summary, stored with the first write of a new directory. */
  let markSummarized: boolean;
  try {
    markSummarized = await summarizeOlderDocs(db, batchOptions);
  } catch (err) {
    throw wrap('summarizing the stored documents', err);
  }
  const stored = await db.get(SEQ_KEY);
  let lastSeq = stored ? decodeSeq(stored) : 0;
  let reservedSeq = lastSeq;
  let closed = false;
  /**
   * A failed write (ENOSPC, EIO) can leave a torn record at the end of LevelDB's
   * log. LevelDB goes on appending after it and acknowledges those writes, but on
   * the next open its recovery drops the rest of the log block, acknowledged
   * writes included (seen on a full tmpfs: a put acknowledged after the disk
   * filled was gone after a reopen). So after a failed write the database is
   * reopened before the next one: recovery drops only the torn (never
   * acknowledged) write, and new writes go to a fresh log.
   */
  let suspect = false;
  /** Set while reopening; reads wait for it. */
  let reopening: Promise<void> | undefined;
  const minFreeBytes = options.minFreeBytes ?? 1024 * 1024;

  const reopen = async (): Promise<void> => {
    if (options.freeBytes) {
      const free = await options.freeBytes();
      if (free < minFreeBytes)
        throw new StoreError(
          `no space left for the database: ${free} bytes free, ${minFreeBytes} needed to resume writing`,
        );
    }
    const done = (async () => {
      await db.close();
      await db.open();
    })();
    reopening = done.finally(() => {
      reopening = undefined;
    });
    await done;
    suspect = false;
  };
  /** Reads wait while the database is being reopened. */
  const open = (): Promise<void> => reopening?.catch(() => undefined) ?? Promise.resolve();

  const commit = createGroupCommit<StoreOp>({
    write: async (storeOps) => {
      if (suspect) {
        await reopen();
        options.onReopen?.(undefined);
      }
      // Writes run one at a time, so the summaries read here are the latest.
      const { ops, written } = await summaries.resolve(storeOps);
      // Every seq in `ops` is ≤ lastSeq; past the reservation, store a new bound with them.
      // (The bound counts only once it is stored.)
      let bound: number | undefined;
      if (lastSeq > reservedSeq) {
        bound = lastSeq + SEQ_RESERVE;
        ops.push({ type: 'put', key: SEQ_KEY, value: encodeSeq(bound) });
      }
      if (markSummarized) ops.push({ type: 'put', key: SUMMARIES_KEY, value: SUMMARIZED });
      try {
        await writeBatch(db, ops, batchOptions);
      } catch (err) {
        suspect = true;
        throw err;
      }
      written();
      markSummarized = false;
      if (bound !== undefined) reservedSeq = bound;
    },
    ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    windowMs: options.commitWindowMs ?? 0,
  });

  /** `mayWait`: a plain append, which may wait out the commit window. */
  const submit = async (ops: StoreOp[], what: string, mayWait = false): Promise<void> => {
    if (closed) throw new StoreError(`${what} after close`);
    try {
      await commit.submit(ops, !mayWait);
    } catch (err) {
      throw wrap(what, err);
    }
  };

  const now = createClock();
  /** A log entry and its line in the change index, written together. */
  const entryOps = (
    doc: DocName,
    seq: number,
    update: Uint8Array,
    writers: readonly string[],
  ): StoreOp[] => {
    const time = now();
    return [
      { type: 'put', key: seqKey(doc, seq), value: update },
      { type: 'put', key: changeKey(seq), value: encodeChangeMeta({ doc, time, writers }) },
      { type: 'grow', doc, seq, bytes: update.byteLength, time },
    ];
  };

  const metaOf = async (
    seqs: readonly number[],
  ): Promise<Map<number, ReturnType<typeof decodeChangeMeta>>> => {
    const values = seqs.length > 0 ? await db.getMany(seqs.map(changeKey)) : [];
    const out = new Map<number, ReturnType<typeof decodeChangeMeta>>();
    values.forEach((value, i) => {
      if (value) out.set(seqs[i]!, decodeChangeMeta(value));
    });
    return out;
  };

  return {
    async load(doc): Promise<StoredDoc> {
      await open();
      try {
        const updates: Uint8Array[] = [];
        let bytes = 0;
        let logLength = 0;
        let docLastSeq = 0;
        // Its summary too: the room that loads it is about to write it (doc-summaries.ts).
        const generation = summaries.generation;
        const [snapshot, summary] = await db.getMany([snapshotKey(doc), summaryKey(doc)]);
        summaries.loaded(doc, summary, generation);
        if (snapshot) {
          updates.push(snapshot);
          bytes += snapshot.byteLength;
        }
        // Entries the snapshot covers may still be kept for the history: skip them.
        const covered = await db.get(snapshotSeqKey(doc));
        const from = covered ? decodeSeq(covered) : 0;
        docLastSeq = from;
        for await (const [key, value] of db.iterator({
          gt: seqKey(doc, from),
          lt: logEnd(doc),
        })) {
          updates.push(value);
          bytes += value.byteLength;
          logLength++;
          docLastSeq = seqOf(key);
        }
        return {
          updates,
          bytes,
          logLength,
          lastSeq: docLastSeq,
          compacted: snapshot !== undefined,
        };
      } catch (err) {
        throw wrap(`loading ${doc}`, err);
      }
    },

    async append(doc, update, records, writers = []) {
      const seq = update === null ? 0 : ++lastSeq;
      const ops: StoreOp[] = update === null ? [] : entryOps(doc, seq, update, writers);
      if (records)
        for (const r of records) ops.push({ type: 'put', key: recordKey(r.key), value: r.value });
      if (ops.length === 0) return seq;
      await submit(ops, `appending to ${doc}`, records === undefined);
      return seq;
    },

    async appendAll(entries, records) {
      const seqs = entries.map(() => ++lastSeq);
      const ops: StoreOp[] = entries.flatMap(({ doc, update, writers }, i) =>
        entryOps(doc, seqs[i]!, update, writers ?? []),
      );
      if (records)
        for (const r of records) ops.push({ type: 'put', key: recordKey(r.key), value: r.value });
      if (ops.length > 0) await submit(ops, `appending to ${entries.map((e) => e.doc).join(', ')}`);
      return seqs;
    },

    async getRecord(key) {
      await open();
      try {
        return (await db.get(recordKey(key))) ?? undefined;
      } catch (err) {
        throw wrap(`reading record ${key}`, err);
      }
    },

    async compact(doc, snapshot, throughSeq, keepLog = false) {
      const ops: StoreOp[] = [{ type: 'put', key: snapshotKey(doc), value: snapshot }];
      await open();
      try {
        const covered = await db.get(snapshotSeqKey(doc));
        const from = covered ? decodeSeq(covered) : 0;
        // `load` reads the log after what the snapshot covers.
        const through = keepLog ? Math.max(from, throughSeq) : throughSeq;
        ops.push({ type: 'compacted', doc, snapshotBytes: snapshot.byteLength, through });
        if (keepLog)
          ops.push({
            type: 'put',
            key: snapshotSeqKey(doc),
            value: encodeSeq(Math.max(from, throughSeq)),
          });
        else {
          ops.push({ type: 'del', key: snapshotSeqKey(doc) });
          // Without history, the checkpoints and kept entries go as well.
          for await (const key of db.keys({ gte: logPrefix(doc), lte: seqKey(doc, throughSeq) }))
            ops.push({ type: 'del', key }, { type: 'del', key: changeKey(seqOf(key)) });
          for await (const [key, value] of db.iterator({
            gte: checkpointPrefix(doc),
            lt: checkpointEnd(doc),
          })) {
            if (decodeCheckpoint(seqOf(key), value).label !== undefined) continue;
            ops.push({ type: 'del', key }, { type: 'del', key: stateKey(doc, seqOf(key)) });
          }
        }
      } catch (err) {
        throw wrap(`compacting ${doc}`, err);
      }
      await submit(ops, `compacting ${doc}`);
    },

    // The reservation bound after a restart: above every stored entry, below every new one.
    lastSeq: async () => lastSeq,

    async readChanges(query) {
      const { doc, prefix = '', afterSeq, limit, deletions = false } = query;
      const throughSeq = query.throughSeq ?? Number.MAX_SAFE_INTEGER;
      await open();
      try {
        const changes: ChangeEntry[] = [];
        if (doc !== undefined) {
          // Its deletion comes first: every entry still in its log was written after it.
          const tombstone = deletions ? await db.get(tombstoneKey(doc)) : undefined;
          const deletedAt = tombstone ? decodeSeq(tombstone.subarray(0, 8)) : 0;
          if (deletedAt > afterSeq && deletedAt <= throughSeq) {
            const m = (await metaOf([deletedAt])).get(deletedAt);
            changes.push({
              seq: deletedAt,
              doc,
              time: m?.time ?? 0,
              writers: m?.writers ?? [],
              update: NO_UPDATE,
              deleted: true,
            });
            if (changes.length >= limit) return { changes, scannedThrough: deletedAt };
          }
          const found: Array<[number, Uint8Array]> = [];
          for await (const [key, value] of db.iterator({
            gt: seqKey(doc, afterSeq),
            lte: seqKey(doc, Math.min(throughSeq, 2 ** 53 - 1)),
            limit: limit - changes.length,
          }))
            found.push([seqOf(key), value]);
          const meta = await metaOf(found.map(([seq]) => seq));
          for (const [seq, update] of found) {
            const m = meta.get(seq);
            changes.push({ seq, doc, time: m?.time ?? 0, writers: m?.writers ?? [], update });
          }
          return { changes, scannedThrough: changes.at(-1)?.seq ?? afterSeq };
        }
        let scannedThrough = afterSeq;
        const wanted: Array<{ seq: number; meta: ReturnType<typeof decodeChangeMeta> }> = [];
        for await (const [key, value] of db.iterator({
          gt: changeKey(afterSeq),
          lte: changeKey(Math.min(throughSeq, 2 ** 53 - 1)),
          limit: SCAN_LIMIT,
        })) {
          scannedThrough = seqOf(key);
          const meta = decodeChangeMeta(value);
          if (!meta.doc.startsWith(prefix) || (meta.deleted && !deletions)) continue;
          wanted.push({ seq: scannedThrough, meta });
          if (wanted.length >= limit) break;
        }
        const updates =
          wanted.length > 0
            ? await db.getMany(wanted.map(({ seq, meta }) => seqKey(meta.doc, seq)))
            : [];
        wanted.forEach(({ seq, meta }, i) => {
          if (meta.deleted) {
            const { doc: name, time, writers } = meta;
            return void changes.push({
              seq,
              doc: name,
              time,
              writers,
              update: NO_UPDATE,
              deleted: true,
            });
          }
          const update = updates[i];
          // An index line without its entry: the document was removed meanwhile.
          if (update)
            changes.push({ seq, doc: meta.doc, time: meta.time, writers: meta.writers, update });
        });
        return { changes, scannedThrough };
      } catch (err) {
        throw wrap('reading changes', err);
      }
    },

    async putCheckpoint(doc, checkpoint, state) {
      const header = encodeCheckpoint({ ...checkpoint, bytes: state.byteLength });
      await submit(
        [
          { type: 'put', key: checkpointKey(doc, checkpoint.seq), value: header },
          { type: 'put', key: stateKey(doc, checkpoint.seq), value: state },
        ],
        `storing a checkpoint of ${doc}`,
      );
    },

    async checkpoints(doc) {
      await open();
      try {
        const out = [];
        for await (const [key, value] of db.iterator({
          gte: checkpointPrefix(doc),
          lt: checkpointEnd(doc),
        }))
          out.push(decodeCheckpoint(seqOf(key), value));
        return out;
      } catch (err) {
        throw wrap(`reading checkpoints of ${doc}`, err);
      }
    },

    async checkpointState(doc, seq) {
      await open();
      try {
        return (await db.get(stateKey(doc, seq))) ?? undefined;
      } catch (err) {
        throw wrap(`reading a checkpoint of ${doc}`, err);
      }
    },

    async trimHistory(doc, throughSeq) {
      const ops: BatchOp[] = [];
      await open();
      try {
        const covered = await db.get(snapshotSeqKey(doc));
        const upTo = Math.min(throughSeq, covered ? decodeSeq(covered) : 0);
        if (upTo > 0)
          for await (const key of db.keys({ gte: logPrefix(doc), lte: seqKey(doc, upTo) }))
            ops.push({ type: 'del', key }, { type: 'del', key: changeKey(seqOf(key)) });
        for await (const [key, value] of db.iterator({
          gte: checkpointPrefix(doc),
          lt: checkpointKey(doc, throughSeq),
        })) {
          if (decodeCheckpoint(seqOf(key), value).label !== undefined) continue;
          ops.push({ type: 'del', key }, { type: 'del', key: stateKey(doc, seqOf(key)) });
        }
      } catch (err) {
        throw wrap(`trimming the history of ${doc}`, err);
      }
      if (ops.length > 0) await submit(ops, `trimming the history of ${doc}`);
    },

    async remove(doc, deletion) {
      const ops: StoreOp[] = [
        { type: 'del', key: snapshotKey(doc) },
        { type: 'del', key: snapshotSeqKey(doc) },
        { type: 'forget', doc },
      ];
      let seq = 0;
      await open();
      try {
        for await (const key of db.keys({ gte: logPrefix(doc), lt: logEnd(doc) }))
          ops.push({ type: 'del', key }, { type: 'del', key: changeKey(seqOf(key)) });
        for await (const key of db.keys({ gte: checkpointPrefix(doc), lt: checkpointEnd(doc) }))
          ops.push({ type: 'del', key }, { type: 'del', key: stateKey(doc, seqOf(key)) });
        if (deletion) {
          const previous = await db.get(tombstoneKey(doc));
          if (previous)
            ops.push({ type: 'del', key: changeKey(decodeSeq(previous.subarray(0, 8))) });
          seq = ++lastSeq;
          const meta = { doc, time: now(), writers: deletion.writers, deleted: true };
          const value = new Uint8Array(8 + deletion.tombstone.byteLength);
          value.set(encodeSeq(seq));
          value.set(deletion.tombstone, 8);
          ops.push(
            { type: 'put', key: changeKey(seq), value: encodeChangeMeta(meta) },
            { type: 'put', key: tombstoneKey(doc), value },
          );
        }
      } catch (err) {
        throw wrap(`removing ${doc}`, err);
      }
      await submit(ops, `removing ${doc}`);
      return seq;
    },

    async *tombstones() {
      await open();
      for await (const [key, value] of db.iterator({ gte: 't\0', lt: 't\x01' }))
        yield {
          doc: storedDocName(key.slice(2)),
          seq: decodeSeq(value.subarray(0, 8)),
          tombstone: value.slice(8),
        };
    },

    async dropTombstone(doc, seq) {
      await open();
      let stored;
      try {
        stored = await db.get(tombstoneKey(doc));
      } catch (err) {
        throw wrap(`reading the tombstone of ${doc}`, err);
      }
      if (!stored || decodeSeq(stored.subarray(0, 8)) !== seq) return;
      await submit(
        [
          { type: 'del', key: tombstoneKey(doc) },
          { type: 'del', key: changeKey(seq) },
        ],
        `dropping the tombstone of ${doc}`,
      );
    },

    async *list() {
      await open();
      yield* summaries.names();
    },

    async docs(query) {
      await open();
      try {
        return await summaries.docs(query);
      } catch (err) {
        throw wrap('listing documents', err);
      }
    },

    async *dump() {
      await open();
      // One iterator reads one implicit LevelDB snapshot: writes during the copy are not in it.
      const it = db.iterator();
      try {
        for (let page = await it.nextv(1000); page.length > 0; page = await it.nextv(1000))
          for (const [key, value] of page) yield [key, value] as const;
      } finally {
        await it.close();
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      await commit.drain();
      await open();
      await db.close();
    },
  };
};

/**
 * Every stored document gets its summary (doc-summaries.ts) once: a data
 * directory of a version before summaries is read whole at its first open;
 * afterwards every write keeps them. The time of a document's last change is
 * its last log entry's; one compacted without history has none (0). Resolves
 * true when the marker is still to be written (with the first write: a new,
 * empty directory costs no batch of its own).
 */
const summarizeOlderDocs = async (
  db: Db,
  batchOptions: AbstractBatchOptions<string, Uint8Array>,
): Promise<boolean> => {
  if (await db.get(SUMMARIES_KEY)) return false;
  // Each document has a snapshot key, log keys, or both; visit each name once
  // and skip over a document's log with seek() instead of reading it.
  const names = new Set<string>();
  for await (const key of db.keys({ gte: 's\0', lt: 's\x01' })) names.add(key.slice(2));
  const it = db.keys({ gte: 'l\0', lt: 'l\x01' });
  try {
    for (let key = await it.next(); key !== undefined; key = await it.next()) {
      const doc = key.slice(2, key.length - 17);
      names.add(doc);
      it.seek(logEnd(doc));
    }
  } finally {
    await it.close();
  }
  if (names.size === 0) return true;
  let ops: BatchOp[] = [];
  for (const doc of [...names].sort()) {
    const snapshot = await db.get(snapshotKey(doc));
    const covered = await db.get(snapshotSeqKey(doc));
    let bytes = snapshot?.byteLength ?? 0;
    let last = 0;
    for await (const [key, value] of db.iterator({
      gt: seqKey(doc, covered ? decodeSeq(covered) : 0),
      lt: logEnd(doc),
    })) {
      bytes += value.byteLength;
      last = seqOf(key);
    }
    if (last === 0) {
      // Compacted with the log kept (history): its newest kept entry is the last change.
      for await (const key of db.keys({
        gte: logPrefix(doc),
        lt: logEnd(doc),
        reverse: true,
        limit: 1,
      }))
        last = seqOf(key);
    }
    const meta = last > 0 ? await db.get(changeKey(last)) : undefined;
    const time = meta ? decodeChangeMeta(meta).time : 0;
    ops.push({ type: 'put', key: summaryKey(doc), value: encodeDocSummary({ bytes, time }) });
    if (ops.length >= 1000) {
      await db.batch(ops as AbstractBatchOperation<Db, string, Uint8Array>[], batchOptions);
      ops = [];
    }
  }
  ops.push({ type: 'put', key: SUMMARIES_KEY, value: SUMMARIZED });
  await db.batch(ops as AbstractBatchOperation<Db, string, Uint8Array>[], batchOptions);
  return false;
};

/** The production store: LevelDB in `path` (created if missing). */
export const createLevelStore = async (
  path: string,
  options: LevelStoreOptions = {},
): Promise<Store> => {
  const torn = await findTornTail(path);
  if (torn) options.onTornTail?.(torn);
  return createAbstractLevelStore(
    new Level<string, Uint8Array>(path, {
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    }) as unknown as Db,
    {
      freeBytes: async () => {
        const fs = await statfs(path);
        return fs.bavail * fs.bsize;
      },
      ...options,
    },
  );
};

/** The in-memory store (plain Maps, same contract): see memory-store.ts. */
export { createMemoryStore } from './memory-store.js';

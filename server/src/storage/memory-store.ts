/**
 * The in-memory Store: plain Maps, no database engine. For tests about something
 * else and for nodes that need no persistence across restarts (benchmarks).
 *
 * Same contract as the LevelDB store (src/testing/store-contract.ts): global monotonic
 * sequence numbers, per-document snapshot + log, records apart from documents,
 * atomic compaction. A write is applied when `append` is called, so appends are
 * ordered by call; the returned promise resolves on a later microtask, never
 * synchronously, like a real store. (It used to be `memory-level` under the
 * LevelDB adapter: abstract-level's per-operation batch overhead and the
 * persistent red-black tree's allocations were about half of a node's CPU per update.)
 */
import type { DocName } from '../doc-name.js';
import { createClock } from './entry-codec.js';
import {
  StoreError,
  type ChangeEntry,
  type Checkpoint,
  type DocSummary,
  type Store,
  type StoredDoc,
} from './store.js';

/**
 * A document's log: entries copied end to end into one buffer that grows by
 * doubling. Why not an array of the callers' Uint8Arrays: each kept update is a
 * young object (an ArrayBuffer with its bookkeeping for all but the smallest) that
 * every scavenge until its promotion has to copy. At 4,000 updates a second they
 * were the largest survivor outside Yjs (heap sampling, bench scenario 3); in one
 * buffer, a scavenge moves a fifth less (514 → 419 KB), and scavenge pauses are what
 * a client sees as the latency tail.
 */
const NO_BYTES = new Uint8Array(0);

class LogBuffer {
  // Allocated at the first entry: every open document has two logs, most of them empty
  // (two eager 256-byte buffers were ~0.9 KB of each idle document's memory).
  private bytes = NO_BYTES;
  private used = 0;
  /** Entry i spans [ends[i-1] ?? 0, ends[i]) of `bytes`. */
  private ends: number[] = [];
  /** Seq of each entry, in append (= seq) order. */
  seqs: number[] = [];

  get length(): number {
    return this.seqs.length;
  }

  push(seq: number, update: Uint8Array): void {
    if (this.used + update.byteLength > this.bytes.byteLength) {
      const grown = new Uint8Array(
        Math.max(this.bytes.byteLength * 2, this.used + update.byteLength),
      );
      grown.set(this.bytes.subarray(0, this.used));
      this.bytes = grown;
    }
    this.bytes.set(update, this.used);
    this.used += update.byteLength;
    if (this.seqs.length === 0) {
      // Made with their first element: pushed onto [], V8 gives each room for 17
      // (2 × 152 bytes for the one entry of most open documents).
      this.ends = [this.used];
      this.seqs = [seq];
      return;
    }
    this.ends.push(this.used);
    this.seqs.push(seq);
  }

  /** The entries, as copies (a caller may keep them while the log moves on). */
  entries(): Uint8Array[] {
    return this.ends.map((end, i) => this.bytes.slice(this.ends[i - 1] ?? 0, end));
  }

  /** Entry i, as a copy. */
  at(i: number): Uint8Array {
    return this.bytes.slice(this.ends[i - 1] ?? 0, this.ends[i]);
  }

  /** Index of the first entry with seq > `seq`. */
  after(seq: number): number {
    let lo = 0;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Drops the first `count` entries. */
  dropFirst(count: number): void {
    if (count === 0) return;
    const from = this.ends[count - 1]!;
    const rest = this.bytes.subarray(from, this.used);
    this.bytes = rest.byteLength === 0 ? NO_BYTES : new Uint8Array(rest.byteLength * 2);
    this.bytes.set(rest);
    this.used = rest.byteLength;
    this.ends = this.ends.slice(count).map((end) => end - from);
    this.seqs = this.seqs.slice(count);
  }
}

/**
 * The `kept` log of every document that has none (most: only a history keeps
 * entries there). Shared, so never written: `compact` gives a document its own
 * before moving entries into it, and dropping no entries writes nothing.
 */
const NO_KEPT = new LogBuffer();

interface DocEntry {
  snapshot: Uint8Array | undefined;
  /** Entries `load` returns (not yet in the snapshot). */
  log: LogBuffer;
  /** Entries the snapshot covers, kept for the history (compact with keepLog). */
  kept: LogBuffer;
  /** Made at the first checkpoint (most documents have none). */
  checkpoints: Map<number, { checkpoint: Checkpoint; state: Uint8Array }> | undefined;
  /** Bytes `load` returns, and when the last entry was stored (the document list). */
  bytes: number;
  lastChange: number;
}

/** A line of the change index; `gone` once its entry was dropped. */
interface IndexLine {
  readonly seq: number;
  readonly doc: DocName;
  readonly time: number;
  readonly writers: readonly string[];
  gone: boolean;
  /** The line of a deletion (its entry is the tombstone). */
  readonly deleted?: true;
}

const NO_UPDATE = new Uint8Array(0);

export const createMemoryStore = (): Promise<Store> => {
  const docs = new Map<DocName, DocEntry>();
  const records = new Map<string, Uint8Array>();
  const tombstones = new Map<DocName, { seq: number; tombstone: Uint8Array }>();
  /** The change index in seq order; dropped lines are marked and swept now and then. */
  let index: IndexLine[] = [];
  const lineOf = new Map<number, IndexLine>();
  let goneLines = 0;
  let lastSeq = 0;
  let closed = false;
  const now = createClock();

  const entryOf = (doc: DocName): DocEntry => {
    let entry = docs.get(doc);
    if (!entry)
      docs.set(
        doc,
        (entry = {
          snapshot: undefined,
          log: new LogBuffer(),
          kept: NO_KEPT,
          checkpoints: undefined,
          bytes: 0,
          lastChange: 0,
        }),
      );
    return entry;
  };

  const push = (doc: DocName, update: Uint8Array, writers: readonly string[] = []): number => {
    const seq = ++lastSeq;
    const entry = entryOf(doc);
    entry.log.push(seq, update);
    const line: IndexLine = { seq, doc, time: now(), writers, gone: false };
    entry.bytes += update.byteLength;
    entry.lastChange = line.time;
    index.push(line);
    lineOf.set(seq, line);
    return seq;
  };

  const dropLines = (seqs: readonly number[]): void => {
    for (const seq of seqs) {
      const line = lineOf.get(seq);
      if (!line) continue;
      line.gone = true;
      lineOf.delete(seq);
      goneLines++;
    }
    if (goneLines > 1024 && goneLines > index.length / 2) {
      index = index.filter((l) => !l.gone);
      goneLines = 0;
    }
  };

  /** Moves the first `count` entries of `from` to the end of `to`. */
  const moveFirst = (from: LogBuffer, to: LogBuffer, count: number): void => {
    for (let i = 0; i < count; i++) to.push(from.seqs[i]!, from.at(i));
    from.dropFirst(count);
  };

  const updateOf = (entry: DocEntry, seq: number): Uint8Array | undefined => {
    for (const buffer of [entry.kept, entry.log]) {
      const i = buffer.after(seq) - 1;
      if (i >= 0 && buffer.seqs[i] === seq) return buffer.at(i);
    }
    return undefined;
  };

  const afterClose = (what: string): Promise<never> =>
    Promise.reject(new StoreError(`${what} after close`));

  const store: Store = {
    load(doc) {
      const entry = docs.get(doc);
      const updates: Uint8Array[] = [];
      let bytes = 0;
      if (entry?.snapshot) {
        updates.push(entry.snapshot);
        bytes += entry.snapshot.byteLength;
      }
      for (const update of entry?.log.entries() ?? []) {
        updates.push(update);
        bytes += update.byteLength;
      }
      const stored: StoredDoc = {
        updates,
        bytes,
        logLength: entry?.log.length ?? 0,
        lastSeq: entry?.log.seqs.at(-1) ?? entry?.kept.seqs.at(-1) ?? 0,
        compacted: entry?.snapshot !== undefined,
      };
      return Promise.resolve(stored);
    },

    append(doc, update, extra, writers) {
      if (closed) return afterClose(`appending to ${doc}`);
      if (extra) for (const r of extra) records.set(r.key, r.value);
      if (update === null) return Promise.resolve(0);
      return Promise.resolve(push(doc, update, writers));
    },

    appendAll(entries, extra) {
      if (closed) return afterClose('appending');
      if (extra) for (const r of extra) records.set(r.key, r.value);
      return Promise.resolve(entries.map(({ doc, update, writers }) => push(doc, update, writers)));
    },

    getRecord(key) {
      return Promise.resolve(records.get(key));
    },

    compact(doc, snapshot, throughSeq, keepLog = false) {
      if (closed) return afterClose(`compacting ${doc}`);
      const entry = entryOf(doc);
      const drop = entry.log.after(throughSeq);
      entry.snapshot = snapshot;
      if (keepLog) {
        if (entry.kept === NO_KEPT && drop > 0) entry.kept = new LogBuffer();
        moveFirst(entry.log, entry.kept, drop);
      } else {
        // Without history, the checkpoints and kept entries go as well.
        dropLines([...entry.kept.seqs, ...entry.log.seqs.slice(0, drop)]);
        entry.kept = NO_KEPT;
        entry.log.dropFirst(drop);
        for (const [seq, { checkpoint }] of entry.checkpoints ?? [])
          if (checkpoint.label === undefined) entry.checkpoints!.delete(seq);
      }
      entry.bytes = snapshot.byteLength;
      for (const update of entry.log.entries()) entry.bytes += update.byteLength;
      return Promise.resolve();
    },

    lastSeq: async () => lastSeq,

    readChanges(query) {
      const { doc, prefix = '', afterSeq, limit, deletions = false } = query;
      const throughSeq = query.throughSeq ?? Number.MAX_SAFE_INTEGER;
      const changes: ChangeEntry[] = [];
      const deletionAt = (line: IndexLine): ChangeEntry => ({
        seq: line.seq,
        doc: line.doc,
        time: line.time,
        writers: line.writers,
        update: NO_UPDATE,
        deleted: true,
      });
      const entryAt = (line: IndexLine): ChangeEntry | undefined => {
        if (line.deleted) return deletions ? deletionAt(line) : undefined;
        const update = updateOf(docs.get(line.doc)!, line.seq);
        return (
          update && { seq: line.seq, doc: line.doc, time: line.time, writers: line.writers, update }
        );
      };
      if (doc !== undefined) {
        // Its deletion comes first: every entry still in its log was written after it.
        const deleted = deletions ? lineOf.get(tombstones.get(doc)?.seq ?? 0) : undefined;
        if (deleted && deleted.seq > afterSeq && deleted.seq <= throughSeq && limit > 0)
          changes.push(deletionAt(deleted));
        const entry = docs.get(doc);
        if (entry)
          for (const buffer of [entry.kept, entry.log])
            for (let i = buffer.after(afterSeq); i < buffer.length && changes.length < limit; i++) {
              const seq = buffer.seqs[i]!;
              if (seq > throughSeq) break;
              const line = lineOf.get(seq);
              changes.push({
                seq,
                doc,
                time: line?.time ?? 0,
                writers: line?.writers ?? [],
                update: buffer.at(i),
              });
            }
        return Promise.resolve({ changes, scannedThrough: changes.at(-1)?.seq ?? afterSeq });
      }
      let lo = 0;
      let hi = index.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (index[mid]!.seq <= afterSeq) lo = mid + 1;
        else hi = mid;
      }
      let scannedThrough = afterSeq;
      for (let i = lo; i < index.length && i < lo + 10_000 && changes.length < limit; i++) {
        const line = index[i]!;
        if (line.seq > throughSeq) break;
        scannedThrough = line.seq;
        if (line.gone || !line.doc.startsWith(prefix)) continue;
        const change = entryAt(line);
        if (change) changes.push(change);
      }
      return Promise.resolve({ changes, scannedThrough });
    },

    putCheckpoint(doc, checkpoint, state) {
      if (closed) return afterClose(`storing a checkpoint of ${doc}`);
      (entryOf(doc).checkpoints ??= new Map()).set(checkpoint.seq, {
        checkpoint: { ...checkpoint, bytes: state.byteLength },
        state: state.slice(),
      });
      return Promise.resolve();
    },

    checkpoints(doc) {
      const all = [...(docs.get(doc)?.checkpoints?.values() ?? [])].map((c) => c.checkpoint);
      return Promise.resolve(all.sort((a, b) => a.seq - b.seq));
    },

    checkpointState(doc, seq) {
      return Promise.resolve(docs.get(doc)?.checkpoints?.get(seq)?.state.slice());
    },

    trimHistory(doc, throughSeq) {
      if (closed) return afterClose(`trimming the history of ${doc}`);
      const entry = docs.get(doc);
      if (!entry) return Promise.resolve();
      const drop = entry.kept.after(throughSeq);
      dropLines(entry.kept.seqs.slice(0, drop));
      entry.kept.dropFirst(drop);
      for (const [seq, { checkpoint }] of entry.checkpoints ?? [])
        if (seq < throughSeq && checkpoint.label === undefined) entry.checkpoints!.delete(seq);
      return Promise.resolve();
    },

    remove(doc, deletion) {
      if (closed) return afterClose(`removing ${doc}`);
      const entry = docs.get(doc);
      if (entry) dropLines([...entry.kept.seqs, ...entry.log.seqs]);
      docs.delete(doc);
      if (!deletion) return Promise.resolve(0);
      const previous = tombstones.get(doc);
      if (previous) dropLines([previous.seq]);
      const seq = ++lastSeq;
      const line: IndexLine = {
        seq,
        doc,
        time: now(),
        writers: deletion.writers,
        gone: false,
        deleted: true,
      };
      index.push(line);
      lineOf.set(seq, line);
      tombstones.set(doc, { seq, tombstone: deletion.tombstone.slice() });
      return Promise.resolve(seq);
    },

    async *tombstones() {
      const names = [...tombstones.keys()].sort(byKey);
      for (const doc of names) {
        const kept = tombstones.get(doc);
        if (kept) yield { doc, seq: kept.seq, tombstone: kept.tombstone.slice() };
      }
    },

    dropTombstone(doc, seq) {
      if (closed) return afterClose(`dropping the tombstone of ${doc}`);
      if (tombstones.get(doc)?.seq === seq) {
        tombstones.delete(doc);
        dropLines([seq]);
      }
      return Promise.resolve();
    },

    async *list() {
      const names = [...docs]
        .filter(([, e]) => e.snapshot !== undefined || e.log.length > 0 || e.kept.length > 0)
        .map(([name]) => name);
      yield* names.sort(byKey);
    },

    docs({ prefix = '', after, limit }) {
      const page: DocSummary[] = [];
      const names = [...docs.keys()]
        .filter(
          (name) => name.startsWith(prefix) && (after === undefined || byKey(name, after) > 0),
        )
        .sort(byKey);
      for (const name of names) {
        if (page.length >= limit) break;
        const e = docs.get(name)!;
        if (e.snapshot !== undefined || e.log.length > 0 || e.kept.length > 0)
          page.push({ name, bytes: e.bytes, lastChange: e.lastChange });
      }
      return Promise.resolve(page);
    },

    close() {
      closed = true;
      return Promise.resolve();
    },
  };
  return Promise.resolve(store);
};

/** Key order of the LevelDB store (UTF-8 byte order), which list() promises. */
const byKey = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

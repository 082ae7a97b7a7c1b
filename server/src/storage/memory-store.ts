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
import { StoreError, type Store, type StoredDoc } from './store.js';

/**
 * A document's log: entries copied end to end into one buffer that grows by
 * doubling. Why not an array of the callers' Uint8Arrays: each kept update is a
 * young object (an ArrayBuffer with its bookkeeping for all but the smallest) that
 * every scavenge until its promotion has to copy. At 4,000 updates a second they
 * were the largest survivor outside Yjs (heap sampling, bench scenario 3); in one
 * buffer, a scavenge moves a fifth less (514 → 419 KB), and scavenge pauses are what
 * a client sees as the latency tail.
 */
class LogBuffer {
  private bytes = new Uint8Array(256);
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
    this.ends.push(this.used);
    this.seqs.push(seq);
  }

  /** The entries, as copies (a caller may keep them while the log moves on). */
  entries(): Uint8Array[] {
    return this.ends.map((end, i) => this.bytes.slice(this.ends[i - 1] ?? 0, end));
  }

  /** Drops the first `count` entries. */
  dropFirst(count: number): void {
    if (count === 0) return;
    const from = this.ends[count - 1]!;
    const rest = this.bytes.subarray(from, this.used);
    this.bytes = new Uint8Array(Math.max(256, rest.byteLength * 2));
    this.bytes.set(rest);
    this.used = rest.byteLength;
    this.ends = this.ends.slice(count).map((end) => end - from);
    this.seqs = this.seqs.slice(count);
  }
}

interface DocEntry {
  snapshot: Uint8Array | undefined;
  log: LogBuffer;
}

export const createMemoryStore = (): Promise<Store> => {
  const docs = new Map<string, DocEntry>();
  const records = new Map<string, Uint8Array>();
  let lastSeq = 0;
  let closed = false;

  const entryOf = (doc: string): DocEntry => {
    let entry = docs.get(doc);
    if (!entry) docs.set(doc, (entry = { snapshot: undefined, log: new LogBuffer() }));
    return entry;
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
        lastSeq: entry?.log.seqs.at(-1) ?? 0,
      };
      return Promise.resolve(stored);
    },

    append(doc, update, extra) {
      if (closed) return afterClose(`appending to ${doc}`);
      if (extra) for (const r of extra) records.set(r.key, r.value);
      if (update === null) return Promise.resolve(0);
      const seq = ++lastSeq;
      entryOf(doc).log.push(seq, update);
      return Promise.resolve(seq);
    },

    appendAll(entries, extra) {
      if (closed) return afterClose('appending');
      if (extra) for (const r of extra) records.set(r.key, r.value);
      return Promise.resolve(
        entries.map(({ doc, update }) => {
          const seq = ++lastSeq;
          entryOf(doc).log.push(seq, update);
          return seq;
        }),
      );
    },

    getRecord(key) {
      return Promise.resolve(records.get(key));
    },

    compact(doc, snapshot, throughSeq) {
      if (closed) return afterClose(`compacting ${doc}`);
      const entry = entryOf(doc);
      const { seqs } = entry.log;
      let drop = 0;
      while (drop < seqs.length && seqs[drop]! <= throughSeq) drop++;
      entry.snapshot = snapshot;
      entry.log.dropFirst(drop);
      return Promise.resolve();
    },

    remove(doc) {
      if (closed) return afterClose(`removing ${doc}`);
      docs.delete(doc);
      return Promise.resolve();
    },

    async *list() {
      const names = [...docs]
        .filter(([, e]) => e.snapshot !== undefined || e.log.length > 0)
        .map(([name]) => name);
      yield* names.sort(byKey);
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

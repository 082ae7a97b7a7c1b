/**
 * The in-memory Store: plain Maps, no database engine. For tests about something
 * else and for nodes that need no persistence across restarts (benchmarks).
 *
 * Same contract as the LevelDB store (test/store-contract.ts): global monotonic
 * sequence numbers, per-document snapshot + log, records apart from documents,
 * atomic compaction. A write is applied when `append` is called, so appends are
 * ordered by call; the returned promise resolves on a later microtask, never
 * synchronously, like a real store. (It used to be `memory-level` under the
 * LevelDB adapter: abstract-level's per-operation batch overhead and the
 * persistent red-black tree's allocations were about half of a node's CPU per update.)
 */
import { StoreError, type Store, type StoredDoc } from './store.js';

interface DocEntry {
  snapshot: Uint8Array | undefined;
  /** Log entries in append (= seq) order. */
  seqs: number[];
  updates: Uint8Array[];
}

export const createMemoryStore = (): Promise<Store> => {
  const docs = new Map<string, DocEntry>();
  const records = new Map<string, Uint8Array>();
  let lastSeq = 0;
  let closed = false;

  const entryOf = (doc: string): DocEntry => {
    let entry = docs.get(doc);
    if (!entry) docs.set(doc, (entry = { snapshot: undefined, seqs: [], updates: [] }));
    return entry;
  };

  const afterClose = (what: string): Promise<never> => Promise.reject(new StoreError(`${what} after close`));

  const store: Store = {
    load(doc) {
      const entry = docs.get(doc);
      const updates: Uint8Array[] = [];
      let bytes = 0;
      if (entry?.snapshot) {
        updates.push(entry.snapshot);
        bytes += entry.snapshot.byteLength;
      }
      for (const update of entry?.updates ?? []) {
        updates.push(update);
        bytes += update.byteLength;
      }
      const stored: StoredDoc = { updates, bytes, logLength: entry?.seqs.length ?? 0, lastSeq: entry?.seqs.at(-1) ?? 0 };
      return Promise.resolve(stored);
    },

    append(doc, update, extra) {
      if (closed) return afterClose(`appending to ${doc}`);
      if (extra) for (const r of extra) records.set(r.key, r.value);
      if (update === null) return Promise.resolve(0);
      const seq = ++lastSeq;
      const entry = entryOf(doc);
      entry.seqs.push(seq);
      entry.updates.push(update);
      return Promise.resolve(seq);
    },

    appendAll(entries, extra) {
      if (closed) return afterClose('appending');
      if (extra) for (const r of extra) records.set(r.key, r.value);
      return Promise.resolve(
        entries.map(({ doc, update }) => {
          const seq = ++lastSeq;
          const entry = entryOf(doc);
          entry.seqs.push(seq);
          entry.updates.push(update);
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
      let drop = 0;
      while (drop < entry.seqs.length && entry.seqs[drop]! <= throughSeq) drop++;
      entry.snapshot = snapshot;
      if (drop > 0) {
        entry.seqs = entry.seqs.slice(drop);
        entry.updates = entry.updates.slice(drop);
      }
      return Promise.resolve();
    },

    async *list() {
      const names = [...docs].filter(([, e]) => e.snapshot !== undefined || e.seqs.length > 0).map(([name]) => name);
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

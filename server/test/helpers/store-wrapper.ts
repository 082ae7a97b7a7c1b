/**
 * A Store that forwards every method to `inner` except the ones a test replaces
 * (to count, delay or fail them). One wrapper for every test, so a method added to
 * the port is forwarded everywhere instead of silently missing from a copy.
 */
import type { Store } from '../../src/storage/store.js';

export const delegateStore = (inner: Store, overrides: Partial<Store> = {}): Store => ({
  load: (doc) => inner.load(doc),
  append: (doc, update, records, writers) => inner.append(doc, update, records, writers),
  appendAll: (entries, records) => inner.appendAll(entries, records),
  getRecord: (key) => inner.getRecord(key),
  compact: (doc, snapshot, throughSeq, keepLog) =>
    inner.compact(doc, snapshot, throughSeq, keepLog),
  readChanges: (query) => inner.readChanges(query),
  putCheckpoint: (doc, checkpoint, state) => inner.putCheckpoint(doc, checkpoint, state),
  checkpoints: (doc) => inner.checkpoints(doc),
  checkpointState: (doc, seq) => inner.checkpointState(doc, seq),
  trimHistory: (doc, throughSeq) => inner.trimHistory(doc, throughSeq),
  remove: (doc, deletion) => inner.remove(doc, deletion),
  tombstones: () => inner.tombstones(),
  dropTombstone: (doc, seq) => inner.dropTombstone(doc, seq),
  list: () => inner.list(),
  docs: (query) => inner.docs(query),
  lastSeq: () => inner.lastSeq(),
  close: () => inner.close(),
  ...overrides,
});

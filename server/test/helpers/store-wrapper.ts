/**
 * A Store that forwards every method to `inner` except the ones a test replaces
 * (to count, delay or fail them). One wrapper for every test, so a method added to
 * the port is forwarded everywhere instead of silently missing from a copy.
 */
import type { Store } from '../../src/storage/store.js';

export const delegateStore = (inner: Store, overrides: Partial<Store> = {}): Store => ({
  load: (doc) => inner.load(doc),
  append: (doc, update, records) => inner.append(doc, update, records),
  appendAll: (entries, records) => inner.appendAll(entries, records),
  getRecord: (key) => inner.getRecord(key),
  compact: (doc, snapshot, throughSeq) => inner.compact(doc, snapshot, throughSeq),
  remove: (doc) => inner.remove(doc),
  list: () => inner.list(),
  close: () => inner.close(),
  ...overrides,
});

/**
 * Local persistence of a document (so a reload while offline loses nothing).
 * `'indexeddb'` loads `y-indexeddb` lazily, on first use: apps that do not ask
 * for it never load it, and the SDK keeps working where IndexedDB is missing.
 */
import type * as Y from 'yjs';

/** A local copy of one document, e.g. y-indexeddb's `IndexeddbPersistence`. */
export interface Persistence {
  /** Resolves once the stored copy has been applied to the document. */
  readonly whenSynced: Promise<unknown>;
  destroy(): unknown;
}

/** Attaches local persistence to the document `name`. */
export type PersistenceFactory = (name: string, doc: Y.Doc) => Persistence | Promise<Persistence>;

/** IndexedDB through y-indexeddb; one database per document, named `stateweave:<name>`. */
export const indexeddbPersistence: PersistenceFactory = async (name, doc) => {
  const { IndexeddbPersistence } = await import('y-indexeddb');
  return new IndexeddbPersistence(`stateweave:${name}`, doc);
};

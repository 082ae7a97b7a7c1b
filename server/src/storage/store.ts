/**
 * The storage port. Opaque bytes per document; the hub never sees LevelDB.
 * Every adapter (LevelDB, in-memory) passes the contract suite, exported for
 * other adapters as `storeContract` from `@stateweave/server/testing`.
 */
export interface StoredDoc {
  /** The merged snapshot (if any) followed by the log, in append order. */
  readonly updates: readonly Uint8Array[];
  /** Number of log entries not yet merged into the snapshot. */
  readonly logLength: number;
  /** Total bytes of snapshot and log. */
  readonly bytes: number;
  /** Highest log sequence number of this document, 0 when none. */
  readonly lastSeq: number;
}

/** A keyed value stored atomically with an update (see `Store.append`). */
export interface StoreRecord {
  readonly key: string;
  readonly value: Uint8Array;
}

/** One document's update in `Store.appendAll`. */
export interface DocUpdate {
  readonly doc: string;
  readonly update: Uint8Array;
}

export interface Store {
  /** Reads everything stored for a document; an unknown document is empty. */
  load(doc: string): Promise<StoredDoc>;
  /**
   * Appends one update to the document's log. Resolves with its sequence number
   * once it is durably written (group commit); rejects with a StoreError if the
   * write failed — never resolves for a write that did not happen.
   *
   * `records` (e.g. a function's invocation record) are written in the same
   * atomic batch, so the effect and its record are stored together or not at
   * all. With `update` null only the records are written (resolves with 0).
   */
  append(doc: string, update: Uint8Array | null, records?: readonly StoreRecord[]): Promise<number>;
  /**
   * `append` for several documents in one atomic batch (a function that writes
   * several documents): every update and record is stored, or none. Resolves
   * with the updates' sequence numbers, in order.
   */
  appendAll(entries: readonly DocUpdate[], records?: readonly StoreRecord[]): Promise<number[]>;
  /** Reads a record written by `append` or `appendAll`; undefined when there is none. */
  getRecord(key: string): Promise<Uint8Array | undefined>;
  /**
   * Atomically replaces the snapshot with `snapshot` and drops log entries with
   * seq ≤ `throughSeq`. The snapshot must contain everything those entries did.
   */
  compact(doc: string, snapshot: Uint8Array, throughSeq: number): Promise<void>;
  /**
   * Deletes everything stored for a document (snapshot and log) in one atomic
   * batch; afterwards it loads as empty and is not listed. Records stay.
   */
  remove(doc: string): Promise<void>;
  /** Names of all stored documents, in key order. */
  list(): AsyncIterable<string>;
  /** Waits for pending writes, then closes. */
  close(): Promise<void>;
}

/** A write or read that the storage engine refused. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

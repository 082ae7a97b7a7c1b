/**
 * The storage port. Opaque bytes per document; the hub never sees LevelDB.
 * Every adapter (LevelDB, in-memory) passes the contract suite, exported for
 * other adapters as `storeContract` from `@stateweave/server/testing`.
 *
 * Documents are named by `DocName`: the port receives only names that passed
 * the rule at an edge, and an adapter that reads a name back from its own bytes
 * (list, tombstones, the change index) checks it again rather than trusting disk.
 */
import type { DocName } from '../doc-name.js';

export interface StoredDoc {
  /** The merged snapshot (if any) followed by the log, in append order. */
  readonly updates: readonly Uint8Array[];
  /** Number of log entries not yet merged into the snapshot. */
  readonly logLength: number;
  /** Total bytes of snapshot and log. */
  readonly bytes: number;
  /** Highest log sequence number of this document, 0 when none. */
  readonly lastSeq: number;
  /** True when a snapshot exists (the document has been compacted at least once). */
  readonly compacted: boolean;
}

/** A keyed value stored atomically with an update (see `Store.append`). */
export interface StoreRecord {
  readonly key: string;
  readonly value: Uint8Array;
}

/** One document's update in `Store.appendAll`. */
export interface DocUpdate {
  readonly doc: DocName;
  readonly update: Uint8Array;
  /** Who made it (`Store.append`'s `writers`). @default [] */
  readonly writers?: readonly string[];
}

/**
 * One stored log entry as the history and the change feed see it. `time` and
 * `writers` are stamped at append; entries written before they existed have
 * time 0 and no writers.
 */
export interface ChangeEntry {
  readonly seq: number;
  readonly doc: DocName;
  /** Epoch ms when the store accepted it; never less than an earlier entry's. */
  readonly time: number;
  readonly writers: readonly string[];
  /** Empty for a deletion. */
  readonly update: Uint8Array;
  /** The document was deleted here (`Store.remove` with a deletion); asked for with `deletions`. */
  readonly deleted?: true;
}

export interface ChangeQuery {
  /** One document's entries; without it, every document's whose name starts with `prefix`. */
  readonly doc?: DocName;
  /** @default '' (every document) */
  readonly prefix?: string;
  /** Entries with a larger seq only. */
  readonly afterSeq: number;
  /** Entries up to this seq only. @default no bound */
  readonly throughSeq?: number;
  /** At most this many entries. */
  readonly limit: number;
  /** Include the deletions of documents (entries with `deleted`). @default false */
  readonly deletions?: boolean;
}

/** What `Store.remove` keeps of a deleted document: a line in the change index and its tombstone. */
export interface Deletion {
  /** Who deleted it (the change feed's writers). */
  readonly writers: readonly string[];
  /** Opaque bytes (cluster/tombstones.ts), kept under the document's name until dropped. */
  readonly tombstone: Uint8Array;
}

/** A kept tombstone and the seq of the deletion's line in the change index. */
export interface StoredTombstone {
  readonly doc: DocName;
  readonly seq: number;
  readonly tombstone: Uint8Array;
}

export interface ChangePage {
  readonly changes: ChangeEntry[];
  /**
   * Every entry up to this seq has been looked at: a reader filtering by prefix
   * may continue from here even when `changes` is empty (the scan is bounded).
   */
  readonly scannedThrough: number;
}

/**
 * A stored state of a document at a log position: made at intervals by the
 * history, or named by a user (`label`), which trimming never drops.
 */
export interface Checkpoint {
  /** The state contains exactly the document's log entries with seq ≤ this. */
  readonly seq: number;
  /** Epoch ms of the state (of the entry at `seq`, or when it was named). */
  readonly time: number;
  /** Bytes of the stored state. */
  readonly bytes: number;
  readonly label?: string;
  /** Who named it. */
  readonly by?: string;
}

/** One stored document as the document list shows it (`Store.docs`). */
export interface DocSummary {
  readonly name: DocName;
  /** Bytes of snapshot and log (what `load` reads). */
  readonly bytes: number;
  /** Epoch ms when its last change was stored; 0 when unknown (stored by an older version and compacted since). */
  readonly lastChange: number;
}

export interface DocQuery {
  /** @default '' (every document) */
  readonly prefix?: string;
  /** Exclusive: names after this one only. */
  readonly after?: string;
  readonly limit: number;
}

export interface Store {
  /** Reads everything stored for a document; an unknown document is empty. */
  load(doc: DocName): Promise<StoredDoc>;
  /**
   * Appends one update to the document's log. Resolves with its sequence number
   * once it is durably written (group commit); rejects with a StoreError if the
   * write failed — never resolves for a write that did not happen.
   *
   * `records` (e.g. a function's invocation record) are written in the same
   * atomic batch, so the effect and its record are stored together or not at
   * all. With `update` null only the records are written (resolves with 0).
   *
   * `writers` (e.g. `user:alice`, `function:trackVisit`) are kept with the entry,
   * with the time, for the history and the change feed.
   */
  append(
    doc: DocName,
    update: Uint8Array | null,
    records?: readonly StoreRecord[],
    writers?: readonly string[],
  ): Promise<number>;
  /**
   * `append` for several documents in one atomic batch (a function that writes
   * several documents): every update and record is stored, or none. Resolves
   * with the updates' sequence numbers, in order.
   */
  appendAll(entries: readonly DocUpdate[], records?: readonly StoreRecord[]): Promise<number[]>;
  /** Reads a record written by `append` or `appendAll`; undefined when there is none. */
  getRecord(key: string): Promise<Uint8Array | undefined>;
  /**
   * Atomically replaces the snapshot with `snapshot`, which must contain
   * everything the log entries with seq ≤ `throughSeq` did; `load` no longer
   * returns those entries. They are deleted, unless `keepLog` (the history keeps
   * them until `trimHistory`).
   */
  compact(doc: DocName, snapshot: Uint8Array, throughSeq: number, keepLog?: boolean): Promise<void>;
  /** Log entries in seq order, with their time and writers (see ChangeQuery). */
  readChanges(query: ChangeQuery): Promise<ChangePage>;
  /** Stores a state of `doc` (replacing one at the same seq). */
  putCheckpoint(
    doc: DocName,
    checkpoint: Omit<Checkpoint, 'bytes'>,
    state: Uint8Array,
  ): Promise<void>;
  /** The document's checkpoints in seq order (without their states). */
  checkpoints(doc: DocName): Promise<Checkpoint[]>;
  /** A checkpoint's state; undefined when there is none at `seq`. */
  checkpointState(doc: DocName, seq: number): Promise<Uint8Array | undefined>;
  /**
   * Drops the history up to `throughSeq`: log entries with seq ≤ it (never one
   * that `load` still returns) and unnamed checkpoints with seq < it.
   */
  trimHistory(doc: DocName, throughSeq: number): Promise<void>;
  /**
   * Deletes everything stored for a document (snapshot, log, history) in one
   * atomic batch; afterwards it loads as empty and is not listed. Records stay.
   * With `deletion`, the same batch stores its tombstone (replacing an earlier
   * one of the document, and that one's line) and a line in the change index;
   * resolves with that line's seq (0 without).
   */
  remove(doc: DocName, deletion?: Deletion): Promise<number>;
  /** Every kept tombstone, in document name order. */
  tombstones(): AsyncIterable<StoredTombstone>;
  /** Drops the document's tombstone and its deletion line, if the tombstone is still the one of `seq`. */
  dropTombstone(doc: DocName, seq: number): Promise<void>;
  /** Names of all stored documents, in key order. */
  list(): AsyncIterable<DocName>;
  /**
   * A page of stored documents in key order with their size and last change,
   * from a summary the store keeps with every write: one small read per
   * document, never its content.
   */
  docs(query: DocQuery): Promise<DocSummary[]>;
  /**
   * A sequence number no log entry exceeds now: every entry appended later gets
   * a larger one (the stored catch-up remembers it per peer). 0 when none.
   */
  lastSeq(): Promise<number>;
  /**
   * Every key and value as of one instant (a database snapshot), for an online
   * backup (backup-format.ts). Only stores whose bytes a node can start from
   * again have it (LevelDB: a copy is a data directory).
   */
  dump?(): AsyncIterable<readonly [key: string, value: Uint8Array]>;
  /** Waits for pending writes, then closes. */
  close(): Promise<void>;
}

/** A write or read that the storage engine refused. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

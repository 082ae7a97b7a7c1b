/**
 * Makes one document's changes durable, in order. `save(update)` resolves once
 * that update — and every earlier one of this document — is in the store, which
 * is exactly what a "saved" acknowledgement may promise.
 *
 * A failed append is never swallowed: it is logged and counted, the promise stays
 * pending, and a repair writes the whole in-memory state (which contains the lost
 * update) with backoff until the store accepts it. Saves after a failure wait for
 * that repair, so acknowledgements never skip over a lost write. `stop()` (the
 * room is being destroyed) ends the repair and rejects what it still covered:
 * those changes were never stored, and retrying against a closed store forever
 * would only keep the process alive.
 */
import type { DocName } from '../doc-name.js';
import * as Y from 'yjs';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Store, StoreRecord } from '../storage/store.js';
import { StateweaveError } from '../errors.js';

/**
 * How a snapshot is stored (the history's port, wired in server.ts). The
 * default replaces the snapshot and drops the log it covers.
 */
export interface Compactor {
  /**
   * Stores `snapshot` for `doc`: it contains every log entry with seq ≤
   * `throughSeq`, and when `exact` nothing else (no write was in flight).
   * `wasCompacted`: a snapshot existed before this one.
   */
  compact(
    doc: DocName,
    snapshot: Uint8Array,
    throughSeq: number,
    exact: boolean,
    wasCompacted: boolean,
  ): Promise<void>;
}

/** What every document's persister shares (the hub passes one object for all rooms). */
export interface PersisterOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Merge the log into the snapshot once it has this many entries. */
  readonly compactAfterUpdates: number;
  /** @default store.compact (no history) */
  readonly compactor?: Compactor;
}

/** What the store held for a document at load time (only these counts are kept, not the updates). */
export interface StoredCounts {
  readonly logLength: number;
  readonly bytes: number;
  readonly lastSeq: number;
  readonly compacted: boolean;
}

/**
 * The current state of a document as one update. The room passes its state
 * cache (hub/state-cache.ts), so a snapshot and the next fresh client share one
 * encode. Called synchronously where the snapshot is taken, so it is never
 * older than the document; the bytes may be shared and are only read.
 */
export interface StateSource {
  state(): Uint8Array;
}

export interface Persister {
  /** Stores an applied change; `writers` name who made it (origin.ts `writerOf`). */
  save(update: Uint8Array, writers: readonly string[]): Promise<void>;
  /**
   * The output gate for writes that must be stored before anyone sees them
   * (function results): stores `update` (or nothing) with `records` in one batch
   * and only then calls `apply`, synchronously in the callback where the entry
   * becomes durable, so a compaction can never snapshot a document that lacks a
   * durable log entry. A refused write rejects and `apply` never runs: nothing
   * was applied, so there is nothing to repair. Resolves once this write and
   * every earlier save are durable.
   */
  saveGated(
    update: Uint8Array | null,
    records: readonly StoreRecord[],
    apply: () => void,
    writers: readonly string[],
  ): Promise<void>;
  /**
   * `saveGated` for a write someone else started (one batch over several
   * documents, `Store.appendAll`): `written` resolves with this update's seq.
   */
  saveGatedWith(
    update: Uint8Array | null,
    written: Promise<number>,
    apply: () => void,
  ): Promise<void>;
  /** Resolves when every save so far is durable. */
  covered(): Promise<void>;
  /** true once every save so far is durable; false as soon as a write has failed. */
  flush(): Promise<boolean>;
  /** Merges the log into a snapshot now (no-op when the log is empty). */
  compact(): Promise<void>;
  /** Gives up on a running repair (its saves reject); for a room being destroyed. */
  stop(): void;
  /** true while a failed write is being repaired (the store refuses writes). */
  readonly failing: boolean;
  /** Approximate stored size of the document in bytes. */
  readonly bytes: number;
  readonly logLength: number;
  /** A snapshot exists (the log before it may be gone). */
  readonly compacted: boolean;
  /** Highest seq of this document's durable log entries. */
  readonly lastSeq: number;
}

const REPAIR_BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

/** The default compaction: replace the snapshot and drop the log it covers. */
const storeCompactor = (store: Store): Compactor => ({
  compact: (doc, snapshot, throughSeq) => store.compact(doc, snapshot, throughSeq),
});

/**
 * A class, not a factory of closures: one per open document, and its methods
 * live once on the prototype (the closures cost about 1.3 KB per idle room).
 * It holds the shared options and the document's own four references, no copy
 * of either (idle memory is per open document).
 */
class DocPersister implements Persister {
  private tail: Promise<void> = Promise.resolve();
  private logEntries: number;
  private storedBytes: number;
  private durableSeq: number;
  private snapshotted: boolean;
  /** Appends not yet settled: while any is, the document holds changes beyond durableSeq. */
  private inFlight = 0;
  private compacting: Promise<void> | undefined;
  // Repair state: `needsRepair` is set by each failure; the loop re-encodes until
  // a write succeeds with no failure reported after its encoding.
  private needsRepair = false;
  private repairing: Promise<void> | undefined;
  /** Made by the first `flush` that has to wait. */
  private failureListeners: Array<() => void> | undefined;
  private stopped = false;
  /** Cuts the current repair backoff short (set while waiting). */
  private wake: (() => void) | undefined;

  constructor(
    private readonly options: PersisterOptions,
    private readonly name: DocName,
    private readonly doc: Y.Doc,
    initial: StoredCounts,
    private readonly source: StateSource | undefined,
  ) {
    this.logEntries = initial.logLength;
    this.storedBytes = initial.bytes;
    this.durableSeq = initial.lastSeq;
    this.snapshotted = initial.compacted;
  }

  get logLength(): number {
    return this.logEntries;
  }

  get bytes(): number {
    return this.storedBytes;
  }

  get compacted(): boolean {
    return this.snapshotted;
  }

  get failing(): boolean {
    return this.repairing !== undefined;
  }

  get lastSeq(): number {
    return this.durableSeq;
  }

  private encodeState(): Uint8Array {
    return this.source ? this.source.state() : Y.encodeStateAsUpdate(this.doc);
  }

  // The outcomes of an append. Prototype methods called from a closure per save,
  // not arrows bound per instance: three bound functions were ~200 bytes of every
  // open document, a closure per save costs nothing next to the store's append.
  private settled(): void {
    this.inFlight--;
  }

  private appended(seq: number): void {
    this.durableSeq = Math.max(this.durableSeq, seq);
    this.logEntries++;
    this.maybeCompact();
  }

  private appendFailed(err: unknown): Promise<void> {
    this.options.metrics.errors.inc({ code: 'STORE_FAILED' });
    this.options.logger.error(
      { doc: this.name, err },
      'append failed; the change stays in memory and will be rewritten',
    );
    return this.repair();
  }

  private unsavedOnStop(): StateweaveError {
    return new StateweaveError(
      'STORE_FAILED',
      `${this.name} was closed with changes the store refused`,
    );
  }

  private repair(): Promise<void> {
    this.needsRepair = true;
    const listeners = this.failureListeners;
    this.failureListeners = undefined;
    for (const notify of listeners ?? []) notify();
    this.repairing ??= this.repairLoop();
    return this.repairing;
  }

  private async repairLoop(): Promise<void> {
    const { store, logger, metrics } = this.options;
    const { name } = this;
    for (let attempt = 0; this.needsRepair; attempt++) {
      if (this.stopped) throw this.unsavedOnStop();
      this.needsRepair = false;
      const state = this.encodeState();
      try {
        const seq = await store.append(name, state, undefined, ['node']);
        this.durableSeq = Math.max(this.durableSeq, seq);
        this.storedBytes += state.byteLength;
        this.logEntries++;
        logger.warn(
          { doc: name, attempt },
          'store repaired: full document state written after a failed append',
        );
      } catch (err) {
        this.needsRepair = true;
        metrics.errors.inc({ code: 'STORE_FAILED' });
        logger.error({ doc: name, attempt, err }, 'repair write failed; retrying');
        const delay = REPAIR_BACKOFF_MS[Math.min(attempt, REPAIR_BACKOFF_MS.length - 1)]!;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
    this.repairing = undefined;
  }

  private maybeCompact(): void {
    if (this.logEntries >= this.options.compactAfterUpdates && !this.compacting)
      setImmediate(() => void this.compact());
  }

  save(update: Uint8Array, writers: readonly string[]): Promise<void> {
    this.storedBytes += update.byteLength;
    this.inFlight++;
    const written = this.options.store.append(this.name, update, undefined, writers);
    const settled = (): void => this.settled();
    void written.then(settled, settled);
    const durable = written.then(
      (seq) => this.appended(seq),
      (err: unknown) => this.appendFailed(err),
    );
    // Chained so that save N never resolves before save N-1 (acks stay cumulative):
    // once this append is durable, wait for the previous tail. One `then` per save
    // instead of Promise.all + then; the rejected path still observes `prev`, so no
    // rejection goes unhandled.
    const prev = this.tail;
    this.tail = durable.then(
      () => prev,
      (err: unknown) =>
        prev.then(
          () => Promise.reject(err),
          () => Promise.reject(err),
        ),
    );
    return this.tail;
  }

  saveGated(
    update: Uint8Array | null,
    records: readonly StoreRecord[],
    apply: () => void,
    writers: readonly string[],
  ): Promise<void> {
    const { store } = this.options;
    return this.saveGatedWith(update, store.append(this.name, update, records, writers), apply);
  }

  saveGatedWith(
    update: Uint8Array | null,
    written: Promise<number>,
    apply: () => void,
  ): Promise<void> {
    this.inFlight++;
    const settled = (): void => this.settled();
    void written.then(settled, settled);
    const durable = written.then((seq) => {
      apply();
      if (update === null) return;
      this.storedBytes += update.byteLength;
      this.durableSeq = Math.max(this.durableSeq, seq);
      this.logEntries++;
      this.maybeCompact();
    });
    const before = this.tail;
    // Later saves wait for this one, but not for its failure (it left no trace).
    this.tail = Promise.all([this.tail, durable.catch(() => undefined)]).then(() => undefined);
    return Promise.all([before, durable]).then(() => undefined);
  }

  covered(): Promise<void> {
    return this.tail;
  }

  flush(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      if (this.repairing) return resolve(false);
      (this.failureListeners ??= []).push(() => resolve(false));
      void this.tail.then(
        () => resolve(true),
        () => resolve(false),
      );
    });
  }

  compact(): Promise<void> {
    if (this.compacting) return this.compacting;
    if (this.logEntries === 0) return Promise.resolve();
    const { options, name } = this;
    const { metrics, logger } = options;
    // Everything with seq ≤ durableSeq was applied to `doc` before it was appended,
    // so the current state contains it; later entries stay in the log.
    const throughSeq = this.durableSeq;
    const snapshot = this.encodeState();
    const exact = this.inFlight === 0 && this.repairing === undefined;
    const logAtStart = this.logEntries;
    const bytesAtStart = this.storedBytes;
    const compactor = options.compactor ?? storeCompactor(options.store);
    this.compacting = compactor
      .compact(name, snapshot, throughSeq, exact, this.snapshotted)
      .then(
        () => {
          this.snapshotted = true;
          this.logEntries -= logAtStart;
          this.storedBytes = snapshot.byteLength + (this.storedBytes - bytesAtStart);
          metrics.compactions.inc({ result: 'ok' });
          // Appends that landed meanwhile may already be past the threshold, and
          // no later append may come to notice: check again once this has ended.
          setImmediate(() => {
            if (!this.stopped) this.maybeCompact();
          });
        },
        (err: unknown) => {
          metrics.compactions.inc({ result: 'error' });
          logger.error({ doc: name, err }, 'compaction failed; the log is kept as it was');
        },
      )
      .finally(() => {
        this.compacting = undefined;
      });
    return this.compacting;
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }
}

/** `source` defaults to `Y.encodeStateAsUpdate(doc)`. */
export const createPersister = (
  options: PersisterOptions,
  name: DocName,
  doc: Y.Doc,
  initial: StoredCounts,
  source?: StateSource,
): Persister => new DocPersister(options, name, doc, initial, source);

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
    doc: string,
    snapshot: Uint8Array,
    throughSeq: number,
    exact: boolean,
    wasCompacted: boolean,
  ): Promise<void>;
}

export interface PersisterOptions {
  readonly store: Store;
  readonly name: string;
  readonly doc: Y.Doc;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Merge the log into the snapshot once it has this many entries. */
  readonly compactAfterUpdates: number;
  /** What the store held at load time. */
  readonly initial: {
    readonly logLength: number;
    readonly bytes: number;
    readonly lastSeq: number;
    readonly compacted: boolean;
  };
  /** @default store.compact (no history) */
  readonly compactor?: Compactor;
  /**
   * The current state of `doc` as one update. The room passes its state cache
   * (hub/state-cache.ts), so a snapshot and the next fresh client share one
   * encode. Called synchronously where the snapshot is taken, so it is never
   * older than the document; the bytes may be shared and are only read.
   * @default () => Y.encodeStateAsUpdate(doc)
   */
  readonly encodeState?: () => Uint8Array;
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

export const createPersister = (options: PersisterOptions): Persister => {
  const { store, name, doc, logger, metrics } = options;
  const encodeState = options.encodeState ?? (() => Y.encodeStateAsUpdate(doc));
  let tail: Promise<void> = Promise.resolve();
  let logLength = options.initial.logLength;
  let bytes = options.initial.bytes;
  let durableSeq = options.initial.lastSeq;
  let compacted = options.initial.compacted;
  /** Appends not yet settled: while any is, the document holds changes beyond durableSeq. */
  let inFlight = 0;
  const settled = (): void => {
    inFlight--;
  };
  const compactor: Compactor = options.compactor ?? {
    compact: (doc, snapshot, throughSeq) => store.compact(doc, snapshot, throughSeq),
  };
  let compacting: Promise<void> | undefined;
  // Repair state: `needsRepair` is set by each failure; the loop re-encodes until
  // a write succeeds with no failure reported after its encoding.
  let needsRepair = false;
  let repairing: Promise<void> | undefined;
  let failureListeners: Array<() => void> = [];
  let stopped = false;
  /** Cuts the current repair backoff short (set while waiting). */
  let wake: (() => void) | undefined;

  const unsavedOnStop = (): StateweaveError =>
    new StateweaveError('STORE_FAILED', `${name} was closed with changes the store refused`);

  const repair = (): Promise<void> => {
    needsRepair = true;
    for (const notify of failureListeners) notify();
    failureListeners = [];
    repairing ??= (async () => {
      for (let attempt = 0; needsRepair; attempt++) {
        if (stopped) throw unsavedOnStop();
        needsRepair = false;
        const state = encodeState();
        try {
          const seq = await store.append(name, state, undefined, ['node']);
          durableSeq = Math.max(durableSeq, seq);
          bytes += state.byteLength;
          logLength++;
          logger.warn(
            { doc: name, attempt },
            'store repaired: full document state written after a failed append',
          );
        } catch (err) {
          needsRepair = true;
          metrics.errors.inc({ code: 'STORE_FAILED' });
          logger.error({ doc: name, attempt, err }, 'repair write failed; retrying');
          const delay = REPAIR_BACKOFF_MS[Math.min(attempt, REPAIR_BACKOFF_MS.length - 1)]!;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, delay);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      }
      repairing = undefined;
    })();
    return repairing;
  };

  const maybeCompact = (): void => {
    if (logLength >= options.compactAfterUpdates && !compacting)
      setImmediate(() => void persister.compact());
  };

  // The two outcomes of an append, shared by every save (no closures per update).
  const appended = (seq: number): void => {
    durableSeq = Math.max(durableSeq, seq);
    logLength++;
    maybeCompact();
  };
  const appendFailed = (err: unknown): Promise<void> => {
    metrics.errors.inc({ code: 'STORE_FAILED' });
    logger.error(
      { doc: name, err },
      'append failed; the change stays in memory and will be rewritten',
    );
    return repair();
  };

  const persister: Persister = {
    save(update, writers) {
      bytes += update.byteLength;
      inFlight++;
      const written = store.append(name, update, undefined, writers);
      void written.then(settled, settled);
      const durable = written.then(appended, appendFailed);
      // Chained so that save N never resolves before save N-1 (acks stay cumulative):
      // once this append is durable, wait for the previous tail. One `then` per save
      // instead of Promise.all + then; the rejected path still observes `prev`, so no
      // rejection goes unhandled.
      const prev = tail;
      tail = durable.then(
        () => prev,
        (err: unknown) =>
          prev.then(
            () => Promise.reject(err),
            () => Promise.reject(err),
          ),
      );
      return tail;
    },

    saveGated(update, records, apply, writers) {
      return persister.saveGatedWith(update, store.append(name, update, records, writers), apply);
    },

    saveGatedWith(update, written, apply) {
      inFlight++;
      void written.then(settled, settled);
      const durable = written.then((seq) => {
        apply();
        if (update === null) return;
        bytes += update.byteLength;
        durableSeq = Math.max(durableSeq, seq);
        logLength++;
        maybeCompact();
      });
      const before = tail;
      // Later saves wait for this one, but not for its failure (it left no trace).
      tail = Promise.all([tail, durable.catch(() => undefined)]).then(() => undefined);
      return Promise.all([before, durable]).then(() => undefined);
    },

    covered: () => tail,

    flush() {
      return new Promise<boolean>((resolve) => {
        if (repairing) return resolve(false);
        failureListeners.push(() => resolve(false));
        void tail.then(
          () => resolve(true),
          () => resolve(false),
        );
      });
    },

    compact() {
      if (compacting) return compacting;
      if (logLength === 0) return Promise.resolve();
      // Everything with seq ≤ durableSeq was applied to `doc` before it was appended,
      // so the current state contains it; later entries stay in the log.
      const throughSeq = durableSeq;
      const snapshot = encodeState();
      const exact = inFlight === 0 && repairing === undefined;
      const logAtStart = logLength;
      const bytesAtStart = bytes;
      compacting = compactor
        .compact(name, snapshot, throughSeq, exact, compacted)
        .then(
          () => {
            compacted = true;
            logLength -= logAtStart;
            bytes = snapshot.byteLength + (bytes - bytesAtStart);
            metrics.compactions.inc({ result: 'ok' });
            // Appends that landed meanwhile may already be past the threshold, and
            // no later append may come to notice: check again once this has ended.
            setImmediate(() => {
              if (!stopped) maybeCompact();
            });
          },
          (err: unknown) => {
            metrics.compactions.inc({ result: 'error' });
            logger.error({ doc: name, err }, 'compaction failed; the log is kept as it was');
          },
        )
        .finally(() => {
          compacting = undefined;
        });
      return compacting;
    },

    stop() {
      stopped = true;
      wake?.();
    },

    get failing() {
      return repairing !== undefined;
    },
    get bytes() {
      return bytes;
    },
    get logLength() {
      return logLength;
    },
    get compacted() {
      return compacted;
    },
    get lastSeq() {
      return durableSeq;
    },
  };
  return persister;
};

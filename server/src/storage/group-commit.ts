/**
 * Group commit: writes requested while one batch is in flight are gathered into
 * the next batch, so a burst of N appends costs a handful of LevelDB writes, not
 * N. An idle writer flushes at the end of the event-loop turn (end-of-turn.ts),
 * after the rooms have applied and saved the turn's updates, so one turn's
 * appends share a batch and the write starts in the same turn.
 *
 * With `windowMs`, a write that is not urgent waits up to that long for others
 * to share it. Why: a LevelDB write hands the batch to a libuv pool thread and
 * back, and on this machine that round trip cost ~180 µs of CPU when the pool
 * thread was asleep (one 3-put batch every 2 ms, pinned to one core; 5 appends
 * in one batch cost ~200 µs), so at a few hundred edits a second nearly every
 * append paid it alone. Urgent writes (the output gate's, which hold a function
 * result back until stored, compactions, deletions) start at the end of the turn
 * and take whatever waits with them.
 */
import { atEndOfTurn } from '../end-of-turn.js';

export interface BatchOp {
  readonly type: 'put' | 'del';
  readonly key: string;
  readonly value?: Uint8Array;
}

export interface GroupCommitOptions<Op = BatchOp> {
  /** Writes one batch atomically. */
  readonly write: (ops: Op[]) => Promise<void>;
  /** Upper bound of operations per batch, so one batch never holds the writer for long. @default 4096 */
  readonly maxOpsPerBatch?: number;
  /**
   * Milliseconds a non-urgent submit may wait for others before its batch starts.
   * @default 0 (at the end of the turn)
   */
  readonly windowMs?: number;
  /** Called after each batch with its size and duration, for metrics. */
  readonly onBatch?: (ops: number, ms: number, error: unknown) => void;
}

interface Waiter<Op> {
  readonly ops: Op[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export interface GroupCommit<Op = BatchOp> {
  /**
   * Resolves when `ops` are written (atomically, together with other waiters' ops).
   * `urgent`: start the batch at the end of this turn even with a window.
   */
  submit(ops: Op[], urgent?: boolean): Promise<void>;
  /** Resolves when everything submitted so far is written or failed. */
  drain(): Promise<void>;
}

export const createGroupCommit = <Op = BatchOp>(
  options: GroupCommitOptions<Op>,
): GroupCommit<Op> => {
  const maxOps = options.maxOpsPerBatch ?? 4096;
  const windowMs = options.windowMs ?? 0;
  let queue: Array<Waiter<Op>> = [];
  let queuedOps = 0;
  let writing = false;
  /** A flush is queued for the end of this turn. */
  let scheduled = false;
  /** A flush waits for the window to end. */
  let timer: NodeJS.Timeout | undefined;
  let idle: Array<() => void> = [];

  const flushNow = (): void => void flush();
  /** Starts the waiting batch at the end of this turn (the window, if any, ends now). */
  const scheduleNow = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (scheduled) return;
    scheduled = true;
    atEndOfTurn(flushNow);
  };

  const flush = async (): Promise<void> => {
    scheduled = false;
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (writing) return;
    writing = true;
    while (queue.length > 0) {
      // Take whole waiters up to maxOps (a single large waiter goes alone).
      let count = 0;
      let n = 0;
      while (n < queue.length && (n === 0 || count + queue[n]!.ops.length <= maxOps))
        count += queue[n++]!.ops.length;
      // The usual case takes the whole queue: hand it over instead of copying it.
      const batch = n === queue.length ? queue : queue.slice(0, n);
      queue = n === batch.length && batch === queue ? [] : queue.slice(n);
      queuedOps -= count;
      let ops: Op[];
      if (batch.length === 1) ops = batch[0]!.ops;
      else {
        ops = [];
        for (const w of batch) for (const op of w.ops) ops.push(op);
      }
      const started = performance.now();
      let error: unknown;
      let failed = false;
      try {
        await options.write(ops);
      } catch (err) {
        failed = true;
        error = err;
      }
      // Waiters are settled by the write alone; the observer reports afterwards.
      for (const w of batch) {
        if (failed) w.reject(error);
        else w.resolve();
      }
      options.onBatch?.(ops.length, performance.now() - started, error);
    }
    writing = false;
    const waiting = idle;
    idle = [];
    for (const done of waiting) done();
  };

  return {
    submit(ops, urgent = false) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ ops, resolve, reject });
        queuedOps += ops.length;
        // While a batch is in flight, the queue goes next anyway.
        if (writing || scheduled) return;
        if (urgent || windowMs <= 0 || queuedOps >= maxOps) return scheduleNow();
        timer ??= setTimeout(flushNow, windowMs);
      });
    },
    drain() {
      if (!writing && !scheduled && queue.length === 0) return Promise.resolve();
      // Nobody waits for a window to end when the writer is being closed.
      if (!writing && timer !== undefined) scheduleNow();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
  };
};

/**
 * The queue both kinds of worker message share (prepare-batches.ts,
 * invoke-batches.ts): items wait here until a worker is free, which takes up to
 * `maxPerMessage` of them in one message, sent at the end of the I/O turn so that
 * items that became ready together share it. Waiting is bounded by the leases
 * (worker-leases.ts: OVERLOADED past theirs) and by the caller's own check of
 * `waiting`.
 *
 * A message that failed as a whole (a timeout, a crash, one that cannot be sent)
 * is split: `alone` puts each of its items in a queue of suspects, and each suspect
 * goes in a message of its own before anything else, so only the culprit fails.
 */
import { StateweaveError } from '../errors.js';
import type { WorkerLeases } from './worker-leases.js';
import type { Slot } from './worker-slots.js';

export interface WorkerBatchesOptions<T> {
  readonly leases: WorkerLeases;
  /** Most items one message carries. */
  readonly maxPerMessage: number;
  /** Messages in flight at most (how many workers this queue may hold at once). */
  readonly maxSenders: () => number;
  /** The warm key an item would like its worker to have. @default none */
  readonly warmKeyOf?: (item: T) => string | undefined;
  /** Sends one message with `items` to the held worker and settles every item (via the queue's methods or the item's own). */
  readonly send: (slot: Slot, items: readonly T[]) => Promise<void>;
  readonly reject: (item: T, err: StateweaveError) => void;
}

export interface WorkerBatches<T> {
  /** Items waiting for a worker (suspects included). */
  readonly waiting: number;
  /** True once closed: every later item is to be refused. */
  readonly closing: boolean;
  /** Waits for the next message. */
  push(item: T): void;
  /** Goes first in the next message (an item the worker asked to have again). */
  again(item: T): void;
  /** Items whose message failed as a whole: each goes alone next; one alone fails with `err`. */
  alone(items: readonly T[], err: StateweaveError): void;
  /** Goes alone next (the worker answered that it must: an entry it shared failed). */
  suspect(item: T): void;
  /** Refuses every waiting item with SHUTTING_DOWN. */
  close(): void;
}

export const createWorkerBatches = <T>(options: WorkerBatchesOptions<T>): WorkerBatches<T> => {
  const { leases, maxPerMessage } = options;
  const waiting: T[] = [];
  /** Items of a message that failed as a whole: each goes alone next. */
  const suspects: T[] = [];
  let senders = 0;
  let closing = false;

  let pumpScheduled = false;
  const schedulePump = (): void => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      pump();
    });
  };

  const rejectAll = (err: StateweaveError): void => {
    for (const item of [...waiting.splice(0), ...suspects.splice(0)]) options.reject(item, err);
  };

  const pump = (): void => {
    if (senders >= options.maxSenders() || waiting.length + suspects.length === 0) return;
    senders++;
    const first = suspects[0] ?? waiting[0];
    leases.acquire(first === undefined ? undefined : options.warmKeyOf?.(first)).then(
      async (held) => {
        const items =
          suspects.length > 0 ? suspects.splice(0, 1) : waiting.splice(0, maxPerMessage);
        try {
          if (items.length > 0) await options.send(held.slot, items);
        } finally {
          leases.release(held);
          senders--;
          pump();
        }
      },
      (err: StateweaveError) => {
        senders--;
        rejectAll(err);
      },
    );
    // Another worker may be free for what this message leaves.
    if (waiting.length > maxPerMessage) pump();
  };

  return {
    get waiting() {
      return waiting.length + suspects.length;
    },
    get closing() {
      return closing;
    },
    push(item) {
      waiting.push(item);
      schedulePump();
    },
    again(item) {
      waiting.unshift(item);
      schedulePump();
    },
    alone(items, err) {
      if (items.length > 1 && !closing) {
        suspects.push(...items);
        schedulePump();
      } else for (const item of items) options.reject(item, err);
    },
    suspect(item) {
      suspects.push(item);
      schedulePump();
    },
    close() {
      closing = true;
      rejectAll(new StateweaveError('SHUTTING_DOWN'));
    },
  };
};

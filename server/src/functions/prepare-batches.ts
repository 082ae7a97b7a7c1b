/**
 * `prepare` (validate an input, name its documents) in batches: prepares that
 * arrive while every worker is busy wait, and a free worker takes up to
 * MAX_BATCH of them in one message. A batch that times out or crashes its worker
 * is split: each of its inputs goes alone next, so only the culprit fails.
 */
import { StateweaveError } from '../errors.js';
import { bundleRefs, type Bundle } from './bundle-refs.js';
import type { WorkerLeases } from './worker-leases.js';
import { refusal, type Slot, type WorkerSlots } from './worker-slots.js';
import type { WorkerReply } from './worker-protocol.js';

/** An input, validated, and the documents it names (not yet validated as names). */
export interface PreparedInput {
  readonly input: unknown;
  readonly docs: readonly string[];
}

export interface PrepareBatches {
  prepare(bundle: Bundle, name: string, input: unknown, timeoutMs: number): Promise<PreparedInput>;
  /** Refuses every waiting prepare and every later one with SHUTTING_DOWN. */
  close(): void;
}

interface PendingPrepare {
  readonly bundle: Bundle;
  readonly name: string;
  readonly input: unknown;
  readonly timeoutMs: number;
  readonly resolve: (prepared: PreparedInput) => void;
  readonly reject: (err: StateweaveError) => void;
}

/** Most inputs one prepare message carries. */
const MAX_BATCH = 512;

export const createPrepareBatches = (slots: WorkerSlots, leases: WorkerLeases): PrepareBatches => {
  /** Prepares wait here while every worker is busy; a free worker takes them all in one message. */
  const preparing: PendingPrepare[] = [];
  /** Inputs of a batch that timed out or crashed its worker: each goes alone next. */
  const suspects: PendingPrepare[] = [];
  let preparers = 0;
  let closing = false;

  let pumpScheduled = false;
  /** Sends waiting prepares at the end of this I/O turn, so requests that arrived together share a message. */
  const schedulePump = (): void => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      pumpPrepares();
    });
  };

  const pumpPrepares = (): void => {
    // Prepares may hold all workers but one: a batch waiting to run must not queue behind them.
    if (preparers >= Math.max(1, slots.all.length - 1) || preparing.length + suspects.length === 0)
      return;
    preparers++;
    leases.acquire(undefined).then(
      async (held) => {
        const batch = suspects.length > 0 ? suspects.splice(0, 1) : preparing.splice(0, MAX_BATCH);
        try {
          if (batch.length > 0) await prepareBatch(held.slot, batch);
        } finally {
          leases.release(held);
          preparers--;
          pumpPrepares();
        }
      },
      (err: StateweaveError) => {
        preparers--;
        for (const pending of [...preparing.splice(0), ...suspects.splice(0)]) pending.reject(err);
      },
    );
  };

  /** A batch failed as a whole (timeout, crash, unsendable): each input alone again finds the culprit. */
  const settleSuspects = (batch: readonly PendingPrepare[], err: StateweaveError): void => {
    if (batch.length > 1 && !closing) {
      suspects.push(...batch);
      schedulePump();
    } else for (const p of batch) p.reject(err);
  };

  const prepareBatch = async (slot: Slot, batch: readonly PendingPrepare[]): Promise<void> => {
    const timeoutMs = Math.max(...batch.map((p) => p.timeoutMs));
    let reply: WorkerReply;
    try {
      const bundles = bundleRefs(
        slot.versions,
        batch.map((p) => p.bundle),
      );
      const items = batch.map((p) => ({ version: p.bundle.version, name: p.name, input: p.input }));
      reply = await slots.run(slot, { type: 'prepare', timeoutMs, bundles, items });
    } catch (err) {
      settleSuspects(batch, err as StateweaveError);
      return;
    }
    if (!reply.ok) {
      const error = refusal(reply);
      if (error.code === 'TIMEOUT' || error.code === 'FUNCTION_CRASHED')
        settleSuspects(batch, error);
      else for (const p of batch) p.reject(error);
      return;
    }
    for (const p of batch) slot.versions.add(p.bundle.version);
    if (reply.type !== 'prepare') throw new StateweaveError('INTERNAL', 'unexpected worker reply');
    batch.forEach((p, i) => {
      const item = reply.items[i];
      if (!item) p.reject(new StateweaveError('INTERNAL', 'the worker skipped an input'));
      else if (item.ok) p.resolve({ input: item.input, docs: item.docs });
      else p.reject(new StateweaveError(item.code, item.message));
    });
  };

  return {
    prepare(bundle, name, input, timeoutMs) {
      if (closing) return Promise.reject(new StateweaveError('SHUTTING_DOWN'));
      return new Promise((resolve, reject) => {
        preparing.push({ bundle, name, input, timeoutMs, resolve, reject });
        schedulePump();
      });
    },
    close() {
      closing = true;
      for (const pending of [...preparing.splice(0), ...suspects.splice(0)])
        pending.reject(new StateweaveError('SHUTTING_DOWN'));
    },
  };
};

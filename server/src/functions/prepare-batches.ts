/**
 * `prepare` (validate an input, name its documents) in batches: prepares that
 * arrive while every worker is busy wait in a worker-batches.ts queue, and a free
 * worker takes up to MAX_BATCH of them in one message. A batch that times out or crashes its worker
 * is split: each of its inputs goes alone next, so only the culprit fails.
 */
import { StateweaveError } from '../errors.js';
import { bundleRefs, type Bundle } from './bundle-refs.js';
import { createWorkerBatches } from './worker-batches.js';
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
      queue.alone(batch, err as StateweaveError);
      return;
    }
    if (!reply.ok) {
      const error = refusal(reply);
      if (error.code === 'TIMEOUT' || error.code === 'FUNCTION_CRASHED') queue.alone(batch, error);
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

  const queue = createWorkerBatches<PendingPrepare>({
    leases,
    maxPerMessage: MAX_BATCH,
    // Prepares may hold all workers but one: a batch waiting to run must not queue behind them.
    maxSenders: () => Math.max(1, slots.all.length - 1),
    send: prepareBatch,
    reject: (p, err) => p.reject(err),
  });

  return {
    prepare(bundle, name, input, timeoutMs) {
      if (queue.closing) return Promise.reject(new StateweaveError('SHUTTING_DOWN'));
      return new Promise((resolve, reject) =>
        queue.push({ bundle, name, input, timeoutMs, resolve, reject }),
      );
    },
    close: () => queue.close(),
  };
};

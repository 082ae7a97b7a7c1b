/**
 * Invocation batches of many documents share worker messages. A batch (the
 * calls of one document, or of one call on several: executor.ts) becomes a
 * group; groups wait in a worker-batches.ts queue until a worker is free, which takes up to MAX_GROUPS
 * of them in one message. Calls spread over many documents therefore cost one
 * message each way per worker and turn, not per document, and their stored
 * writes meet in one group commit (the replies arrive together).
 *
 * Each group still fails alone: the worker answers per group (a throw, the
 * sandbox's time limit, lost copies), and a message that fails as a whole (the
 * worker's backstop timer, a crash, a message that cannot be sent) is split:
 * each of its groups goes alone next, so only the culprit's batch fails.
 */
import { StateweaveError } from '../errors.js';
import { bundleRefs, type Bundle } from './bundle-refs.js';
import { takeWarm, warmKey } from './warm-copies.js';
import { createWorkerBatches } from './worker-batches.js';
import type { WorkerLeases } from './worker-leases.js';
import type { InvokeGroup, WorkerCall, WorkerReply } from './worker-protocol.js';
import { refusal, type ReadDoc, type Slot, type WorkerSlots } from './worker-slots.js';
import { ALONE, STALE } from './worker-protocol.js';
import { LOAD_TIMEOUT_MS } from './worker-thread.js';

/** One invocation of a batch (the batch names the documents): a WorkerCall with its bundle's code. */
export interface PoolCall extends Omit<WorkerCall, 'version'> {
  readonly bundle: Bundle;
}

/** A document a batch works on. */
export interface BatchDoc {
  readonly name: string;
  /** The live document's state as an update, from `stateVector` on (all of it when undefined). */
  readonly diffSince: (stateVector: Uint8Array | undefined) => Uint8Array;
}

export interface BatchOutcome {
  /** Results of the calls that succeeded: a prefix of the batch. */
  readonly results: readonly string[];
  /** Per document of the batch: their writes, merged; null when they wrote none there. */
  readonly updates: readonly (Uint8Array | null)[];
  /** Per document: the worker copy's state vector afterwards; null when the worker dropped its copies (a call failed). */
  readonly stateVectors: readonly Uint8Array[] | null;
  /** Why the call after them failed (the calls after that did not run); undefined when all ran. */
  readonly failure: StateweaveError | undefined;
  /** Call once the update was applied (true) or refused (false): keeps or drops the warm copy. */
  settle(applied: boolean): void;
}

export interface InvokeBatches {
  /** Runs one batch in the next message of a free worker; rejects when the batch as a whole failed. */
  run(
    docs: readonly BatchDoc[],
    calls: readonly PoolCall[],
    timeoutMs: number,
    read?: ReadDoc,
  ): Promise<BatchOutcome>;
  /** Refuses every waiting batch and every later one with SHUTTING_DOWN. */
  close(): void;
}

interface Pending {
  readonly docs: readonly BatchDoc[];
  readonly calls: readonly PoolCall[];
  /** The calls' deployment version (a batch is of one). */
  readonly version: string;
  /** Warm keys of `docs`. */
  readonly keys: readonly string[];
  readonly timeoutMs: number;
  readonly read: ReadDoc | undefined;
  /** The worker lost its copies (STALE): send the whole documents. */
  whole: boolean;
  readonly resolve: (outcome: BatchOutcome) => void;
  readonly reject: (err: StateweaveError) => void;
}

/**
 * The limit of a whole message, for the pool's backstop timer: the worker runs
 * the groups of one version and time limit in entries into their sandbox, each
 * under that limit and holding at least one group, and may have to build a
 * sandbox for each version and limit (the slot's timer adds one load to this).
 */
const backstopOf = (groups: readonly Pending[]): number => {
  const entries = new Set(groups.map((g) => `${g.timeoutMs}\0${g.version}`));
  return groups.reduce((sum, g) => sum + g.timeoutMs, (entries.size - 1) * LOAD_TIMEOUT_MS);
};

/** Most groups one invoke message carries (each holds up to the executor's batch of calls). */
const MAX_GROUPS = 64;

export interface InvokeBatchesOptions {
  /** Documents one worker keeps warm (warm-copies.ts). */
  readonly warmLimit: number;
  /** Batches that may wait for a free worker before one is refused with OVERLOADED. */
  readonly maxWaiting: number;
  /** Called with the number of groups of each message sent. */
  readonly onMessage?: (groups: number) => void;
}

export const createInvokeBatches = (
  slots: WorkerSlots,
  leases: WorkerLeases,
  { warmLimit, maxWaiting, onMessage }: InvokeBatchesOptions,
): InvokeBatches => {
  const send = async (slot: Slot, groups: readonly Pending[]): Promise<void> => {
    const worker = slot.worker;
    let reply: WorkerReply;
    try {
      const drop: string[] = [];
      const sent: InvokeGroup[] = groups.map((g) => {
        const taken = takeWarm(slot.warm, g.keys, warmLimit);
        drop.push(...taken.drop);
        return {
          timeoutMs: g.timeoutMs,
          docs: g.docs.map(({ name, diffSince }, i) => {
            const known = g.whole ? undefined : taken.known[i];
            return { name, reset: known === undefined, diff: diffSince(known) };
          }),
          calls: g.calls.map(({ bundle, ...call }) => ({ ...call, version: bundle.version })),
        };
      });
      onMessage?.(groups.length);
      reply = await slots.run(
        slot,
        {
          type: 'invoke',
          timeoutMs: backstopOf(groups),
          bundles: bundleRefs(
            slot.versions,
            groups.flatMap((g) => g.calls.map((c) => c.bundle)),
          ),
          drop,
          groups: sent,
        },
        (doc, index, group) =>
          groups[group]?.read?.(doc, index) ??
          Promise.reject(new StateweaveError('BAD_REQUEST', 'ctx.read is not available here')),
      );
    } catch (err) {
      queue.alone(
        groups,
        err instanceof StateweaveError ? err : new StateweaveError('INTERNAL', String(err)),
      );
      return;
    }
    if (!reply.ok) {
      queue.alone(groups, refusal(reply));
      return;
    }
    if (reply.type !== 'invoke' || reply.groups.length !== groups.length) {
      for (const g of groups) g.reject(new StateweaveError('INTERNAL', 'unexpected worker reply'));
      return;
    }
    for (const g of groups) for (const c of g.calls) slot.versions.add(c.bundle.version);
    groups.forEach((g, i) => {
      const answer = reply.groups[i]!;
      if (!answer.ok) {
        // The sandbox was rebuilt since (timeout, memory, evicted): send the whole documents.
        if (answer.code === STALE && !g.whole) {
          g.whole = true;
          queue.again(g);
        } else if (answer.code === ALONE) {
          // It shared an entry that failed as a whole: alone, it fails only for its own cause.
          g.whole = true;
          queue.suspect(g);
        } else g.reject(refusal({ task: reply.task, ...answer, code: answer.code }));
        return;
      }
      const { stateVectors } = answer;
      g.resolve({
        results: answer.results,
        updates: answer.updates,
        failure: answer.failure
          ? new StateweaveError(answer.failure.code, answer.failure.message)
          : undefined,
        stateVectors,
        settle(applied) {
          // The worker may have been replaced meanwhile: then its copies are gone anyway.
          if (!applied || !stateVectors || slot.worker !== worker) return;
          g.keys.forEach((key, k) => slot.warm.set(key, stateVectors[k]!));
        },
      });
    });
  };

  const queue = createWorkerBatches<Pending>({
    leases,
    maxPerMessage: MAX_GROUPS,
    maxSenders: () => slots.all.length,
    warmKeyOf: (g) => g.keys[0],
    send,
    reject: (g, err) => g.reject(err),
  });

  return {
    run(docs, calls, timeoutMs, read) {
      if (queue.closing) return Promise.reject(new StateweaveError('SHUTTING_DOWN'));
      if (queue.waiting >= maxWaiting)
        return Promise.reject(
          new StateweaveError(
            'OVERLOADED',
            `${queue.waiting} function tasks are waiting for a worker`,
          ),
        );
      const version = calls[0]?.bundle.version ?? '';
      return new Promise((resolve, reject) => {
        queue.push({
          docs,
          calls,
          version,
          keys: docs.map(({ name }) => warmKey(version, name)),
          timeoutMs,
          read,
          whole: false,
          resolve,
          reject,
        });
      });
    },
    close: () => queue.close(),
  };
};

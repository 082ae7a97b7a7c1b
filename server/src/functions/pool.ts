/**
 * A pool of worker threads that host function sandboxes (worker.ts: one V8
 * isolate per deployment version, sandbox.ts): the pool's API, composed of
 *
 * - worker-thread.ts: starting one worker thread;
 * - worker-slots.ts: the workers, one task each at a time, the backstop timer,
 *   replacing a worker that timed out or crashed, answering `ctx.read`;
 * - worker-leases.ts: admission (a bounded wait for a free worker, OVERLOADED);
 * - prepare-batches.ts: input validation in batches;
 * - warm-copies.ts: the documents each worker keeps warm, so an invocation sends
 *   only the difference from the live document;
 * - bundle-refs.ts: a version's code goes to a worker once.
 *
 * Here: describe, and running invocation batches on warm copies.
 */
import { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import { bundleRef, bundleRefs, type Bundle } from './bundle-refs.js';
import { createPrepareBatches, type PreparedInput } from './prepare-batches.js';
import { takeWarm, warmKey } from './warm-copies.js';
import { createWorkerLeases } from './worker-leases.js';
import { STALE, type FunctionMeta, type WorkerCall, type WorkerReply } from './worker-protocol.js';
import { createWorkerSlots, refusal, type ReadDoc } from './worker-slots.js';
import { spawnWorkerThread } from './worker-thread.js';

export type { Bundle } from './bundle-refs.js';
export type { ReadDoc } from './worker-slots.js';

export interface PoolOptions {
  /** Worker threads. */
  readonly size: number;
  /** Heap limit of one sandbox (one deployment version in one worker), in MiB. */
  readonly memoryMb: number;
  /** Largest result of one call, in UTF-8 bytes. */
  readonly maxResultBytes: number;
  /** The guest script every sandbox evaluates (guest-script.ts). */
  readonly guest: Promise<string>;
  /** Documents one worker keeps warm before it forgets the least recently used. */
  readonly warmDocsPerWorker: number;
  /** Tasks that may wait for a free worker before calls are refused with OVERLOADED. */
  readonly maxWaiting: number;
  readonly logger: Logger;
}

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

export interface InvokeOutcome {
  readonly result: string;
  readonly update: Uint8Array | null;
  /** The worker copy's state vector afterwards: the live document at dispatch plus the handler's writes. */
  readonly stateVector: Uint8Array;
  /** Call once the outcome was applied (true) or refused (false): keeps or drops the warm copy. */
  settle(applied: boolean): void;
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

export interface WorkerPool {
  describe(bundle: Bundle, timeoutMs: number): Promise<readonly FunctionMeta[]>;
  /**
   * Validates an input and names its document. Calls made while a worker is busy
   * share one worker message.
   */
  prepare(bundle: Bundle, name: string, input: unknown, timeoutMs: number): Promise<PreparedInput>;
  /**
   * Runs calls on one document, in order, in one worker message, under `timeoutMs`
   * for the whole batch. A timeout or crash fails the whole batch (nothing of it is
   * applied): the caller may retry its calls one by one to find the culprit.
   */
  invokeBatch(
    docs: readonly BatchDoc[],
    calls: readonly PoolCall[],
    timeoutMs: number,
    read?: ReadDoc,
  ): Promise<BatchOutcome>;
  /** One call: a batch of one whose failure throws. */
  invoke(doc: BatchDoc, call: PoolCall, timeoutMs: number): Promise<InvokeOutcome>;
  /** Number of worker respawns so far (timeouts and crashes), for tests and metrics. */
  readonly respawns: number;
  close(): Promise<void>;
}

export const createWorkerPool = (options: PoolOptions): WorkerPool => {
  const slots = createWorkerSlots({
    size: options.size,
    spawn: () => spawnWorkerThread(options),
    ready: options.guest,
    onReplaced: (slot) => leases.free(slot),
    logger: options.logger,
  });
  const leases = createWorkerLeases(() => slots.all, options.maxWaiting);
  const prepares = createPrepareBatches(slots, leases);

  const invokeBatch: WorkerPool['invokeBatch'] = async (docs, calls, timeoutMs, read) => {
    const version = calls[0]?.bundle.version ?? '';
    const keys = docs.map(({ name }) => warmKey(version, name));
    const held = await leases.acquire(keys[0]);
    const { slot } = held;
    const { known, drop } = takeWarm(slot.warm, keys, options.warmDocsPerWorker);
    const worker = slot.worker;
    const send = (warm: readonly (Uint8Array | undefined)[]): Promise<WorkerReply> =>
      slots.run(
        slot,
        {
          type: 'invoke',
          timeoutMs,
          bundles: bundleRefs(
            slot.versions,
            calls.map((c) => c.bundle),
          ),
          docs: docs.map(({ name, diffSince }, i) => ({
            name,
            reset: warm[i] === undefined,
            diff: diffSince(warm[i]),
          })),
          drop,
          calls: calls.map(({ bundle, ...call }) => ({ ...call, version: bundle.version })),
        },
        read,
      );
    try {
      let reply = await send(known);
      // The sandbox was rebuilt since (timeout, memory, evicted): send the whole documents.
      if (!reply.ok && reply.code === STALE) reply = await send(docs.map(() => undefined));
      if (!reply.ok) throw refusal(reply);
      for (const c of calls) slot.versions.add(c.bundle.version);
      if (reply.type !== 'invoke') throw new StateweaveError('INTERNAL', 'unexpected worker reply');
      const { stateVectors } = reply;
      return {
        results: reply.results,
        updates: reply.updates,
        failure: reply.failure
          ? new StateweaveError(reply.failure.code, reply.failure.message)
          : undefined,
        stateVectors,
        settle(applied) {
          // The worker may have been replaced meanwhile: then its copies are gone anyway.
          if (!applied || !stateVectors || slot.worker !== worker) return;
          keys.forEach((key, i) => slot.warm.set(key, stateVectors[i]!));
        },
      };
    } finally {
      leases.release(held);
    }
  };

  return {
    async describe(bundle, timeoutMs) {
      const held = await leases.acquire(undefined);
      const { slot } = held;
      try {
        const reply = await slots.run(slot, {
          type: 'describe',
          timeoutMs,
          bundle: bundleRef(slot.versions, bundle),
        });
        if (!reply.ok) throw refusal(reply);
        slot.versions.add(bundle.version);
        if (reply.type !== 'describe')
          throw new StateweaveError('INTERNAL', 'unexpected worker reply');
        return reply.functions;
      } finally {
        leases.release(held);
      }
    },

    prepare: (bundle, name, input, timeoutMs) => prepares.prepare(bundle, name, input, timeoutMs),

    invokeBatch,

    async invoke(doc, call, timeoutMs) {
      const outcome = await invokeBatch([doc], [call], timeoutMs);
      const result = outcome.results[0];
      const stateVector = outcome.stateVectors?.[0];
      if (outcome.failure || result === undefined || stateVector === undefined) {
        outcome.settle(false);
        throw outcome.failure ?? new StateweaveError('INTERNAL', 'the worker returned no result');
      }
      return { result, update: outcome.updates[0] ?? null, stateVector, settle: outcome.settle };
    },

    get respawns() {
      return slots.respawns;
    },

    async close() {
      leases.close();
      prepares.close();
      await slots.close();
    },
  };
};

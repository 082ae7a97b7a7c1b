/**
 * A pool of worker threads that host function sandboxes (worker.ts: one V8
 * isolate per deployment version, sandbox.ts): the pool's API, composed of
 *
 * - worker-thread.ts: starting one worker thread;
 * - worker-slots.ts: the workers, one task each at a time, the backstop timer,
 *   replacing a worker that timed out or crashed, answering `ctx.read`;
 * - worker-leases.ts: admission (a bounded wait for a free worker, OVERLOADED);
 * - prepare-batches.ts: input validation in batches;
 * - invoke-batches.ts: invocation batches of many documents in one worker message;
 * - warm-copies.ts: the documents each worker keeps warm, so an invocation sends
 *   only the difference from the live document;
 * - bundle-refs.ts: a version's code goes to a worker once.
 *
 * Here: describe, and the pool's API over them.
 */
import { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import { bundleRef, type Bundle } from './bundle-refs.js';
import {
  createInvokeBatches,
  type BatchDoc,
  type BatchOutcome,
  type PoolCall,
} from './invoke-batches.js';
import { createPrepareBatches, type PreparedInput } from './prepare-batches.js';
import { createWorkerLeases } from './worker-leases.js';
import type { FunctionMeta } from './worker-protocol.js';
import { createWorkerSlots, refusal, type ReadDoc } from './worker-slots.js';
import { spawnWorkerProcess } from './worker-process.js';
import { spawnWorkerThread } from './worker-thread.js';

export type { Bundle } from './bundle-refs.js';
export type { BatchDoc, BatchOutcome, PoolCall } from './invoke-batches.js';
export type { ReadDoc } from './worker-slots.js';

/** Where a worker runs: a thread of the node, or a process of its own (worker-process.ts: a native crash ends one worker, not the node). */
export type FunctionIsolation = 'thread' | 'process';

export interface PoolOptions {
  /** Workers. */
  readonly size: number;
  /** @default 'thread' */
  readonly isolation?: FunctionIsolation;
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
  /** Called with the number of document batches of each invoke message sent. */
  readonly onInvokeMessage?: (groups: number) => void;
}

export interface InvokeOutcome {
  readonly result: string;
  readonly update: Uint8Array | null;
  /** The worker copy's state vector afterwards: the live document at dispatch plus the handler's writes. */
  readonly stateVector: Uint8Array;
  /** Call once the outcome was applied (true) or refused (false): keeps or drops the warm copy. */
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
   * Runs calls on one document (or one call on several), in order, under `timeoutMs`
   * for the whole batch, in a worker message it may share with other documents'
   * batches. A timeout or crash fails the whole batch (nothing of it is applied):
   * the caller may retry its calls one by one to find the culprit.
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
    spawn: () =>
      options.isolation === 'process' ? spawnWorkerProcess(options) : spawnWorkerThread(options),
    ready: options.guest,
    onReplaced: (slot) => leases.free(slot),
    logger: options.logger,
  });
  const leases = createWorkerLeases(() => slots.all, options.maxWaiting);
  const prepares = createPrepareBatches(slots, leases);

  const invokes = createInvokeBatches(slots, leases, {
    warmLimit: options.warmDocsPerWorker,
    maxWaiting: options.maxWaiting,
    ...(options.onInvokeMessage ? { onMessage: options.onInvokeMessage } : {}),
  });
  const invokeBatch: WorkerPool['invokeBatch'] = (docs, calls, timeoutMs, read) =>
    invokes.run(docs, calls, timeoutMs, read);

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
      invokes.close();
      await slots.close();
    },
  };
};

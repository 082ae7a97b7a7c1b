/**
 * A pool of worker threads that host function sandboxes (worker.ts: one V8
 * isolate per deployment version, sandbox.ts). Each worker does one task at a
 * time; the sandbox enforces the task's time and memory limits, and the pool's
 * timer (a little later) terminates and replaces a worker that did not answer.
 *
 * Workers keep documents warm: the pool remembers, per worker, deployment version
 * and document, the state vector the sandbox's copy had after its last successful
 * invocation, and sends only the difference from the live document next time.
 * Any failure forgets that entry, so the next invocation starts from scratch.
 */
import { Worker } from 'node:worker_threads';
import { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  STALE,
  type BundleRef,
  type FromWorker,
  type FunctionMeta,
  type ReadAnswer,
  type ReadRequest,
  type WorkerInit,
  type WorkerCall,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

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

export interface Bundle {
  readonly version: string;
  readonly code: string;
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

/** Answers `ctx.read(doc)` for the call at `index` of a batch: the document's state as an update. */
export type ReadDoc = (doc: string, index: number) => Promise<Uint8Array>;

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
  prepare(
    bundle: Bundle,
    name: string,
    input: unknown,
    timeoutMs: number,
  ): Promise<{ input: unknown; docs: readonly string[] }>;
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

interface Running {
  readonly task: number;
  readonly resolve: (reply: WorkerReply) => void;
  readonly reject: (err: StateweaveError) => void;
  readonly timer: NodeJS.Timeout;
  /** Answers the task's `ctx.read` requests. */
  readonly read: ReadDoc | undefined;
}

interface Lease {
  readonly slot: Slot;
  readonly id: number;
}

interface Slot {
  worker: Worker;
  /** The lease that holds this worker (undefined: idle). A replaced worker's old lease no longer owns it. */
  owner: number | undefined;
  versions: Set<string>;
  /** `version\0doc` → state vector of the sandbox's copy (Map order = least recently used first). */
  warm: Map<string, Uint8Array>;
  running?: Running;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);
/** Most inputs one prepare message carries. */
const MAX_BATCH = 512;
/** Time limit for evaluating a bundle's top level in a new sandbox. */
const LOAD_TIMEOUT_MS = 1000;
/** How long past a task's limit the pool waits for the sandbox to report it (a load may come first). */
const BACKSTOP_MS = LOAD_TIMEOUT_MS + 1000;
/** Heap of the worker thread itself: the host code and the messages, not the functions' heaps. */
const HOST_HEAP_MB = 128;
/** A document copy lives in one version's context, so warmth is per version and document. */
const warmKey = (version: string, doc: string): string => `${version}\0${doc}`;

interface PendingPrepare {
  readonly bundle: Bundle;
  readonly name: string;
  readonly input: unknown;
  readonly timeoutMs: number;
  readonly resolve: (prepared: { input: unknown; docs: readonly string[] }) => void;
  readonly reject: (err: StateweaveError) => void;
}

export const createWorkerPool = (options: PoolOptions): WorkerPool => {
  const { logger } = options;
  const slots: Slot[] = [];
  const waiting: Array<{
    /** The warm key the task would like its worker to have. */
    warm: string | undefined;
    take: (lease: Lease) => void;
    reject: (err: StateweaveError) => void;
  }> = [];
  let nextTask = 1;
  let nextLease = 1;
  let respawns = 0;
  let closing = false;

  const spawn = (): Worker => {
    const worker = new Worker(WORKER_URL, {
      env: {}, // the host thread needs no environment; deployed code has none at all
      stdout: true,
      stderr: true,
      resourceLimits: { maxOldGenerationSizeMb: HOST_HEAP_MB, stackSizeMb: 4 },
    });
    // Sent before any task: run() posts only after the same promise settled.
    void options.guest.then((guest) =>
      worker.postMessage({
        type: 'init',
        guest,
        memoryMb: options.memoryMb,
        maxResultBytes: options.maxResultBytes,
        loadTimeoutMs: LOAD_TIMEOUT_MS,
      } satisfies WorkerInit),
    );
    worker.stdout.on('data', (chunk: Buffer) =>
      logger.info({ output: chunk.toString().trimEnd() }, 'function output'),
    );
    worker.stderr.on('data', (chunk: Buffer) =>
      logger.warn({ output: chunk.toString().trimEnd() }, 'function error output'),
    );
    worker.unref();
    return worker;
  };

  const fail = (slot: Slot, error: StateweaveError): void => {
    const running = slot.running;
    slot.running = undefined;
    if (running) {
      clearTimeout(running.timer);
      running.reject(error);
    }
  };

  /** Ends a worker that misbehaved and puts a fresh one in its place. */
  const replace = (slot: Slot, error: StateweaveError): void => {
    const old = slot.worker;
    old.removeAllListeners();
    old.on('error', () => undefined); // a dying worker may still report; it is already replaced
    void old.terminate();
    fail(slot, error);
    if (closing) return;
    respawns++;
    slot.versions = new Set();
    slot.warm = new Map();
    slot.worker = spawn();
    attach(slot);
    handOn(slot);
  };

  const attach = (slot: Slot): void => {
    const { worker } = slot;
    worker.on('message', (reply: FromWorker) => {
      const running = slot.running;
      if (!running || running.task !== reply.task) return;
      if ('type' in reply && reply.type === 'read') {
        answerRead(worker, running, reply);
        return;
      }
      slot.running = undefined;
      clearTimeout(running.timer);
      running.resolve(reply);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      logger.warn(
        { err: err.message, code: err.code },
        oom ? 'function worker ran out of memory' : 'function worker failed',
      );
      replace(
        slot,
        new StateweaveError(
          'FUNCTION_CRASHED',
          oom ? 'the function ran out of memory' : `the function worker failed: ${err.message}`,
        ),
      );
    });
    worker.on('exit', (code) => {
      if (closing || slot.worker !== worker) return;
      logger.warn({ code }, 'function worker exited');
      replace(
        slot,
        new StateweaveError('FUNCTION_CRASHED', `the function worker exited with code ${code}`),
      );
    });
  };

  const lease = (slot: Slot): Lease => {
    const id = nextLease++;
    slot.owner = id;
    return { slot, id };
  };

  /** The worker is free: give it to a waiter (one whose document it has warm, if any). */
  const handOn = (slot: Slot): void => {
    slot.owner = undefined;
    if (waiting.length === 0 || closing) return;
    let index = waiting.findIndex((w) => w.warm !== undefined && slot.warm.has(w.warm));
    if (index < 0) index = 0;
    const [waiter] = waiting.splice(index, 1);
    waiter!.take(lease(slot));
  };

  /** Ends a lease; a no-op when the worker was replaced (and handed on) meanwhile. */
  const release = ({ slot, id }: Lease): void => {
    if (slot.owner === id) handOn(slot);
  };

  const acquire = (warm: string | undefined): Promise<Lease> => {
    if (closing) return Promise.reject(new StateweaveError('SHUTTING_DOWN'));
    const idle = slots.filter((s) => s.owner === undefined);
    const slot =
      (warm !== undefined ? idle.find((s) => s.warm.has(warm)) : undefined) ??
      idle.sort((a, b) => a.warm.size - b.warm.size)[0];
    if (slot) return Promise.resolve(lease(slot));
    if (waiting.length >= options.maxWaiting) {
      return Promise.reject(
        new StateweaveError(
          'OVERLOADED',
          `${waiting.length} function tasks are waiting for a worker`,
        ),
      );
    }
    return new Promise((take, reject) => waiting.push({ warm, take, reject }));
  };

  const bundleRef = (slot: Slot, bundle: Bundle): BundleRef =>
    slot.versions.has(bundle.version)
      ? { version: bundle.version }
      : { version: bundle.version, code: bundle.code };

  /**
   * Sends one task to an acquired worker and waits for its reply. The sandbox
   * enforces the time limit; past it and BACKSTOP_MS the worker is replaced.
   * A task that cannot be sent (it cannot be cloned, say) fails alone and leaves
   * neither a timer nor a running entry behind.
   */
  const run = async (slot: Slot, request: WorkerRequest, read?: ReadDoc): Promise<WorkerReply> => {
    await options.guest;
    return new Promise<WorkerReply>((resolve, reject) => {
      const { timeoutMs } = request;
      const timer = setTimeout(() => {
        logger.warn({ timeoutMs }, 'a function task did not end; replacing its worker');
        replace(
          slot,
          new StateweaveError('TIMEOUT', `the function ran longer than ${timeoutMs} ms`),
        );
      }, timeoutMs + BACKSTOP_MS);
      const running: Running = { task: request.task, resolve, reject, timer, read };
      slot.running = running;
      try {
        slot.worker.postMessage(request);
      } catch (err) {
        clearTimeout(timer);
        if (slot.running === running) slot.running = undefined;
        reject(
          new StateweaveError(
            'BAD_REQUEST',
            `the call cannot be handed to the sandbox: ${(err as Error).message}`,
          ),
        );
      }
    });
  };

  /** `ctx.read` inside a running task: the answer goes back to the same worker, unless it was replaced. */
  const answerRead = (worker: Worker, running: Running, request: ReadRequest): void => {
    const answer = (message: ReadAnswer): void => {
      if (slots.some((s) => s.worker === worker && s.running === running))
        worker.postMessage(message);
    };
    const read =
      running.read ??
      (() => Promise.reject(new StateweaveError('BAD_REQUEST', 'ctx.read is not available here')));
    read(request.doc, request.call).then(
      (state) => answer({ type: 'read', ref: request.ref, ok: true, state }),
      (err: unknown) =>
        answer({
          type: 'read',
          ref: request.ref,
          ok: false,
          forbidden: err instanceof StateweaveError && err.code === 'FORBIDDEN',
          message: err instanceof Error ? err.message : String(err),
        }),
    );
  };

  const refusal = (reply: WorkerReply & { ok: false }): StateweaveError =>
    new StateweaveError(reply.code === STALE ? 'INTERNAL' : reply.code, reply.message);

  /** The bundles a batch needs, with code for the versions this worker has not loaded. */
  const bundleRefs = (slot: Slot, bundles: Iterable<Bundle>): BundleRef[] => {
    const refs = new Map<string, BundleRef>();
    for (const bundle of bundles)
      if (!refs.has(bundle.version)) refs.set(bundle.version, bundleRef(slot, bundle));
    return [...refs.values()];
  };

  /** Prepares wait here while every worker is busy; a free worker takes them all in one message. */
  const preparing: PendingPrepare[] = [];
  /** Inputs of a batch that timed out or crashed its worker: each goes alone next. */
  const suspects: PendingPrepare[] = [];
  let preparers = 0;

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
    if (preparers >= Math.max(1, slots.length - 1) || preparing.length + suspects.length === 0)
      return;
    preparers++;
    acquire(undefined).then(
      async (held) => {
        const batch = suspects.length > 0 ? suspects.splice(0, 1) : preparing.splice(0, MAX_BATCH);
        try {
          if (batch.length > 0) await prepareBatch(held.slot, batch);
        } finally {
          release(held);
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
        slot,
        batch.map((p) => p.bundle),
      );
      const items = batch.map((p) => ({ version: p.bundle.version, name: p.name, input: p.input }));
      reply = await run(slot, { type: 'prepare', task: nextTask++, timeoutMs, bundles, items });
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

  const invokeBatch: WorkerPool['invokeBatch'] = async (docs, calls, timeoutMs, read) => {
    const version = calls[0]?.bundle.version ?? '';
    const keys = docs.map(({ name }) => warmKey(version, name));
    const held = await acquire(keys[0]);
    const { slot } = held;
    const known = keys.map((key) => slot.warm.get(key));
    // Taken out now: until settle(true) the worker's copies are not known to match anything.
    for (const key of keys) slot.warm.delete(key);
    const drop: string[] = [];
    for (const key of slot.warm.keys()) {
      if (slot.warm.size - drop.length < options.warmDocsPerWorker) break;
      drop.push(key);
    }
    for (const key of drop) slot.warm.delete(key);
    const worker = slot.worker;
    const send = (warm: readonly (Uint8Array | undefined)[]): Promise<WorkerReply> =>
      run(
        slot,
        {
          type: 'invoke',
          task: nextTask++,
          timeoutMs,
          bundles: bundleRefs(
            slot,
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
      release(held);
    }
  };

  for (let i = 0; i < options.size; i++) {
    const slot: Slot = { worker: spawn(), owner: undefined, versions: new Set(), warm: new Map() };
    attach(slot);
    slots.push(slot);
  }

  return {
    async describe(bundle, timeoutMs) {
      const held = await acquire(undefined);
      const { slot } = held;
      try {
        const reply = await run(slot, {
          type: 'describe',
          task: nextTask++,
          timeoutMs,
          bundle: bundleRef(slot, bundle),
        });
        if (!reply.ok) throw refusal(reply);
        slot.versions.add(bundle.version);
        if (reply.type !== 'describe')
          throw new StateweaveError('INTERNAL', 'unexpected worker reply');
        return reply.functions;
      } finally {
        release(held);
      }
    },

    prepare(bundle, name, input, timeoutMs) {
      if (closing) return Promise.reject(new StateweaveError('SHUTTING_DOWN'));
      return new Promise((resolve, reject) => {
        preparing.push({ bundle, name, input, timeoutMs, resolve, reject });
        schedulePump();
      });
    },

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
      return respawns;
    },

    async close() {
      closing = true;
      for (const waiter of waiting.splice(0)) waiter.reject(new StateweaveError('SHUTTING_DOWN'));
      for (const pending of [...preparing.splice(0), ...suspects.splice(0)])
        pending.reject(new StateweaveError('SHUTTING_DOWN'));
      await Promise.all(
        slots.map(async (slot) => {
          fail(slot, new StateweaveError('SHUTTING_DOWN'));
          await slot.worker.terminate();
        }),
      );
    },
  };
};

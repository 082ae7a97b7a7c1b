/**
 * A pool of worker threads that run function code. Each worker does one task at
 * a time under a time limit (past it, the worker is terminated and replaced) and
 * V8 heap limits (a worker that runs out of memory dies alone and is replaced).
 *
 * Workers keep documents warm: the pool remembers, per worker and document, the
 * state vector the worker's copy had after its last successful invocation, and
 * sends only the difference from the live document next time. Any failure
 * forgets that entry, so the next invocation starts the worker from scratch.
 */
import { Worker } from 'node:worker_threads';
import { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallerAuth, FunctionKind } from './define.js';
import type { BundleRef, FunctionMeta, WorkerReply, WorkerRequest } from './worker-protocol.js';

export interface PoolOptions {
  /** Worker threads. */
  readonly size: number;
  /** V8 old-generation heap limit per worker, in MiB. */
  readonly memoryMb: number;
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

export interface InvokeArgs {
  readonly name: string;
  readonly doc: string;
  readonly input: unknown;
  readonly auth: CallerAuth;
  readonly id: string;
  readonly now: number;
  readonly kind: FunctionKind;
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

export interface WorkerPool {
  describe(bundle: Bundle, timeoutMs: number): Promise<readonly FunctionMeta[]>;
  prepare(bundle: Bundle, name: string, input: unknown, timeoutMs: number): Promise<{ input: unknown; doc: string }>;
  invoke(bundle: Bundle, args: InvokeArgs, timeoutMs: number): Promise<InvokeOutcome>;
  /** Number of worker respawns so far (timeouts and crashes), for tests and metrics. */
  readonly respawns: number;
  close(): Promise<void>;
}

interface Running {
  readonly task: number;
  readonly resolve: (reply: WorkerReply) => void;
  readonly reject: (err: StateweaveError) => void;
  readonly timer: NodeJS.Timeout;
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
  /** doc → state vector of the worker's copy (Map order = least recently used first). */
  warm: Map<string, Uint8Array>;
  running?: Running;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

export const createWorkerPool = (options: PoolOptions): WorkerPool => {
  const { logger } = options;
  const slots: Slot[] = [];
  const waiting: Array<{ doc: string | undefined; take: (lease: Lease) => void; reject: (err: StateweaveError) => void }> = [];
  let nextTask = 1;
  let nextLease = 1;
  let respawns = 0;
  let closing = false;

  const spawn = (): Worker => {
    const worker = new Worker(WORKER_URL, {
      env: {}, // user code sees no environment variables
      stdout: true,
      stderr: true,
      resourceLimits: {
        maxOldGenerationSizeMb: options.memoryMb,
        maxYoungGenerationSizeMb: Math.max(4, Math.min(32, Math.floor(options.memoryMb / 4))),
        stackSizeMb: 4,
      },
    });
    worker.stdout.on('data', (chunk: Buffer) => logger.info({ output: chunk.toString().trimEnd() }, 'function output'));
    worker.stderr.on('data', (chunk: Buffer) => logger.warn({ output: chunk.toString().trimEnd() }, 'function error output'));
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
    worker.on('message', (reply: WorkerReply) => {
      const running = slot.running;
      if (!running || running.task !== reply.task) return;
      slot.running = undefined;
      clearTimeout(running.timer);
      running.resolve(reply);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      logger.warn({ err: err.message, code: err.code }, oom ? 'function worker ran out of memory' : 'function worker failed');
      replace(slot, new StateweaveError('FUNCTION_CRASHED', oom ? 'the function ran out of memory' : `the function worker failed: ${err.message}`));
    });
    worker.on('exit', (code) => {
      if (closing || slot.worker !== worker) return;
      logger.warn({ code }, 'function worker exited');
      replace(slot, new StateweaveError('FUNCTION_CRASHED', `the function worker exited with code ${code}`));
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
    let index = waiting.findIndex((w) => w.doc !== undefined && slot.warm.has(w.doc));
    if (index < 0) index = 0;
    const [waiter] = waiting.splice(index, 1);
    waiter!.take(lease(slot));
  };

  /** Ends a lease; a no-op when the worker was replaced (and handed on) meanwhile. */
  const release = ({ slot, id }: Lease): void => {
    if (slot.owner === id) handOn(slot);
  };

  const acquire = (doc: string | undefined): Promise<Lease> => {
    if (closing) return Promise.reject(new StateweaveError('SHUTTING_DOWN'));
    const idle = slots.filter((s) => s.owner === undefined);
    const slot = (doc !== undefined ? idle.find((s) => s.warm.has(doc)) : undefined) ?? idle.sort((a, b) => a.warm.size - b.warm.size)[0];
    if (slot) return Promise.resolve(lease(slot));
    if (waiting.length >= options.maxWaiting) {
      return Promise.reject(new StateweaveError('OVERLOADED', `${waiting.length} function tasks are waiting for a worker`));
    }
    return new Promise((take, reject) => waiting.push({ doc, take, reject }));
  };

  const bundleRef = (slot: Slot, bundle: Bundle): BundleRef =>
    slot.versions.has(bundle.version) ? { version: bundle.version } : { version: bundle.version, code: bundle.code };

  /** Sends one task to an acquired worker and waits for its reply, under the time limit. */
  const run = (slot: Slot, request: WorkerRequest, timeoutMs: number): Promise<WorkerReply> =>
    new Promise<WorkerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        logger.warn({ timeoutMs }, 'function timed out; replacing its worker');
        replace(slot, new StateweaveError('TIMEOUT', `the function ran longer than ${timeoutMs} ms`));
      }, timeoutMs);
      slot.running = { task: request.task, resolve, reject, timer };
      slot.worker.postMessage(request);
    });

  const refusal = (reply: WorkerReply & { ok: false }): StateweaveError => new StateweaveError(reply.code, reply.message);

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
        const reply = await run(slot, { type: 'describe', task: nextTask++, bundle: bundleRef(slot, bundle) }, timeoutMs);
        if (!reply.ok) throw refusal(reply);
        slot.versions.add(bundle.version);
        if (reply.type !== 'describe') throw new StateweaveError('INTERNAL', 'unexpected worker reply');
        return reply.functions;
      } finally {
        release(held);
      }
    },

    async prepare(bundle, name, input, timeoutMs) {
      const held = await acquire(undefined);
      const { slot } = held;
      try {
        const reply = await run(slot, { type: 'prepare', task: nextTask++, bundle: bundleRef(slot, bundle), name, input }, timeoutMs);
        slot.versions.add(bundle.version);
        if (!reply.ok) throw refusal(reply);
        if (reply.type !== 'prepare') throw new StateweaveError('INTERNAL', 'unexpected worker reply');
        return { input: reply.input, doc: reply.doc };
      } finally {
        release(held);
      }
    },

    async invoke(bundle, args, timeoutMs) {
      const held = await acquire(args.doc);
      const { slot } = held;
      const known = slot.warm.get(args.doc);
      // Taken out now: until settle(true) the worker's copy is not known to match anything.
      slot.warm.delete(args.doc);
      const drop: string[] = [];
      for (const name of slot.warm.keys()) {
        if (slot.warm.size - drop.length < options.warmDocsPerWorker) break;
        drop.push(name);
      }
      for (const name of drop) slot.warm.delete(name);
      const worker = slot.worker;
      try {
        const reply = await run(
          slot,
          {
            type: 'invoke',
            task: nextTask++,
            bundle: bundleRef(slot, bundle),
            name: args.name,
            doc: args.doc,
            reset: known === undefined,
            diff: args.diffSince(known),
            drop,
            input: args.input,
            auth: args.auth,
            id: args.id,
            now: args.now,
            kind: args.kind,
          },
          timeoutMs,
        );
        slot.versions.add(bundle.version);
        if (!reply.ok) throw refusal(reply);
        if (reply.type !== 'invoke') throw new StateweaveError('INTERNAL', 'unexpected worker reply');
        return {
          result: reply.result,
          update: reply.update,
          stateVector: reply.stateVector,
          settle(applied) {
            // The worker may have been replaced meanwhile: then its copy is gone anyway.
            if (applied && slot.worker === worker) slot.warm.set(args.doc, reply.stateVector);
          },
        };
      } finally {
        release(held);
      }
    },

    get respawns() {
      return respawns;
    },

    async close() {
      closing = true;
      for (const waiter of waiting.splice(0)) waiter.reject(new StateweaveError('SHUTTING_DOWN'));
      await Promise.all(
        slots.map(async (slot) => {
          fail(slot, new StateweaveError('SHUTTING_DOWN'));
          await slot.worker.terminate();
        }),
      );
    },
  };
};

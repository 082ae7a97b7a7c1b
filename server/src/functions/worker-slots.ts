/**
 * The pool's worker threads and the one task each runs at a time. The sandbox
 * enforces a task's time limit; the slot's timer (BACKSTOP_MS later) is the last
 * resort: a worker that did not answer by then, or that crashed, exited or ran
 * out of memory, is terminated and replaced by a fresh one (which has loaded no
 * version and keeps no document warm), and its task fails.
 */
import type { EventEmitter } from 'node:events';
import { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import { LOAD_TIMEOUT_MS } from './worker-thread.js';
import {
  STALE,
  type FromWorker,
  type ReadAnswer,
  type ReadRequest,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

/**
 * What a slot needs of its worker: a thread (worker-thread.ts) or a process
 * (worker-process.ts). Emits `message` (FromWorker), `error` and `exit` (a code,
 * or a process's signal).
 */
export interface FunctionWorker extends EventEmitter {
  postMessage(message: unknown): void;
  terminate(): Promise<number>;
}

/** Answers `ctx.read(doc)` for the call at `index` of a batch: the document's state as an update. */
export type ReadDoc = (doc: string, index: number) => Promise<Uint8Array>;
/** Answers `ctx.read(doc)` for the call at `index` of group `group` of a task. */
export type TaskRead = (doc: string, index: number, group: number) => Promise<Uint8Array>;

interface Running {
  readonly task: number;
  readonly resolve: (reply: WorkerReply) => void;
  readonly reject: (err: StateweaveError) => void;
  readonly timer: NodeJS.Timeout;
  /** Answers the task's `ctx.read` requests. */
  readonly read: TaskRead | undefined;
}

export interface Slot {
  worker: FunctionWorker;
  /** The lease that holds this worker (undefined: idle). A replaced worker's old lease no longer owns it. */
  owner: number | undefined;
  /** Deployment versions this worker has the code of. */
  versions: Set<string>;
  /** `version\0doc` → state vector of the sandbox's copy (Map order = least recently used first). */
  warm: Map<string, Uint8Array>;
  running?: Running;
}

export interface WorkerSlotsOptions {
  readonly size: number;
  readonly spawn: () => FunctionWorker;
  /** Settles before the first task may be posted (the init message goes first). */
  readonly ready: Promise<unknown>;
  /** A slot's worker was replaced and is free for the next task. */
  readonly onReplaced: (slot: Slot) => void;
  readonly logger: Logger;
}

/** A request before it is numbered: the slot gives each task its id. */
export type Task = Unnumbered<WorkerRequest>;
type Unnumbered<R> = R extends WorkerRequest ? Omit<R, 'task'> : never;

export interface WorkerSlots {
  readonly all: readonly Slot[];
  /** Sends one task to a worker the caller holds and waits for its reply. */
  run(slot: Slot, task: Task, read?: TaskRead): Promise<WorkerReply>;
  /** Workers replaced so far (timeouts and crashes). */
  readonly respawns: number;
  close(): Promise<void>;
}

/** How long past a task's limit the pool waits for the sandbox to report it (a load may come first). */
const BACKSTOP_MS = LOAD_TIMEOUT_MS + 1000;

/** A worker's refusal as the error its caller sees (STALE never reaches one: it is retried). */
export const refusal = (reply: WorkerReply & { ok: false }): StateweaveError =>
  new StateweaveError(reply.code === STALE ? 'INTERNAL' : reply.code, reply.message);

export const createWorkerSlots = (options: WorkerSlotsOptions): WorkerSlots => {
  const { logger } = options;
  const slots: Slot[] = [];
  let nextTask = 1;
  let respawns = 0;
  let closing = false;

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
    slot.worker = options.spawn();
    attach(slot);
    options.onReplaced(slot);
  };

  /** `ctx.read` inside a running task: the answer goes back to the same worker, unless it was replaced. */
  const answerRead = (worker: FunctionWorker, running: Running, request: ReadRequest): void => {
    const answer = (message: ReadAnswer): void => {
      if (slots.some((s) => s.worker === worker && s.running === running))
        worker.postMessage(message);
    };
    const read =
      running.read ??
      (() => Promise.reject(new StateweaveError('BAD_REQUEST', 'ctx.read is not available here')));
    read(request.doc, request.call, request.group).then(
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
    worker.on('exit', (code: number | string) => {
      if (closing || slot.worker !== worker) return;
      logger.warn({ code }, 'function worker exited');
      replace(
        slot,
        new StateweaveError('FUNCTION_CRASHED', `the function worker exited (${code})`),
      );
    });
  };

  /**
   * A task that cannot be sent (it cannot be cloned, say) fails alone and leaves
   * neither a timer nor a running entry behind.
   */
  const run: WorkerSlots['run'] = async (slot, task, read) => {
    await options.ready;
    const request: WorkerRequest = { ...task, task: nextTask++ };
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

  for (let i = 0; i < options.size; i++) {
    const slot: Slot = {
      worker: options.spawn(),
      owner: undefined,
      versions: new Set(),
      warm: new Map(),
    };
    attach(slot);
    slots.push(slot);
  }

  return {
    all: slots,
    run,
    get respawns() {
      return respawns;
    },
    async close() {
      closing = true;
      await Promise.all(
        slots.map(async (slot) => {
          fail(slot, new StateweaveError('SHUTTING_DOWN'));
          await slot.worker.terminate();
        }),
      );
    },
  };
};

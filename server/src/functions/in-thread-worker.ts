/**
 * A function worker in the node's own thread: worker-host.ts behind the interface
 * the pool's slots speak (worker-slots.ts), without a thread. The sandboxes are V8
 * isolates either way, and an invocation runs in isolated-vm's threads, not in the
 * host's; what a worker thread added was a hop each way, with a structured clone
 * on both sides, per message: measured, an invoke message of one call cost 280–327
 * µs of CPU with it and 205–213 µs without (docs/functions.md, issue 18).
 *
 * Messages are not cloned: the pool builds each request afresh and does not touch
 * it after sending, and the host answers with fresh objects. Answers arrive in a
 * later microtask, as a message would, never inside `postMessage`.
 */
import { EventEmitter } from 'node:events';
import { createWorkerHost } from './worker-host.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import type { WorkerLike } from './worker-slots.js';
import { LOAD_TIMEOUT_MS, type WorkerThreadOptions } from './worker-thread.js';

export const startInThreadWorker = (options: WorkerThreadOptions): WorkerLike => {
  const events = new EventEmitter();
  let ended = false;
  const host = createWorkerHost((msg: FromWorker) =>
    queueMicrotask(() => {
      if (!ended) events.emit('message', msg);
    }),
  );
  // The init message goes first: tasks are posted only after the same promise settled.
  void options.guest.then((guest) =>
    host.receive({
      type: 'init',
      guest,
      memoryMb: options.memoryMb,
      maxResultBytes: options.maxResultBytes,
      loadTimeoutMs: LOAD_TIMEOUT_MS,
    }),
  );
  const worker: WorkerLike = {
    postMessage(msg: ToWorker) {
      if (!ended) host.receive(msg);
    },
    on(event: string, listener: (arg: never) => void) {
      events.on(event, listener as (arg: unknown) => void);
      return worker;
    },
    removeAllListeners() {
      events.removeAllListeners();
      return worker;
    },
    terminate() {
      ended = true;
      host.close();
      return Promise.resolve(0);
    },
  };
  return worker;
};

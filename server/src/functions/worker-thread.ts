/**
 * Starts one function worker thread (worker.ts) with no environment, a bounded
 * host heap, and its output logged; the init message (guest script, sandbox
 * limits) is its first message, ahead of any task. (worker-process.ts starts
 * one as a process instead.)
 */
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { WorkerInit } from './worker-protocol.js';

export interface WorkerOptions {
  /** The guest script every sandbox evaluates (guest-script.ts). */
  readonly guest: Promise<string>;
  /** Heap limit of one sandbox (one deployment version in one worker), in MiB. */
  readonly memoryMb: number;
  /** Largest result of one call, in UTF-8 bytes. */
  readonly maxResultBytes: number;
  readonly logger: Logger;
}

export const WORKER_URL = new URL('./worker.js', import.meta.url);
/**
 * Time limit for evaluating a bundle's top level in a new sandbox. Wall-clock
 * (isolated-vm's timeout), so it must leave room for a busy machine: at 1 s a
 * test node on a loaded 2-core machine failed to load a small fixture bundle.
 */
export const LOAD_TIMEOUT_MS = 5000;
/** Heap of the worker thread itself: the host code and the messages, not the functions' heaps. */
export const HOST_HEAP_MB = 128;

/** The first message a worker gets: the guest script and the sandbox limits. */
export const initMessage = (options: WorkerOptions, guest: string): WorkerInit => ({
  type: 'init',
  guest,
  memoryMb: options.memoryMb,
  maxResultBytes: options.maxResultBytes,
  loadTimeoutMs: LOAD_TIMEOUT_MS,
});

/** What a worker prints is logged. */
export const logOutput = (stdout: Readable, stderr: Readable, logger: Logger): void => {
  stdout.on('data', (chunk: Buffer) =>
    logger.info({ output: chunk.toString().trimEnd() }, 'function output'),
  );
  stderr.on('data', (chunk: Buffer) =>
    logger.warn({ output: chunk.toString().trimEnd() }, 'function error output'),
  );
};

export const spawnWorkerThread = (options: WorkerOptions): Worker => {
  const worker = new Worker(WORKER_URL, {
    env: {}, // the host thread needs no environment; deployed code has none at all
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: HOST_HEAP_MB, stackSizeMb: 4 },
  });
  // Sent before any task: tasks are posted only after the same promise settled.
  void options.guest.then((guest) => worker.postMessage(initMessage(options, guest)));
  logOutput(worker.stdout, worker.stderr, options.logger);
  worker.unref();
  return worker;
};

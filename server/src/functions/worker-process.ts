/**
 * Starts one function worker (worker.ts) as a child process instead of a thread
 * (`--function-isolation process`). Why: a sandbox is a V8 isolate driven by a
 * native addon (isolated-vm), and a native crash — a segfault, an abort from a
 * failed assertion — ends the whole process it runs in. In a thread that is the
 * node and every client on it; in a process it is one worker, which the pool
 * replaces like a worker that timed out, failing only its task
 * (FUNCTION_CRASHED). The price is the channel: messages cross a pipe, serialized
 * (V8's structured clone, as postMessage does), instead of a thread's port.
 *
 * The process gets no environment and its own heap limit; when the node goes
 * away its channel closes, and the worker exits.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { FunctionWorker } from './worker-slots.js';
import {
  HOST_HEAP_MB,
  WORKER_URL,
  initMessage,
  logOutput,
  type WorkerOptions,
} from './worker-thread.js';

/** A child process that speaks to the pool as a worker thread would (postMessage, message, error, exit, terminate). */
class WorkerProcess extends EventEmitter implements FunctionWorker {
  private readonly exited: Promise<number>;

  constructor(private readonly child: ChildProcess) {
    super();
    child.on('message', (message) => this.emit('message', message));
    child.on('error', (err) => this.emit('error', err));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        // A signal (a native crash: SIGSEGV, SIGABRT) names itself; a thread only has codes.
        this.emit('exit', code ?? signal ?? 1);
        resolve(code ?? 1);
      }),
    );
  }

  postMessage(message: unknown): void {
    if (!this.child.connected) throw new Error('the function worker process has exited');
    // Serializes now: a message that cannot be cloned throws here, as postMessage does.
    this.child.send(message as object);
  }

  terminate(): Promise<number> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    return this.exited;
  }
}

export const spawnWorkerProcess = (options: WorkerOptions): FunctionWorker => {
  const child = fork(fileURLToPath(WORKER_URL), [], {
    env: {}, // deployed code has no environment, and the worker needs none
    execArgv: ['--no-node-snapshot', `--max-old-space-size=${HOST_HEAP_MB}`], // isolated-vm needs the first on Node 20
    serialization: 'advanced',
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const worker = new WorkerProcess(child);
  void options.guest.then((guest) => {
    if (child.connected) child.send(initMessage(options, guest));
  });
  logOutput(child.stdout!, child.stderr!, options.logger);
  // The node's own handles keep it alive; a worker must not.
  child.unref();
  child.channel?.unref();
  return worker;
};

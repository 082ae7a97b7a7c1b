/**
 * A function worker thread: worker-host.ts behind the thread's port. The pool
 * hosts its sandboxes in its own thread (in-thread-worker.ts); this entry is for
 * a host in a thread of its own (spawnWorkerThread).
 */
import { parentPort } from 'node:worker_threads';
import { createWorkerHost } from './worker-host.js';
import type { ToWorker } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('worker.ts runs only as a worker thread');
const host = createWorkerHost((msg) => port.postMessage(msg));
port.on('message', (msg: ToWorker) => host.receive(msg));

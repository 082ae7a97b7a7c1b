/**
 * The worker thread of time-travel queries (time-travel.ts): hosts a Replayer
 * (replay.ts) off the node's event loop, so code that loops while naming its
 * document (`prepare` runs synchronously in the isolate) stalls this thread,
 * never the node. Documents come from the node by message, on demand.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createReplayer, type ReplayLimits } from './replay.js';
import type { TimeTravelReply, TimeTravelRequest } from './time-travel.js';

const port = parentPort!;
const replayer = createReplayer(workerData as ReplayLimits);
/** Answers to this thread's state and read requests, by request id. */
const waiting = new Map<number, { resolve: (s: Uint8Array) => void; reject: (e: Error) => void }>();
let nextAsk = 0;

const ask = (run: number, kind: 'state' | 'read', doc: string): Promise<Uint8Array> =>
  new Promise((resolve, reject) => {
    const id = nextAsk++;
    waiting.set(id, { resolve, reject });
    port.postMessage({ type: 'ask', run, id, kind, doc } satisfies TimeTravelReply);
  });

port.on('message', (message: TimeTravelRequest) => {
  if (message.type === 'answer') {
    const pending = waiting.get(message.id);
    waiting.delete(message.id);
    if (!pending) return;
    if (message.state) pending.resolve(message.state);
    else
      pending.reject(
        Object.assign(new Error(message.message ?? 'refused'), {
          code: message.code ?? 'FUNCTION_ERROR',
        }),
      );
    return;
  }
  const { run, code, name, input, now, subject } = message;
  void replayer
    .run(code, {
      name,
      input,
      now,
      subject,
      state: (doc) => ask(run, 'state', doc),
      read: (doc) => ask(run, 'read', doc),
    })
    .then((outcome) => port.postMessage({ type: 'done', run, outcome } satisfies TimeTravelReply));
});

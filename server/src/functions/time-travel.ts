/**
 * A query at a past version (`POST /v1/functions/:name/invoke?at=`): the
 * deployed code runs on the document as it was, in a sandbox of its own on a
 * worker thread (replay-worker.ts), apart from the pool that serves live calls.
 * The caller supplies the past states (`state` for the document the input
 * names, `read` for `ctx.read`); nothing is written.
 */
import { Worker } from 'node:worker_threads';
import { StateweaveError } from '../errors.js';
import type { ReplayLimits, ReplayOutcome } from './replay.js';

export type TimeTravelRequest =
  | {
      readonly type: 'run';
      readonly run: number;
      readonly code: string;
      readonly name: string;
      readonly input: unknown;
      readonly now: number;
      readonly subject: string;
    }
  | {
      readonly type: 'answer';
      readonly id: number;
      readonly state?: Uint8Array;
      readonly code?: string;
      readonly message?: string;
    };

export type TimeTravelReply =
  | {
      readonly type: 'ask';
      readonly run: number;
      readonly id: number;
      readonly kind: 'state' | 'read';
      readonly doc: string;
    }
  | { readonly type: 'done'; readonly run: number; readonly outcome: ReplayOutcome };

export interface TimeTravelCall {
  readonly code: string;
  readonly name: string;
  readonly input: unknown;
  readonly now: number;
  readonly subject: string;
  /** The state of the document `doc(input)` names; a throw (FORBIDDEN, NOT_FOUND) fails the call. */
  readonly state: (doc: string) => Promise<Uint8Array>;
  readonly read: (doc: string) => Promise<Uint8Array>;
}

export interface TimeTravel {
  run(call: TimeTravelCall): Promise<ReplayOutcome>;
  close(): Promise<void>;
}

/** Runs at once per worker; more wait (a past query is rare and may be slow). */
const MAX_RUNNING = 4;

export const createTimeTravel = (limits: ReplayLimits): TimeTravel => {
  let worker: Worker | undefined;
  let nextRun = 0;
  const runs = new Map<
    number,
    { call: TimeTravelCall; resolve: (o: ReplayOutcome) => void; reject: (e: Error) => void }
  >();

  const fail = (err: Error): void => {
    for (const { reject } of runs.values()) reject(err);
    runs.clear();
    worker = undefined;
  };

  const start = (): Worker => {
    const w = new Worker(new URL('./replay-worker.js', import.meta.url), { workerData: limits });
    w.on('message', (reply: TimeTravelReply) => {
      const entry = runs.get(reply.run);
      if (!entry) return;
      if (reply.type === 'done') {
        runs.delete(reply.run);
        return entry.resolve(reply.outcome);
      }
      const get = reply.kind === 'state' ? entry.call.state : entry.call.read;
      get(reply.doc).then(
        (state) =>
          w.postMessage({ type: 'answer', id: reply.id, state } satisfies TimeTravelRequest),
        (err: unknown) =>
          w.postMessage({
            type: 'answer',
            id: reply.id,
            code: err instanceof StateweaveError ? err.code : 'FUNCTION_ERROR',
            message: err instanceof Error ? err.message : String(err),
          } satisfies TimeTravelRequest),
      );
    });
    w.on('error', (err) => fail(err));
    w.on('exit', () => {
      if (worker === w)
        fail(new StateweaveError('FUNCTION_CRASHED', 'the time-travel worker stopped'));
    });
    return w;
  };

  return {
    async run(call) {
      if (runs.size >= MAX_RUNNING)
        throw new StateweaveError('OVERLOADED', 'too many queries at past versions at once');
      const w = (worker ??= start());
      const run = nextRun++;
      // The sandbox enforces the time limit; this bounds a worker stuck outside it.
      const limit = limits.timeoutMs * 4 + 5000;
      return new Promise<ReplayOutcome>((resolve, reject) => {
        const timer = setTimeout(() => {
          const entry = runs.get(run);
          if (!entry) return;
          runs.delete(run);
          entry.reject(new StateweaveError('TIMEOUT', `the query ran longer than ${limit} ms`));
          void w.terminate(); // the others on it fail as FUNCTION_CRASHED; a new worker serves the next
        }, limit);
        runs.set(run, {
          call,
          resolve: (o) => (clearTimeout(timer), resolve(o)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        const { code, name, input, now, subject } = call;
        w.postMessage({
          type: 'run',
          run,
          code,
          name,
          input,
          now,
          subject,
        } satisfies TimeTravelRequest);
      });
    },
    async close() {
      const w = worker;
      worker = undefined;
      fail(new StateweaveError('SHUTTING_DOWN'));
      await w?.terminate();
    },
  };
};

/**
 * Runs prepared invocations on their documents, with the guarantees of the
 * README's "Functions" section:
 *
 * - calls waiting for one document run as a batch on that document's queue
 *   (doc-batches.ts): one worker message and one store write for many calls;
 *   a call that throws fails alone, a batch that times out or crashes is re-run
 *   one call at a time;
 * - a call on several documents holds every one of their queues (name order)
 *   and its writes go to one atomic store batch (Store.appendAll);
 * - output gate: results and broadcasts leave only once the write is stored;
 * - an `owner` batch with an OwnerGate takes the lease token before it runs and
 *   commits through the gate first: a write the lease no longer covers is
 *   refused (FENCED) and applies nothing.
 */
import { randomUUID } from 'node:crypto';
import { validateDocName, type DocName } from '../doc-name.js';
import { StateweaveError } from '../errors.js';
import type { Hub, RoomLease } from '../hub/hub.js';
import type { Room } from '../hub/room.js';
import { writerOf, type Origin } from '../origin.js';
import type { Store, StoreRecord } from '../storage/store.js';
import { createDocBatches, type Waiting } from './doc-batches.js';
import { requireInScope } from './scope.js';
import type { DocQueue } from './doc-queue.js';
import type { FunctionMetrics } from './function-metrics.js';
import type { BatchOutcome, PoolCall, ReadDoc, WorkerPool } from './pool.js';
import type { DeployedFunction } from './registry.js';
import { authorizeCall, type CallResult, type FunctionCall } from './function-call.js';
import type { OwnerGate } from './owner-gate.js';

/** A call, authorized, with the function (version) it runs, on its way to its document(s). */
export interface Invocation {
  readonly fn: DeployedFunction;
  readonly call: FunctionCall;
  /** The record key when the call has an idempotency key. */
  readonly key: string | undefined;
  /** The validated input. */
  readonly input: unknown;
}

/** What an idempotency key's record holds: the first result. */
export interface StoredRecord {
  readonly doc: DocName;
  readonly version: string;
  readonly result: string;
}

export interface ExecutorOptions {
  readonly hub: Hub;
  readonly store: Store;
  readonly queue: DocQueue;
  readonly pool: () => WorkerPool;
  readonly metrics?: FunctionMetrics;
  readonly defaultTimeoutMs: number;
  /** Calls waiting for one document before OVERLOADED. */
  readonly maxWaitingPerDoc: number;
  readonly isClosed: () => boolean;
  /** Fences the writes of `owner` functions (a cluster on a backplane). @default none */
  readonly ownerGate?: OwnerGate;
}

export interface Executor {
  /** Runs the invocation on `docs` (the first is `ctx.doc`) and resolves with its stored result. */
  run(docs: readonly DocName[], invocation: Invocation): Promise<CallResult>;
}

/** What the worker receives of an invocation: plain data (structured cloning), the caller's rights as a list. */
const workerCallOf = ({ fn, call, key, input }: Invocation): PoolCall => ({
  bundle: fn.bundle,
  name: fn.name,
  input,
  auth: { subject: call.grant.subject, rights: [...call.grant.rights] },
  // ctx.id: a retry with the same idempotency key sees the same id.
  id: key !== undefined ? `${fn.name}:${call.idempotencyKey}` : randomUUID(),
  now: Date.now(),
  kind: fn.kind,
});

/** Most invocations of one document run in one worker message and one store write. */
const MAX_BATCH = 256;

type Pending = Waiting<Invocation, CallResult>;

export const createExecutor = (options: ExecutorOptions): Executor => {
  const { hub, store, queue, metrics, defaultTimeoutMs } = options;

  /** `ctx.read(doc)` for a call: the caller needs read access to the other document. */
  const readFor =
    (calls: readonly Pending[]): ReadDoc =>
    async (name, index) => {
      const call = calls[index];
      if (!call) throw new StateweaveError('INTERNAL', 'ctx.read from an unknown call');
      const doc = validateDocName(name);
      requireInScope(call.item.fn, doc);
      authorizeCall(call.item.call, doc, 'query');
      const lease = await hub.open(doc);
      try {
        return lease.room.diffSince(); // copied to the worker by postMessage
      } finally {
        lease.release();
      }
    };

  /**
   * Stores the writes of a batch with its records and applies them (output gate):
   * through the room when at most one document changed, else in one store batch
   * over every changed document.
   */
  const commit = async (
    rooms: readonly Room[],
    updates: readonly (Uint8Array | null)[],
    origin: Origin,
    records: readonly StoreRecord[],
  ): Promise<void> => {
    const changed = rooms.flatMap((room, i) => (updates[i] ? [{ room, update: updates[i]! }] : []));
    if (changed.length <= 1) {
      const { room, update } = changed[0] ?? { room: rooms[0]!, update: null };
      if (update !== null || records.length > 0) await room.applyGated(update, origin, records);
      return;
    }
    const staged = changed.map(({ room, update }) => room.stageGated(update, origin)); // throws before anything is written
    const written = store.appendAll(
      changed.map(({ room, update }) => ({ doc: room.name, update, writers: [writerOf(origin)] })),
      records,
    );
    await Promise.all(staged.map((applyWhen, i) => applyWhen(written.then((seqs) => seqs[i]!))));
  };

  /**
   * Runs one function's calls (a prefix of a batch) on open rooms — the documents
   * each of these calls works on, `ctx.doc` first — and returns the calls still to run.
   */
  const runCalls = async (rooms: readonly Room[], calls: Pending[]): Promise<Pending[]> => {
    const first = calls[0]!.item.fn;
    const doc = rooms[0]!.name;
    const timeoutMs = Math.max(...calls.map((c) => c.item.fn.timeoutMs ?? defaultTimeoutMs));
    const gate = first.consistency === 'owner' ? options.ownerGate : undefined;
    let token: number | undefined;
    let outcome: BatchOutcome;
    try {
      // Taken before the batch runs: its catch-up is in the rooms the batch reads.
      if (gate) token = await gate.hold(doc);
      outcome = await options.pool().invokeBatch(
        rooms.map((room) => ({
          name: room.name,
          diffSince: (sv) => room.diffSince(sv),
        })),
        calls.map(({ item }) => workerCallOf(item)),
        timeoutMs,
        readFor(calls),
      );
    } catch (err) {
      // A timeout or crash ends the whole batch and applies none of it; running each
      // call alone finds the one responsible and lets the others succeed.
      const suspect =
        err instanceof StateweaveError &&
        (err.code === 'TIMEOUT' || err.code === 'FUNCTION_CRASHED');
      if (suspect && calls.length > 1 && !options.isClosed()) {
        for (const call of calls) await runCalls(rooms, [call]);
      } else {
        for (const call of calls) call.reject(err);
      }
      return [];
    }
    metrics?.batchSize.observe(calls.length);
    const done = calls.slice(0, outcome.results.length);
    const failed = outcome.failure ? calls[done.length] : undefined;
    const rest = calls.slice(done.length + (failed ? 1 : 0));
    const records: StoreRecord[] = [];
    for (const [i, { item }] of done.entries()) {
      if (item.key === undefined) continue;
      const record: StoredRecord = { doc, version: item.fn.version, result: outcome.results[i]! };
      records.push({ key: item.key, value: new TextEncoder().encode(JSON.stringify(record)) });
    }
    let fenced = false;
    try {
      // Cluster-wide first (fenced by the token), then here: a refused write applies nothing.
      if (gate && token !== undefined) {
        await gate.commit(doc, token, outcome.updates[0] ?? null, records);
        fenced = true;
      }
      // One function per write, so its origin names it (a trigger skips its own writes).
      await commit(rooms, outcome.updates, { kind: 'function', name: first.name }, records);
    } catch (err) {
      // Written cluster-wide but not here: the next batch must not run on a copy without it.
      if (fenced) gate!.abandon(doc, token!);
      outcome.settle(false);
      for (const call of [...done, ...(failed ? [failed] : [])]) call.reject(err);
      return rest;
    }
    outcome.settle(true);
    done.forEach((call, i) =>
      call.resolve({
        json: outcome.results[i]!,
        replayed: false,
        version: call.item.fn.version,
        doc,
      }),
    );
    failed?.reject(outcome.failure);
    return rest;
  };

  const batches = createDocBatches<Invocation, CallResult>({
    queue,
    maxWaiting: options.maxWaitingPerDoc,
    maxBatch: MAX_BATCH,
    async run(doc, batch) {
      if (options.isClosed()) throw new StateweaveError('SHUTTING_DOWN');
      const lease = await hub.open(doc);
      try {
        let rest = batch;
        while (rest.length > 0) {
          // A run of one function at one version: its calls share one sandbox.
          const { name, version } = rest[0]!.item.fn;
          const cut = rest.findIndex(
            (c) => c.item.fn.name !== name || c.item.fn.version !== version,
          );
          const calls = cut < 0 ? rest : rest.slice(0, cut);
          rest = [...(await runCalls([lease.room], calls)), ...rest.slice(calls.length)];
        }
      } finally {
        lease.release();
      }
    },
  });

  /**
   * A call that writes several documents runs alone, holding each document's queue,
   * taken in name order so that two such calls cannot wait for each other.
   */
  const runMulti = (docs: readonly DocName[], invocation: Invocation): Promise<CallResult> => {
    const order = [...docs].sort();
    const hold = (i: number): Promise<CallResult> =>
      i < order.length
        ? queue.run(order[i]!, () => hold(i + 1))
        : (async () => {
            if (options.isClosed()) throw new StateweaveError('SHUTTING_DOWN');
            const leases: RoomLease[] = [];
            try {
              for (const doc of docs) leases.push(await hub.open(doc));
              return await new Promise<CallResult>((resolve, reject) => {
                runCalls(
                  leases.map((l) => l.room),
                  [{ item: invocation, resolve, reject }],
                ).catch(reject);
              });
            } finally {
              for (const lease of leases) lease.release();
            }
          })();
    return hold(0);
  };

  return {
    run: (docs, invocation) =>
      docs.length === 1 ? batches.add(docs[0]!, invocation) : runMulti(docs, invocation),
  };
};

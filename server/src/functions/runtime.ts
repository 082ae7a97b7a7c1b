/**
 * The FunctionRuntime: deploys bundles and runs invocations with the guarantees
 * of the README's "Functions" section:
 *
 * - per-document serial execution on this node (doc-queue.ts, bounded); calls that
 *   wait for one document run as a batch (doc-batches.ts): one worker message and
 *   one store write for many invocations;
 * - the handler runs in a worker on a copy of the document; its writes come back
 *   as one update, stored with the invocation record in one batch and only then
 *   applied and broadcast (room.applyGated: the output gate); a throw, timeout or
 *   crash discards the copy and leaves the document and every client untouched;
 * - an idempotency key returns the first result and applies nothing twice: the
 *   record is stored with the effect, so this holds across restarts too.
 */
import { randomUUID } from 'node:crypto';
import * as Y from 'yjs';
import type { Grant } from '../auth/grant.js';
import { validateDocName } from '../doc-name.js';
import { StateweaveError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { Store } from '../storage/store.js';
import type { SourceBundle } from './compile.js';
import { createDocQueue } from './doc-queue.js';
import { createWorkerPool, type BatchOutcome, type ReadDoc, type WorkerPool } from './pool.js';
import { createDocBatches, type Waiting } from './doc-batches.js';
import type { Room } from '../hub/room.js';
import type { RoomLease } from '../hub/hub.js';
import type { StoreRecord } from '../storage/store.js';
import { createRegistry, versionOf, type DeployedFunction } from './registry.js';
import { createSchedules } from './schedules.js';
import { createTriggers } from './triggers.js';
import type { Origin } from '../origin.js';
import type { Metrics } from '../metrics.js';
import { createFunctionMetrics } from './function-metrics.js';
import { RIGHTS } from '../auth/grant.js';

export interface FunctionRuntimeOptions {
  readonly hub: Hub;
  readonly store: Store;
  readonly logger: Logger;
  /** The node's metrics registry; function series are added to it. */
  readonly metrics?: Metrics;
  /** Worker threads that run function code. @default 2 */
  readonly workers?: number;
  /** Heap limit of one worker in MiB. @default 128 */
  readonly memoryMb?: number;
  /** Time limit of one invocation unless the function sets its own. @default 5000 */
  readonly timeoutMs?: number;
  /** Invocations queued per document before OVERLOADED. @default 1000 */
  readonly maxQueuedPerDoc?: number;
  /**
   * In a cluster: the primary node of a document when that is another node, where
   * `owner` invocations must run. @default () => undefined (every document is ours)
   */
  readonly ownerOf?: (doc: string) => string | undefined;
}

export interface InvokeRequest {
  readonly name: string;
  readonly input: unknown;
  readonly idempotencyKey?: string;
  readonly grant: Grant;
  /** Throws (FORBIDDEN, ...) unless the caller may run `kind` on `doc`. */
  readonly authorize: (doc: string, kind: 'mutation' | 'query') => void;
  /**
   * Runs the request on another node (the `owner` of its document) and returns
   * that node's answer. Absent for a request that was itself forwarded: it runs here.
   */
  readonly forward?: (nodeId: string, doc: string) => Promise<InvokeResult>;
}

export interface InvokeResult {
  /** The result as JSON text. */
  readonly json: string;
  /** true when an earlier invocation with the same idempotency key answered. */
  readonly replayed: boolean;
  readonly version: string;
  /** The document it worked on. */
  readonly doc: string;
}

export interface FunctionRuntime {
  /** Loads bundles (compiled sources) and makes their functions current. */
  deploy(bundles: readonly SourceBundle[]): Promise<DeployedFunction[]>;
  list(): DeployedFunction[];
  invoke(request: InvokeRequest): Promise<InvokeResult>;
  /** Worker respawns so far (timeouts, crashes). */
  readonly respawns: number;
  /** A document changed: runs the change triggers that match it (not for its own writes). */
  notifyChange(doc: string, origin: Origin | undefined): void;
  /** Resolves when no trigger run is queued or running. */
  triggersIdle(): Promise<void>;
  close(): Promise<void>;
}

interface StoredRecord {
  readonly doc: string;
  readonly version: string;
  readonly result: string;
}

/** One invocation waiting in its document's batch. */
interface Invocation {
  readonly fn: DeployedFunction;
  readonly request: InvokeRequest;
  /** The record key when the call has an idempotency key. */
  readonly key: string | undefined;
  /** The validated input. */
  readonly input: unknown;
}

const recordKey = (name: string, key: string): string => `fn\0${name}\0${key}`;
/** Most invocations of one document run in one worker message and one store write. */
const MAX_BATCH = 256;
/** Most documents one call may write (`docs`): it holds each of them while it runs. */
const MAX_DOCS = 16;

type Pending = Waiting<Invocation, InvokeResult>;
const DESCRIBE_TIMEOUT_MS = 10_000;
/** Who a scheduled run is: the node itself. */
const SCHEDULE_GRANT: Grant = Object.freeze({ subject: 'schedule', docs: ['*'], rights: new Set(RIGHTS) });

export const createFunctionRuntime = (options: FunctionRuntimeOptions): FunctionRuntime => {
  const { hub, store, logger } = options;
  const defaultTimeoutMs = options.timeoutMs ?? 5000;
  const registry = createRegistry();
  const queue = createDocQueue(options.maxQueuedPerDoc ?? 1000);
  /** Invocations with an idempotency key that are running now: a concurrent retry joins them. */
  const inflight = new Map<string, Promise<InvokeResult>>();
  let pool: WorkerPool | undefined;
  let closed = false;
  const metrics = options.metrics ? createFunctionMetrics(options.metrics, () => pool?.respawns ?? 0) : undefined;
  const schedules = createSchedules(
    (fn, at) =>
      runtime.invoke({ name: fn.name, input: { at }, idempotencyKey: `every:${at}`, grant: SCHEDULE_GRANT, authorize: () => undefined }),
    logger,
  );
  const triggers = createTriggers({ hub, store, queue, pool: () => requirePool(), logger, defaultTimeoutMs });

  // Workers start with the first deployment, so a node without functions runs no threads.
  const requirePool = (): WorkerPool =>
    (pool ??= createWorkerPool({
      size: options.workers ?? 2,
      memoryMb: options.memoryMb ?? 128,
      warmDocsPerWorker: 256,
      maxWaiting: 10_000,
      logger,
    }));

  const readRecord = async (key: string): Promise<StoredRecord | undefined> => {
    if (!store.getRecord) throw new StateweaveError('INTERNAL', 'the store does not support invocation records');
    const bytes = await store.getRecord(key);
    return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as StoredRecord) : undefined;
  };

  /** `ctx.read(doc)` for a call: the caller needs read access to the other document. */
  const readFor =
    (calls: readonly Pending[]): ReadDoc =>
    async (name, index) => {
      const call = calls[index];
      if (!call) throw new StateweaveError('INTERNAL', 'ctx.read from an unknown call');
      const doc = validateDocName(name);
      call.item.request.authorize(doc, 'query');
      const lease = await hub.open(doc);
      try {
        return Y.encodeStateAsUpdate(lease.room.doc);
      } finally {
        lease.release();
      }
    };

  /**
   * Stores the writes of a batch with its records and applies them (output gate):
   * through the room when at most one document changed, else in one store batch
   * over every changed document.
   */
  const commit = async (rooms: readonly Room[], updates: readonly (Uint8Array | null)[], origin: Origin, records: readonly StoreRecord[]): Promise<void> => {
    const changed = rooms.flatMap((room, i) => (updates[i] ? [{ room, update: updates[i]! }] : []));
    if (changed.length <= 1) {
      const { room, update } = changed[0] ?? { room: rooms[0]!, update: null };
      if (update !== null || records.length > 0) await room.applyGated(update, origin, records);
      return;
    }
    if (!store.appendAll) throw new StateweaveError('INTERNAL', 'the store cannot write several documents atomically');
    const staged = changed.map(({ room, update }) => room.stageGated(update, origin)); // throws before anything is written
    const written = store.appendAll(
      changed.map(({ room, update }) => ({ doc: room.name, update })),
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
    let outcome: BatchOutcome;
    try {
      outcome = await requirePool().invokeBatch(
        rooms.map((room) => ({
          name: room.name,
          diffSince: (sv) => (sv ? Y.encodeStateAsUpdate(room.doc, sv) : Y.encodeStateAsUpdate(room.doc)),
        })),
        calls.map(({ item }) => ({
          bundle: item.fn.bundle,
          name: item.fn.name,
          input: item.input,
          auth: { subject: item.request.grant.subject, rights: [...item.request.grant.rights] },
          id: item.key !== undefined ? `${item.fn.name}:${item.request.idempotencyKey}` : randomUUID(),
          now: Date.now(),
          kind: item.fn.kind,
        })),
        timeoutMs,
        readFor(calls),
      );
    } catch (err) {
      // A timeout or crash ends the whole batch and applies none of it; running each
      // call alone finds the one responsible and lets the others succeed.
      const suspect = err instanceof StateweaveError && (err.code === 'TIMEOUT' || err.code === 'FUNCTION_CRASHED');
      if (suspect && calls.length > 1 && !closed) {
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
    try {
      // One function per write, so its origin names it (a trigger skips its own writes).
      await commit(rooms, outcome.updates, { kind: 'function', name: first.name }, records);
    } catch (err) {
      outcome.settle(false);
      for (const call of [...done, ...(failed ? [failed] : [])]) call.reject(err);
      return rest;
    }
    outcome.settle(true);
    done.forEach((call, i) => call.resolve({ json: outcome.results[i]!, replayed: false, version: call.item.fn.version, doc }));
    failed?.reject(outcome.failure);
    return rest;
  };

  const batches = createDocBatches<Invocation, InvokeResult>({
    queue,
    maxWaiting: options.maxQueuedPerDoc ?? 1000,
    maxBatch: MAX_BATCH,
    async run(doc, batch) {
      if (closed) throw new StateweaveError('SHUTTING_DOWN');
      const lease = await hub.open(doc);
      try {
        let rest = batch;
        while (rest.length > 0) {
          const name = rest[0]!.item.fn.name;
          const cut = rest.findIndex((c) => c.item.fn.name !== name);
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
  const runMulti = (docs: readonly string[], invocation: Invocation): Promise<InvokeResult> => {
    const order = [...docs].sort();
    const hold = (i: number): Promise<InvokeResult> =>
      i < order.length
        ? queue.run(order[i]!, () => hold(i + 1))
        : (async () => {
            if (closed) throw new StateweaveError('SHUTTING_DOWN');
            const leases: RoomLease[] = [];
            try {
              for (const doc of docs) leases.push(await hub.open(doc));
              return await new Promise<InvokeResult>((resolve, reject) => {
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

  const execute = async (fn: DeployedFunction, request: InvokeRequest, key: string | undefined): Promise<InvokeResult> => {
    const prepared = await requirePool().prepare(fn.bundle, fn.name, request.input, fn.timeoutMs ?? defaultTimeoutMs);
    const docs = [...new Set(prepared.docs.map((name) => validateDocName(name)))];
    if (docs.length > MAX_DOCS) throw new StateweaveError('INVALID_INPUT', `docs(input) names ${docs.length} documents; at most ${MAX_DOCS}`);
    for (const doc of docs) request.authorize(doc, fn.kind);
    const doc = docs[0]!;
    // Check-then-act needs one serial executor per document cluster-wide: its primary
    // (of the first document, for a call on several).
    const owner = fn.consistency === 'owner' && request.forward ? options.ownerOf?.(doc) : undefined;
    if (owner !== undefined) return request.forward!(owner, doc);
    if (closed) throw new StateweaveError('SHUTTING_DOWN');
    const invocation: Invocation = { fn, request, key, input: prepared.input };
    return docs.length === 1 ? batches.add(doc, invocation) : runMulti(docs, invocation);
  };

  const invokeOnce = async (request: InvokeRequest): Promise<InvokeResult> => {
    if (closed) throw new StateweaveError('SHUTTING_DOWN');
    // One version per invocation: the one current when it arrived.
    const fn = registry.get(request.name);
    if (!fn) throw new StateweaveError('NOT_FOUND', `no function named ${JSON.stringify(request.name)}`);
    if (request.idempotencyKey === undefined || fn.kind === 'query') return execute(fn, request, undefined);
    const key = recordKey(fn.name, request.idempotencyKey);
    const running = inflight.get(key);
    if (running) {
      // The running attempt was authorized for its caller, not for this one.
      const first = await running;
      request.authorize(first.doc, fn.kind);
      return { ...first, replayed: true };
    }
    const attempt = (async (): Promise<InvokeResult> => {
      const stored = await readRecord(key);
      if (stored) {
        request.authorize(stored.doc, fn.kind);
        return { json: stored.result, replayed: true, version: stored.version, doc: stored.doc };
      }
      return execute(fn, request, key);
    })();
    inflight.set(key, attempt);
    try {
      return await attempt;
    } finally {
      inflight.delete(key);
    }
  };

  const runtime: FunctionRuntime = {
    async deploy(bundles) {
      const workers = requirePool();
      const deployed: DeployedFunction[] = [];
      for (const { file, code } of bundles) {
        const version = versionOf(code);
        const bundle = { version, code };
        const metas = await workers.describe(bundle, DESCRIBE_TIMEOUT_MS);
        // A helper module (shared validators) defines nothing: it is inlined where imported.
        if (metas.length === 0) continue;
        for (const meta of metas) {
          if (deployed.some((d) => d.name === meta.name)) throw new StateweaveError('BAD_REQUEST', `function ${meta.name} is defined twice`);
          deployed.push({ ...meta, version, bundle, file, deployedAt: Date.now() });
        }
      }
      if (deployed.length === 0) throw new StateweaveError('BAD_REQUEST', 'no module exports a function (use defineFunction)');
      registry.set(deployed);
      triggers.set(registry.list());
      schedules.set(deployed);
      // Catch up on changes the triggers have not seen (after a restart, or a new trigger).
      triggers.resume().catch((err: unknown) => logger.error({ err }, 'resuming triggers failed'));
      logger.info({ functions: deployed.map((d) => `${d.name}@${d.version}`) }, 'functions deployed');
      return deployed;
    },

    list: () => registry.list(),

    async invoke(request) {
      if (!metrics) return invokeOnce(request);
      // Only deployed names become label values: a caller cannot mint series.
      const label = registry.get(request.name) ? request.name : '(unknown)';
      const stop = metrics.seconds.startTimer({ function: label });
      try {
        const result = await invokeOnce(request);
        metrics.invocations.inc({ function: label, outcome: result.replayed ? 'replayed' : 'ok' });
        stop();
        return result;
      } catch (err) {
        metrics.invocations.inc({ function: label, outcome: err instanceof StateweaveError ? err.code : 'INTERNAL' });
        throw err;
      }
    },

    get respawns() {
      return pool?.respawns ?? 0;
    },

    notifyChange: (doc, origin) => triggers.notify(doc, origin),
    triggersIdle: () => triggers.idle(),

    async close() {
      closed = true;
      triggers.close();
      schedules.close();
      await pool?.close();
    },
  };
  return runtime;
};

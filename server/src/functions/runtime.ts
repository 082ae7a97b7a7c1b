/**
 * The FunctionRuntime: deploys bundles and takes invocations to the executor
 * (executor.ts: batches per document, atomic writes, the output gate):
 *
 * - one version per invocation, the one current when it arrived;
 * - the input is validated and the documents named in a worker (prepare), then
 *   the caller's right on each is checked; an `owner` call is forwarded to the
 *   primary of its document in a cluster;
 * - an idempotency key returns the first result and applies nothing twice: the
 *   record is stored with the effect, so this holds across restarts too, and a
 *   concurrent retry joins the running attempt. With an OwnerGate (a cluster
 *   on a backplane) an owner call's record is also kept cluster-wide with its
 *   write, and looked up there once this node holds the document's lease.
 */
import * as Y from 'yjs';
import type { Grant } from '../auth/grant.js';
import { validateDocName, type DocName } from '../doc-name.js';
import { StateweaveError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import type { Store } from '../storage/store.js';
import type { SourceBundle } from './compile.js';
import { createDocQueue } from './doc-queue.js';
import { createWorkerPool, type FunctionIsolation, type WorkerPool } from './pool.js';
import { createExecutor, type StoredRecord } from './executor.js';
import { createRegistry, versionOf, type DeployedFunction } from './registry.js';
import { createSchedules } from './schedules.js';
import { createTriggers } from './triggers.js';
import { createStableWindows } from './stable-windows.js';
import type { HomeVectors } from '../node-ports.js';
import type { Metrics } from '../metrics.js';
import { createFunctionMetrics } from './function-metrics.js';
import { guestScript } from './guest-script.js';
import { NODE_WIDE, requireInScope } from './scope.js';
import { RIGHTS } from '../auth/grant.js';
import {
  authorizeCall,
  forwardedOf,
  functionCall,
  type CallResult,
  type FunctionCall,
} from './function-call.js';
import type { OwnerGate } from './owner-gate.js';

export interface FunctionRuntimeOptions {
  readonly hub: Hub;
  readonly store: Store;
  readonly logger: Logger;
  /** The node's metrics registry; function series are added to it. */
  readonly metrics?: Metrics;
  /** Workers that run function code (threads or processes: `isolation`). @default 2 */
  readonly workers?: number;
  /** Workers as threads of the node or as processes of their own (pool.ts). @default 'thread' */
  readonly isolation?: FunctionIsolation;
  /** Heap limit of one function's sandbox (a V8 isolate per version and worker) in MiB. @default 128 */
  readonly memoryMb?: number;
  /** Time limit of one invocation unless the function sets its own. @default 5000 */
  readonly timeoutMs?: number;
  /** Upper bound of any function's `timeoutMs` (and of `timeoutMs` above). @default 30000 */
  readonly maxTimeoutMs?: number;
  /** Largest result of one call (JSON, UTF-8 bytes); past it the call fails with OUTPUT_TOO_LARGE. @default 1048576 */
  readonly maxOutputBytes?: number;
  /** Invocations queued per document before OVERLOADED. @default 1000 */
  readonly maxQueuedPerDoc?: number;
  /**
   * In a cluster: the primary node of a document when that is another node, where
   * `owner` invocations must run. @default () => undefined (every document is ours)
   */
  readonly ownerOf?: (doc: DocName) => NodeId | undefined;
  /** Leases and fenced writes for `owner` calls run here (cluster on a backplane). @default none */
  readonly ownerGate?: OwnerGate;
  /**
   * What the homes of a document hold, for `onStable` windows.
   * @default this node alone is every document's home and primary
   */
  readonly homes?: HomeVectors;
}

export interface FunctionRuntime {
  /**
   * Loads bundles (compiled sources) and makes their functions current. `check`
   * sees them before they become current and may refuse (a client's deploy: scope.ts).
   */
  deploy(
    bundles: readonly SourceBundle[],
    check?: (functions: readonly DeployedFunction[]) => void,
  ): Promise<DeployedFunction[]>;
  list(): DeployedFunction[];
  /** Runs a call built and validated at its edge (function-call.ts). */
  invoke(call: FunctionCall): Promise<CallResult>;
  /** Worker respawns so far (timeouts, crashes). */
  readonly respawns: number;
  /** Resolves when no trigger run is queued or running. */
  triggersIdle(): Promise<void>;
  close(): Promise<void>;
}

/** A node without a cluster: the only home and primary of every document. */
const aloneHome = (hub: Hub): HomeVectors => ({
  isPrimary: () => true,
  vectors: async (doc) =>
    new Map([['self', await hub.withRoom(doc, (room) => Y.encodeStateVector(room.doc))]]),
});

const recordKey = (name: string, key: string): string => `fn\0${name}\0${key}`;
/** Most documents one call may write (`docs`): it holds each of them while it runs. */
const MAX_DOCS = 16;

const DESCRIBE_TIMEOUT_MS = 10_000;
/** Who a scheduled run is: the node itself. */
const SCHEDULE_GRANT: Grant = Object.freeze({
  subject: 'schedule',
  docs: ['*'],
  rights: new Set(RIGHTS),
});

export const createFunctionRuntime = (options: FunctionRuntimeOptions): FunctionRuntime => {
  const { hub, store, logger } = options;
  const maxTimeoutMs = options.maxTimeoutMs ?? 30_000;
  const defaultTimeoutMs = Math.min(options.timeoutMs ?? 5000, maxTimeoutMs);
  const registry = createRegistry();
  const queue = createDocQueue(options.maxQueuedPerDoc ?? 1000);
  /** Invocations with an idempotency key that are running now: a concurrent retry joins them. */
  const inflight = new Map<string, Promise<CallResult>>();
  let pool: WorkerPool | undefined;
  let closed = false;
  const metrics = options.metrics
    ? createFunctionMetrics(options.metrics, () => pool?.respawns ?? 0)
    : undefined;
  const schedules = createSchedules(
    (fn, at) =>
      runtime.invoke(
        functionCall({
          name: fn.name,
          body: JSON.stringify({ at }),
          idempotencyKey: `every:${at}`,
          grant: SCHEDULE_GRANT,
          primaryOnly: true,
        }),
      ),
    logger,
  );
  const triggers = createTriggers({
    hub,
    store,
    queue,
    pool: () => requirePool(),
    logger,
    defaultTimeoutMs,
  });
  const stableWindows = createStableWindows({
    hub,
    store,
    queue,
    pool: () => requirePool(),
    homes: options.homes ?? aloneHome(hub),
    // Alone, no other node was ever primary: nothing to hand over.
    ...(options.homes ? {} : { handoverMs: 0 }),
    logger,
    defaultTimeoutMs,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });

  // Change triggers run for every change the hub makes (not for their own writes: triggers.ts).
  const stopWatching = hub.onChange((doc, origin) => {
    triggers.notify(doc, origin);
    stableWindows.notify(doc, origin);
  });

  // Workers start with the first deployment, so a node without functions runs no threads.
  const requirePool = (): WorkerPool =>
    (pool ??= createWorkerPool({
      size: options.workers ?? 2,
      ...(options.isolation ? { isolation: options.isolation } : {}),
      memoryMb: options.memoryMb ?? 128,
      maxResultBytes: options.maxOutputBytes ?? 1024 * 1024,
      guest: guestScript(),
      warmDocsPerWorker: 256,
      maxWaiting: 10_000,
      logger,
      ...(metrics ? { onInvokeMessage: (groups) => metrics.messageGroups.observe(groups) } : {}),
    }));

  const executor = createExecutor({
    hub,
    store,
    queue,
    pool: requirePool,
    defaultTimeoutMs,
    maxWaitingPerDoc: options.maxQueuedPerDoc ?? 1000,
    isClosed: () => closed,
    ...(metrics ? { metrics } : {}),
    ...(options.ownerGate ? { ownerGate: options.ownerGate } : {}),
  });

  const readRecord = async (key: string): Promise<StoredRecord | undefined> => {
    const bytes = await store.getRecord(key);
    return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as StoredRecord) : undefined;
  };

  const execute = async (
    fn: DeployedFunction,
    call: FunctionCall,
    key: string | undefined,
  ): Promise<CallResult> => {
    const prepared = await requirePool().prepare(
      fn.bundle,
      fn.name,
      call.input,
      fn.timeoutMs ?? defaultTimeoutMs,
    );
    const docs = [...new Set(prepared.docs.map((name) => validateDocName(name)))];
    if (docs.length > MAX_DOCS)
      throw new StateweaveError(
        'INVALID_INPUT',
        `docs(input) names ${docs.length} documents; at most ${MAX_DOCS}`,
      );
    for (const doc of docs) {
      requireInScope(fn, doc);
      authorizeCall(call, doc, fn.kind);
    }
    const doc = docs[0]!;
    // A schedule's tick runs where its document's primary is; elsewhere it is a no-op.
    if (call.primaryOnly === true && options.ownerOf?.(doc) !== undefined)
      return { json: 'null', replayed: false, version: fn.bundle.version, doc };
    // Check-then-act needs one serial executor per document cluster-wide: its primary
    // (of the first document, for a call on several).
    const { forwarder } = call;
    const owner = fn.consistency === 'owner' && forwarder ? options.ownerOf?.(doc) : undefined;
    if (forwarder && owner !== undefined)
      return { ...(await forwarder.forward(owner, forwardedOf(call))), doc };
    if (closed) throw new StateweaveError('SHUTTING_DOWN');
    const gate = fn.consistency === 'owner' ? options.ownerGate : undefined;
    if (gate && key !== undefined) {
      // Another holder may have run this key: its record is where its write is.
      await gate.hold(doc);
      const bytes = await gate.record(doc, key);
      if (bytes) {
        const stored = JSON.parse(new TextDecoder().decode(bytes)) as StoredRecord;
        return { json: stored.result, replayed: true, version: stored.version, doc: stored.doc };
      }
    }
    return executor.run(docs, { fn, call, key, input: prepared.input });
  };

  const invokeOnce = async (call: FunctionCall): Promise<CallResult> => {
    if (closed) throw new StateweaveError('SHUTTING_DOWN');
    // One version per invocation: the one current when it arrived.
    const fn = registry.get(call.name);
    if (!fn)
      throw new StateweaveError('NOT_FOUND', `no function named ${JSON.stringify(call.name)}`);
    if (call.idempotencyKey === undefined || fn.kind === 'query')
      return execute(fn, call, undefined);
    const key = recordKey(fn.name, call.idempotencyKey);
    const running = inflight.get(key);
    if (running) {
      // The running attempt was authorized for its caller, not for this one.
      const first = await running;
      authorizeCall(call, first.doc, fn.kind);
      return { ...first, replayed: true };
    }
    const attempt = (async (): Promise<CallResult> => {
      const stored = await readRecord(key);
      if (stored) {
        authorizeCall(call, stored.doc, fn.kind);
        return { json: stored.result, replayed: true, version: stored.version, doc: stored.doc };
      }
      return execute(fn, call, key);
    })();
    inflight.set(key, attempt);
    try {
      return await attempt;
    } finally {
      inflight.delete(key);
    }
  };

  const runtime: FunctionRuntime = {
    async deploy(bundles, check) {
      const workers = requirePool();
      const deployed: DeployedFunction[] = [];
      for (const { file, code, scope = NODE_WIDE } of bundles) {
        const version = versionOf(code);
        const bundle = { version, code };
        // One describe per worker, at once: idle workers take one each, so the version's
        // sandbox is built at deploy, not by its first call (a best effort: a busy
        // worker may take two, and builds the sandbox at first use instead).
        const described = await Promise.all(
          Array.from({ length: Math.max(1, options.workers ?? 2) }, () =>
            workers.describe(bundle, DESCRIBE_TIMEOUT_MS),
          ),
        );
        const metas = described[0] ?? [];
        // A helper module (shared validators) defines nothing: it is inlined where imported.
        if (metas.length === 0) continue;
        for (const meta of metas) {
          if (deployed.some((d) => d.name === meta.name))
            throw new StateweaveError('BAD_REQUEST', `function ${meta.name} is defined twice`);
          // Capped here, so every use of fn.timeoutMs (calls, prepares, triggers) is bounded.
          const timeoutMs =
            meta.timeoutMs === undefined ? undefined : Math.min(meta.timeoutMs, maxTimeoutMs);
          deployed.push({
            ...meta,
            timeoutMs,
            scope,
            version,
            bundle,
            file,
            deployedAt: Date.now(),
          });
        }
      }
      if (deployed.length === 0)
        throw new StateweaveError(
          'BAD_REQUEST',
          'no module exports a function (use defineFunction)',
        );
      check?.(deployed);
      registry.set(deployed);
      triggers.set(registry.list());
      stableWindows.set(registry.list());
      schedules.set(deployed);
      // Catch up on changes the triggers have not seen (after a restart, or a new trigger).
      triggers.resume().catch((err: unknown) => logger.error({ err }, 'resuming triggers failed'));
      stableWindows
        .resume()
        .catch((err: unknown) => logger.error({ err }, 'resuming onStable windows failed'));
      logger.info(
        { functions: deployed.map((d) => `${d.name}@${d.version}`) },
        'functions deployed',
      );
      return deployed;
    },

    list: () => registry.list(),

    async invoke(call) {
      if (!metrics) return invokeOnce(call);
      // Only deployed names become label values: a caller cannot mint series.
      const label = registry.get(call.name) ? call.name : '(unknown)';
      const stop = metrics.seconds.startTimer({ function: label });
      try {
        const result = await invokeOnce(call);
        metrics.invocations.inc({ function: label, outcome: result.replayed ? 'replayed' : 'ok' });
        stop();
        return result;
      } catch (err) {
        metrics.invocations.inc({
          function: label,
          outcome: err instanceof StateweaveError ? err.code : 'INTERNAL',
        });
        throw err;
      }
    },

    get respawns() {
      return pool?.respawns ?? 0;
    },

    triggersIdle: () => Promise.all([triggers.idle(), stableWindows.idle()]).then(() => undefined),

    async close() {
      closed = true;
      stopWatching();
      triggers.close();
      stableWindows.close();
      schedules.close();
      await pool?.close();
    },
  };
  return runtime;
};

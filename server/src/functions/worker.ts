/**
 * The function worker: runs user code off the node's event loop. It keeps the
 * documents it has worked on warm (the node sends only what changed since), and
 * drops its copy on any failure so a failed attempt leaves no trace anywhere.
 *
 * A bundle is CommonJS text evaluated with a `require` that knows two modules:
 * `yjs` (this worker's copy, so the handler's Y.Doc and its types are one Yjs)
 * and `@stateweave/server` (only `defineFunction`). Nothing else can be
 * required; the worker is started with an empty environment.
 */
import { parentPort } from 'node:worker_threads';
import * as Y from 'yjs';
import { defineFunction, isFunctionDefinition, parseInterval, type FunctionDefinition } from './define.js';
import type { BundleRef, Call, FunctionMeta, PrepareItem, Prepared, WorkerFailureCode, WorkerReply, WorkerRequest } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('worker.ts runs only as a worker thread');

const bundles = new Map<string, Map<string, FunctionDefinition>>();
const docs = new Map<string, Y.Doc>();

class Refused extends Error {
  constructor(
    readonly code: 'INVALID_INPUT' | 'FUNCTION_ERROR' | 'BAD_REQUEST',
    message: string,
  ) {
    super(message);
  }
}

const SHIM = Object.freeze({ defineFunction });

const evaluate = (code: string): Map<string, FunctionDefinition> => {
  const module: { exports: Record<string, unknown> } = { exports: {} };
  const require = (id: string): unknown => {
    if (id === 'yjs') return Y;
    if (id === '@stateweave/server') return SHIM;
    throw new Error(`functions may import only yjs and @stateweave/server (bundle everything else): ${id}`);
  };
  // Evaluating the deployed bundle is the point; it sees only these three names plus globals.
  new Function('module', 'exports', 'require', code)(module, module.exports, require);
  const found = new Map<string, FunctionDefinition>();
  const exported = module.exports;
  const candidates = [exported, ...Object.values(exported)];
  for (const value of candidates) if (isFunctionDefinition(value)) found.set(value.name, value);
  return found;
};

const load = (bundle: BundleRef): Map<string, FunctionDefinition> => {
  let defs = bundles.get(bundle.version);
  if (defs) return defs;
  if (bundle.code === undefined) throw new Refused('BAD_REQUEST', `version ${bundle.version} is not loaded`);
  try {
    defs = evaluate(bundle.code);
  } catch (err) {
    throw new Refused('BAD_REQUEST', `the bundle fails to load: ${(err as Error)?.message ?? String(err)}`);
  }
  bundles.set(bundle.version, defs);
  return defs;
};

const definition = (version: string, name: string): FunctionDefinition => {
  const def = load({ version }).get(name);
  if (!def) throw new Refused('BAD_REQUEST', `version ${version} has no function ${name}`);
  return def;
};

/** mulberry32 seeded by a string hash: deterministic per invocation id. */
const seededRandom = (seed: string): (() => number) => {
  let h = 2166136261;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 16777619);
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const forget = (name: string): void => {
  docs.get(name)?.destroy();
  docs.delete(name);
};

const handle = async (req: WorkerRequest): Promise<WorkerReply> => {
  const { task } = req;
  switch (req.type) {
    case 'describe': {
      const functions: FunctionMeta[] = [...load(req.bundle).values()].map((def) => {
        const everyMs = def.every === undefined ? undefined : parseInterval(def.every);
        if (def.every !== undefined && (everyMs === undefined || everyMs < 100)) {
          throw new Refused('BAD_REQUEST', `${def.name}: every must be like 500ms, 10s, 5m or 1h (at least 100ms)`);
        }
        if (def.every !== undefined && !def.doc) throw new Refused('BAD_REQUEST', `${def.name}: a schedule needs doc()`);
        return {
          name: def.name,
          kind: def.kind ?? 'mutation',
          consistency: def.consistency ?? 'local',
          timeoutMs: def.timeoutMs,
          on: def.on,
          everyMs,
        };
      });
      return { task, ok: true, type: 'describe', functions };
    }
    case 'prepare': {
      for (const bundle of req.bundles) load(bundle);
      return { task, ok: true, type: 'prepare', items: req.items.map(prepareOne) };
    }
    case 'invoke': {
      for (const bundle of req.bundles) load(bundle);
      for (const name of req.drop) forget(name);
      if (req.reset) forget(req.doc);
      let ydoc = docs.get(req.doc);
      if (!ydoc) docs.set(req.doc, (ydoc = new Y.Doc({ gc: true })));
      Y.applyUpdate(ydoc, req.diff);
      const results: string[] = [];
      const applied: Uint8Array[] = [];
      let failure: { code: WorkerFailureCode; message: string } | undefined;
      for (const call of req.calls) {
        const outcome = await runCall(ydoc, call);
        if (!outcome.ok) {
          // Yjs cannot roll back: the copy with the failed call's writes goes, and
          // the node re-sends the calls after it in a new batch.
          forget(req.doc);
          failure = { code: outcome.code, message: outcome.message };
          break;
        }
        results.push(outcome.result);
        applied.push(...outcome.writes);
      }
      const update = applied.length === 0 ? null : applied.length === 1 ? applied[0]! : Y.mergeUpdates(applied);
      const stateVector = failure ? null : Y.encodeStateVector(ydoc);
      return { task, ok: true, type: 'invoke', results, update, stateVector, ...(failure ? { failure } : {}) };
    }
  }
};

const prepareOne = (item: PrepareItem): Prepared => {
  try {
    const def = definition(item.version, item.name);
    let input: unknown;
    try {
      input = def.input ? def.input.parse(item.input) : item.input;
    } catch (err) {
      throw new Refused('INVALID_INPUT', messageOf(err));
    }
    if (!def.doc) throw new Refused('INVALID_INPUT', `${def.name} is a change trigger; it runs on changes, not on request`);
    let doc: unknown;
    try {
      doc = def.doc(input);
    } catch (err) {
      throw new Refused('INVALID_INPUT', `doc(input) threw: ${messageOf(err)}`);
    }
    if (typeof doc !== 'string') throw new Refused('INVALID_INPUT', 'doc(input) must return a document name');
    return { ok: true, input, doc };
  } catch (err) {
    return { ok: false, code: err instanceof Refused ? err.code : 'FUNCTION_ERROR', message: messageOf(err) };
  }
};

type CallOutcome = { ok: true; result: string; writes: Uint8Array[] } | { ok: false; code: WorkerFailureCode; message: string };

/** Runs one handler on the warm copy, recording its writes. */
const runCall = async (ydoc: Y.Doc, call: Call): Promise<CallOutcome> => {
  const writes: Uint8Array[] = [];
  const onUpdate = (update: Uint8Array): void => {
    writes.push(update);
  };
  ydoc.on('update', onUpdate);
  const ctx = { doc: ydoc, auth: call.auth, id: call.id, now: () => call.now, random: seededRandom(call.id) };
  try {
    const def = definition(call.version, call.name);
    const value: unknown = await def.handler(ctx, call.input);
    const result = JSON.stringify(value === undefined ? null : value);
    if (result === undefined) throw new Error('the result is not JSON-serialisable');
    if (call.kind === 'query' && writes.length > 0) throw new Error('a query must not write to its document');
    return { ok: true, result, writes };
  } catch (err) {
    return { ok: false, code: err instanceof Refused ? err.code : 'FUNCTION_ERROR', message: messageOf(err) };
  } finally {
    ydoc.off('update', onUpdate);
  }
};

port.on('message', (req: WorkerRequest) => {
  handle(req).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => {
      const code = err instanceof Refused ? err.code : 'FUNCTION_ERROR';
      port.postMessage({ task: req.task, ok: false, code, message: messageOf(err) } satisfies WorkerReply);
    },
  );
});

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
import {
  defineFunction,
  isFunctionDefinition,
  parseInterval,
  type FunctionDefinition,
} from './define.js';
import type {
  BundleRef,
  Call,
  DocState,
  FunctionMeta,
  PrepareItem,
  Prepared,
  ReadRequest,
  ToWorker,
  WorkerFailureCode,
  WorkerReply,
  WorkerRequest,
} from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('worker.ts runs only as a worker thread');

const bundles = new Map<string, Map<string, FunctionDefinition>>();
const docs = new Map<string, Y.Doc>();

class Refused extends Error {
  constructor(
    readonly code: WorkerFailureCode,
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
    throw new Error(
      `functions may import only yjs and @stateweave/server (bundle everything else): ${id}`,
    );
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
  if (bundle.code === undefined)
    throw new Refused('BAD_REQUEST', `version ${bundle.version} is not loaded`);
  try {
    defs = evaluate(bundle.code);
  } catch (err) {
    throw new Refused(
      'BAD_REQUEST',
      `the bundle fails to load: ${(err as Error)?.message ?? String(err)}`,
    );
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
          throw new Refused(
            'BAD_REQUEST',
            `${def.name}: every must be like 500ms, 10s, 5m or 1h (at least 100ms)`,
          );
        }
        if (def.every !== undefined && !def.doc)
          throw new Refused('BAD_REQUEST', `${def.name}: a schedule needs doc()`);
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
      const copies = req.docs.map(({ name, reset, diff }) => {
        if (reset) forget(name);
        let ydoc = docs.get(name);
        if (!ydoc) docs.set(name, (ydoc = new Y.Doc({ gc: true })));
        Y.applyUpdate(ydoc, diff);
        return ydoc;
      });
      const results: string[] = [];
      const applied: Uint8Array[][] = copies.map(() => []);
      let failure: { code: WorkerFailureCode; message: string } | undefined;
      for (const [index, call] of req.calls.entries()) {
        const outcome = await runCall(req.task, index, req.docs, copies, call);
        if (!outcome.ok) {
          // Yjs cannot roll back: the copies with the failed call's writes go, and
          // the node re-sends the calls after it in a new batch.
          for (const { name } of req.docs) forget(name);
          failure = { code: outcome.code, message: outcome.message };
          break;
        }
        results.push(outcome.result);
        outcome.writes.forEach((writes, i) => applied[i]!.push(...writes));
      }
      const updates = applied.map((writes) =>
        writes.length === 0 ? null : writes.length === 1 ? writes[0]! : Y.mergeUpdates(writes),
      );
      const stateVectors = failure ? null : copies.map((ydoc) => Y.encodeStateVector(ydoc));
      return {
        task,
        ok: true,
        type: 'invoke',
        results,
        updates,
        stateVectors,
        ...(failure ? { failure } : {}),
      };
    }
  }
};

/** `ctx.read` answers, by request ref. */
const reads = new Map<
  number,
  { resolve: (state: Uint8Array) => void; reject: (err: Error) => void }
>();
let nextRef = 1;

const readCopy = (task: number, call: number, name: string): Promise<Y.Doc> =>
  new Promise<Uint8Array>((resolve, reject) => {
    const ref = nextRef++;
    reads.set(ref, { resolve, reject });
    port.postMessage({ type: 'read', task, call, ref, doc: name } satisfies ReadRequest);
  }).then((state) => {
    const copy = new Y.Doc({ gc: true });
    Y.applyUpdate(copy, state);
    copy.on('update', () => {
      throw new Error(
        `ctx.read(${JSON.stringify(name)}) is a read-only copy; write through doc or docs`,
      );
    });
    return copy;
  });

const prepareOne = (item: PrepareItem): Prepared => {
  try {
    const def = definition(item.version, item.name);
    let input: unknown;
    try {
      input = def.input ? def.input.parse(item.input) : item.input;
    } catch (err) {
      throw new Refused('INVALID_INPUT', messageOf(err));
    }
    if (!def.doc && !def.docs)
      throw new Refused(
        'INVALID_INPUT',
        `${def.name} is a change trigger; it runs on changes, not on request`,
      );
    let named: unknown;
    try {
      named = def.docs ? def.docs(input) : [def.doc!(input)];
    } catch (err) {
      throw new Refused(
        'INVALID_INPUT',
        `${def.docs ? 'docs' : 'doc'}(input) threw: ${messageOf(err)}`,
      );
    }
    if (!Array.isArray(named) || named.length === 0 || !named.every((d) => typeof d === 'string')) {
      throw new Refused(
        'INVALID_INPUT',
        def.docs
          ? 'docs(input) must return a non-empty list of document names'
          : 'doc(input) must return a document name',
      );
    }
    return { ok: true, input, docs: named as string[] };
  } catch (err) {
    return {
      ok: false,
      code: err instanceof Refused ? err.code : 'FUNCTION_ERROR',
      message: messageOf(err),
    };
  }
};

type CallOutcome =
  | { ok: true; result: string; writes: Uint8Array[][] }
  | { ok: false; code: WorkerFailureCode; message: string };

/** Runs one handler on the warm copies, recording its writes per document. */
const runCall = async (
  task: number,
  index: number,
  states: readonly DocState[],
  copies: readonly Y.Doc[],
  call: Call,
): Promise<CallOutcome> => {
  const writes: Uint8Array[][] = copies.map(() => []);
  const listeners = copies.map((ydoc, i) => {
    const onUpdate = (update: Uint8Array): void => {
      writes[i]!.push(update);
    };
    ydoc.on('update', onUpdate);
    return onUpdate;
  });
  const byName: Record<string, Y.Doc> = Object.create(null) as Record<string, Y.Doc>;
  states.forEach(({ name }, i) => (byName[name] = copies[i]!));
  const ctx = {
    doc: copies[0]!,
    docs: Object.freeze(byName),
    read: (name: string) =>
      name in byName ? Promise.resolve(byName[name]!) : readCopy(task, index, name),
    auth: call.auth,
    id: call.id,
    now: () => call.now,
    random: seededRandom(call.id),
  };
  try {
    const def = definition(call.version, call.name);
    const value: unknown = await def.handler(ctx, call.input);
    const result = JSON.stringify(value === undefined ? null : value);
    if (result === undefined) throw new Error('the result is not JSON-serialisable');
    if (call.kind === 'query' && writes.some((w) => w.length > 0))
      throw new Error('a query must not write to its document');
    return { ok: true, result, writes };
  } catch (err) {
    return {
      ok: false,
      code: err instanceof Refused ? err.code : 'FUNCTION_ERROR',
      message: messageOf(err),
    };
  } finally {
    copies.forEach((ydoc, i) => ydoc.off('update', listeners[i]!));
  }
};

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'read') {
    const pending = reads.get(msg.ref);
    reads.delete(msg.ref);
    if (msg.ok) pending?.resolve(msg.state);
    // A refused read fails the call as FORBIDDEN unless the handler catches it.
    else
      pending?.reject(
        msg.forbidden ? new Refused('FORBIDDEN', msg.message) : new Error(msg.message),
      );
    return;
  }
  const req = msg;
  handle(req).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => {
      const code = err instanceof Refused ? err.code : 'FUNCTION_ERROR';
      port.postMessage({
        task: req.task,
        ok: false,
        code,
        message: messageOf(err),
      } satisfies WorkerReply);
    },
  );
});

/**
 * The code that runs inside a function's V8 isolate, bundled with Yjs into one
 * script (guest-script.ts) and evaluated in every fresh context before the
 * deployed bundle. It sees ECMAScript and what the host hands it — one callback
 * that asks for a document copy — and nothing of Node.
 *
 * It exposes its entry points on `globalThis` (`__swLoad`, `__swPrepare`,
 * `__swStart`, `__swTake`, `__swWait`, `__swDeliver`, `__swForget`) for the host (sandbox.ts)
 * to take as references and delete before the deployed bundle runs. Everything
 * crossing the boundary is copied data.
 */
import * as prng from 'lib0/prng';
import * as Y from 'yjs';
import {
  DEFINE_MODULES,
  defineFunction,
  isFunctionDefinition,
  parseInterval,
  type FunctionDefinition,
} from '../define.js';
import type {
  WorkerCall,
  DocState,
  FunctionMeta,
  GuestInvokeReply,
  Prepared,
  PrepareItem,
  WorkerFailureCode,
} from '../worker-protocol.js';

/** Asks the host for a copy of `doc` for call `call` of group `group`; the answer comes through `__swDeliver(ref, ...)`. */
type HostRead = (ref: number, call: number, doc: string, group: number) => void;

class Refused extends Error {
  constructor(
    readonly code: WorkerFailureCode,
    message: string,
  ) {
    super(message);
  }
}

type Global = Record<string, unknown>;
const g = globalThis as unknown as Global;
// Taken before any deployed code runs, then removed from the global object.
const hostRead = g.__swHostRead as HostRead;
delete g.__swHostRead;

const defs = new Map<string, FunctionDefinition>();
const docs = new Map<string, Y.Doc>();
const reads = new Map<number, { resolve: (s: Uint8Array) => void; reject: (e: Error) => void }>();
let nextRef = 1;

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * A validator's refusal as one line. Schema libraries (zod, valibot) put their
 * issues in `issues` as { path, message } and a JSON dump in `message`: the
 * caller wants `visitor: expected string`, not an escaped array.
 */
const validationMessage = (err: unknown): string => {
  const issues = (err as { issues?: unknown } | null)?.issues;
  if (!Array.isArray(issues) || issues.length === 0) return messageOf(err);
  return issues
    .slice(0, 5)
    .map((issue: { path?: unknown; message?: unknown }) => {
      const path =
        Array.isArray(issue.path) && issue.path.length > 0 ? issue.path.join('.') : 'input';
      return `${path}: ${typeof issue.message === 'string' ? issue.message : 'invalid'}`;
    })
    .join('; ');
};
const failureOf = (err: unknown): { code: WorkerFailureCode; message: string } => ({
  code: err instanceof Refused ? err.code : 'FUNCTION_ERROR',
  message: messageOf(err),
});

const SHIM = Object.freeze({ defineFunction });

/** Evaluates a deployed CommonJS bundle; returns its definitions' metadata, or why it failed. */
const load = (
  code: string,
): { ok: true; functions: FunctionMeta[] } | { ok: false; message: string } => {
  try {
    const module: { exports: Record<string, unknown> } = { exports: {} };
    const require = (id: string): unknown => {
      if (id === 'yjs') return Y;
      if (DEFINE_MODULES.includes(id)) return SHIM;
      throw new Error(
        `functions may import only yjs and ${DEFINE_MODULES.join(', ')} (bundle everything else): ${id}`,
      );
    };
    new Function('module', 'exports', 'require', code)(module, module.exports, require);
    const exported = module.exports;
    for (const value of [exported, ...Object.values(exported)])
      if (isFunctionDefinition(value)) defs.set(value.name, value);
    return { ok: true, functions: [...defs.values()].map(metaOf) };
  } catch (err) {
    defs.clear();
    return { ok: false, message: `the bundle fails to load: ${messageOf(err)}` };
  }
};

const metaOf = (def: FunctionDefinition): FunctionMeta => {
  const everyMs = def.every === undefined ? undefined : parseInterval(def.every);
  if (def.every !== undefined && (everyMs === undefined || everyMs < 100))
    throw new Error(`${def.name}: every must be like 500ms, 10s, 5m or 1h (at least 100ms)`);
  if (def.every !== undefined && !def.doc) throw new Error(`${def.name}: a schedule needs doc()`);
  const stableWindowMs =
    def.onStable === undefined ? undefined : parseInterval(String(def.onStable.window));
  if (def.onStable !== undefined && (stableWindowMs === undefined || stableWindowMs < 100))
    throw new Error(
      `${def.name}: onStable.window must be like 500ms, 10s, 5m or 1h (at least 100ms)`,
    );
  if (def.onStable !== undefined && def.on === undefined)
    throw new Error(`${def.name}: onStable needs on (the documents whose windows it runs for)`);
  if (def.timeoutMs !== undefined && !(Number.isFinite(def.timeoutMs) && def.timeoutMs > 0))
    throw new Error(`${def.name}: timeoutMs must be a positive number`);
  return {
    name: String(def.name),
    kind: def.kind === 'query' ? 'query' : 'mutation',
    consistency: def.consistency === 'owner' ? 'owner' : 'local',
    timeoutMs: def.timeoutMs,
    on: def.on === undefined ? undefined : String(def.on),
    everyMs,
    stableWindowMs,
  };
};

const definition = (name: string): FunctionDefinition => {
  const def = defs.get(name);
  if (!def) throw new Refused('BAD_REQUEST', `this version has no function ${name}`);
  return def;
};

const prepareOne = (item: PrepareItem): Prepared => {
  try {
    const def = definition(item.name);
    let input: unknown;
    try {
      input = def.input ? def.input.parse(item.input) : item.input;
    } catch (err) {
      throw new Refused('INVALID_INPUT', validationMessage(err));
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
    if (!Array.isArray(named) || named.length === 0 || !named.every((d) => typeof d === 'string'))
      throw new Refused(
        'INVALID_INPUT',
        def.docs
          ? 'docs(input) must return a non-empty list of document names'
          : 'doc(input) must return a document name',
      );
    // Through JSON: the validated input must cross back to the host as plain data.
    return { ok: true, input: JSON.parse(JSON.stringify(input) ?? 'null'), docs: [...named] };
  } catch (err) {
    return { ok: false, ...failureOf(err) };
  }
};

/** lib0's PRNG seeded by a string hash (FNV-1a): deterministic per invocation id. */
const seededRandom = (seed: string): (() => number) => {
  let h = 2166136261;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 16777619);
  const generator = prng.create(h >>> 0);
  return () => prng.real53(generator);
};

const forget = (name: string): void => {
  docs.get(name)?.destroy();
  docs.delete(name);
};

const readCopy = (group: number, call: number, name: string): Promise<Y.Doc> =>
  new Promise<Uint8Array>((resolve, reject) => {
    const ref = nextRef++;
    reads.set(ref, { resolve, reject });
    hostRead(ref, call, name, group);
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

type CallOutcome =
  | { ok: true; result: string; writes: Uint8Array[][] }
  | { ok: false; code: WorkerFailureCode; message: string };

/**
 * A value now, or a promise of it when a handler returned a promise. Handlers that
 * return plain values run a whole entry without a microtask turn, so the host's
 * one synchronous entry gets the answer (sandbox.ts); the first promise makes the
 * rest of the entry asynchronous.
 */
type Maybe<T> = T | Promise<T>;

/** True for what `await` would wait for (a handler's promise or thenable). */
const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === 'object' || typeof value === 'function') &&
  value !== null &&
  typeof (value as { then?: unknown }).then === 'function';

/** Taken before any deployed code runs (it could replace the global). */
const NativePromise = Promise;

const runCall = (
  group: number,
  index: number,
  states: readonly DocState[],
  copies: readonly Y.Doc[],
  call: WorkerCall,
  maxResultBytes: number,
): Maybe<CallOutcome> => {
  const writes: Uint8Array[][] = copies.map(() => []);
  const listeners = copies.map((ydoc, i) => {
    const onUpdate = (update: Uint8Array): void => void writes[i]!.push(update);
    ydoc.on('update', onUpdate);
    return onUpdate;
  });
  const byName: Record<string, Y.Doc> = Object.create(null) as Record<string, Y.Doc>;
  states.forEach(({ name }, i) => (byName[name] = copies[i]!));
  const ctx = {
    doc: copies[0]!,
    docs: Object.freeze(byName),
    read: (name: string) =>
      name in byName ? Promise.resolve(byName[name]!) : readCopy(group, index, String(name)),
    auth: call.auth,
    id: call.id,
    now: () => call.now,
    random: seededRandom(call.id),
  };
  const stopListening = (): void => copies.forEach((ydoc, i) => ydoc.off('update', listeners[i]!));
  const failed = (err: unknown): CallOutcome => {
    stopListening();
    return { ok: false, ...failureOf(err) };
  };
  const finish = (value: unknown): CallOutcome => {
    try {
      const result = JSON.stringify(value === undefined ? null : value);
      if (result === undefined) throw new Error('the result is not JSON-serialisable');
      // Characters are at most the UTF-8 bytes; the host checks the exact bytes again.
      if (result.length > maxResultBytes)
        throw new Refused('OUTPUT_TOO_LARGE', `the result is larger than ${maxResultBytes} bytes`);
      if (call.kind === 'query' && writes.some((w) => w.length > 0))
        throw new Error('a query must not write to its document');
      // The platform's stamp (an onStable cursor) joins the handler's writes in one update.
      if (call.stamp && call.kind === 'mutation')
        copies[0]!.getMap(call.stamp.map).set(call.stamp.key, call.stamp.value);
      stopListening();
      return { ok: true, result, writes };
    } catch (err) {
      return failed(err);
    }
  };
  let value: unknown;
  try {
    value = definition(call.name).handler(ctx, call.input);
    // What `await` would do with a thenable: adopt its outcome.
    if (isThenable(value)) return NativePromise.resolve(value).then(finish, failed);
  } catch (err) {
    return failed(err);
  }
  return finish(value);
};

/** Runs a batch of calls of one function, in order, on warm copies (see worker-protocol.ts). */
const invokeGroup = (
  group: number,
  states: readonly DocState[],
  calls: readonly WorkerCall[],
  maxResultBytes: number,
): Maybe<GuestInvokeReply> => {
  const copies = states.map(({ name, reset, diff }) => {
    if (reset) forget(name);
    let ydoc = docs.get(name);
    if (!ydoc) docs.set(name, (ydoc = new Y.Doc({ gc: true })));
    Y.applyUpdate(ydoc, diff);
    return ydoc;
  });
  const results: string[] = [];
  const applied: Uint8Array[][] = copies.map(() => []);
  /** The group's answer once a call failed or none is left; undefined: go on. */
  const settle = (outcome: CallOutcome): GuestInvokeReply | undefined => {
    if (!outcome.ok) {
      // Yjs cannot roll back: the copies with the failed call's writes go.
      for (const { name } of states) forget(name);
      return { results, updates: merged(applied), stateVectors: null, failure: outcome };
    }
    results.push(outcome.result);
    outcome.writes.forEach((w, i) => applied[i]!.push(...w));
    return undefined;
  };
  const from = (first: number): Maybe<GuestInvokeReply> => {
    for (let index = first; index < calls.length; index++) {
      const outcome = runCall(group, index, states, copies, calls[index]!, maxResultBytes);
      if (outcome instanceof NativePromise)
        return outcome.then((o) => settle(o) ?? from(index + 1));
      const answer = settle(outcome as CallOutcome);
      if (answer) return answer;
    }
    return {
      results,
      updates: merged(applied),
      stateVectors: copies.map((ydoc) => Y.encodeStateVector(ydoc)),
    };
  };
  return from(0);
};

/**
 * Runs groups (batches of other documents) one after the other in one entry: one
 * crossing into the isolate for all of them. A group's failing call ends its group
 * only. Past `budgetMs` no further group starts (the host runs the rest in a new
 * entry with a deadline of its own), so groups that are slow, not stuck, are not
 * cut off by the entry's deadline: the answer may be shorter than `groups`.
 */
const invoke = (
  groups: readonly { readonly docs: readonly DocState[]; readonly calls: readonly WorkerCall[] }[],
  drop: readonly string[],
  maxResultBytes: number,
  budgetMs: number,
): Maybe<GuestInvokeReply[]> => {
  const started = Date.now();
  for (const name of drop) forget(name);
  const replies: GuestInvokeReply[] = [];
  const from = (first: number): Maybe<GuestInvokeReply[]> => {
    for (let group = first; group < groups.length; group++) {
      if (group > 0 && Date.now() - started >= budgetMs) break;
      const { docs: states, calls } = groups[group]!;
      const reply = invokeGroup(group, states, calls, maxResultBytes);
      if (reply instanceof NativePromise)
        return reply.then((r) => {
          replies.push(r);
          return from(group + 1);
        });
      replies.push(reply as GuestInvokeReply);
    }
    return replies;
  };
  return from(0);
};

const merged = (applied: Uint8Array[][]): (Uint8Array | null)[] =>
  applied.map((w) => (w.length === 0 ? null : w.length === 1 ? w[0]! : Y.mergeUpdates(w)));

const deliver = (
  ref: number,
  ok: boolean,
  state: Uint8Array | null,
  message: string,
  forbidden: boolean,
): void => {
  const pending = reads.get(ref);
  reads.delete(ref);
  if (ok && state) pending?.resolve(state);
  // A refused read fails the call as FORBIDDEN unless the handler catches it.
  else pending?.reject(forbidden ? new Refused('FORBIDDEN', message) : new Error(message));
};

/**
 * Every isolate starts cold: V8 compiles each Yjs function on its first call. One
 * small round of what a call does (write, encode, merge, apply) here, while the
 * sandbox is built (at deploy), keeps that out of a new version's first call.
 */
const warmUp = (): void => {
  const a = new Y.Doc();
  const b = new Y.Doc();
  const updates: Uint8Array[] = [];
  a.on('update', (u: Uint8Array) => void updates.push(u));
  a.getMap('m').set('k', 1);
  a.getArray('a').push([1]);
  a.getText('t').insert(0, 'x');
  Y.applyUpdate(b, Y.mergeUpdates(updates));
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)));
  a.destroy();
  b.destroy();
};
warmUp();

/**
 * An invocation still running after the host's synchronous entry returned: it
 * awaits a promise (ctx.read, or a handler's own). The host takes it once
 * isolated-vm has run the microtasks (`__swTake`) or waits for it (`__swWait`).
 */
interface Pending {
  readonly promise: Promise<GuestInvokeReply[]>;
  settled?: { ok: true; replies: GuestInvokeReply[] } | { ok: false; error: unknown };
}
let pending: Pending | undefined;

/** Runs an invocation: its replies when every handler returned a plain value, else undefined (pending). */
const start = (...args: Parameters<typeof invoke>): GuestInvokeReply[] | undefined => {
  pending = undefined;
  const replies = invoke(...args);
  if (!(replies instanceof NativePromise)) return replies as GuestInvokeReply[];
  const entry: Pending = { promise: replies };
  pending = entry;
  replies.then(
    (settled) => void (entry.settled = { ok: true, replies: settled }),
    (error: unknown) => void (entry.settled = { ok: false, error }),
  );
  return undefined;
};

/** The pending invocation's replies once it settled (it throws its error), else undefined. */
const take = (): GuestInvokeReply[] | undefined => {
  const entry = pending;
  if (!entry) throw new Error('no invocation is pending');
  if (!entry.settled) return undefined;
  pending = undefined;
  if (!entry.settled.ok) throw entry.settled.error;
  return entry.settled.replies;
};

/** The pending invocation, to wait for. */
const wait = (): Promise<GuestInvokeReply[]> => {
  const entry = pending;
  pending = undefined;
  if (!entry) throw new Error('no invocation is pending');
  return entry.promise;
};

g.__swLoad = load;
g.__swPrepare = (items: readonly PrepareItem[]): Prepared[] => items.map(prepareOne);
g.__swStart = start;
g.__swTake = take;
g.__swWait = wait;
g.__swDeliver = deliver;
g.__swForget = (names: readonly string[]): void => names.forEach(forget);

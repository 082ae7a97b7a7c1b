/**
 * A function worker thread: the host of sandboxes (sandbox.ts), one V8 isolate
 * per deployment version, at most MAX_SANDBOXES (least recently used go first;
 * the worker keeps every version's code and rebuilds a sandbox on demand). No
 * deployed code runs in this thread's own context; the thread gives the pool
 * one task at a time and a unit it can terminate and replace as a last resort.
 *
 * Speaks worker-protocol.ts with the pool. A sandbox recreated since the pool
 * last saw it (a timeout, out of memory, evicted) lacks the warm copies the pool
 * believes it has: such a group is answered STALE and re-sent whole. Each group
 * of an invoke message fails alone (worker-protocol.ts).
 */
import { parentPort } from 'node:worker_threads';
import { assertNever } from '../assert-never.js';
import { createSandbox, SandboxError, type GuestScript, type Sandbox } from './sandbox.js';
import {
  ALONE,
  STALE,
  type BundleRef,
  type FunctionMeta,
  type GroupReply,
  type InvokeGroup,
  type Prepared,
  type ReadRequest,
  type ToWorker,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

/** The pool's end: the parent thread's port, or this process's channel (worker-process.ts). */
interface PoolPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: ToWorker) => void): unknown;
}
const processPort = (): PoolPort | undefined => {
  const send = process.send?.bind(process);
  if (!send) return undefined;
  // The node went away (or killed the channel): nothing is left to work for.
  process.on('disconnect', () => process.exit(0));
  return {
    postMessage: (message) => send(message),
    on: (_event, listener) => process.on('message', listener),
  };
};
const port: PoolPort | undefined = parentPort ?? processPort();
if (!port) throw new Error('worker.ts runs only as a worker thread or a forked process');

/** Live isolates per worker; each holds a Yjs copy and its documents (a few MiB). */
const MAX_SANDBOXES = 32;

let init: WorkerInit | undefined;
let guest: GuestScript | undefined;
const codes = new Map<string, string>();
/** version → its sandbox (Map order: least recently used first). */
const sandboxes = new Map<string, Promise<Sandbox>>();

const register = (bundles: readonly BundleRef[]): void => {
  for (const { version, code } of bundles) if (code !== undefined) codes.set(version, code);
};

const sandboxFor = async (version: string): Promise<Sandbox> => {
  if (!init || !guest) throw new SandboxError('BAD_REQUEST', 'the worker was not initialised');
  const known = sandboxes.get(version);
  if (known) {
    sandboxes.delete(version);
    sandboxes.set(version, known);
    const sandbox = await known.catch(() => undefined);
    if (sandbox && !sandbox.disposed) return sandbox;
    if (sandboxes.get(version) === known) sandboxes.delete(version);
  }
  const code = codes.get(version);
  if (code === undefined) throw new SandboxError('BAD_REQUEST', `version ${version} is not loaded`);
  const made = createSandbox(guest, code, init, init.loadTimeoutMs);
  sandboxes.set(version, made);
  made.catch(() => {
    // A version that fails to load is not kept (the next use tries a fresh context).
    if (sandboxes.get(version) === made) sandboxes.delete(version);
  });
  for (const [old, entry] of sandboxes) {
    if (sandboxes.size <= MAX_SANDBOXES) break;
    sandboxes.delete(old);
    void entry.then(
      (s) => s.dispose(),
      () => undefined,
    );
  }
  return made;
};

/** ctx.read answers by request ref. */
const reads = new Map<number, { resolve: (s: Uint8Array) => void; reject: (e: Error) => void }>();
let nextRef = 1;

const readFor =
  (task: number, group: number) =>
  (doc: string, call: number): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      const ref = nextRef++;
      reads.set(ref, { resolve, reject });
      port.postMessage({ type: 'read', task, group, call, ref, doc } satisfies ReadRequest);
    });

const handle = async (req: WorkerRequest): Promise<WorkerReply> => {
  const { task } = req;
  switch (req.type) {
    case 'describe': {
      register([req.bundle]);
      const functions: readonly FunctionMeta[] = (await sandboxFor(req.bundle.version)).functions;
      return { task, ok: true, type: 'describe', functions };
    }
    case 'prepare': {
      register(req.bundles);
      const items: Prepared[] = new Array<Prepared>(req.items.length);
      const versions = new Set(req.items.map((i) => i.version));
      for (const version of versions) {
        const indexes = req.items.flatMap((item, i) => (item.version === version ? [i] : []));
        let answers: Prepared[];
        try {
          const sandbox = await sandboxFor(version);
          answers = await sandbox.prepare(
            indexes.map((i) => req.items[i]!),
            req.timeoutMs,
          );
        } catch (err) {
          // A timeout or crash: the pool re-sends each input alone to find the culprit.
          if (
            err instanceof SandboxError &&
            err.code !== 'TIMEOUT' &&
            err.code !== 'FUNCTION_CRASHED'
          )
            answers = indexes.map(() => ({ ok: false, code: err.code, message: err.message }));
          else throw err;
        }
        indexes.forEach((index, i) => (items[index] = answers[i]!));
      }
      return { task, ok: true, type: 'prepare', items };
    }
    case 'invoke': {
      register(req.bundles);
      const drops = new Map<string, string[]>();
      for (const key of req.drop) {
        const [v, name] = splitWarmKey(key);
        drops.set(v, [...(drops.get(v) ?? []), name]);
      }
      // A version the message runs forgets in its first group's entry; others here.
      const running = new Set(req.groups.map((g) => g.calls[0]?.version));
      for (const [v, names] of drops)
        if (!running.has(v))
          sandboxes.get(v)?.then(
            (s) => s.forget(names),
            () => undefined,
          );
      const groups = await invokeGroups(task, req.groups, drops);
      return { task, ok: true, type: 'invoke', groups };
    }
    default:
      return assertNever(req, 'worker request');
  }
};

/**
 * Runs an invoke message's groups: those of one version and time limit in one
 * entry into their sandbox. A group's failure (a throw, its time limit, lost
 * copies) is its answer, not the message's; an entry of several groups that
 * fails as a whole answers ALONE for each, and the pool re-sends them one by one.
 */
const invokeGroups = async (
  task: number,
  groups: readonly InvokeGroup[],
  drops: Map<string, string[]>,
): Promise<GroupReply[]> => {
  const replies = new Array<GroupReply>(groups.length);
  const entries = new Map<string, number[]>();
  groups.forEach((group, index) => {
    const version = group.calls[0]?.version;
    if (version === undefined || group.calls.some((c) => c.version !== version)) {
      replies[index] = {
        ok: false,
        code: 'BAD_REQUEST',
        message: 'a group runs calls of one version',
      };
      return;
    }
    const key = `${group.timeoutMs}\0${version}`;
    entries.set(key, [...(entries.get(key) ?? []), index]);
  });
  for (const indexes of entries.values()) {
    const first = groups[indexes[0]!]!;
    const version = first.calls[0]!.version;
    const drop = drops.get(version) ?? [];
    drops.delete(version);
    /** The groups of the entry running now. */
    let running: number[] = [];
    try {
      const sandbox = await sandboxFor(version);
      sandbox.forget(drop);
      for (const index of indexes) {
        const kept = groups[index]!.docs.filter((d) => !d.reset).map((d) => d.name);
        if (kept.length > 0 && !sandbox.has(kept))
          replies[index] = { ok: false, code: STALE, message: 'the sandbox lost its warm copies' };
        else running.push(index);
      }
      // The sandbox answers the first groups when the rest would not fit its entry's time.
      while (running.length > 0) {
        const entry = running;
        const answers = await sandbox.invoke(
          entry.map((index) => ({ docs: groups[index]!.docs, calls: groups[index]!.calls })),
          [],
          first.timeoutMs,
          (doc, call, group) => readFor(task, entry[group]!)(doc, call),
        );
        answers.forEach((answer, i) => (replies[entry[i]!] = { ok: true, ...answer }));
        running = entry.slice(answers.length);
      }
    } catch (err) {
      if (running.length === 0) running = indexes.filter((index) => !replies[index]);
      const message = err instanceof Error ? err.message : String(err);
      const code = err instanceof SandboxError ? err.code : 'FUNCTION_ERROR';
      for (const index of running)
        replies[index] =
          running.length > 1 ? { ok: false, code: ALONE, message } : { ok: false, code, message };
    }
  }
  return replies;
};

/** Warm documents are keyed `version\0name` (pool.ts): copies live in a version's context. */
const splitWarmKey = (key: string): [string, string] => {
  const cut = key.indexOf('\0');
  return [key.slice(0, cut), key.slice(cut + 1)];
};

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'init') {
    init = msg;
    guest = { code: msg.guest };
    return;
  }
  if (msg.type === 'read') {
    const pending = reads.get(msg.ref);
    reads.delete(msg.ref);
    if (msg.ok) pending?.resolve(msg.state);
    else
      pending?.reject(
        Object.assign(new Error(msg.message), msg.forbidden ? { code: 'FORBIDDEN' } : {}),
      );
    return;
  }
  const req = msg;
  handle(req).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => {
      const known = err instanceof SandboxError;
      port.postMessage({
        task: req.task,
        ok: false,
        code: known ? err.code : 'FUNCTION_ERROR',
        message: err instanceof Error ? err.message : String(err),
      } satisfies WorkerReply);
    },
  );
});

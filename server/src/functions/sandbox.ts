/**
 * One deployment version's sandbox: a V8 isolate of its own (isolated-vm) with
 * one context, in which the guest script (Yjs + guest/guest.ts) and then the
 * deployed bundle are evaluated. No Node built-ins exist in there: no `process`,
 * `require`, file system, network, timers or message ports. The only way out is
 * the `read` callback, which asks the node for a copy of a document it then
 * authorizes (ctx.read).
 *
 * Limits: the isolate's heap (`memoryMb`; past it V8 disposes the isolate), a
 * deadline per entry (past it the isolate is disposed, which stops any code in
 * it, a loop or an endless chain of promise callbacks alike), and the result's
 * size. A disposed sandbox is dropped by the worker and rebuilt from the code on
 * next use, so what a failed call left behind in it cannot reach the next one.
 *
 * Everything the guest returns is checked here: code in the context can replace
 * the guest's helpers (it shares their globals), so its answers are untrusted.
 */
import ivm from 'isolated-vm';
import type {
  WorkerCall,
  DocState,
  FunctionMeta,
  GuestInvokeReply,
  Prepared,
  PrepareItem,
  WorkerFailureCode,
} from './worker-protocol.js';

export interface SandboxLimits {
  /** Heap of the isolate in MiB (isolated-vm's minimum is 8). */
  readonly memoryMb: number;
  /** Largest result of one call, in UTF-8 bytes. */
  readonly maxResultBytes: number;
}

/** The guest script, with V8's code cache once one isolate compiled it (saves parsing in the next). */
export interface GuestScript {
  readonly code: string;
  cachedData?: ivm.ExternalCopy<ArrayBuffer>;
}

/** Answers `ctx.read(doc)` for the call at `index` of group `group` of the running entry. */
export type HostRead = (doc: string, index: number, group: number) => Promise<Uint8Array>;

/** A batch on some documents: its calls run in order on them (the first is `ctx.doc`). */
export interface SandboxGroup {
  readonly docs: readonly DocState[];
  readonly calls: readonly WorkerCall[];
}

/** A failure of the sandbox itself or of the code in it, with the code the node reports. */
export class SandboxError extends Error {
  constructor(
    readonly code: WorkerFailureCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Sandbox {
  readonly functions: readonly FunctionMeta[];
  prepare(items: readonly PrepareItem[], timeoutMs: number): Promise<Prepared[]>;
  /** True when the context holds a copy of every one of these documents. */
  has(names: readonly string[]): boolean;
  /** Drops the context's copies of these documents. */
  forget(names: readonly string[]): void;
  /**
   * Runs groups (no two share a document) in one entry into the isolate, under
   * `timeoutMs` for all of them; each group's answer is checked on its own. Past
   * half of `timeoutMs` the guest starts no further group: the answer covers the
   * first groups (at least one), and the caller runs the rest in another entry. A
   * timeout, crash or malformed answer fails the entry as a whole.
   */
  invoke(
    groups: readonly SandboxGroup[],
    drop: readonly string[],
    timeoutMs: number,
    read: HostRead,
  ): Promise<GuestInvokeReply[]>;
  readonly disposed: boolean;
  dispose(): void;
}

const FAILURE_CODES: ReadonlySet<string> = new Set<WorkerFailureCode>([
  'INVALID_INPUT',
  'FUNCTION_ERROR',
  'BAD_REQUEST',
  'FORBIDDEN',
  'TIMEOUT',
  'FUNCTION_CRASHED',
  'OUTPUT_TOO_LARGE',
]);

/**
 * isolated-vm gives every entry with a timeout a timer whose thread wakes at that
 * deadline, whether the entry ended long before or not: a thread wake-up (two
 * context switches on a node's core) per entry. Deadlines rounded up to a shared
 * tick fall within a millisecond of each other, and one wake-up serves them all
 * (an entry may run up to a tick past its limit).
 */
const DEADLINE_TICK_MS = 20;
const entryTimeout = (ms: number): number => {
  const now = Date.now();
  return Math.ceil((now + ms) / DEADLINE_TICK_MS) * DEADLINE_TICK_MS - now;
};

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const malformed = (): SandboxError =>
  new SandboxError('FUNCTION_ERROR', 'the sandbox returned a malformed answer');

export const createSandbox = async (
  guest: GuestScript,
  code: string,
  limits: SandboxLimits,
  loadTimeoutMs: number,
): Promise<Sandbox> => {
  const isolate = new ivm.Isolate({ memoryLimit: Math.max(8, limits.memoryMb) });
  /** Why we disposed the isolate, when we did: tells a timeout from running out of memory. */
  let disposedFor: 'timeout' | 'closed' | undefined;
  let reading: HostRead | undefined;
  let deadline = 0;

  const dispose = (why: 'timeout' | 'closed'): void => {
    if (isolate.isDisposed) return;
    disposedFor ??= why;
    isolate.dispose();
  };

  /** Maps what an entry into the isolate threw; any failure but the code's own throw ends the sandbox. */
  const failure = (err: unknown, timeoutMs: number): SandboxError => {
    if (err instanceof SandboxError) return err;
    const message = messageOf(err);
    if (disposedFor === 'timeout' || /timed out/i.test(message)) {
      dispose('timeout');
      return new SandboxError('TIMEOUT', `the function ran longer than ${timeoutMs} ms`);
    }
    if (isolate.isDisposed)
      return new SandboxError(
        'FUNCTION_CRASHED',
        `the function ran out of memory (${limits.memoryMb} MiB)`,
      );
    // A value that cannot be copied out, for example: the context may be half-way through something.
    dispose('closed');
    return new SandboxError('FUNCTION_ERROR', message);
  };

  /** Disposes the isolate at the deadline of the entry running now, once armed. */
  let timer: NodeJS.Timeout | undefined;
  /**
   * Arms the deadline's timer for an asynchronous entry (code running on after
   * isolated-vm's timeout stopped counting: promise callbacks). A synchronous entry
   * needs none: isolated-vm's timeout covers it, microtasks included, and this
   * thread runs nothing else meanwhile.
   */
  const armDeadline = (): void => {
    timer ??= setTimeout(() => dispose('timeout'), remaining());
  };

  /** Runs `enter` under a deadline: past it the isolate is disposed, whatever runs in it. */
  const within = async <T>(timeoutMs: number, enter: () => Promise<T>): Promise<T> => {
    if (isolate.isDisposed) throw new SandboxError('FUNCTION_CRASHED', 'the sandbox was disposed');
    deadline = Date.now() + timeoutMs;
    try {
      return await enter();
    } catch (err) {
      throw failure(err, timeoutMs);
    } finally {
      clearTimeout(timer);
      timer = undefined;
      reading = undefined;
    }
  };
  const remaining = (): number => Math.max(1, deadline - Date.now());

  const context = await isolate.createContext();
  const global = context.global;
  /** Set once the guest script ran; a read cannot arrive before (no deployed code ran yet). */
  const guestRefs: { deliver?: ivm.Reference<unknown> } = {};
  const onRead = (ref: unknown, index: unknown, doc: unknown, group: unknown): void => {
    if (
      typeof ref !== 'number' ||
      typeof index !== 'number' ||
      typeof doc !== 'string' ||
      typeof group !== 'number'
    )
      return;
    const answer = (args: unknown[]): void => {
      const deliver = guestRefs.deliver;
      if (isolate.isDisposed || !deliver) return;
      deliver
        .apply(undefined, args, { arguments: { copy: true }, timeout: remaining() })
        .catch(() => dispose('timeout')); // code that ran on in the delivery past the deadline
    };
    const read = reading;
    if (!read) return answer([ref, false, null, 'ctx.read is not available here', false]);
    read(doc, index, group).then(
      (state) => answer([ref, true, state, '', false]),
      (err: unknown) =>
        answer([
          ref,
          false,
          null,
          messageOf(err),
          typeof err === 'object' &&
            err !== null &&
            (err as { code?: unknown }).code === 'FORBIDDEN',
        ]),
    );
  };
  await global.set('__swHostRead', new ivm.Callback(onRead, { ignored: true }));

  // isolated-vm sets `cachedData` on the script when asked to produce it (not in its types).
  const script: ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer> } =
    await isolate.compileScript(guest.code, {
      filename: 'stateweave-guest.js',
      ...(guest.cachedData ? { cachedData: guest.cachedData } : { produceCachedData: true }),
    });
  if (!guest.cachedData && script.cachedData) guest.cachedData = script.cachedData;
  await script.run(context, { timeout: loadTimeoutMs });
  const take = async (name: string): Promise<ivm.Reference<unknown>> => {
    const ref = (await global.get(name, { reference: true })) as ivm.Reference<unknown>;
    await global.delete(name);
    return ref;
  };
  const load = await take('__swLoad');
  const prepare = await take('__swPrepare');
  const startInvoke = await take('__swStart');
  const takeInvoke = await take('__swTake');
  const waitInvoke = await take('__swWait');
  /** The documents the context holds a copy of, mirrored here (the guest keeps them the same way). */
  const held = new Set<string>();
  const forget = await take('__swForget');
  guestRefs.deliver = await take('__swDeliver');

  const loaded: unknown = await within(loadTimeoutMs, () => {
    armDeadline();
    return load.apply(undefined, [code], { arguments: { copy: true }, result: { copy: true } });
  });
  const answer = loaded as { ok?: unknown; functions?: unknown; message?: unknown };
  if (answer.ok !== true || !Array.isArray(answer.functions)) {
    dispose('closed');
    throw new SandboxError(
      'BAD_REQUEST',
      typeof answer.message === 'string' ? answer.message : 'the bundle fails to load',
    );
  }
  const functions = answer.functions as FunctionMeta[];

  return {
    functions,
    get disposed() {
      return isolate.isDisposed;
    },
    dispose: () => dispose('closed'),

    // Synchronous entry: naming documents never awaits, and it saves a thread hop per batch.
    prepare: (items, timeoutMs) =>
      within(timeoutMs, async () => {
        const reply: unknown = prepare.applySync(undefined, [items], {
          arguments: { copy: true },
          result: { copy: true },
          timeout: entryTimeout(timeoutMs),
        });
        if (!Array.isArray(reply) || reply.length !== items.length) throw malformed();
        return reply.map((item: Prepared): Prepared => {
          if (item.ok === true && Array.isArray(item.docs)) return item;
          if (item.ok === false && FAILURE_CODES.has(item.code))
            return { ok: false, code: item.code, message: String(item.message) };
          throw malformed();
        });
      }),

    has: (names) => !isolate.isDisposed && names.every((name) => held.has(name)),

    forget: (names) => {
      for (const name of names) held.delete(name);
      if (isolate.isDisposed || names.length === 0) return;
      try {
        forget.applySync(undefined, [names], {
          arguments: { copy: true },
          timeout: entryTimeout(100),
        });
      } catch {
        dispose('closed'); // code in the context made forgetting fail: start it afresh
      }
    },

    invoke: (groups, drop, timeoutMs, read) =>
      within(timeoutMs, async () => {
        reading = read;
        for (const name of drop) held.delete(name);
        const before = groups.map(({ docs }) => docs.filter(({ name }) => held.has(name)));
        // Until the answer says otherwise, assume the guest dropped these copies (it does on failure).
        for (const { docs } of groups) for (const { name } of docs) held.delete(name);
        const budgetMs = timeoutMs / 2;
        // A synchronous entry in this thread: when every handler returns a plain value
        // it answers at once, which saves a hop to isolated-vm's thread pool and back
        // per message. A handler that awaits (ctx.read: answered on this thread's event
        // loop) leaves the invocation pending: taken once isolated-vm ran the microtasks
        // at the end of the entry, else waited for.
        let replies: unknown = startInvoke.applySync(
          undefined,
          [groups, drop, limits.maxResultBytes, budgetMs],
          { arguments: { copy: true }, result: { copy: true }, timeout: entryTimeout(timeoutMs) },
        );
        if (replies === undefined)
          replies = takeInvoke.applySync(undefined, [], {
            result: { copy: true },
            timeout: entryTimeout(remaining()),
          });
        if (replies === undefined) {
          armDeadline();
          replies = await waitInvoke.apply(undefined, [], {
            result: { copy: true, promise: true },
            timeout: remaining(),
          });
        }
        if (!Array.isArray(replies) || replies.length === 0 || replies.length > groups.length)
          throw malformed();
        // Groups the guest did not start (past the budget) keep the copies they had.
        for (const docs of before.slice(replies.length))
          for (const { name } of docs) held.add(name);
        return replies.map((reply, i) => {
          const { docs, calls } = groups[i]!;
          const checked = checkInvokeReply(
            reply as GuestInvokeReply,
            docs.length,
            calls.length,
            limits.maxResultBytes,
          );
          if (checked.stateVectors) for (const { name } of docs) held.add(name);
          return checked;
        });
      }),
  };
};

/** The guest's invoke answer, checked: shapes, counts, and each result's size in bytes. */
const checkInvokeReply = (
  reply: GuestInvokeReply,
  docs: number,
  calls: number,
  maxResultBytes: number,
): GuestInvokeReply => {
  const { results, updates, stateVectors, failure } = reply ?? {};
  if (
    !Array.isArray(results) ||
    results.length > calls ||
    !results.every((r) => typeof r === 'string') ||
    !Array.isArray(updates) ||
    updates.length !== docs ||
    !updates.every((u) => u === null || isBytes(u)) ||
    (stateVectors !== null &&
      (!Array.isArray(stateVectors) ||
        stateVectors.length !== docs ||
        !stateVectors.every(isBytes))) ||
    (failure !== undefined && !FAILURE_CODES.has(failure.code)) ||
    (failure === undefined && results.length !== calls)
  )
    throw malformed();
  // The guest checks characters (a lower bound of bytes) per call; a multi-byte
  // result that passes it fails here with its whole batch, all of one function.
  if (results.some((r) => Buffer.byteLength(r) > maxResultBytes))
    throw new SandboxError('OUTPUT_TOO_LARGE', `a result is larger than ${maxResultBytes} bytes`);
  return reply;
};

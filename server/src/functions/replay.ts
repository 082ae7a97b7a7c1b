/**
 * Runs a function's code on a given (past) state of its document, without
 * writing anything: the time travel of `stateweave backtest`. Each bundle gets
 * its own sandbox (sandbox.ts, a V8 isolate); the document is handed in whole
 * (`reset`), and what the handler would have written comes back as an update
 * to inspect, never applied. Runs where it is created (the CLI process): a
 * node's own calls go through the worker pool instead.
 */
import { createHash } from 'node:crypto';
import {
  createSandbox,
  SandboxError,
  type GuestScript,
  type HostRead,
  type Sandbox,
} from './sandbox.js';
import { guestScript } from './guest-script.js';
import type { FunctionMeta } from './worker-protocol.js';

export interface ReplayLimits {
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly maxResultBytes: number;
}

export interface ReplayOutcome {
  /** The handler's result as JSON text, when it returned. */
  readonly result?: string;
  readonly error?: { readonly code: string; readonly message: string };
  /** What it would have written (a mutation), as one Yjs update; null when nothing. */
  readonly update: Uint8Array | null;
}

export interface ReplayRun {
  readonly name: string;
  readonly input: unknown;
  /** The name `doc(input)` must give; any when absent. */
  readonly doc?: string;
  /** The document's state (a Yjs update), or where to get it once `doc(input)` named it. */
  readonly state: Uint8Array | ((doc: string) => Promise<Uint8Array>);
  /** `ctx.read(other)` at the same moment. */
  readonly read?: (doc: string) => Promise<Uint8Array>;
  /** The caller the handler sees in `ctx.auth`. */
  readonly subject?: string;
  /** `ctx.now()`. */
  readonly now: number;
}

export interface Replayer {
  /** The functions a bundle defines (loads its sandbox). */
  describe(code: string): Promise<readonly FunctionMeta[]>;
  run(code: string, run: ReplayRun): Promise<ReplayOutcome>;
  close(): void;
}

const versionOf = (code: string): string =>
  createHash('sha256').update(code).digest('hex').slice(0, 12);

export const createReplayer = (limits: ReplayLimits): Replayer => {
  let guest: GuestScript | undefined;
  const sandboxes = new Map<string, Promise<Sandbox>>();

  const sandboxFor = async (code: string): Promise<Sandbox> => {
    const version = versionOf(code);
    const known = await sandboxes.get(version)?.catch(() => undefined);
    if (known && !known.disposed) return known;
    guest ??= { code: await guestScript() };
    const made = createSandbox(guest, code, limits, limits.timeoutMs);
    sandboxes.set(version, made);
    return made;
  };

  const failed = (err: unknown): ReplayOutcome => ({
    error: {
      // A sandbox failure's code, or the node's (FORBIDDEN, NOT_FOUND) from a state it could not give.
      code:
        typeof (err as { code?: unknown }).code === 'string'
          ? (err as { code: string }).code
          : 'FUNCTION_ERROR',
      message: err instanceof Error ? err.message : String(err),
    },
    update: null,
  });

  return {
    async describe(code) {
      return (await sandboxFor(code)).functions;
    },

    async run(code, run) {
      const sandbox = await sandboxFor(code);
      const meta = sandbox.functions.find((f) => f.name === run.name);
      if (!meta)
        return failed(new SandboxError('BAD_REQUEST', `the code defines no function ${run.name}`));
      const version = versionOf(code);
      try {
        const [prepared] = await sandbox.prepare(
          [{ version, name: run.name, input: run.input }],
          limits.timeoutMs,
        );
        if (!prepared) return failed(new Error('no answer to prepare'));
        if (!prepared.ok)
          return { error: { code: prepared.code, message: prepared.message }, update: null };
        const doc = prepared.docs[0];
        if (doc === undefined || (run.doc !== undefined && doc !== run.doc))
          return failed(
            new SandboxError(
              'INVALID_INPUT',
              `the input names document ${JSON.stringify(doc)}, not ${JSON.stringify(run.doc)}`,
            ),
          );
        const read: HostRead = (doc) =>
          run.read ? run.read(doc) : Promise.reject(new Error('ctx.read is not available here'));
        const state = typeof run.state === 'function' ? await run.state(doc) : run.state;
        const [reply] = await sandbox.invoke(
          [
            {
              docs: [{ name: doc, reset: true, diff: state }],
              calls: [
                {
                  version,
                  name: run.name,
                  input: prepared.input,
                  auth: { subject: run.subject ?? 'backtest', rights: ['read'] },
                  id: `backtest:${run.now}`,
                  now: run.now,
                  kind: meta.kind,
                },
              ],
            },
          ],
          [],
          limits.timeoutMs,
          read,
        );
        // The next run starts from its own state, not from what this one left in the context.
        sandbox.forget([doc]);
        if (!reply) throw new Error('the sandbox returned no answer');
        if (reply.failure) return { error: reply.failure, update: null };
        return { result: reply.results[0] ?? 'null', update: reply.updates[0] ?? null };
      } catch (err) {
        return failed(err);
      }
    },

    close() {
      for (const made of sandboxes.values())
        void made.then(
          (s) => s.dispose(),
          () => undefined,
        );
      sandboxes.clear();
    },
  };
};

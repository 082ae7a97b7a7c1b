/**
 * `prepare` (validate an input, name its documents) in the node's own thread: one
 * sandbox per deployment version (sandbox.ts: a V8 isolate of its own, the same
 * boundary as in a worker), entered synchronously. In a worker a prepare cost a
 * message each way, two structured clones and two thread switches: about half of
 * a call's worker messages, and 56–76 µs of CPU where this takes 12–13 µs (issue
 * 18, docs/functions.md). Here it is one copy in and one out of the isolate.
 *
 * Bounded, because this thread serves everything else: an entry has LOCAL_LIMIT_MS
 * (isolated-vm stops the code past it, and the sandbox is dropped). A version whose
 * prepare timed out, ran out of memory or answered malformed here goes to the
 * workers, which run it under its own time limit and report its failure as before:
 * for FIRST_OFF_MS, doubled at each failure in a row up to OFF_MS (a first entry
 * into a cold isolate on a busy machine may pass the limit once; code that loops in
 * `doc()` or `input.parse` keeps failing and ends up stalling this thread for
 * LOCAL_LIMIT_MS once per version and OFF_MS). Until a version's sandbox is built
 * (it starts at deploy), its prepares go to the workers too.
 */
import { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Bundle } from './bundle-refs.js';
import type { PreparedInput } from './prepare-batches.js';
import { createSandbox, SandboxError, type GuestScript, type Sandbox } from './sandbox.js';
import { LOAD_TIMEOUT_MS } from './worker-thread.js';

export interface LocalPreparesOptions {
  /** The guest script every sandbox evaluates (guest-script.ts). */
  readonly guest: Promise<string>;
  /** Heap limit of one sandbox in MiB. */
  readonly memoryMb: number;
  readonly logger: Logger;
  /** Longest one prepare may hold this thread. @default LOCAL_LIMIT_MS */
  readonly limitMs?: number;
  /** Longest a version that failed here is prepared in the workers instead. @default OFF_MS */
  readonly offMs?: number;
  readonly now?: () => number;
}

export interface LocalPrepares {
  /**
   * The prepared input, or undefined when this thread does not prepare it now (the
   * version's sandbox is not built yet, or it failed here lately): ask a worker.
   * Throws the input's refusal (INVALID_INPUT, BAD_REQUEST…) as a worker would.
   */
  prepare(
    bundle: Bundle,
    name: string,
    input: unknown,
    timeoutMs: number,
  ): PreparedInput | undefined;
  /** Starts building the version's sandbox (at deploy), unless it is built or off. */
  warm(bundle: Bundle): void;
  /** Disposes every sandbox; later prepares go to the workers (which refuse them). */
  close(): void;
}

/** A prepare this long is not for the node's own thread: the workers take the version. */
export const LOCAL_LIMIT_MS = 20;
export const OFF_MS = 30_000;
/** The first time off; each failure in a row doubles it, up to OFF_MS. */
export const FIRST_OFF_MS = 1000;
/** Sandboxes kept here (least recently used go first), as a worker keeps. */
const MAX_SANDBOXES = 32;

type Entry =
  | { readonly state: 'building' }
  | { readonly state: 'ready'; readonly sandbox: Sandbox }
  | { readonly state: 'off'; readonly until: number };

export const createLocalPrepares = (options: LocalPreparesOptions): LocalPrepares => {
  const limitMs = options.limitMs ?? LOCAL_LIMIT_MS;
  const offMs = options.offMs ?? OFF_MS;
  const now = options.now ?? Date.now;
  /** version → its sandbox here (Map order: least recently used first). */
  const entries = new Map<string, Entry>();
  /** version → its failures here in a row (each within OFF_MS of the one before) and the last one's time. */
  const strikes = new Map<string, { count: number; at: number }>();
  let guest: GuestScript | undefined;
  let closed = false;

  const turnOff = (version: string, why: string): void => {
    const entry = entries.get(version);
    if (entry?.state === 'ready') entry.sandbox.dispose();
    const last = strikes.get(version);
    const count = last && now() - last.at < offMs ? last.count + 1 : 1;
    strikes.set(version, { count, at: now() });
    const forMs = Math.min(offMs, FIRST_OFF_MS * 2 ** (count - 1));
    entries.set(version, { state: 'off', until: now() + forMs });
    options.logger.warn({ version, why, forMs }, 'prepares of this version go to the workers');
  };

  const build = async (bundle: Bundle): Promise<void> => {
    guest ??= { code: await options.guest };
    const sandbox = await createSandbox(
      guest,
      bundle.code,
      { memoryMb: options.memoryMb, maxResultBytes: 0 },
      LOAD_TIMEOUT_MS,
    );
    if (closed || entries.get(bundle.version)?.state !== 'building') return sandbox.dispose();
    entries.set(bundle.version, { state: 'ready', sandbox });
    for (const [version, entry] of entries) {
      if (entries.size <= MAX_SANDBOXES) break;
      if (entry.state === 'ready') entry.sandbox.dispose();
      entries.delete(version);
      strikes.delete(version);
    }
  };

  const warm = (bundle: Bundle): void => {
    const entry = entries.get(bundle.version);
    if (closed || entry?.state === 'building' || entry?.state === 'ready') return;
    if (entry?.state === 'off' && entry.until > now()) return;
    entries.set(bundle.version, { state: 'building' });
    // A bundle that fails to load here fails in the workers too, with its message.
    build(bundle).catch((err: unknown) =>
      turnOff(bundle.version, err instanceof Error ? err.message : String(err)),
    );
  };

  return {
    prepare(bundle, name, input, timeoutMs) {
      const entry = entries.get(bundle.version);
      if (entry?.state !== 'ready') {
        warm(bundle);
        return undefined;
      }
      // Most recently used last.
      entries.delete(bundle.version);
      entries.set(bundle.version, entry);
      let item;
      try {
        [item] = entry.sandbox.prepareNow(
          [{ version: bundle.version, name, input }],
          Math.min(timeoutMs, limitMs),
        );
      } catch (err) {
        // Timed out, out of memory, malformed: the workers decide, under the full limit.
        turnOff(bundle.version, err instanceof SandboxError ? err.code : String(err));
        return undefined;
      }
      if (!item) return undefined;
      if (!item.ok) throw new StateweaveError(item.code, item.message);
      return { input: item.input, docs: item.docs };
    },
    warm,
    close() {
      closed = true;
      for (const entry of entries.values()) if (entry.state === 'ready') entry.sandbox.dispose();
      entries.clear();
      strikes.clear();
    },
  };
};

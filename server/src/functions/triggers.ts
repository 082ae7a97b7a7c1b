/**
 * Change triggers (`on: 'sensors/*'`). After a change of a matching document, the
 * trigger runs once for everything the document gained since its cursor: the state
 * vector of the last run's view, stored together with that run's output in one
 * batch. So a trigger
 * - sees every change at least once, in order per document (runs of one document
 *   go through the document's queue, and each run covers all changes since the last);
 * - resumes after a crash or restart from its stored cursor (`resume` re-checks
 *   every stored matching document at deployment);
 * - is never re-triggered by its own writes (their origin names it, and its cursor
 *   already contains them).
 * Runs for one (trigger, document) coalesce: while one is queued, more changes
 * simply join it. Limit: a change that only deletes does not advance a state
 * vector, so after a restart it is seen with the next insertion, not on its own.
 */
import type { DocName } from '../doc-name.js';
import * as Y from 'yjs';
import { matchesDoc } from '../auth/grant.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { Origin } from '../origin.js';
import type { Store } from '../storage/store.js';
import type { DocQueue } from './doc-queue.js';
import type { WorkerPool } from './pool.js';
import type { DeployedFunction } from './registry.js';

export interface TriggerOptions {
  readonly hub: Hub;
  readonly store: Store;
  readonly queue: DocQueue;
  readonly pool: () => WorkerPool;
  readonly logger: Logger;
  readonly defaultTimeoutMs: number;
}

export interface Triggers {
  /** Makes these the current triggers (those with `on`). */
  set(functions: readonly DeployedFunction[]): void;
  /** A document changed (any origin but storage). */
  notify(doc: DocName, origin: Origin | undefined): void;
  /** Runs every trigger over every stored matching document whose state passed its cursor. */
  resume(): Promise<void>;
  /** Resolves when no trigger run is queued or running (for tests and shutdown). */
  idle(): Promise<void>;
  close(): void;
}

const RETRY_MS = 1000;
export const cursorKey = (name: string, doc: DocName): string => `trig\0${name}\0${doc}`;

/** true when `cursor` has seen every client's clock of `current`. */
const covers = (cursor: Uint8Array, current: Uint8Array): boolean => {
  const seen = Y.decodeStateVector(cursor);
  for (const [client, clock] of Y.decodeStateVector(current))
    if ((seen.get(client) ?? 0) < clock) return false;
  return true;
};

export const createTriggers = (options: TriggerOptions): Triggers => {
  const { hub, store, queue, logger } = options;
  let triggers: DeployedFunction[] = [];
  /** (trigger, document) pairs with a run queued but not started: later changes join it. */
  const queued = new Set<string>();
  /** Every run not yet finished, for idle(). */
  const active = new Set<Promise<void>>();
  let closed = false;

  const runOnce = async (fn: DeployedFunction, doc: DocName): Promise<void> => {
    const key = cursorKey(fn.name, doc);
    const lease = await hub.open(doc);
    try {
      const { room } = lease;
      const cursor = await store.getRecord(key);
      if (cursor && covers(cursor, Y.encodeStateVector(room.doc))) return;
      const changes = room.diffSince(cursor);
      const now = Date.now();
      const outcome = await options.pool().invoke(
        { name: doc, diffSince: (sv) => room.diffSince(sv) },
        {
          bundle: fn.bundle,
          name: fn.name,
          input: { doc, changes },
          auth: { subject: `trigger:${fn.name}`, rights: [] },
          id: `${fn.name}:${doc}:${now}`,
          now,
          kind: 'mutation',
        },
        fn.timeoutMs ?? options.defaultTimeoutMs,
      );
      try {
        await room.applyGated(outcome.update, { kind: 'function', name: fn.name }, [
          { key, value: outcome.stateVector },
        ]);
      } catch (err) {
        outcome.settle(false);
        throw err;
      }
      outcome.settle(true);
    } finally {
      lease.release();
    }
  };

  const schedule = (fn: DeployedFunction, doc: DocName): void => {
    const id = `${fn.name}\0${doc}`;
    if (closed || queued.has(id)) return; // the queued run will see this change too
    queued.add(id);
    const run: Promise<void> = queue
      .run(doc, () => {
        queued.delete(id); // from here on, a new change needs a new run
        return runOnce(fn, doc);
      })
      .catch((err: unknown) => {
        queued.delete(id);
        logger.warn({ trigger: fn.name, doc, err }, 'trigger run failed; retrying from its cursor');
        // At least once: the cursor did not move, so the retry sees the same changes.
        if (!closed) setTimeout(() => schedule(fn, doc), RETRY_MS).unref();
      })
      .finally(() => active.delete(run));
    active.add(run);
  };

  return {
    set(functions) {
      // With `onStable` the trigger runs per stable window instead (stable-windows.ts).
      triggers = functions.filter((fn) => fn.on !== undefined && fn.stableWindowMs === undefined);
    },
    notify(doc, origin) {
      for (const fn of triggers) {
        if (origin?.kind === 'function' && origin.name === fn.name) continue;
        if (matchesDoc(fn.on!, doc)) schedule(fn, doc);
      }
    },
    async resume() {
      if (triggers.length === 0) return;
      for await (const doc of store.list()) {
        for (const fn of triggers) if (matchesDoc(fn.on!, doc)) schedule(fn, doc);
      }
    },
    async idle() {
      while (active.size > 0) await Promise.all([...active]);
    },
    close() {
      closed = true;
    },
  };
};

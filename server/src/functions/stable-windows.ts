/**
 * `onStable` windows (define.ts): a change trigger whose function runs once per
 * time window of a document, when every home of the document has what was
 * written in it (stable-window.ts says when that is).
 *
 * - A (function, document) pair is tracked from its first change seen here
 *   (any origin but the function itself), starting one window before that
 *   change's (the change may have been written there). Windows fire in order, each one once,
 *   up to the window of the latest change this node has seen (a change reaches
 *   this node after it was written, so no window with a write is left out);
 *   then the pair goes quiet until the next change.
 * - Only the document's primary fires (HomeVectors.isPrimary). It asks every
 *   home's state vector (rate-limited rounds, cluster/home-vectors.ts); a home
 *   that does not answer holds the window back.
 * - The run's input is `{ doc, start, end }`, its `now()` is `end` and its id
 *   (so its `random()`) is made of the function, document and window: a home
 *   that computes the same window computes the same output.
 * - Exactly once per node across restarts: the window's end and frontier are
 *   stored with the run's write in one batch (the cursor). After a restart the
 *   pair resumes from its cursor, at most `maxBacklog` windows back (older
 *   ones are skipped and counted). A run that fails `maxAttempts` times is
 *   skipped (its cursor moves on, counted as failed), so one bad window cannot
 *   hold the rest back.
 * - Across a primary move, no window is skipped and, in the usual case, none
 *   runs twice: the run's update also sets the window's end in the document
 *   itself (the root map STABLE_CURSORS, keyed by function), so the cursor
 *   replicates to every home with the output it belongs to. A node that sees
 *   itself become primary waits `handoverMs` (the old primary notices it is no
 *   longer one); the first run of a pair on a node waits until its replica
 *   holds what every home had in one round (so the old primary's last runs, and
 *   their cursor, are here), and resumes after the newest cursor: its own
 *   record's or the document's. With no cursor
 *   anywhere it starts one window before the first change it saw. A window
 *   runs twice only when the old primary ran it and died before any home had
 *   the run, or when two nodes count themselves primary for longer than
 *   `handoverMs`: at least once, not exactly once (exactly once needs a lease
 *   or quorum, which the mesh has not), hence outputs keyed by window.
 */
import type { DocName } from '../doc-name.js';
import * as Y from 'yjs';
import * as prom from 'prom-client';
import { matchesDoc } from '../auth/grant.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { HomeVectors } from '../node-ports.js';
import type { Origin } from '../origin.js';
import type { Room } from '../hub/room.js';
import type { Store } from '../storage/store.js';
import type { DocQueue } from './doc-queue.js';
import type { WorkerPool } from './pool.js';
import type { DeployedFunction } from './registry.js';
import {
  coversClocks,
  decodeClocks,
  decodeCursor,
  encodeCursor,
  maxClocks,
  stepWindow,
  windowStart,
  type Clocks,
  type OpenWindow,
} from './stable-window.js';

export interface StableWindowsOptions {
  readonly hub: Hub;
  readonly store: Store;
  readonly queue: DocQueue;
  readonly pool: () => WorkerPool;
  readonly homes: HomeVectors;
  readonly logger: Logger;
  readonly defaultTimeoutMs: number;
  readonly metrics?: Metrics;
  /** How often open windows are checked. @default 200 */
  readonly tickMs?: number;
  /** Most windows a pair catches up on after a restart; older ones are skipped. @default 60 */
  readonly maxBacklog?: number;
  /** Runs of one window before it is skipped. @default 3 */
  readonly maxAttempts?: number;
  /**
   * How long a node that becomes a document's primary waits before it fires
   * (the old primary's view of the move may be a little behind). A node alone
   * needs none. @default 2000
   */
  readonly handoverMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface StableWindows {
  set(functions: readonly DeployedFunction[]): void;
  /** A document changed (any origin but storage). */
  notify(doc: DocName, origin: Origin | undefined): void;
  /** Tracks every stored matching document that changed past its stored cursor (after a restart). */
  resume(): Promise<void>;
  /** Resolves when no check or run is in progress (tests, shutdown). */
  idle(): Promise<void>;
  close(): void;
}

export const stableCursorKey = (name: string, doc: DocName): string => `stab\0${name}\0${doc}`;

/** The document's root map of fired windows: function name → end of its last window run. */
export const STABLE_CURSORS = 'stateweave:onStable';

/** The end of `name`'s last window as the document itself holds it (any home's run). */
const docCursorOf = (doc: Y.Doc, name: string): number | undefined => {
  if (!doc.share.has(STABLE_CURSORS)) return undefined;
  const end: unknown = doc.getMap(STABLE_CURSORS).get(name);
  return typeof end === 'number' && Number.isFinite(end) ? end : undefined;
};

interface Pair {
  readonly name: string;
  readonly doc: DocName;
  /** Local time of the first change seen since the pair was tracked (not the function's own). */
  readonly firstChangeAt: number;
  /** Local time of the latest change seen (not the function's own). */
  lastChangeAt: number;
  /** Since when this node has been the document's primary (undefined while it is not). */
  primarySince: number | undefined;
  /** This node saw another node be the primary while it tracked the pair: a handover to wait for. */
  sawOtherPrimary: boolean;
  /** The next run is the pair's first here: it must hold what every home had in its round. */
  handedOver: boolean;
  /** The oldest window not fired; undefined until the cursor is read. */
  open: OpenWindow | undefined;
  attempts: number;
  busy: boolean;
}

export const createStableWindows = (options: StableWindowsOptions): StableWindows => {
  const { hub, store, queue, homes, logger } = options;
  const now = options.now ?? Date.now;
  const maxBacklog = options.maxBacklog ?? 60;
  const maxAttempts = options.maxAttempts ?? 3;
  const handoverMs = options.handoverMs ?? 2000;
  const registers = options.metrics ? [options.metrics.registry] : [];
  const windowsTotal = new prom.Counter({
    name: 'stateweave_stable_windows_total',
    help: 'onStable windows by function and outcome (fired, failed, skipped after a long stop)',
    labelNames: ['function', 'outcome'],
    registers,
  });
  const delaySeconds = new prom.Histogram({
    name: 'stateweave_stable_window_delay_seconds',
    help: 'From a window end to its onStable run being stored (includes waiting for lagging homes)',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  let functions = new Map<string, DeployedFunction>();
  const pairs = new Map<string, Pair>();
  const active = new Set<Promise<void>>();
  let closed = false;

  const windowMsOf = (name: string): number | undefined => functions.get(name)?.stableWindowMs;

  /** The end of the last window run as this node's record and as the document hold it. */
  const cursorsOf = async (pair: Pair, room?: Room) => {
    const bytes = await store.getRecord(stableCursorKey(pair.name, pair.doc));
    const stored = bytes ? decodeCursor(bytes)?.end : undefined;
    const inDoc = room
      ? docCursorOf(room.doc, pair.name)
      : await hub.withRoom(pair.doc, (r) => docCursorOf(r.doc, pair.name));
    return { stored, inDoc };
  };

  /** The end of the last window run: this node's record or the document's cursor, the newer. */
  const firedUpTo = async (pair: Pair, room?: Room): Promise<number | undefined> => {
    const { stored, inDoc } = await cursorsOf(pair, room);
    return stored === undefined ? inDoc : inDoc === undefined ? stored : Math.max(stored, inDoc);
  };

  /** Another node ran windows of the pair after this one last did (the document's cursor is ahead). */
  const anotherRan = async (pair: Pair): Promise<boolean> => {
    const { stored, inDoc } = await cursorsOf(pair);
    return inDoc !== undefined && (stored === undefined || inDoc > stored);
  };

  /** The first open window: after the newest cursor (bounded back), or the first change's. */
  const openFirst = async (pair: Pair, windowMs: number): Promise<OpenWindow> => {
    const end = await firedUpTo(pair);
    const oldest = windowStart(now(), windowMs) - maxBacklog * windowMs;
    if (end === undefined) {
      // One window early: a write reaches this node after it was made, up to a window late.
      const start = Math.max(windowStart(pair.firstChangeAt, windowMs) - windowMs, oldest);
      return { start, end: start + windowMs, frontier: undefined };
    }
    if (end < oldest) {
      windowsTotal.inc({ function: pair.name, outcome: 'skipped' }, (oldest - end) / windowMs);
      logger.warn(
        { function: pair.name, doc: pair.doc, from: end, to: oldest },
        'onStable windows skipped',
      );
    }
    const start = Math.max(end, oldest);
    return { start, end: start + windowMs, frontier: undefined };
  };

  /** Runs the window's function and stores its write with the cursor; false when it failed. */
  const fire = async (pair: Pair, fn: DeployedFunction, frontier: Clocks, w: OpenWindow) => {
    const key = stableCursorKey(pair.name, pair.doc);
    const lease = await hub.open(pair.doc);
    try {
      const { room } = lease;
      // Fired already: a retry after its write was stored, or another home's run that reached here.
      const done = await firedUpTo(pair, room);
      if (done !== undefined && done >= w.end) return;
      // This node is a home whose vector was in the minimum: it has the frontier.
      if (!coversClocks(decodeClocks(Y.encodeStateVector(room.doc)), frontier))
        throw new Error('the replica lacks part of the window');
      const record = { key, value: encodeCursor({ end: w.end, frontier }) };
      if (pair.attempts >= maxAttempts) {
        await room.applyGated(null, { kind: 'function', name: fn.name }, [record]);
        windowsTotal.inc({ function: fn.name, outcome: 'failed' });
        return;
      }
      const outcome = await options.pool().invoke(
        { name: pair.doc, diffSince: (sv) => room.diffSince(sv) },
        {
          bundle: fn.bundle,
          name: fn.name,
          input: { doc: pair.doc, start: w.start, end: w.end },
          auth: { subject: `stable:${fn.name}`, rights: [] },
          id: `${fn.name}:${pair.doc}:${w.start}`,
          now: w.end,
          kind: 'mutation',
          stamp: { map: STABLE_CURSORS, key: fn.name, value: w.end },
        },
        fn.timeoutMs ?? options.defaultTimeoutMs,
      );
      // The cursor holds the run's own write too, so a restart does not take it for a change.
      const seen = maxClocks([frontier, decodeClocks(outcome.stateVector)]);
      const withOwn = { key, value: encodeCursor({ end: w.end, frontier: seen }) };
      try {
        await room.applyGated(outcome.update, { kind: 'function', name: fn.name }, [withOwn]);
      } catch (err) {
        outcome.settle(false);
        throw err;
      }
      outcome.settle(true);
      windowsTotal.inc({ function: fn.name, outcome: 'fired' });
      delaySeconds.observe(Math.max(0, now() - w.end) / 1000);
    } finally {
      lease.release();
    }
  };

  /** Moves one pair as far as it can now: fires every window that is stable. */
  const advance = async (pair: Pair): Promise<void> => {
    for (let fired = 0; fired <= maxBacklog && !closed; fired++) {
      const fn = functions.get(pair.name);
      const windowMs = fn?.stableWindowMs;
      if (!fn || windowMs === undefined) return void pairs.delete(keyOf(pair.name, pair.doc));
      if (!homes.isPrimary(pair.doc)) {
        // Another node fires; when this one is primary again it starts from the newest cursor.
        pair.primarySince = undefined;
        pair.sawOtherPrimary = true;
        pair.open = undefined;
        return;
      }
      if (pair.primarySince === undefined) {
        pair.primarySince = now();
        pair.handedOver = true;
        pair.sawOtherPrimary ||= await anotherRan(pair);
      }
      // Only a move (seen here, or told by the document's cursor) waits; a fresh pair does not.
      if (pair.sawOtherPrimary && now() - pair.primarySince < handoverMs) return;
      pair.open ??= await openFirst(pair, windowMs);
      const w = pair.open;
      if (w.start > pair.lastChangeAt) {
        // Quiet since this window began: nothing to run until the next change.
        pairs.delete(keyOf(pair.name, pair.doc));
        return;
      }
      if (now() < w.end) return;
      const vectors = await homes.vectors(pair.doc, w.end);
      const step = stepWindow(w, now(), vectors && [...vectors.values()].map(decodeClocks));
      pair.open = step.window;
      if (step.kind === 'wait') return;
      if (pair.handedOver) {
        // The old primary's last runs (and their cursor) first: whatever any home had in this round.
        const all = maxClocks([...vectors!.values()].map(decodeClocks));
        const local = await hub.withRoom(pair.doc, (room) => Y.encodeStateVector(room.doc));
        if (!coversClocks(decodeClocks(local), all)) return;
        pair.handedOver = false;
        // Every home's runs are here now: skip what they ran (no backlog bound: this is not a restart).
        const end = await firedUpTo(pair);
        if (end !== undefined && end > w.start) {
          pair.open = { start: end, end: end + windowMs, frontier: undefined };
          continue;
        }
      }
      try {
        await queue.run(pair.doc, () => fire(pair, fn, step.window.frontier, step.window));
      } catch (err) {
        pair.attempts++;
        logger.warn(
          { function: pair.name, doc: pair.doc, start: w.start, attempts: pair.attempts, err },
          'onStable run failed; retrying',
        );
        return;
      }
      pair.attempts = 0;
      pair.open = { start: w.end, end: w.end + windowMs, frontier: undefined };
    }
  };

  const keyOf = (name: string, doc: DocName): string => `${name}\0${doc}`;

  const track = (name: string, doc: DocName, at: number): void => {
    const key = keyOf(name, doc);
    const pair = pairs.get(key);
    if (pair) pair.lastChangeAt = Math.max(pair.lastChangeAt, at);
    else
      pairs.set(key, {
        name,
        doc,
        firstChangeAt: at,
        lastChangeAt: at,
        primarySince: undefined,
        sawOtherPrimary: false,
        handedOver: false,
        open: undefined,
        attempts: 0,
        busy: false,
      });
  };

  const tick = (): void => {
    if (closed) return;
    for (const pair of pairs.values()) {
      if (pair.busy) continue;
      pair.busy = true;
      const run = advance(pair)
        .catch((err: unknown) =>
          logger.warn({ function: pair.name, doc: pair.doc, err }, 'onStable check failed'),
        )
        .finally(() => {
          pair.busy = false;
          active.delete(run);
        });
      active.add(run);
    }
  };
  const timer = setInterval(tick, options.tickMs ?? 200);
  timer.unref();

  return {
    set(deployed) {
      functions = new Map(
        deployed.filter((fn) => fn.stableWindowMs !== undefined).map((fn) => [fn.name, fn]),
      );
      // A pair keeps its open window only while its size stays the same.
      for (const pair of pairs.values()) {
        const windowMs = windowMsOf(pair.name);
        if (pair.open && pair.open.end - pair.open.start !== windowMs) pair.open = undefined;
      }
    },
    notify(doc, origin) {
      if (closed) return;
      for (const fn of functions.values()) {
        if (origin?.kind === 'function' && origin.name === fn.name) continue;
        if (matchesDoc(fn.on!, doc)) track(fn.name, doc, now());
      }
    },
    async resume() {
      if (functions.size === 0) return;
      for await (const doc of store.list()) {
        for (const fn of functions.values()) {
          if (closed || !matchesDoc(fn.on!, doc)) continue;
          const bytes = await store.getRecord(stableCursorKey(fn.name, doc));
          const cursor = bytes ? decodeCursor(bytes) : undefined;
          if (!cursor) continue; // never fired here: tracked from its next change
          const current = await hub.withRoom(doc, (room) => Y.encodeStateVector(room.doc));
          if (!coversClocks(cursor.frontier, decodeClocks(current))) track(fn.name, doc, now());
        }
      }
    },
    async idle() {
      while (active.size > 0) await Promise.all([...active]);
    },
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
};

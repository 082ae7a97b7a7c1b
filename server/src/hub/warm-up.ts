/**
 * Runs a document's load path a few times before the node serves anyone, so
 * the first clients to open stored documents do not pay for compiling it.
 *
 * V8 compiles a function when it is first called and optimizes it once it is
 * hot. A room's load and a client's first sync call thousands of functions
 * (the store's read, Yjs's decoder and encoder, the room, its state cache and
 * persister, y-protocols' Awareness) that nothing else calls before the first
 * open after a start: on the node's main thread that open took 11–21 ms of CPU
 * (8–14 ms after this) where a warm one takes about 2 (`npm run bench:startup`,
 * 10,000 stored documents, on a loaded machine). Here a small stored document
 * (the first of the document list of at most MAX_WARM_BYTES) is loaded into a
 * scratch room WARM_ROUNDS times and answered as a fresh client's sync step 1
 * would be. The room is never in the hub: no lease, no subscriber, no
 * replication; it is loaded from storage only, so it writes nothing (its
 * compaction threshold is out of reach); its counters are its own, not the
 * node's metrics; it is destroyed at once. The start waits for it at most
 * WARM_BUDGET_MS, so a slow disk delays no start (a round still running then
 * ends on its own and is dropped).
 */
import * as Y from 'yjs';
import { decodeClientMessage, encodeSyncStep1 } from '@stateweave/client/protocol';
import type { DocName } from '../doc-name.js';
import type { Logger } from '../log.js';
import { createMetrics } from '../metrics.js';
import type { Store } from '../storage/store.js';
import { Room } from './room.js';

/** Larger documents are not read for this (their own load is what costs then, not compiling). */
export const MAX_WARM_BYTES = 64 * 1024;
/** Documents of the list looked at for one small enough. */
const CANDIDATES = 16;
/** Loads of the document: a few, so the hottest functions also get past V8's first tier. */
export const WARM_ROUNDS = 8;
/** The longest the start waits for the warm-up. */
export const WARM_BUDGET_MS = 250;

export interface WarmUpOptions {
  readonly store: Store;
  readonly logger: Logger;
  /** @default WARM_ROUNDS */
  readonly rounds?: number;
  /** @default WARM_BUDGET_MS */
  readonly budgetMs?: number;
}

/** The document the warm-up loads: a small stored one, if the list's first page has one. */
const smallDoc = async (store: Store): Promise<DocName | undefined> => {
  const candidates = await store.docs({ limit: CANDIDATES });
  return candidates.find((d) => d.bytes > 0 && d.bytes <= MAX_WARM_BYTES)?.name;
};

/**
 * Resolves with the number of loads that ran within the budget (0 when the store
 * holds no small document). Never rejects: a failure here is left for the real
 * open to report.
 */
export const warmLoadPath = async (options: WarmUpOptions): Promise<number> => {
  const deadline = performance.now() + (options.budgetMs ?? WARM_BUDGET_MS);
  let done = 0;
  let timer: NodeJS.Timeout | undefined;
  const run = loadRounds(options, deadline, () => done++);
  const budget = new Promise<void>((resolve) => {
    // Not unref'd: it is what keeps the start going when a read never returns.
    timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
  });
  await Promise.race([run, budget]);
  clearTimeout(timer);
  return done;
};

/** The rounds, until `deadline`; never rejects. */
const loadRounds = async (
  options: WarmUpOptions,
  deadline: number,
  counted: () => void,
): Promise<void> => {
  const { store, logger } = options;
  // Its own counters: the node's metrics count the loads clients asked for.
  const metrics = createMetrics({ collectDefault: false });
  const rounds = options.rounds ?? WARM_ROUNDS;
  try {
    const name = await smallDoc(store);
    if (name === undefined) return;
    const firstSync = encodeSyncStep1(Y.encodeStateVector(new Y.Doc()));
    for (let i = 0; i < rounds && performance.now() < deadline; i++) {
      const room = new Room(name, {
        store,
        logger,
        metrics,
        maxDocBytes: Number.MAX_SAFE_INTEGER,
        maxConnectionsPerDoc: 1,
        compactAfterUpdates: Number.MAX_SAFE_INTEGER,
      });
      try {
        await room.load();
        const message = decodeClientMessage(firstSync);
        if (message.type === 'sync-step-1') room.syncFramesFor(message.stateVector);
        encodeSyncStep1(Y.encodeStateVector(room.doc));
        room.encodeAwarenessStates();
      } finally {
        room.destroy();
      }
      if (performance.now() <= deadline) counted();
    }
  } catch (err) {
    logger.debug({ err }, 'warm-up of the load path failed');
  }
};

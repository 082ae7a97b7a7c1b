/**
 * Deleted documents, across the cluster (docs/cluster.md, "Deleting a document").
 *
 * A deletion leaves a tombstone (hub/tombstone.ts): the document's state vector
 * at the deletion, merged over this node and every member that answered. It is
 * stored atomically with the removal (Store.remove), held in memory for the
 * hub's guard (a room refuses what a tombstone covers, from any writer), sent
 * to every live member at once, and sent at link-up to a member that may have
 * missed it (a node that was down learns it then; both sides send theirs, so it
 * does not matter who was down). A node that receives a tombstone removes its
 * copy, and keeps only what the tombstone does not cover (written after the
 * deletion).
 *
 * What a member may have missed: each held tombstone has the seq of its line in
 * this node's store (a later deletion, or a merge, gets a larger one). The
 * receiver keeps a cursor per sender in its own store (tombstone-cursors.ts:
 * the sender's tombstone epoch and a seq up to which it holds every one of
 * them); at link-up the sender
 * asks for it (an empty `tombstones` request) and sends only the ones after it,
 * and none the member itself sent here. A new data directory on either side
 * means no valid cursor: everything is sent, as before.
 *
 * Tombstones expire `ttlMs` after the deletion (the history retention by
 * default): a node that was down longer than that brings the document back.
 */
import type { DocName } from '../doc-name.js';
import type { NodeId } from '../node-id.js';
import { createBackoff } from './backoff.js';
import * as Y from 'yjs';
import type { Hub } from '../hub/hub.js';
import {
  coversAll,
  decodeTombstone,
  encodeTombstone,
  encodeStateVector,
  mergeTombstones,
  splitByTombstone,
  type Tombstone,
  type TombstoneGuard,
} from '../hub/tombstone.js';
import type { Logger } from '../log.js';
import type { DocDeleter, ReplicationReport } from '../node-ports.js';
import { STORAGE_ORIGIN } from '../origin.js';
import type { Store } from '../storage/store.js';
import type { CatchUpCursor, RpcReply, RpcRequest, TombstoneCursor } from './rpc-codec.js';
import { createTombstoneCursors } from './tombstone-cursors.js';

/** How the registry reaches the other nodes (the cluster, once started). */
export interface TombstonePeers {
  /** The other members this node knows of now. */
  others(): readonly NodeId[];
  request(to: NodeId, request: RpcRequest, timeoutMs: number): Promise<RpcReply>;
}

export interface TombstonesOptions {
  readonly store: () => Store;
  readonly hub: () => Hub;
  readonly peers: () => TombstonePeers | undefined;
  readonly logger: Logger;
  /** A tombstone is dropped this long after its deletion. */
  readonly ttlMs: number;
  /** How often expired tombstones are dropped. @default min(ttlMs / 10, 1 hour) */
  readonly sweepMs?: number;
  /** Longest wait for one member's answer. @default 5000 */
  readonly timeoutMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * What `DELETE /v1/docs/:name` answers about the other nodes: members that
 * stored the tombstone (and removed their copy), and members that did not
 * answer (they learn it when they are next connected).
 */
export type DeletionReport = ReplicationReport;

export interface Tombstones extends TombstoneGuard, DocDeleter {
  /** Reads the stored tombstones (before the node serves anything) and starts expiring them. */
  load(): Promise<void>;
  /**
   * Tombstones another node sent; resolves once stored here, with the cursor
   * this node keeps of that node's tombstones (moved to `cursor` when it continues it).
   */
  receive(
    from: NodeId,
    tombstones: readonly Tombstone[],
    cursor?: TombstoneCursor,
  ): Promise<CatchUpCursor | undefined>;
  /** A member is (back) up: it gets the tombstones it may have missed. */
  onPeerUp(peer: NodeId): void;
  /** Drops the expired ones; returns how many. */
  expire(): Promise<number>;
  readonly size: number;
  close(): void;
}

interface Held {
  readonly tombstone: Tombstone;
  readonly covered: Map<number, number>;
  /** The store's deletion line (for dropTombstone); PENDING until stored. */
  seq: number;
  /** The member that sent exactly this tombstone (it holds it); in memory only. */
  origin?: NodeId;
}

/** A peer's link-up exchange: whether to run once more after it, and its retry timer. */
interface CatchingUp {
  again: boolean;
  retry?: NodeJS.Timeout | undefined;
  run: () => void;
}

/** A failed link-up exchange is tried again after 1 s, doubling up to 30 s. */
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** Tombstones per request, so one request stays well under a frame limit. */
const PER_REQUEST = 256;
/** The seq of a tombstone whose removal is not stored yet: sent at every link-up until it is. */
const PENDING = Number.POSITIVE_INFINITY;

export const createTombstones = (options: TombstonesOptions): Tombstones => {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 5000;
  const held = new Map<DocName, Held>();
  /** One deletion at a time per document: a second waits for the first. */
  const busy = new Map<string, Promise<unknown>>();
  let closed = false;
  let sweep: NodeJS.Timeout | undefined;
  const cursors = createTombstoneCursors({ store: options.store, now });
  /** Peers being brought up to date (onPeerUp), and whether to run once more after. */
  const catchingUp = new Map<NodeId, CatchingUp>();

  /** The highest stored seq of the held tombstones other than `doc`'s; undefined while one is pending. */
  const highestOther = (doc?: string): number | undefined => {
    let highest = 0;
    for (const [name, h] of held) {
      if (name === doc) continue;
      if (h.seq === PENDING) return undefined;
      highest = Math.max(highest, h.seq);
    }
    return highest;
  };

  const serial = <T>(doc: DocName, work: () => Promise<T>): Promise<T> => {
    const previous = busy.get(doc) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    busy.set(doc, tail);
    void tail.then(() => {
      if (busy.get(doc) === tail) busy.delete(doc);
    });
    return next;
  };

  const hold = (tombstone: Tombstone, seq: number, origin?: NodeId): void => {
    held.set(tombstone.doc, {
      tombstone,
      covered: Y.decodeStateVector(tombstone.stateVector),
      seq,
      ...(origin !== undefined ? { origin } : {}),
    });
  };

  const expired = (t: Tombstone): boolean => now() - t.deletedAt > options.ttlMs;

  /**
   * Removes this node's copy under `tombstone` (held first, so nothing it covers
   * gets in meanwhile) and puts back what it does not cover.
   */
  const apply = async (tombstone: Tombstone, writer: string, origin?: NodeId): Promise<void> => {
    hold(tombstone, PENDING, origin);
    const hub = options.hub();
    const state = await hub.withRoom(tombstone.doc, (room) => Y.encodeStateAsUpdate(room.doc));
    const { rest } = splitByTombstone(state, held.get(tombstone.doc)!.covered);
    const seq = await hub.remove(tombstone.doc, {
      writers: [writer],
      tombstone: encodeTombstone(tombstone),
    });
    held.get(tombstone.doc)!.seq = seq;
    if (rest) await hub.applyUpdate(tombstone.doc, rest, STORAGE_ORIGIN);
  };

  /**
   * Sends `tombstones` to `peer`, PER_REQUEST at a time; the last request
   * carries `cursor` (none: an empty request asks where the peer's cursor is).
   * Resolves with the peer's cursor of this node after the last one. `progress`
   * counts the tombstones written to the link, answered or not: an exchange cut
   * off (a link replaced, a timeout) may have reached the peer in part.
   */
  const send = async (
    peer: NodeId,
    tombstones: readonly Tombstone[],
    progress: { written: number },
    cursor?: TombstoneCursor,
  ): Promise<CatchUpCursor | undefined> => {
    const peers = options.peers();
    if (!peers) throw new Error('the cluster is not started');
    let i = 0;
    for (;;) {
      const last = i + PER_REQUEST >= tombstones.length;
      progress.written += Math.min(PER_REQUEST, tombstones.length - i);
      const reply = await peers.request(
        peer,
        {
          type: 'tombstones',
          tombstones: tombstones.slice(i, i + PER_REQUEST),
          ...(last && cursor ? { cursor } : {}),
        },
        timeoutMs,
      );
      // `done`: a node of a version without cursors.
      if (reply.type !== 'cursor' && reply.type !== 'done')
        throw new Error(`node ${peer} answered tombstones with ${reply.type}`);
      if (last) return reply.type === 'cursor' ? reply.cursor : undefined;
      i += PER_REQUEST;
    }
  };

  /** Brings `peer` up to date: asks for its cursor, then sends what comes after it. */
  const catchUp = async (peer: NodeId, progress: { written: number }): Promise<number> => {
    const mine = await cursors.epoch();
    const theirs = await send(peer, [], progress);
    const valid = theirs?.epoch === mine;
    const since = valid ? theirs.seq : 0;
    // Snapshot in one turn: a tombstone stored later gets a larger seq than `through`.
    let through = since;
    const due: Tombstone[] = [];
    for (const h of held.values()) {
      if (h.seq !== PENDING) through = Math.max(through, h.seq);
      if (expired(h.tombstone) || (h.seq <= since && h.seq !== PENDING)) continue;
      // What the peer sent here it holds, unless its store is new (no valid cursor).
      if (valid && h.origin === peer) continue;
      due.push(h.tombstone);
    }
    if (due.length === 0 && through === since) return 0;
    await send(peer, due, progress, { epoch: mine, base: since, seq: through });
    return due.length;
  };

  const tombstones: Tombstones = {
    stateVectorOf: (doc) => held.get(doc)?.covered,

    get size() {
      return held.size;
    },

    async load() {
      for await (const { doc, seq, tombstone } of options.store().tombstones()) {
        try {
          hold(decodeTombstone(tombstone), seq);
        } catch (err) {
          logger.error({ doc, err }, 'a stored tombstone cannot be read; it is ignored');
        }
      }
      if (held.size > 0)
        logger.info({ tombstones: held.size }, 'tombstones of deleted documents loaded');
      const sweepMs = options.sweepMs ?? Math.min(options.ttlMs / 10, 3_600_000);
      sweep = setInterval(() => {
        tombstones
          .expire()
          .catch((err: unknown) =>
            logger.warn({ err }, 'expiring tombstones failed; trying again later'),
          );
      }, sweepMs);
      sweep.unref();
    },

    delete(doc, by) {
      return serial(doc, async () => {
        const peers = options.peers();
        const others = peers?.others() ?? [];
        // Everything any reachable node holds of it now is what gets deleted.
        const covered = new Map<number, number>();
        const take = (sv: Uint8Array): void => {
          for (const [client, clock] of Y.decodeStateVector(sv))
            covered.set(client, Math.max(covered.get(client) ?? 0, clock));
        };
        take(await options.hub().withRoom(doc, (room) => Y.encodeStateVector(room.doc)));
        await Promise.all(
          others.map(async (peer) => {
            try {
              const reply = await peers!.request(peer, { type: 'state-vector', doc }, timeoutMs);
              if (reply.type === 'state-vector') take(reply.stateVector);
            } catch {
              // Unreachable now: told below, or when it is back.
            }
          }),
        );
        const earlier = held.get(doc)?.tombstone;
        if (covered.size === 0 && !earlier) {
          // Nobody reachable holds any of it: nothing to delete, nothing to remember.
          await options.hub().remove(doc);
          return { replicatedTo: [], pending: [] };
        }
        let tombstone: Tombstone = {
          doc,
          stateVector: encodeStateVector(covered),
          deletedAt: now(),
          by,
        };
        if (earlier) tombstone = mergeTombstones(earlier, tombstone);
        await apply(tombstone, by);
        // A peer that holds every other tombstone of this node moves its cursor past this one.
        const base = highestOther(doc);
        const seq = held.get(doc)?.seq;
        const cursor =
          base !== undefined && seq !== undefined && seq !== PENDING
            ? { epoch: await cursors.epoch(), base, seq }
            : undefined;
        const report = { replicatedTo: [] as NodeId[], pending: [] as DeletionReport['pending'] };
        await Promise.all(
          others.map(async (peer) => {
            try {
              await send(peer, [tombstone], { written: 0 }, cursor);
              report.replicatedTo.push(peer);
            } catch (err) {
              report.pending.push({ node: peer, reason: (err as Error).message });
            }
          }),
        );
        report.replicatedTo.sort();
        report.pending.sort((a, b) => (a.node < b.node ? -1 : 1));
        logger.info({ doc, by, ...report }, 'document deleted in the cluster');
        return report;
      });
    },

    async receive(from, tombstones, cursor) {
      let applied = 0;
      for (const incoming of tombstones) {
        if (expired(incoming)) continue;
        await serial(incoming.doc, async () => {
          const known = held.get(incoming.doc);
          if (known && coversAll(known.covered, Y.decodeStateVector(incoming.stateVector))) return;
          const merged = known ? mergeTombstones(known.tombstone, incoming) : incoming;
          // Exactly what `from` holds: no need to send it back there.
          const origin = merged === incoming ? from : undefined;
          await apply(merged, `peer:${from}`, origin);
          applied++;
          logger.info({ doc: incoming.doc, from }, 'document deleted by another node');
        });
      }
      if (tombstones.length > 0)
        logger.info({ from, received: tombstones.length, applied }, 'tombstones received');
      return cursor ? cursors.advance(from, cursor) : cursors.of(from);
    },

    onPeerUp(peer) {
      if (closed || held.size === 0) return;
      // One exchange per peer at a time; a link-up meanwhile (a backplane reports a member
      // up more than once) runs one more after it, which finds the cursor it left.
      const running = catchingUp.get(peer);
      if (running?.retry) {
        // Waiting to try again: the peer is back, so now.
        clearTimeout(running.retry);
        running.retry = undefined;
        return running.run();
      }
      if (running) return void (running.again = true);
      const state: CatchingUp = { again: false, run: () => undefined };
      catchingUp.set(peer, state);
      // A failed exchange (a busy peer's timeout) is tried again while the peer stays a
      // member: waiting for its next link-up could leave a deletion unsent for days.
      const delays = createBackoff(RETRY_BASE_MS, RETRY_MAX_MS);
      const stillMember = (): boolean => options.peers()?.others().includes(peer) ?? false;
      const run = (): void => {
        let retry = false;
        const progress = { written: 0 };
        catchUp(peer, progress)
          .then(
            (sent) =>
              logger.info({ peer, sent, held: held.size }, 'tombstones brought up to date on peer'),
            (err: unknown) => {
              retry = !closed && stillMember();
              logger.warn(
                // `written`: sent before the exchange was cut off; the peer may hold some.
                { peer, reason: (err as Error).message, retry, written: progress.written },
                retry
                  ? 'tombstones not sent; trying again'
                  : 'tombstones not sent; sent again at the next link-up',
              );
            },
          )
          .finally(() => {
            if (retry) {
              state.retry = setTimeout(() => {
                state.retry = undefined;
                if (closed) catchingUp.delete(peer);
                else run();
              }, delays.next());
              state.retry.unref();
            } else if (state.again && !closed) {
              state.again = false;
              run();
            } else catchingUp.delete(peer);
          });
      };
      state.run = run;
      run();
    },

    async expire() {
      let dropped = 0;
      for (const [doc, h] of [...held]) {
        if (!expired(h.tombstone)) continue;
        await serial(doc, async () => {
          if (held.get(doc) !== h) return;
          held.delete(doc);
          await options.store().dropTombstone(doc, h.seq);
          dropped++;
        });
      }
      if (dropped > 0) logger.info({ dropped, left: held.size }, 'expired tombstones dropped');
      return dropped;
    },

    close() {
      closed = true;
      clearInterval(sweep);
      for (const state of catchingUp.values()) clearTimeout(state.retry);
    },
  };
  return tombstones;
};

/**
 * Deleted documents, across the cluster (docs/cluster.md, "Deleting a document").
 *
 * A deletion leaves a tombstone (hub/tombstone.ts): the document's state vector
 * at the deletion, merged over this node and every member that answered. It is
 * stored atomically with the removal (Store.remove), held in memory for the
 * hub's guard (a room refuses what a tombstone covers, from any writer), sent
 * to every live member at once, and sent again to every member that comes up
 * (a node that was down learns it then; both sides send theirs, so it does not
 * matter who was down). A node that receives a tombstone removes its copy, and
 * keeps only what the tombstone does not cover (written after the deletion).
 *
 * Tombstones expire `ttlMs` after the deletion (the history retention by
 * default): a node that was down longer than that brings the document back.
 */
import type { DocName } from '../doc-name.js';
import type { NodeId } from '../node-id.js';
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
import type { RpcReply, RpcRequest } from './rpc-codec.js';

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
  /** Tombstones another node sent; resolves once stored here. */
  receive(from: NodeId, tombstones: readonly Tombstone[]): Promise<void>;
  /** A member is (back) up: it gets every tombstone this node holds. */
  onPeerUp(peer: NodeId): void;
  /** Drops the expired ones; returns how many. */
  expire(): Promise<number>;
  readonly size: number;
  close(): void;
}

interface Held {
  readonly tombstone: Tombstone;
  readonly covered: Map<number, number>;
  /** The store's deletion line (for dropTombstone). */
  seq: number;
}

/** Tombstones per request, so one request stays well under a frame limit. */
const PER_REQUEST = 256;

export const createTombstones = (options: TombstonesOptions): Tombstones => {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 5000;
  const held = new Map<DocName, Held>();
  /** One deletion at a time per document: a second waits for the first. */
  const busy = new Map<string, Promise<unknown>>();
  let closed = false;
  let sweep: NodeJS.Timeout | undefined;

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

  const hold = (tombstone: Tombstone, seq: number): void => {
    held.set(tombstone.doc, {
      tombstone,
      covered: Y.decodeStateVector(tombstone.stateVector),
      seq,
    });
  };

  const expired = (t: Tombstone): boolean => now() - t.deletedAt > options.ttlMs;

  /**
   * Removes this node's copy under `tombstone` (held first, so nothing it covers
   * gets in meanwhile) and puts back what it does not cover.
   */
  const apply = async (tombstone: Tombstone, writer: string): Promise<void> => {
    const before = held.get(tombstone.doc);
    hold(tombstone, before?.seq ?? 0);
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

  const send = async (peer: NodeId, tombstones: readonly Tombstone[]): Promise<void> => {
    const peers = options.peers();
    if (!peers) throw new Error('the cluster is not started');
    for (let i = 0; i < tombstones.length; i += PER_REQUEST) {
      const reply = await peers.request(
        peer,
        { type: 'tombstones', tombstones: tombstones.slice(i, i + PER_REQUEST) },
        timeoutMs,
      );
      if (reply.type !== 'done')
        throw new Error(`node ${peer} answered tombstones with ${reply.type}`);
    }
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
        const report = { replicatedTo: [] as NodeId[], pending: [] as DeletionReport['pending'] };
        await Promise.all(
          others.map(async (peer) => {
            try {
              await send(peer, [tombstone]);
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

    async receive(from, tombstones) {
      for (const incoming of tombstones) {
        if (expired(incoming)) continue;
        await serial(incoming.doc, async () => {
          const known = held.get(incoming.doc);
          if (known && coversAll(known.covered, Y.decodeStateVector(incoming.stateVector))) return;
          const merged = known ? mergeTombstones(known.tombstone, incoming) : incoming;
          await apply(merged, `peer:${from}`);
          logger.info({ doc: incoming.doc, from }, 'document deleted by another node');
        });
      }
    },

    onPeerUp(peer) {
      if (closed || held.size === 0) return;
      const all = [...held.values()].map((h) => h.tombstone).filter((t) => !expired(t));
      send(peer, all).catch((err: unknown) =>
        logger.debug(
          { peer, reason: (err as Error).message },
          'tombstones not sent; sent again at the next link-up',
        ),
      );
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
    },
  };
  return tombstones;
};

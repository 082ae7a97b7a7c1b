/**
 * Owner leases on a backplane: what makes an `owner` function's check-then-act
 * hold across nodes on Redis, where no node is reachable directly.
 *
 * - One lease per document, held by the node that runs its owner calls (the
 *   primary: other nodes forward to it). A grant carries a fencing token larger
 *   than every earlier one. The holder renews it every `renewMs` while it is
 *   used and still primary, and gives it up otherwise.
 * - Before a new holder runs anything it catches up: the backlog of the
 *   document's channel (every fenced write of earlier holders is there), then
 *   a state-vector exchange with the live homes (what a trimmed or lost stream
 *   no longer has), bounded by `catchUpTimeoutMs`.
 * - A write is fenced: the executor takes the token before it runs a batch and
 *   `commit` publishes the batch's update with its idempotency records only if
 *   that token is still the document's current lease (one atomic step of the
 *   medium), before anything is applied here. A holder that was paused past its
 *   lease gets FENCED and changes nothing; its callers retry.
 */
import type { DocName } from '../doc-name.js';
import * as Y from 'yjs';
import { decodeClientMessage, encodeUpdate } from '@stateweave/client/protocol';
import { StateweaveError, toStateweaveError } from '../errors.js';
import type { NodeId } from '../node-id.js';
import type { Hub } from '../hub/hub.js';
import type { Room } from '../hub/room.js';
import type { Logger } from '../log.js';
import type { Origin } from '../origin.js';
import type { StoreRecord } from '../storage/store.js';
import type { ChannelMessage, LeasingBackplane } from './backplane.js';
import type { BackplaneRpc } from './backplane-rpc.js';
import type { OwnerMetrics } from './owner-metrics.js';
import type { Placement } from './placement.js';

export interface OwnerLeasesOptions {
  readonly backplane: LeasingBackplane;
  readonly hub: Hub;
  readonly placement: Placement;
  readonly rpc: BackplaneRpc;
  readonly logger: Logger;
  readonly metrics?: OwnerMetrics;
  /** @default 5000 */
  readonly ttlMs?: number;
  /** @default 1500 */
  readonly renewMs?: number;
  /** A lease no call used for this long is given up. @default 30000 */
  readonly idleMs?: number;
  /** How long a call waits for another node's lease to end. @default ttlMs + 2000 */
  readonly waitMs?: number;
  /** How long a new holder waits for each home's state-vector answer. @default 2000 */
  readonly catchUpTimeoutMs?: number;
}

/** The gate the function runtime runs `owner` calls through (functions/owner-gate.ts). */
export interface OwnerLeases {
  /** Resolves with the token of this node's lease of `doc`, taken and caught up if need be. */
  hold(doc: DocName): Promise<number>;
  /** An idempotency record an owner call on `doc` stored cluster-wide. */
  record(doc: DocName, key: string): Promise<Uint8Array | undefined>;
  /** Publishes the write fenced by `token`; FENCED when the lease moved on (nothing written). */
  commit(
    doc: DocName,
    token: number,
    update: Uint8Array | null,
    records: readonly StoreRecord[],
  ): Promise<void>;
  /**
   * The write fenced by `token` is in the medium but could not be applied here
   * (the local store refused it): the lease is given up, and whoever takes it
   * next — this node too — catches up on the whole retained channel first.
   */
  abandon(doc: DocName, token: number): void;
  /** Membership changed: leases of documents this node is no longer primary of are given up. */
  reconsider(): void;
  /** Leases this node holds now. */
  readonly held: number;
  /** Gives every lease up. */
  close(): Promise<void>;
}

interface Held {
  readonly token: number;
  /** Local time until which the lease is certainly still ours (measured from before the grant). */
  validUntil: number;
  lastUsedAt: number;
  renewing: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const createOwnerLeases = (options: OwnerLeasesOptions): OwnerLeases => {
  const { backplane, placement, rpc, logger, metrics } = options;
  const self = backplane.nodeId;
  const ttlMs = options.ttlMs ?? 5000;
  const renewMs = options.renewMs ?? 1500;
  const idleMs = options.idleMs ?? 30_000;
  const waitMs = options.waitMs ?? ttlMs + 2000;
  const catchUpTimeoutMs = options.catchUpTimeoutMs ?? 2000;
  const held = new Map<DocName, Held>();
  const acquiring = new Map<DocName, Promise<number>>();
  /** Documents that may lack one of this node's own fenced writes. */
  const behind = new Set<DocName>();
  let closed = false;

  const isPrimary = (doc: DocName): boolean =>
    placement.primaryFor(doc, (id) => backplane.isLive(id)) === self;
  const peerOrigin = (nodeId: NodeId): Origin => ({ kind: 'peer', nodeId });

  const apply = async (room: Room, update: Uint8Array, from: NodeId): Promise<void> => {
    if (room.containsUpdate(update)) return;
    await room.applyUpdate(update, peerOrigin(from));
  };

  /** The channel's backlog, then what the live homes have that this node lacks. */
  const catchUp = async (doc: DocName, backlog: readonly ChannelMessage[]): Promise<void> => {
    const lease = await options.hub.open(doc);
    try {
      const { room } = lease;
      const applied: Promise<void>[] = [];
      for (const { from, message } of backlog) {
        let decoded;
        try {
          decoded = decodeClientMessage(message);
        } catch (err) {
          logger.warn({ doc, peer: from, reason: (err as Error).message }, 'backlog entry refused');
          continue;
        }
        if (decoded.type === 'update' || decoded.type === 'sync-step-2')
          applied.push(apply(room, decoded.update, from));
      }
      await Promise.all(applied);
      const stateVector = Y.encodeStateVector(room.doc);
      const homes = placement.homesFor(doc).filter((id) => id !== self && backplane.isLive(id));
      await Promise.all(
        homes.map(async (home) => {
          try {
            const reply = await rpc.request(
              home,
              { type: 'diff', doc, stateVector },
              catchUpTimeoutMs,
            );
            if (reply.type === 'diff') await apply(room, reply.update, home);
          } catch (err) {
            // The backlog holds every fenced write; a home's answer only repairs a trimmed stream.
            logger.warn(
              { doc, home, code: toStateweaveError(err).code },
              'owner catch-up: home did not answer',
            );
          }
        }),
      );
    } finally {
      lease.release();
    }
  };

  const acquire = async (doc: DocName): Promise<number> => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (closed) throw new StateweaveError('SHUTTING_DOWN');
      const sentAt = Date.now();
      const fromStart = behind.has(doc);
      const attempt = await backplane.acquireLease(doc, ttlMs, fromStart);
      if (attempt.granted) {
        await catchUp(doc, attempt.backlog);
        if (fromStart) behind.delete(doc);
        held.set(doc, {
          token: attempt.token,
          validUntil: sentAt + ttlMs,
          lastUsedAt: Date.now(),
          renewing: false,
        });
        metrics?.grants.inc();
        logger.info(
          { doc, token: attempt.token, backlog: attempt.backlog.length },
          'owner lease taken',
        );
        return attempt.token;
      }
      // The holder gives it up once it sees it is no longer primary, or it expires.
      const wait = Math.min(250, Math.max(20, attempt.remainingMs));
      if (Date.now() + wait > deadline)
        throw new StateweaveError(
          'PRIMARY_UNREACHABLE',
          `the owner lease of ${doc} is held by ${attempt.holder} for ${attempt.remainingMs} ms more`,
        );
      await sleep(wait);
    }
  };

  const giveUp = (doc: DocName, entry: Held): void => {
    held.delete(doc);
    backplane
      .releaseLease(doc, entry.token)
      .catch((err: unknown) =>
        logger.warn({ doc, code: toStateweaveError(err).code }, 'owner lease not released'),
      );
  };

  const renewAll = (): void => {
    const now = Date.now();
    for (const [doc, entry] of held) {
      if (entry.renewing) continue;
      if (now - entry.lastUsedAt > idleMs || !isPrimary(doc)) {
        giveUp(doc, entry);
        continue;
      }
      entry.renewing = true;
      const sentAt = Date.now();
      backplane
        .renewLease(doc, entry.token, ttlMs)
        .then(
          (renewed) => {
            if (renewed) entry.validUntil = sentAt + ttlMs;
            else if (held.get(doc) === entry) {
              held.delete(doc);
              logger.warn({ doc, token: entry.token }, 'owner lease lost');
            }
          },
          // Unreachable: the lease lapses locally at validUntil, and is taken again then.
          (err: unknown) =>
            logger.warn({ doc, code: toStateweaveError(err).code }, 'owner lease not renewed'),
        )
        .finally(() => (entry.renewing = false));
    }
  };

  const timer = setInterval(renewAll, renewMs);
  timer.unref();
  metrics?.setHeldCounter(() => held.size);

  return {
    hold(doc) {
      const entry = held.get(doc);
      if (entry && Date.now() < entry.validUntil) {
        entry.lastUsedAt = Date.now();
        return Promise.resolve(entry.token);
      }
      let pending = acquiring.get(doc);
      if (!pending) {
        pending = acquire(doc).finally(() => acquiring.delete(doc));
        acquiring.set(doc, pending);
      }
      return pending;
    },

    record: (doc, key) => backplane.getDocRecord(doc, key),

    async commit(doc, token, update, records) {
      const entry = held.get(doc);
      if (entry?.token === token) entry.lastUsedAt = Date.now();
      try {
        await backplane.publishFenced(doc, token, update ? encodeUpdate(update) : null, records);
      } catch (err) {
        if (err instanceof StateweaveError && err.code === 'FENCED') {
          metrics?.fenced.inc();
          if (held.get(doc)?.token === token) held.delete(doc);
          logger.warn({ doc, token, reason: err.message }, 'stale owner write refused');
        }
        throw err;
      }
    },

    abandon(doc, token) {
      behind.add(doc);
      const entry = held.get(doc);
      if (entry?.token === token) giveUp(doc, entry);
    },

    reconsider() {
      for (const [doc, entry] of held) if (!isPrimary(doc)) giveUp(doc, entry);
    },

    get held() {
      return held.size;
    },

    async close() {
      closed = true;
      clearInterval(timer);
      await Promise.all(
        [...held].map(([doc, entry]) =>
          backplane.releaseLease(doc, entry.token).catch(() => undefined),
        ),
      );
      held.clear();
    },
  };
};

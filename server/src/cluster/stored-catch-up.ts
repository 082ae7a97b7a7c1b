/**
 * Catch-up of stored documents when a link comes up (mesh) or a member appears
 * or the backplane is back (backplane). Live replication only covers documents
 * someone has open; a document written here while a peer was unreachable (or
 * acknowledged here just before this node crashed) and closed since would
 * otherwise reach that peer only when it is next opened.
 *
 * For each stored document the peer is a home of, this node asks the peer for
 * its state vector and sends what the peer lacks (`apply`, answered once the
 * peer stored it): a few documents at a time, stopping if the link drops.
 * Each side pushes its own documents, so together they exchange both ways.
 *
 * Only what changed since the last completed catch-up to that peer is sent:
 * when one completes, the peer records a cursor (`catch-up-done`: this store's
 * epoch and membership, and a sequence number every stored change up to which
 * the peer now holds) in its own store; on the next link-up this node reads it
 * back (`catch-up-cursor`) and walks the store's change index after it instead
 * of every stored document. A full walk happens when there is no valid cursor:
 * first contact, a peer whose data directory is new, this node's data directory
 * new (another epoch), the membership changed (other homes), or the change
 * index may no longer hold every change since (history off, or trimmed).
 */
import type { DocName } from '../doc-name.js';
import { createHash } from 'node:crypto';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import type { Placement } from './placement.js';
import type { CatchUpCursor, RpcReply, RpcRequest } from './rpc-codec.js';

/** What the catch-up needs of this node's store beyond the document list. */
export interface StoredChanges {
  /** Identifies this node's store: a new data directory gets a new one. */
  epoch(): Promise<string>;
  /** A sequence number no stored change exceeds now (Store.lastSeq). */
  head(): Promise<number>;
  /**
   * Names of the documents with a stored change after `afterSeq` and up to
   * `throughSeq`, each once, leaving out changes `peer` itself sent here (their
   * only writer is `peer:<peer>`); undefined when the change index may no longer
   * hold every such change (history off, or trimmed since `at`, this node's clock).
   */
  changedSince(
    afterSeq: number,
    throughSeq: number,
    at: number,
    peer: NodeId,
  ): AsyncIterable<DocName> | undefined;
}

export interface StoredCatchUpOptions {
  readonly listDocs: () => AsyncIterable<DocName>;
  /** Without it every catch-up walks every stored document. */
  readonly changes?: StoredChanges;
  readonly placement: Placement;
  /** Every member this node knows of, itself included (a change voids the cursors). */
  readonly members: () => readonly NodeId[];
  readonly isConnected: (nodeId: NodeId) => boolean;
  readonly request: (to: NodeId, request: RpcRequest, timeoutMs: number) => Promise<RpcReply>;
  readonly hub: Hub;
  readonly logger: Logger;
  /** Documents sent at once per peer. @default 4 */
  readonly concurrency?: number;
  /** Longest wait for one answer. @default 5000 */
  readonly timeoutMs?: number;
}

export interface StoredCatchUp {
  onLinkUp(peer: NodeId): void;
  close(): void;
}

type Mode = 'changes' | 'full';

const membershipOf = (members: readonly NodeId[]): string =>
  createHash('sha256')
    .update([...members].sort().join('\n'))
    .digest('base64url')
    .slice(0, 16);

export const createStoredCatchUp = (options: StoredCatchUpOptions): StoredCatchUp => {
  const concurrency = options.concurrency ?? 4;
  const timeoutMs = options.timeoutMs ?? 5000;
  const running = new Set<NodeId>();
  /** Peers whose link came up again while a catch-up to them ran: one more run follows. */
  const again = new Set<NodeId>();
  let closed = false;

  const ask = async <T extends RpcReply['type']>(
    peer: NodeId,
    request: RpcRequest,
    type: T,
  ): Promise<Extract<RpcReply, { type: T }>> => {
    const reply = await options.request(peer, request, timeoutMs);
    if (reply.type !== type)
      throw new Error(`node ${peer} answered ${request.type} with ${reply.type}`);
    return reply as Extract<RpcReply, { type: T }>;
  };

  /** Sends `doc` to `peer` as far as the peer lacks it; resolves once the peer stored it. */
  const send = async (doc: DocName, peer: NodeId): Promise<void> => {
    const { stateVector } = await ask(peer, { type: 'state-vector', doc }, 'state-vector');
    const update = await options.hub.withRoom(doc, (room) => room.diffSince(stateVector));
    // [0, 0]: no structs and no deletions, nothing the peer lacks.
    if (update.byteLength <= 2) return;
    await ask(peer, { type: 'apply', doc, update }, 'done');
  };

  /** Where to start: a valid cursor's documents, or all of them. */
  const plan = async (
    peer: NodeId,
  ): Promise<{ docs: AsyncIterable<DocName>; mode: Mode; next?: CatchUpCursor }> => {
    const { changes } = options;
    if (!changes) return { docs: options.listDocs(), mode: 'full' };
    const epoch = `${await changes.epoch()}.${membershipOf(options.members())}`;
    const next: CatchUpCursor = { epoch, seq: await changes.head(), at: Date.now() };
    const { cursor } = await ask(peer, { type: 'catch-up-cursor' }, 'cursor');
    const docs =
      cursor && cursor.epoch === epoch && cursor.seq <= next.seq
        ? changes.changedSince(cursor.seq, next.seq, cursor.at, peer)
        : undefined;
    return docs
      ? { docs, mode: 'changes', next }
      : { docs: options.listDocs(), mode: 'full', next };
  };

  const run = async (peer: NodeId): Promise<void> => {
    const started = Date.now();
    const { docs, mode, next } = await plan(peer);
    const inFlight = new Set<Promise<void>>();
    let documents = 0;
    let failed = 0;
    let cut = false;
    for await (const doc of docs) {
      if (closed || !options.isConnected(peer)) {
        cut = true;
        break;
      }
      if (!options.placement.homesFor(doc).includes(peer)) continue;
      const job = send(doc, peer)
        .catch((err: unknown) => {
          failed++;
          options.logger.debug({ doc, peer, reason: (err as Error).message }, 'catch-up failed');
        })
        .finally(() => inFlight.delete(job));
      inFlight.add(job);
      documents++;
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const completed = !cut && failed === 0 && !closed && options.isConnected(peer);
    // The peer stored every change up to `next.seq` it lacked: it records that.
    if (completed && next) await ask(peer, { type: 'catch-up-done', cursor: next }, 'done');
    options.logger.info(
      { peer, mode, documents, failed, completed, ms: Date.now() - started },
      'stored documents caught up with peer',
    );
  };

  const start = (peer: NodeId): void => {
    running.add(peer);
    run(peer)
      .catch((err: unknown) =>
        options.logger.warn(
          { peer, reason: (err as Error).message },
          'catch-up of stored documents failed',
        ),
      )
      .finally(() => {
        running.delete(peer);
        if (again.delete(peer) && !closed && options.isConnected(peer)) start(peer);
      });
  };

  return {
    onLinkUp(peer) {
      if (closed) return;
      if (running.has(peer)) again.add(peer);
      else start(peer);
    },
    close() {
      closed = true;
    },
  };
};

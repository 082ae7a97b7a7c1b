/**
 * What each home of a document has: its state vector, asked with the
 * cluster's `state-vector` request (rpc-codec.ts, the one the stored catch-up
 * uses), on the mesh and on a backplane alike. A round asks every home at once
 * (this node answers from its own replica); rounds of one document are
 * rate-limited and shared by concurrent callers, so a document with an
 * `onStable` window costs its primary one small request per home per round,
 * and no node that is not asking pays anything.
 */
import type { DocName } from '../doc-name.js';
import type { NodeId } from '../node-id.js';
import * as Y from 'yjs';
import type { Hub } from '../hub/hub.js';
import type { HomeVectors } from '../node-ports.js';
import type { Cluster } from './cluster.js';
import type { Placement } from './placement.js';
import type { RpcReply, RpcRequest } from './rpc-codec.js';

export interface HomeVectorsOptions {
  readonly selfId: NodeId;
  readonly placement: Placement;
  /** The document's primary as the cluster sees it now (cluster.primaryFor). */
  readonly primaryFor: (doc: DocName) => NodeId | undefined;
  readonly request: (to: NodeId, request: RpcRequest, timeoutMs?: number) => Promise<RpcReply>;
  /** This node's own state vector of `doc` (opens it if needed). */
  readonly localVector: (doc: DocName) => Promise<Uint8Array>;
  /** Least time between two rounds of one document. @default 250 */
  readonly minIntervalMs?: number;
  /** How long one home's answer is waited for. @default 2000 */
  readonly timeoutMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

type Answer = ReadonlyMap<NodeId, Uint8Array> | undefined;

interface Round {
  readonly askedAt: number;
  readonly answer: Promise<Answer>;
  settled: boolean;
}

/** Rounds kept per document after they are answered; old entries are dropped past this many documents. */
const MAX_DOCS = 10_000;

export const createHomeVectors = (options: HomeVectorsOptions): HomeVectors => {
  const { selfId, placement } = options;
  const now = options.now ?? Date.now;
  const minIntervalMs = options.minIntervalMs ?? 250;
  const timeoutMs = options.timeoutMs ?? 2000;
  const rounds = new Map<DocName, Round>();

  const ask = async (doc: DocName, home: NodeId): Promise<Uint8Array | undefined> => {
    try {
      if (home === selfId) return await options.localVector(doc);
      const reply = await options.request(home, { type: 'state-vector', doc }, timeoutMs);
      return reply.type === 'state-vector' ? reply.stateVector : undefined;
    } catch {
      // Unreachable, timed out, refused or closing: this round has no answer; the caller asks again.
      return undefined;
    }
  };

  const round = async (doc: DocName): Promise<Answer> => {
    const homes = placement.homesFor(doc);
    const answers = await Promise.all(homes.map((home) => ask(doc, home)));
    const out = new Map<NodeId, Uint8Array>();
    for (const [i, home] of homes.entries()) {
      const vector = answers[i];
      if (vector === undefined) return undefined;
      out.set(home, vector);
    }
    return out;
  };

  return {
    isPrimary: (doc) => options.primaryFor(doc) === selfId,

    vectors(doc, notBefore) {
      const last = rounds.get(doc);
      const at = now();
      // A round still out, or younger than the interval, is the answer (if asked late enough).
      if (last && (!last.settled || at - last.askedAt < minIntervalMs))
        return last.askedAt >= notBefore ? last.answer : Promise.resolve(undefined);
      if (rounds.size >= MAX_DOCS && !last) rounds.delete(rounds.keys().next().value!);
      const next: Round = { askedAt: at, answer: round(doc), settled: false };
      void next.answer.finally(() => (next.settled = true));
      rounds.delete(doc); // re-inserted last: the map's order is the order of use
      rounds.set(doc, next);
      return next.answer;
    },
  };
};

/** The home vectors of `cluster`'s documents, this node's own read from `hub`. */
export const clusterHomeVectors = (
  cluster: Pick<Cluster, 'nodeId' | 'placement' | 'primaryFor' | 'request'>,
  hub: () => Hub,
): HomeVectors =>
  createHomeVectors({
    selfId: cluster.nodeId,
    placement: cluster.placement,
    primaryFor: (doc) => cluster.primaryFor(doc),
    request: (to, request, timeoutMs) => cluster.request(to, request, timeoutMs),
    localVector: (doc) => hub().withRoom(doc, (room) => Y.encodeStateVector(room.doc)),
  });

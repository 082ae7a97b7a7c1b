/**
 * What each home of a document has: its state vector, asked with the
 * cluster's `state-vector` request (rpc-codec.ts, the one the stored catch-up
 * uses), on the mesh and on a backplane alike. A round asks every home at once
 * (this node answers from its own replica); rounds of one document are
 * rate-limited and shared by concurrent callers, so a document with an
 * `onStable` window costs its primary one small request per home per round,
 * and no node that is not asking pays anything.
 *
 * A home that does not answer holds the round back (a slow home must: it may
 * hold writes nobody else has). A home that went away is no longer among the
 * homes placement names (on a backplane, a node that stopped heartbeating for
 * the membership's 5 s expiry; a paused process, a long GC or a cut link look
 * the same), so a round also asks every node that was a home of the document
 * in a round, or when `isPrimary` was asked (on every node that tracks the
 * document's windows, so a new primary knows the old one), within
 * `goneHomeGraceMs`: one that does not answer holds the round
 * back as a home would, one that answers (alive, no longer a home) does not
 * count. Past the grace it is gone for good and holds nothing.
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
  /** How long a home that left the homes (and does not answer) still holds rounds back. @default 30000 */
  readonly goneHomeGraceMs?: number;
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
  const goneHomeGraceMs = options.goneHomeGraceMs ?? 30_000;
  const rounds = new Map<DocName, Round>();
  /** Per document: node → when a round last found it among the homes. */
  const homesSeen = new Map<DocName, Map<NodeId, number>>();

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

  /** Nodes that were homes of `doc` within the grace and are not now (this round's homes noted). */
  const goneHomes = (doc: DocName, homes: readonly NodeId[]): NodeId[] => {
    const at = now();
    const seen = homesSeen.get(doc) ?? new Map<NodeId, number>();
    for (const home of homes) seen.set(home, at);
    const gone: NodeId[] = [];
    for (const [id, lastAt] of seen)
      if (at - lastAt > goneHomeGraceMs) seen.delete(id);
      else if (!homes.includes(id)) gone.push(id);
    homesSeen.delete(doc); // re-inserted last, as rounds are
    homesSeen.set(doc, seen);
    if (homesSeen.size > MAX_DOCS) homesSeen.delete(homesSeen.keys().next().value!);
    return gone;
  };

  const round = async (doc: DocName): Promise<Answer> => {
    const homes = placement.homesFor(doc);
    const gone = goneHomes(doc, homes);
    const [answers, goneAnswers] = await Promise.all([
      Promise.all(homes.map((home) => ask(doc, home))),
      Promise.all(gone.map((node) => ask(doc, node))),
    ]);
    // A home that went away and does not answer may be only slow: it holds the round back.
    if (goneAnswers.includes(undefined)) return undefined;
    const out = new Map<NodeId, Uint8Array>();
    for (const [i, home] of homes.entries()) {
      const vector = answers[i];
      if (vector === undefined) return undefined;
      out.set(home, vector);
    }
    return out;
  };

  return {
    isPrimary(doc) {
      // Noted on every node that asks (not only the primary's rounds): a new primary then knows the old homes.
      goneHomes(doc, placement.homesFor(doc));
      return options.primaryFor(doc) === selfId;
    },

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
  goneHomeGraceMs?: number,
): HomeVectors =>
  createHomeVectors({
    ...(goneHomeGraceMs !== undefined ? { goneHomeGraceMs } : {}),
    selfId: cluster.nodeId,
    placement: cluster.placement,
    primaryFor: (doc) => cluster.primaryFor(doc),
    request: (to, request, timeoutMs) => cluster.request(to, request, timeoutMs),
    localVector: (doc) => hub().withRoom(doc, (room) => Y.encodeStateVector(room.doc)),
  });

/**
 * Placement: the R home nodes of a document by rendezvous (highest random weight)
 * hashing. Every node that sees the same membership computes the same homes, with
 * no coordination, and a node joining or leaving moves only the documents it
 * wins or held (about 1/N of them).
 */
import { createHash } from 'node:crypto';
import type { DocName } from '../doc-name.js';
import type { NodeId } from '../node-id.js';

export interface Placement {
  /** The document's home nodes, best first: min(R, members) of them. */
  homesFor(doc: DocName): NodeId[];
  /** True when this node is one of the document's homes. */
  isHome(doc: DocName): boolean;
  /**
   * The first home that `isReachable` accepts (this node always is): where
   * per-document serial work (`owner` functions) runs. Undefined when no home
   * is reachable.
   */
  primaryFor(doc: DocName, isReachable: (nodeId: NodeId) => boolean): NodeId | undefined;
}

/** `hash`: rendezvous hashing only; `presence`: the first home follows the users' region. */
export type PlacementMode = 'hash' | 'presence';

export interface PlacementOptions {
  readonly selfId: NodeId;
  /** Home nodes per document, capped at the cluster size. */
  readonly replicationFactor: number;
  /** Current membership, this node included or not (it is added). */
  readonly members: () => Iterable<NodeId>;
  /**
   * Reorders the rendezvous ranking of a document before the homes are cut
   * from it (`--placement presence`: presence-placement.ts). @default none
   */
  readonly order?: (doc: DocName, ranked: readonly NodeId[]) => NodeId[];
}

/** The weight of `nodeId` for `doc`: 64 bits of SHA-256 over both. */
const weight = (nodeId: string, doc: string): bigint =>
  createHash('sha256').update(nodeId).update('\0').update(doc).digest().readBigUInt64BE(0);

/** All `members` ranked for `doc`, best first (ties, practically impossible, by id). */
export const rank = <T extends string>(doc: string, members: Iterable<T>): T[] =>
  [...new Set(members)]
    .map((id, _, all) => ({ id, w: all.length > 1 ? weight(id, doc) : 0n })) // alone: nothing to rank
    .sort((a, b) => (a.w === b.w ? (a.id < b.id ? -1 : 1) : a.w > b.w ? -1 : 1))
    .map(({ id }) => id);

export const createPlacement = (options: PlacementOptions): Placement => {
  const { order } = options;
  const homesFor = (doc: DocName): NodeId[] => {
    const ranked = rank(doc, [options.selfId, ...options.members()]);
    return (order ? order(doc, ranked) : ranked).slice(0, Math.max(1, options.replicationFactor));
  };
  return {
    homesFor,
    isHome: (doc) => homesFor(doc).includes(options.selfId),
    primaryFor: (doc, isReachable) =>
      homesFor(doc).find((id) => id === options.selfId || isReachable(id)),
  };
};

/**
 * The Backplane port: what a node uses to talk to the other nodes of its
 * cluster, whatever carries it. An adapter provides
 *
 * - membership: the live nodes, and events when one joins or goes away;
 * - directed messages to one named node (the substrate of request/response:
 *   state-vector exchanges, and later owner calls and deployment fetches);
 * - per-document channels: publish a message to everyone who has the document
 *   open, subscribe while this node has demand for it, and catch up on what the
 *   channel still retains since this node last read it;
 * - small cluster-wide records (the function deployment): the last value
 *   written under a name, and an event on every member when it changes;
 * - an acknowledged publish, for `--ack replicated`;
 * - owner leases, on an adapter whose medium can arbitrate (`LeasingBackplane`:
 *   Redis, the in-memory medium; not the mesh, which has no shared medium):
 *   one per document, with a fencing token that grows with every grant, a TTL
 *   the holder renews, and a fenced publish that the medium refuses unless the
 *   token is still the current one (owner-leases.ts).
 *
 * Delivery is a hint, never a guarantee: an adapter may lose messages (an
 * outage, a trim, a restart without data). It says so with `resync`, and the
 * state-vector exchange of the layer above repairs whatever was lost.
 *
 * Messages are opaque bytes here; what they mean is the replicator's business
 * (standard y-protocols messages, wrapped by peer-codec.ts when directed).
 */
import type { DocName } from '../doc-name.js';
import type { NodeId } from '../node-id.js';

/** What an adapter tells the node. Called only between `start` and `close`. */
export interface BackplaneEvents {
  /** `nodeId` is live now (it joined, or this node just learned of it). */
  memberUp(nodeId: NodeId): void;
  /** `nodeId` stopped heartbeating or left. */
  memberDown(nodeId: NodeId): void;
  /** A message another node sent to this one with `send`. */
  direct(from: NodeId, frame: Uint8Array): void;
  /** A message published on a channel this node subscribes to, by another node (or an earlier run of this one). */
  docMessage(doc: DocName, from: NodeId, message: Uint8Array): void;
  /** Another node wrote the record `name` (read it with getRecord). */
  recordChanged(name: string): void;
  /**
   * The adapter was cut off (e.g. Redis was down) and is back: messages may have
   * been lost both ways, so every open document must exchange state vectors again.
   */
  resync(): void;
  /**
   * Messages of `doc`'s channel were lost to this node (its position was
   * trimmed): exchange the document's state vectors now. Without this handler
   * an adapter calls `resync`.
   */
  channelGap?(doc: DocName): void;
}

/** A message of a document's channel, as a lease grant hands back its backlog. */
export interface ChannelMessage {
  readonly from: NodeId;
  readonly message: Uint8Array;
}

/** The answer to `acquireLease`. */
export type LeaseAttempt =
  | {
      readonly granted: true;
      /** The fencing token: greater than every token granted before for this document. */
      readonly token: number;
      /**
       * Messages other nodes published on the document's channel that this node
       * had not read when the lease was granted: every fenced write of an earlier
       * holder among them. Applied before the new holder runs anything.
       */
      readonly backlog: readonly ChannelMessage[];
    }
  | {
      readonly granted: false;
      /** The node that holds the lease now, and how long it still holds it unless it renews. */
      readonly holder: NodeId;
      readonly remainingMs: number;
    };

/** A small record written with a fenced publish, e.g. an idempotency record of an owner call. */
export interface DocRecord {
  readonly key: string;
  readonly value: Uint8Array;
}

export type BackplaneState = 'connecting' | 'connected' | 'down';

export interface BackplaneStatus {
  readonly kind: 'redis' | 'memory' | 'mesh';
  readonly state: BackplaneState;
  /** Live members, this node included, sorted. */
  readonly members: NodeId[];
  /** Document channels this node subscribes to. */
  readonly channels: number;
  /** Messages published or sent, and those that could not be (adapter down). */
  readonly messagesOut: number;
  readonly messagesDropped: number;
  readonly messagesIn: number;
  /** Times the adapter lost its connection since start. */
  readonly outages: number;
  /** Times this node found its position in a channel trimmed (messages missed). */
  readonly gaps?: number;
  /** Milliseconds since the adapter went down (only while down). */
  readonly downForMs?: number;
  readonly lastError?: string;
}

export interface Backplane {
  readonly nodeId: NodeId;
  /** Joins the cluster; events flow until `close`. Resolves once joined, or rejects (no backplane reachable). */
  start(events: BackplaneEvents): Promise<void>;
  /** Live members, this node included. While the adapter is down: the last known. */
  members(): readonly NodeId[];
  isLive(nodeId: NodeId): boolean;
  /** Sends `frame` to `to`; false when it certainly did not leave (adapter down). */
  send(to: NodeId, frame: Uint8Array): boolean;
  /** Publishes `message` on the document's channel; false when it certainly did not leave. */
  publish(doc: DocName, message: Uint8Array): boolean;
  /** Starts delivering the document's channel, beginning with what it retains since this node last read it. */
  subscribe(doc: DocName): void;
  unsubscribe(doc: DocName): void;
  /**
   * Where this node stands on the document's channel: an opaque position that
   * covers every message delivered to it so far. Undefined when the adapter
   * keeps no positions (the memory medium) or nothing was read yet.
   */
  channelPosition?(doc: DocName): string | undefined;
  /**
   * This node, a home of `doc`, has durably stored everything of the channel up
   * to `position`. The adapter may drop what every one of `homes` (the live
   * homes now) has stored; a home that never said so holds everything.
   */
  markStored?(doc: DocName, position: string, homes: readonly NodeId[]): void;
  /** The last value written under `name`, or undefined. Rejects while the adapter is down. */
  getRecord(name: string): Promise<Uint8Array | undefined>;
  /** Writes `value` under `name` and tells every other member. Rejects while the adapter is down. */
  putRecord(name: string, value: Uint8Array): Promise<void>;
  /**
   * Publishes `message` and resolves once the medium holds it (Redis answered the
   * XADD): what `--ack replicated` waits for. Rejects BACKPLANE_DOWN when it did not leave.
   */
  publishAcked(doc: DocName, message: Uint8Array): Promise<void>;
  status(): BackplaneStatus;
  /** Leaves the cluster (others see it gone at once) and disconnects. */
  close(): Promise<void>;
}

/** A backplane whose medium arbitrates owner leases and fenced writes (backplane-contract.ts, leases part). */
export interface LeasingBackplane extends Backplane {
  /**
   * Takes the document's owner lease for `ttlMs` unless another node holds an
   * unexpired one. Every grant has a new, greater token, also when this node held
   * the lease before. With `fromStart` the backlog is everything the channel
   * retains, this node's own messages included (for a node that may lack one of
   * its own writes). Rejects while the adapter is down.
   */
  acquireLease(doc: DocName, ttlMs: number, fromStart?: boolean): Promise<LeaseAttempt>;
  /** Extends the lease by `ttlMs` from now; false when `token` is no longer this node's unexpired lease. */
  renewLease(doc: DocName, token: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease up at once (keeping the token counter), if `token` is still this node's. */
  releaseLease(doc: DocName, token: number): Promise<void>;
  /**
   * In one atomic step of the medium, only if `token` is this node's unexpired
   * lease of `doc` and none of `records` exists yet: publishes `message` (if
   * any) on the channel and writes `records` under the document. Otherwise
   * rejects FENCED and changes nothing. Rejects BACKPLANE_DOWN while down.
   */
  publishFenced(
    doc: DocName,
    token: number,
    message: Uint8Array | null,
    records: readonly DocRecord[],
  ): Promise<void>;
  /** A record written by `publishFenced` (kept at least 24 h after the document's last one). */
  getDocRecord(doc: DocName, key: string): Promise<Uint8Array | undefined>;
}

export const hasLeases = (backplane: Backplane): backplane is LeasingBackplane =>
  'acquireLease' in backplane;

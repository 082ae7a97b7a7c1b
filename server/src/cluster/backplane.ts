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
 *   written under a name, and an event on every member when it changes.
 *
 * Delivery is a hint, never a guarantee: an adapter may lose messages (an
 * outage, a trim, a restart without data). It says so with `resync`, and the
 * state-vector exchange of the layer above repairs whatever was lost.
 *
 * Messages are opaque bytes here; what they mean is the replicator's business
 * (standard y-protocols messages, wrapped by peer-codec.ts when directed).
 */

/** What an adapter tells the node. Called only between `start` and `close`. */
export interface BackplaneEvents {
  /** `nodeId` is live now (it joined, or this node just learned of it). */
  memberUp(nodeId: string): void;
  /** `nodeId` stopped heartbeating or left. */
  memberDown(nodeId: string): void;
  /** A message another node sent to this one with `send`. */
  direct(from: string, frame: Uint8Array): void;
  /** A message published on a channel this node subscribes to, by another node (or an earlier run of this one). */
  docMessage(doc: string, from: string, message: Uint8Array): void;
  /** Another node wrote the record `name` (read it with getRecord). */
  recordChanged(name: string): void;
  /**
   * The adapter was cut off (e.g. Redis was down) and is back: messages may have
   * been lost both ways, so every open document must exchange state vectors again.
   */
  resync(): void;
}

export type BackplaneState = 'connecting' | 'connected' | 'down';

export interface BackplaneStatus {
  readonly kind: 'redis' | 'memory';
  readonly state: BackplaneState;
  /** Live members, this node included, sorted. */
  readonly members: string[];
  /** Document channels this node subscribes to. */
  readonly channels: number;
  /** Messages published or sent, and those that could not be (adapter down). */
  readonly messagesOut: number;
  readonly messagesDropped: number;
  readonly messagesIn: number;
  /** Times the adapter lost its connection since start. */
  readonly outages: number;
  /** Milliseconds since the adapter went down (only while down). */
  readonly downForMs?: number;
  readonly lastError?: string;
}

export interface Backplane {
  readonly nodeId: string;
  /** Joins the cluster; events flow until `close`. Resolves once joined, or rejects (no backplane reachable). */
  start(events: BackplaneEvents): Promise<void>;
  /** Live members, this node included. While the adapter is down: the last known. */
  members(): readonly string[];
  isLive(nodeId: string): boolean;
  /** Sends `frame` to `to`; false when it certainly did not leave (adapter down). */
  send(to: string, frame: Uint8Array): boolean;
  /** Publishes `message` on the document's channel; false when it certainly did not leave. */
  publish(doc: string, message: Uint8Array): boolean;
  /** Starts delivering the document's channel, beginning with what it retains since this node last read it. */
  subscribe(doc: string): void;
  unsubscribe(doc: string): void;
  /** The last value written under `name`, or undefined. Rejects while the adapter is down. */
  getRecord(name: string): Promise<Uint8Array | undefined>;
  /** Writes `value` under `name` and tells every other member. Rejects while the adapter is down. */
  putRecord(name: string, value: Uint8Array): Promise<void>;
  status(): BackplaneStatus;
  /** Leaves the cluster (others see it gone at once) and disconnects. */
  close(): Promise<void>;
}

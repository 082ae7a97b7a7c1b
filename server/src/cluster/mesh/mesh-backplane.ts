/**
 * The Backplane on the WebSocket mesh (`--peers`): no shared medium, only one
 * authenticated peer link per pair of nodes (peer-links.ts, peer-auth.ts), and
 * every message of the port is a frame on it (peer-codec.ts; directed frames of
 * the layer above pass through unchanged).
 *
 * - Membership: this node and every node it has ever linked with (so placement
 *   does not move when a link drops); a member is live while its link is up.
 * - Channels: a node tells each linked node which documents it subscribes to
 *   (`subscribe`, `leave`, again for all of them when a link comes up); a publish
 *   goes to the linked subscribers. A publisher retains its last `retain`
 *   messages (at most 256 KiB) of each document it subscribes to, numbered, so
 *   a subscriber that subscribes again resumes after the last one it read from
 *   that publisher. When a link comes back the subscriptions ask only for what
 *   comes next: the state-vector exchange above sends what was missed, once.
 * - Relay: every node tells the others which links it has up (`links`). A node
 *   that receives a published message forwards it, once, to the subscribers
 *   that have no link with the publisher (a chain a — b — c, or one broken link
 *   of a full mesh), so they hear it from the relay within milliseconds.
 * - Records: each node holds the newest value of every record (by write time,
 *   then writer id), sends it on every write and to a node whose link comes up.
 * - No leases: nothing arbitrates between nodes that cannot see each other, so
 *   this is a plain `Backplane`, not a `LeasingBackplane`.
 */
import { assertNever } from '../../assert-never.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DocName } from '../../doc-name.js';
import { StateweaveError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Backplane, BackplaneEvents, BackplaneStatus } from '../backplane.js';
import type { ClusterMetrics } from '../cluster-metrics.js';
import { createPeerAuth } from '../peer-auth.js';
import { decodePeerFrame, encodePeerFrame, isPeerFrame, type PeerFrame } from '../peer-codec.js';
import { createPeerLinks, type PeerStatus } from '../peer-links.js';
import { isNodeId, type NodeId } from '../../node-id.js';

export interface MeshBackplaneOptions {
  readonly nodeId: NodeId;
  /** Peer base URLs (`ws://host:port`). */
  readonly peers: readonly string[];
  /** Shared by all nodes of the mesh; without one every dial is refused. */
  readonly peerSecret: string | undefined;
  readonly logger: Logger;
  readonly metrics: ClusterMetrics;
  readonly maxFrameBytes: number;
  /** @default 5000 */
  readonly heartbeatMs?: number;
  /** @default 100 */
  readonly backoffBaseMs?: number;
  /** @default 3000 */
  readonly backoffMaxMs?: number;
  /** Messages retained per subscribed document for late subscribers. @default 64 */
  readonly retain?: number;
}

export interface MeshBackplane extends Backplane {
  /** Accepts a peer's upgrade request (routed here by its header). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** The links as they stand (configured URLs, node ids, states). */
  peerStatus(): PeerStatus[];
}

interface Retained {
  readonly seq: number;
  readonly frame: Uint8Array;
}

/** What a document retains: the newest messages, at most `retain` of them and this many bytes. */
interface Retention {
  readonly messages: Retained[];
  bytes: number;
}
const MAX_RETAINED_BYTES = 256 * 1024;

interface StoredRecord {
  readonly writtenAt: number;
  readonly writer: string;
  readonly value: Uint8Array;
}

/** A subscribe's `after` that asks for nothing retained, only what is published next. */
const ONLY_NEW = Number.MAX_SAFE_INTEGER;

/** Read positions kept per publisher (a subscriber resumes after them); the oldest go first. */
const MAX_POSITIONS = 10_000;

export const createMeshBackplane = (options: MeshBackplaneOptions): MeshBackplane => {
  const { nodeId, logger } = options;
  const retain = options.retain ?? 64;
  let events: BackplaneEvents | undefined;
  let started = false;
  /** Documents this node subscribes to → what it retains of its own messages. */
  const subscribed = new Map<DocName, Retention>();
  /** Document → linked nodes that subscribe to it. */
  const subscribers = new Map<string, Set<NodeId>>();
  /** Publisher → document → the last of its messages this node read. */
  const positions = new Map<NodeId, Map<string, number>>();
  /** Node → the nodes it last said it has links up to. */
  const linksOf = new Map<NodeId, ReadonlySet<NodeId>>();
  const records = new Map<string, StoredRecord>();
  const counts = { out: 0, dropped: 0, in: 0 };
  /**
   * Numbers this node's messages. It starts from the clock (in µs), so a
   * restarted node numbers after its earlier run and a subscriber that read up
   * to some message of that run gets everything of this one.
   */
  let seq = Date.now() * 1000;

  const sendPeer = (to: NodeId, frame: Uint8Array): boolean => {
    if (links.send(to, frame)) {
      counts.out++;
      return true;
    }
    counts.dropped++;
    return false;
  };

  const linked = (a: NodeId, b: NodeId): boolean =>
    (linksOf.get(a)?.has(b) ?? false) || (linksOf.get(b)?.has(a) ?? false);

  const upLinks = (): NodeId[] => links.knownNodes().filter((id) => links.isConnected(id));

  const announceLinks = (): void => {
    const frame = encodePeerFrame({ type: 'links', nodes: upLinks() });
    for (const id of upLinks()) sendPeer(id, frame);
  };

  const recordFrame = (name: string, record: StoredRecord): Uint8Array =>
    encodePeerFrame({ type: 'record', name, ...record });

  const subscribeFrame = (peer: NodeId, doc: DocName, after?: number): Uint8Array =>
    encodePeerFrame({
      type: 'subscribe',
      doc,
      after: after ?? positions.get(peer)?.get(doc) ?? 0,
    });

  const notePosition = (peer: NodeId, doc: string, at: number): void => {
    let read = positions.get(peer);
    if (!read) positions.set(peer, (read = new Map()));
    read.delete(doc); // re-inserted last: the map's order is the order of use
    read.set(doc, at);
    if (read.size > MAX_POSITIONS) read.delete(read.keys().next().value!);
  };

  const onUp = (peer: NodeId): void => {
    announceLinks();
    // Only what comes next: what was missed while the link was down is the
    // state-vector exchange's (memberUp), which sends each side only what it lacks.
    for (const doc of subscribed.keys()) sendPeer(peer, subscribeFrame(peer, doc, ONLY_NEW));
    for (const [name, record] of records) sendPeer(peer, recordFrame(name, record));
    events?.memberUp(peer);
  };

  const onDown = (peer: NodeId): void => {
    for (const [doc, nodes] of subscribers)
      if (nodes.delete(peer) && nodes.size === 0) subscribers.delete(doc);
    linksOf.delete(peer);
    announceLinks();
    events?.memberDown(peer);
  };

  /** A message `from` published: delivered here if subscribed, and relayed to whom `from` cannot reach. */
  const onPublished = (from: NodeId, doc: DocName, at: number, message: Uint8Array): void => {
    if (subscribed.has(doc)) {
      notePosition(from, doc, at);
      counts.in++;
      events?.docMessage(doc, from, message);
    }
    let relay: Uint8Array | undefined;
    for (const to of subscribers.get(doc) ?? []) {
      if (to === from || linked(from, to) || !links.isConnected(to)) continue;
      relay ??= encodePeerFrame({ type: 'doc', doc, message });
      sendPeer(to, relay);
    }
  };

  const onSubscribe = (from: NodeId, doc: DocName, after: number): void => {
    let nodes = subscribers.get(doc);
    if (!nodes) subscribers.set(doc, (nodes = new Set()));
    nodes.add(from);
    for (const kept of subscribed.get(doc)?.messages ?? [])
      if (kept.seq > after) sendPeer(from, kept.frame);
  };

  const onRecord = (name: string, record: StoredRecord): void => {
    const mine = records.get(name);
    if (
      mine &&
      (mine.writtenAt > record.writtenAt ||
        (mine.writtenAt === record.writtenAt && mine.writer >= record.writer))
    )
      return;
    records.set(name, record);
    events?.recordChanged(name);
  };

  const handle = (from: NodeId, frame: PeerFrame): void => {
    switch (frame.type) {
      case 'direct':
        return events?.direct(from, frame.frame);
      case 'publish': // the codec checked every name
        return onPublished(from, frame.doc, frame.seq, frame.message);
      case 'doc':
        if (!subscribed.has(frame.doc)) return;
        counts.in++;
        return events?.docMessage(frame.doc, from, frame.message);
      case 'subscribe':
        return onSubscribe(from, frame.doc, frame.after);
      case 'leave': {
        const nodes = subscribers.get(frame.doc);
        if (nodes?.delete(from) && nodes.size === 0) subscribers.delete(frame.doc);
        return;
      }
      case 'links':
        linksOf.set(from, new Set(frame.nodes.filter(isNodeId)));
        return;
      case 'record':
        return onRecord(frame.name, frame);
      default:
        return assertNever(frame, 'peer frame');
    }
  };

  const onFrame = (from: NodeId, frame: Uint8Array): void => {
    if (!events) return;
    if (!isPeerFrame(frame)) return events.direct(from, frame);
    try {
      handle(from, decodePeerFrame(frame));
    } catch (err) {
      logger.warn({ peer: from, reason: (err as Error).message }, 'peer frame refused');
    }
  };

  const links = createPeerLinks({
    nodeId,
    urls: options.peers,
    // Without a secret there can be no peers; a random one refuses every dial.
    auth: createPeerAuth({ nodeId, secret: options.peerSecret ?? crypto.randomUUID() }),
    logger,
    metrics: options.metrics,
    maxFrameBytes: options.maxFrameBytes,
    maxBufferedBytes: 64 * 1024 * 1024,
    heartbeatMs: options.heartbeatMs ?? 5000,
    backoffBaseMs: options.backoffBaseMs ?? 100,
    backoffMaxMs: options.backoffMaxMs ?? 3000,
    onUp,
    onDown,
    onFrame,
  });

  const members = (): NodeId[] => [nodeId, ...links.knownNodes()].sort();

  const backplane: MeshBackplane = {
    nodeId,
    async start(handlers) {
      events = handlers;
      started = true;
      links.start();
    },
    members,
    isLive: (id) => id === nodeId || links.isConnected(id),
    send(to, frame) {
      // A directed frame that looks like one of ours travels wrapped.
      return sendPeer(to, isPeerFrame(frame) ? encodePeerFrame({ type: 'direct', frame }) : frame);
    },
    publish(doc, message) {
      if (!started) return false;
      const frame = encodePeerFrame({ type: 'publish', doc, seq: ++seq, message });
      const kept = subscribed.get(doc);
      if (kept) {
        kept.messages.push({ seq, frame });
        kept.bytes += frame.byteLength;
        while (
          kept.messages.length > retain ||
          (kept.bytes > MAX_RETAINED_BYTES && kept.messages.length > 1)
        )
          kept.bytes -= kept.messages.shift()!.frame.byteLength;
      }
      for (const to of subscribers.get(doc) ?? []) sendPeer(to, frame);
      return true;
    },
    subscribe(doc) {
      if (subscribed.has(doc)) return;
      subscribed.set(doc, { messages: [], bytes: 0 });
      for (const peer of upLinks()) sendPeer(peer, subscribeFrame(peer, doc));
    },
    unsubscribe(doc) {
      if (!subscribed.delete(doc)) return;
      const frame = encodePeerFrame({ type: 'leave', doc });
      for (const peer of upLinks()) sendPeer(peer, frame);
    },
    async getRecord(name) {
      return records.get(name)?.value.slice();
    },
    async putRecord(name, value) {
      const last = records.get(name)?.writtenAt ?? 0;
      const record = {
        writtenAt: Math.max(Date.now(), last + 1),
        writer: nodeId,
        value: value.slice(),
      };
      records.set(name, record);
      const frame = recordFrame(name, record);
      for (const peer of upLinks()) sendPeer(peer, frame);
    },
    async publishAcked(doc, message) {
      // No medium holds it: acknowledged once it left for every linked subscriber.
      if (!backplane.publish(doc, message)) throw new StateweaveError('BACKPLANE_DOWN');
    },
    handleUpgrade: (req, socket, head) => links.handleUpgrade(req, socket, head),
    peerStatus: () => links.status(),
    status: (): BackplaneStatus => ({
      kind: 'mesh',
      state: started ? 'connected' : 'connecting',
      members: members(),
      channels: subscribed.size,
      messagesOut: counts.out,
      messagesDropped: counts.dropped,
      messagesIn: counts.in,
      outages: 0,
    }),
    async close() {
      events = undefined;
      started = false;
      await links.close();
    },
  };
  return backplane;
};

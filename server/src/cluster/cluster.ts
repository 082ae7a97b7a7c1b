/**
 * The cluster layer of one node: peer links, placement and replication, wired
 * together. The composition root builds it with the hub and routes peer upgrade
 * requests (recognised by their header) here; everything else is internal.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BackplaneStatus } from './backplane.js';
import { createClusterMetrics } from './cluster-metrics.js';
import { httpBaseOf, type ForwardRequest, type ForwardResponse } from './forward.js';
import type { OwnerLeases } from './owner-leases.js';
import { createPeerAuth, PEER_HEADER } from './peer-auth.js';
import { createPeerLinks, type PeerStatus } from './peer-links.js';
import { createPlacement, type Placement } from './placement.js';
import { createReplicator } from './replicator.js';
import { createStoredCatchUp, type StoredCatchUp } from './stored-catch-up.js';

export interface ClusterOptions {
  readonly nodeId: string;
  /** Peer base URLs (`ws://host:port`). */
  readonly peers: readonly string[];
  /** Shared by all nodes of the cluster; required when `peers` is not empty. */
  readonly peerSecret: string | undefined;
  readonly replicationFactor: number;
  readonly hub: () => Hub;
  /** Names of the documents in this node's store (for catch-up on link up). */
  readonly listDocs: () => AsyncIterable<string>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxFrameBytes: number;
  /** @default 5000 */
  readonly peerHeartbeatMs?: number;
  /** @default 10000 */
  readonly antiEntropyMs?: number;
  /** @default 100 */
  readonly backoffBaseMs?: number;
  /** @default 3000 */
  readonly backoffMaxMs?: number;
  /** Called when a link to a peer comes up (after replication's own handling), e.g. to compare function deployments. */
  readonly onPeerUp?: (nodeId: string) => void;
}

export interface ClusterStatus {
  readonly nodeId: string;
  readonly replicationFactor: number;
  /** Every node this one knows of, itself included, sorted. */
  readonly members: string[];
  readonly peers: PeerStatus[];
  /** Documents replication holds open, and document-peer channels among them. */
  readonly replication: { documents: number; channels: number };
  /** The Redis backplane's state, when the node runs on one (`--redis`). */
  readonly backplane?: BackplaneStatus;
  /** Owner leases held here and owner calls waiting for another node's answer (backplane only). */
  readonly owner?: { readonly leasesHeld: number; readonly callsWaiting: number };
}

/** How `owner` calls run on a backplane (the mesh forwards them over HTTP instead). */
export interface ClusterOwners {
  /** Runs the call on `nodeId` (the primary) over the backplane and returns its answer. */
  forward(nodeId: string, request: ForwardRequest): Promise<ForwardResponse>;
  /** The lease gate every owner call run on this node goes through (available after start). */
  readonly gate: OwnerLeases;
}

export interface Cluster {
  readonly nodeId: string;
  readonly placement: Placement;
  /** The first reachable home of `doc` (this node counts as reachable): where `owner` work runs. */
  primaryFor(doc: string): string | undefined;
  /**
   * The HTTP base URL of a peer (from its `--peers` entry, ws→http), for
   * forwarding a request to it, e.g. an `owner` invocation to the primary.
   * Undefined for this node and for peers known only from their own dial.
   */
  httpUrlOf(nodeId: string): string | undefined;
  /**
   * With `--ack replicated` (backplane only): publishes a change made on this
   * node and resolves once the medium holds it (the hub's `replicate` hook).
   */
  readonly replicate?: (doc: string, frame: Uint8Array) => Promise<void>;
  /** Present on a backplane: owner calls are forwarded over it and fenced by leases. */
  readonly owners?: ClusterOwners;
  /** True for upgrade requests from peers (they carry the peer header). */
  isPeerUpgrade(req: IncomingMessage): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Hub hook (see HubOptions.onLease). */
  onLease(name: string): void;
  start(): void;
  status(): ClusterStatus;
  close(): Promise<void>;
}

const TICK_MS = 1000;

export const createCluster = (options: ClusterOptions): Cluster => {
  const { nodeId, logger } = options;
  const log = logger.child({ component: 'cluster', node: nodeId });
  const metrics = createClusterMetrics(options.metrics);
  const heartbeatMs = options.peerHeartbeatMs ?? 5000;
  // Without a secret there can be no peers; a random one refuses every dial.
  const auth = createPeerAuth({ nodeId, secret: options.peerSecret ?? crypto.randomUUID() });
  // Late-bound: links and replicator need each other.
  let replicator: ReturnType<typeof createReplicator> | undefined;
  const links = createPeerLinks({
    nodeId,
    urls: options.peers,
    auth,
    logger: log,
    metrics,
    maxFrameBytes: options.maxFrameBytes,
    maxBufferedBytes: 64 * 1024 * 1024,
    heartbeatMs,
    backoffBaseMs: options.backoffBaseMs ?? 100,
    backoffMaxMs: options.backoffMaxMs ?? 3000,
    onUp: (peer) => {
      replicator?.onLinkUp(peer);
      catchUp?.onLinkUp(peer);
      options.onPeerUp?.(peer);
    },
    onDown: (peer) => replicator?.onLinkDown(peer),
    onFrame: (peer, frame) => replicator?.onFrame(peer, frame),
  });
  const placement = createPlacement({
    selfId: nodeId,
    replicationFactor: options.replicationFactor,
    members: () => links.knownNodes(),
  });
  let timer: NodeJS.Timeout | undefined;
  let catchUp: StoredCatchUp | undefined;

  return {
    nodeId,
    placement,
    primaryFor: (doc) => placement.primaryFor(doc, links.isConnected),
    httpUrlOf: (peer) => {
      const url = links.status().find((p) => p.nodeId === peer)?.url;
      return url === undefined ? undefined : httpBaseOf(url);
    },
    isPeerUpgrade: (req) => req.headers[PEER_HEADER] !== undefined,
    handleUpgrade: (req, socket, head) => links.handleUpgrade(req, socket, head),
    onLease: (name) => replicator?.onLease(name),

    start() {
      replicator = createReplicator({
        selfId: nodeId,
        hub: options.hub(),
        placement,
        logger: log,
        send: links.send,
        isConnected: links.isConnected,
        antiEntropyMs: options.antiEntropyMs ?? 10_000,
        maxPendingFrames: 4096,
        demandLingerMs: 3000,
      });
      const started = replicator;
      catchUp = createStoredCatchUp({
        listDocs: options.listDocs,
        placement,
        isConnected: links.isConnected,
        syncOnce: (doc, peer, timeoutMs) => started.syncOnce(doc, peer, timeoutMs),
        logger: log,
      });
      timer = setInterval(() => replicator?.tick(), TICK_MS);
      timer.unref();
      links.start();
      if (options.peers.length > 0)
        log.info(
          { peers: options.peers, replicationFactor: options.replicationFactor },
          'cluster starting',
        );
    },

    status: () => ({
      nodeId,
      replicationFactor: options.replicationFactor,
      members: [nodeId, ...links.knownNodes()].sort(),
      peers: links.status(),
      replication: replicator?.stats() ?? { documents: 0, channels: 0 },
    }),

    async close() {
      clearInterval(timer);
      catchUp?.close();
      replicator?.close();
      await links.close();
    },
  };
};

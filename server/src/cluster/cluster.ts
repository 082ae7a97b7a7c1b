/**
 * The cluster layer of one node on the WebSocket mesh: peer links, placement,
 * replication and request/response between nodes, wired together. Everything
 * nodes say to each other travels on the one authenticated peer link per pair:
 * replication frames (peer-codec.ts) and requests (rpc-codec.ts: forwarded
 * `owner` calls, the function registry's push and pull), told apart by their
 * first byte. The composition root builds it with the hub and routes peer
 * upgrade requests (recognised by their header) here; everything else is internal.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import type { Metrics } from '../metrics.js';
import type { BackplaneStatus } from './backplane.js';
import type { Forwarder, ForwardRequest, ForwardResponse } from '../node-ports.js';
import { createBackplaneRpc } from './backplane-rpc.js';
import { createClusterMetrics } from './cluster-metrics.js';
import { createNodeRequests, type CatchUpCursors, type RegistryRequest } from './node-requests.js';
import { createOwnerForwarding } from './owner-forwarding.js';
import { createOwnerMetrics } from './owner-metrics.js';
import type { OwnerLeases } from './owner-leases.js';
import { createPeerAuth, PEER_HEADER } from './peer-auth.js';
import { createPeerLinks, type PeerStatus } from './peer-links.js';
import { createPlacement, type Placement } from './placement.js';
import { createReplicator } from './replicator.js';
import { isRpcFrame, type RpcReply, type RpcRequest } from './rpc-codec.js';
import { createStoredCatchUp, type StoredCatchUp, type StoredChanges } from './stored-catch-up.js';

export interface ClusterOptions {
  readonly nodeId: NodeId;
  /** Peer base URLs (`ws://host:port`). */
  readonly peers: readonly string[];
  /** Shared by all nodes of the cluster; required when `peers` is not empty. */
  readonly peerSecret: string | undefined;
  readonly replicationFactor: number;
  readonly hub: Hub;
  /** Names of the documents in this node's store (for catch-up on link up). */
  readonly listDocs: () => AsyncIterable<string>;
  /** This node's change index, so a catch-up sends only what changed since the last one. */
  readonly storedChanges?: StoredChanges;
  /** Where other nodes' catch-ups to this node stand (in this node's store). */
  readonly catchUpCursors?: CatchUpCursors;
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
  /** How long a forwarded owner call waits for the primary's answer. @default 30000 */
  readonly ownerCallTimeoutMs?: number;
}

export interface ClusterStatus {
  readonly nodeId: NodeId;
  readonly replicationFactor: number;
  /** Every node this one knows of, itself included, sorted. */
  readonly members: NodeId[];
  readonly peers: PeerStatus[];
  /** Documents replication holds open, and document-peer channels among them. */
  readonly replication: { documents: number; channels: number };
  /** The Redis backplane's state, when the node runs on one (`--redis`). */
  readonly backplane?: BackplaneStatus;
  /** Owner leases held here and owner calls waiting for another node's answer (backplane only). */
  readonly owner?: { readonly leasesHeld: number; readonly callsWaiting: number };
}

/**
 * What this node answers other nodes with, handed to start(): it is built after
 * the cluster (the functions route their `owner` calls through the cluster).
 */
export interface ClusterInbound {
  /** Runs an `owner` call another node forwarded here (authenticated with its authorization). */
  readonly runOwnerCall: (from: NodeId, request: ForwardRequest) => Promise<ForwardResponse>;
  /** The node's function registry (registry-sync.ts on the mesh, backplane-registry.ts). @default none */
  readonly registry?: ClusterRegistry;
}

/** The function registry as the cluster drives it. */
export interface ClusterRegistry {
  /**
   * Deployments may differ now: a link to a peer came up, a member joined, the
   * backplane is back, or the deployment record changed (`detail` names which).
   */
  onLinkUp(detail: string): void;
  /** Answers a peer's registry request (the mesh's registry-sync.ts). @default none */
  readonly answer?: (from: NodeId, request: RegistryRequest) => Promise<string>;
}

/** How `owner` calls reach the primary: over the peer link or the backplane, never over HTTP. */
export interface ClusterOwners extends Forwarder {
  /**
   * On a backplane: the lease gate every owner call run on this node goes
   * through (available after start). The mesh has none: its primary is the
   * first connected home, as each node sees it.
   */
  readonly gate?: OwnerLeases;
}

export interface Cluster {
  readonly nodeId: NodeId;
  readonly placement: Placement;
  /** The first reachable home of `doc` (this node counts as reachable): where `owner` work runs. */
  primaryFor(doc: string): NodeId | undefined;
  /** The primary of `doc` when that is another node (where `owner` calls on it run), else undefined. */
  readonly ownerOf: (doc: string) => NodeId | undefined;
  /** Asks node `to` (request/response over the cluster's medium; backplane-rpc.ts for failures). */
  request(to: NodeId, request: RpcRequest, timeoutMs?: number): Promise<RpcReply>;
  /** Forwards owner calls to the primary (on a backplane also fenced by leases). */
  readonly owners: ClusterOwners;
  /** True for upgrade requests from peers (they carry the peer header). */
  isPeerUpgrade(req: IncomingMessage): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Opens the links (or joins the backplane) and starts replication; answers other nodes with `inbound`. */
  start(inbound: ClusterInbound): void;
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
  // Late-bound: links, replicator and requests need each other.
  let replicator: ReturnType<typeof createReplicator> | undefined;
  let registry: ClusterRegistry | undefined;
  const cursors = options.catchUpCursors ? { cursors: options.catchUpCursors } : {};
  // Owner calls and registry requests are answered once start() hands in what
  // answers them (no peer can ask before: the links open there).
  let serve = createNodeRequests({ hub: options.hub, ...cursors });
  const rpc = createBackplaneRpc({
    backplane: {
      send: (to, frame) => links.send(to, frame),
      isLive: (id) => links.isConnected(id),
    },
    serve: (from, request) => serve(from, request),
    logger: log,
  });
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
      registry?.onLinkUp(peer);
    },
    onDown: (peer) => {
      replicator?.onLinkDown(peer);
      rpc.onMemberDown(peer);
    },
    onFrame: (peer, frame) =>
      isRpcFrame(frame) ? rpc.onFrame(peer, frame) : replicator?.onFrame(peer, frame),
  });
  const placement = createPlacement({
    selfId: nodeId,
    replicationFactor: options.replicationFactor,
    members: () => links.knownNodes(),
  });
  let timer: NodeJS.Timeout | undefined;
  let catchUp: StoredCatchUp | undefined;
  const primaryFor = (doc: string): NodeId | undefined =>
    placement.primaryFor(doc, links.isConnected);

  return {
    nodeId,
    placement,
    primaryFor,
    ownerOf: (doc) => {
      const primary = primaryFor(doc);
      return primary !== nodeId ? primary : undefined;
    },
    owners: createOwnerForwarding(
      rpc,
      options.ownerCallTimeoutMs ?? 30_000,
      createOwnerMetrics(options.metrics),
    ),
    request: (to, request, timeoutMs) => rpc.request(to, request, timeoutMs),
    isPeerUpgrade: (req) => req.headers[PEER_HEADER] !== undefined,
    handleUpgrade: (req, socket, head) => links.handleUpgrade(req, socket, head),
    start(inbound) {
      registry = inbound.registry;
      const answer = inbound.registry?.answer;
      serve = createNodeRequests({
        hub: options.hub,
        runOwnerCall: inbound.runOwnerCall,
        ...(answer ? { answerRegistry: answer } : {}),
        ...cursors,
      });
      replicator = createReplicator({
        selfId: nodeId,
        hub: options.hub,
        placement,
        logger: log,
        send: links.send,
        isConnected: links.isConnected,
        antiEntropyMs: options.antiEntropyMs ?? 10_000,
        maxPendingFrames: 4096,
        demandLingerMs: 3000,
      });
      catchUp = createStoredCatchUp({
        listDocs: options.listDocs,
        ...(options.storedChanges ? { changes: options.storedChanges } : {}),
        placement,
        members: () => [nodeId, ...links.knownNodes()],
        isConnected: links.isConnected,
        request: (to, request, timeoutMs) => rpc.request(to, request, timeoutMs),
        hub: options.hub,
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
      rpc.close();
      replicator?.close();
      await links.close();
    },
  };
};

/**
 * The cluster layer as the rest of the node sees it, whichever Backplane
 * adapter carries it (backplane-cluster.ts builds it; mesh/mesh-cluster.ts for
 * `--peers`). The composition root builds it with the hub and routes peer
 * upgrade requests (recognised by their header) here; everything else is internal.
 */
import type { DocName } from '../doc-name.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { NodeId } from '../node-id.js';
import type { BackplaneStatus } from './backplane.js';
import type { Forwarder, ForwardRequest, ForwardResponse } from '../node-ports.js';
import type { NodeRequestsOptions, RegistryRequest } from './node-requests.js';
import type { OwnerLeases } from './owner-leases.js';
import type { PeerStatus } from './peer-links.js';
import type { Placement } from './placement.js';
import type { PresenceStatus } from './presence-placement.js';
import type { RpcReply, RpcRequest } from './rpc-codec.js';

export interface ClusterStatus {
  readonly nodeId: NodeId;
  readonly replicationFactor: number;
  /** Every node this one knows of, itself included, sorted. */
  readonly members: NodeId[];
  readonly peers: PeerStatus[];
  /** Documents replication holds open, and document-peer channels among them. */
  readonly replication: { documents: number; channels: number };
  /** The backplane's state (`kind` says which adapter: mesh, redis or memory). */
  readonly backplane?: BackplaneStatus;
  /** Owner leases held here (none on the mesh) and owner calls waiting for another node's answer. */
  readonly owner?: { readonly leasesHeld: number; readonly callsWaiting: number };
  /** With `--placement presence`: this node's region and the documents placed by region. */
  readonly presence?: PresenceStatus;
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
  /** Deletes here what another node deleted (cluster/tombstones.ts). @default none */
  readonly receiveTombstones?: NodeRequestsOptions['receiveTombstones'];
  /** A node is (back) up: a link, a member, or each of them after a backplane resync. @default none */
  readonly onPeerUp?: (peer: NodeId) => void;
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
  primaryFor(doc: DocName): NodeId | undefined;
  /** The primary of `doc` when that is another node (where `owner` calls on it run), else undefined. */
  readonly ownerOf: (doc: DocName) => NodeId | undefined;
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

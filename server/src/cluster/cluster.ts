/**
 * The cluster layer as the rest of the node sees it, whichever Backplane
 * adapter carries it (backplane-cluster.ts builds it; mesh/mesh-cluster.ts for
 * `--peers`). The composition root builds it with the hub and routes peer
 * upgrade requests (recognised by their header) here; everything else is internal.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { BackplaneStatus } from './backplane.js';
import type { Forwarder } from '../node-ports.js';
import type { OwnerLeases } from './owner-leases.js';
import type { PeerStatus } from './peer-links.js';
import type { Placement } from './placement.js';
import type { RpcReply, RpcRequest } from './rpc-codec.js';

export interface ClusterStatus {
  readonly nodeId: string;
  readonly replicationFactor: number;
  /** Every node this one knows of, itself included, sorted. */
  readonly members: string[];
  readonly peers: PeerStatus[];
  /** Documents replication holds open, and document-peer channels among them. */
  readonly replication: { documents: number; channels: number };
  /** The backplane's state (`kind` says which adapter: mesh, redis or memory). */
  readonly backplane?: BackplaneStatus;
  /** Owner leases held here (none on the mesh) and owner calls waiting for another node's answer. */
  readonly owner?: { readonly leasesHeld: number; readonly callsWaiting: number };
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
  readonly nodeId: string;
  readonly placement: Placement;
  /** The first reachable home of `doc` (this node counts as reachable): where `owner` work runs. */
  primaryFor(doc: string): string | undefined;
  /** Asks node `to` (request/response over the cluster's medium; backplane-rpc.ts for failures). */
  request(to: string, request: RpcRequest, timeoutMs?: number): Promise<RpcReply>;
  /**
   * With `--ack replicated` (backplane only): publishes a change made on this
   * node and resolves once the medium holds it (the hub's `replicate` hook).
   */
  readonly replicate?: (doc: string, frame: Uint8Array) => Promise<void>;
  /** Forwards owner calls to the primary (on a backplane also fenced by leases). */
  readonly owners: ClusterOwners;
  /** True for upgrade requests from peers (they carry the peer header). */
  isPeerUpgrade(req: IncomingMessage): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Hub hook (see HubOptions.onLease). */
  onLease(name: string): void;
  start(): void;
  status(): ClusterStatus;
  close(): Promise<void>;
}

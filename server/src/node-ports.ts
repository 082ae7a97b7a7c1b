/**
 * The ports through which the edges (http/, transport/, functions/) reach the
 * other nodes of a cluster, whatever carries them (the WebSocket mesh or a
 * Redis backplane). Types only: server.ts hands in what cluster/ builds, so
 * the edges import nothing from cluster/ (eslint.config.js).
 */
import type { Deployment, DeploymentMeta } from './deployment.js';
import type { DocName } from './doc-name.js';
import type { NodeId } from './node-id.js';

/** An `owner` call as it travels to the document's primary. */
export interface ForwardRequest {
  readonly name: string;
  readonly body: string;
  readonly idempotencyKey?: string;
  /** The caller's `Authorization` header: the primary authenticates the call again. */
  readonly authorization?: string;
}

export interface ForwardResponse {
  readonly json: string;
  readonly replayed: boolean;
  readonly version: string;
}

/** Runs `owner` calls on another node (the document's primary). */
export interface Forwarder {
  /** Runs the request on `nodeId`; throws its error, or PRIMARY_UNREACHABLE. */
  forward(nodeId: NodeId, request: ForwardRequest): Promise<ForwardResponse>;
}

/** The node's own function deployment, as the cluster's registry needs it (functions/deployments.ts). */
export interface LocalDeployments {
  current(): Deployment | undefined;
  /** A peer's counter was seen (the Lamport clock moves past it). */
  observe(meta: DeploymentMeta): void;
  /**
   * Adopts `remote` if it is newer than the current deployment. `merged` when the
   * result is a new deployment (the current one had functions `remote` lacks):
   * that one must be pushed in turn.
   */
  offer(
    remote: Deployment,
  ): Promise<{ adopted: boolean; merged: boolean; current: DeploymentMeta | undefined }>;
}

export interface ReplicationReport {
  /** Peers (node ids) that hold this deployment now. */
  readonly replicatedTo: NodeId[];
  /** Peers that do not (node id, or the URL of one never reached), and why; they pull it when they are back. */
  readonly pending: Array<{ node: string; reason: string }>;
}

/** Deletes a document here and on every other node (cluster/tombstones.ts). */
export interface DocDeleter {
  /** `by` names the writer (`user:<sub>`); never throws for a node that is down: it is reported pending. */
  delete(doc: DocName, by: string): Promise<ReplicationReport>;
}

/** Hands a deploy accepted here to the rest of the cluster. */
export interface DeploymentSync {
  /** Never throws for a peer that is down: it is reported pending and catches up later. */
  push(deployment: Deployment): Promise<ReplicationReport>;
}

/**
 * The cluster layer's status as the HTTP API serves it (`GET /v1/cluster`, sent
 * whole as JSON; cluster/cluster.ts has the full type) and reads it (`/readyz`).
 */
export interface ClusterView {
  readonly nodeId: NodeId;
  /** The backplane's state, when the node runs on one. */
  readonly backplane?: { readonly kind: string; readonly state: string };
}

/**
 * What the homes of a document hold, as this node learns it by asking them
 * (cluster/home-vectors.ts): the input of `onStable` windows (functions/stable-windows.ts).
 */
export interface HomeVectors {
  /** True when this node is the document's primary now (where its windows fire). */
  isPrimary(doc: DocName): boolean;
  /**
   * Every home's state vector of `doc`, by node id, each asked at or after
   * `notBefore` (ms since the epoch); undefined when a home did not answer, or
   * when the last round is too recent to ask again (rounds are rate-limited).
   */
  vectors(doc: DocName, notBefore: number): Promise<ReadonlyMap<string, Uint8Array> | undefined>;
}

/**
 * The cluster layer of a node on the WebSocket mesh (`--peers`): the mesh
 * adapter of the Backplane port (mesh-backplane.ts) under the same cluster
 * layer as Redis (backplane-cluster.ts: channel replicator, stored catch-up,
 * requests between nodes). What only the mesh has: peer upgrade requests are
 * routed here, `/v1/cluster` lists the links, and `owner` calls run on the
 * first live home without a lease (nothing on a mesh can arbitrate one).
 */
import type { NodeId } from '../../node-id.js';
import type { Metrics } from '../../metrics.js';
import { createBackplaneCluster, type BackplaneClusterOptions } from '../backplane-cluster.js';
import type { Cluster } from '../cluster.js';
import { createClusterMetrics } from '../cluster-metrics.js';
import { PEER_HEADER } from '../peer-auth.js';
import { createMeshBackplane } from './mesh-backplane.js';

/** As on any backplane, without what the mesh decides itself. */
type SharedOptions = Omit<
  BackplaneClusterOptions,
  'backplane' | 'trackSoleHome' | 'acked' | 'ownerLeaseMs'
>;

export interface MeshClusterOptions extends SharedOptions {
  readonly nodeId: NodeId;
  /** Peer base URLs (`ws://host:port`). */
  readonly peers: readonly string[];
  /** Shared by all nodes of the cluster; required when `peers` is not empty. */
  readonly peerSecret: string | undefined;
  readonly metrics: Metrics;
  readonly maxFrameBytes: number;
  /** @default 5000 */
  readonly peerHeartbeatMs?: number;
}

export const createMeshCluster = (options: MeshClusterOptions): Cluster => {
  const { nodeId, peers, peerSecret, maxFrameBytes, peerHeartbeatMs, ...shared } = options;
  const mesh = createMeshBackplane({
    nodeId,
    peers,
    peerSecret,
    logger: options.logger.child({ component: 'cluster', node: nodeId }),
    metrics: createClusterMetrics(options.metrics),
    maxFrameBytes,
    ...(peerHeartbeatMs !== undefined ? { heartbeatMs: peerHeartbeatMs } : {}),
  });
  const cluster = createBackplaneCluster({
    ...shared,
    backplane: mesh,
    trackSoleHome: false,
  });
  return {
    ...cluster,
    isPeerUpgrade: (req) => req.headers[PEER_HEADER] !== undefined,
    handleUpgrade: (req, socket, head) => mesh.handleUpgrade(req, socket, head),
    start(inbound) {
      cluster.start(inbound);
      if (peers.length > 0)
        options.logger.info(
          { node: nodeId, peers, replicationFactor: options.replicationFactor },
          'cluster starting',
        );
    },
    status: () => ({ ...cluster.status(), peers: mesh.peerStatus() }),
  };
};

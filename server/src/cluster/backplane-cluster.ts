/**
 * The cluster layer of a node whose backplane has document channels (Redis):
 * placement over the backplane's live members, the channel replicator, and
 * the stored catch-up when a member appears or the backplane comes back.
 * It offers the same `Cluster` face as the mesh (cluster.ts), so the rest of
 * the node does not know which one it runs on.
 */
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { Backplane } from './backplane.js';
import { createChannelReplicator, type ChannelReplicator } from './channel-replicator.js';
import type { Cluster } from './cluster.js';
import { createPlacement } from './placement.js';
import { createStoredCatchUp, type StoredCatchUp } from './stored-catch-up.js';

export interface BackplaneClusterOptions {
  readonly backplane: Backplane;
  readonly replicationFactor: number;
  readonly hub: () => Hub;
  /** Names of the documents in this node's store (for catch-up). */
  readonly listDocs: () => AsyncIterable<string>;
  readonly logger: Logger;
  /** @default 10000 */
  readonly antiEntropyMs?: number;
  /**
   * Told when a member joins, when the backplane is back after an outage, and
   * when another node wrote a record: the deployment registry compares then.
   */
  readonly onChange?: (why: 'member-up' | 'resync' | 'record', detail: string) => void;
}

const TICK_MS = 1000;

export const createBackplaneCluster = (options: BackplaneClusterOptions): Cluster => {
  const { backplane } = options;
  const nodeId = backplane.nodeId;
  const log = options.logger.child({ component: 'cluster', node: nodeId });
  const placement = createPlacement({
    selfId: nodeId,
    replicationFactor: options.replicationFactor,
    members: () => backplane.members(),
  });
  let replicator: ChannelReplicator | undefined;
  let catchUp: StoredCatchUp | undefined;
  let timer: NodeJS.Timeout | undefined;
  const others = (): string[] => backplane.members().filter((id) => id !== nodeId);

  return {
    nodeId,
    placement,
    // Owner calls are not forwarded over the backplane yet: each node runs its own.
    primaryFor: () => nodeId,
    httpUrlOf: () => undefined,
    isPeerUpgrade: () => false,
    handleUpgrade: (_req, socket) => socket.destroy(),
    onLease: (name) => replicator?.onLease(name),

    start() {
      const started = createChannelReplicator({
        selfId: nodeId,
        hub: options.hub(),
        placement,
        backplane,
        logger: log,
        antiEntropyMs: options.antiEntropyMs ?? 10_000,
        demandLingerMs: 3000,
        maxPendingFrames: 4096,
      });
      replicator = started;
      const stored = createStoredCatchUp({
        listDocs: options.listDocs,
        placement,
        isConnected: (id) => backplane.isLive(id) && backplane.status().state === 'connected',
        syncOnce: (doc, peer, timeoutMs) => started.syncOnce(doc, peer, timeoutMs),
        logger: log,
      });
      catchUp = stored;
      timer = setInterval(() => started.tick(), TICK_MS);
      timer.unref();
      backplane
        .start({
          memberUp: (id) => {
            log.info({ member: id }, 'member up');
            started.onMemberUp(id);
            stored.onLinkUp(id);
            options.onChange?.('member-up', id);
          },
          memberDown: (id) => {
            log.info({ member: id }, 'member down');
            started.onMemberDown(id);
          },
          direct: (from, frame) => started.onDirect(from, frame),
          docMessage: (doc, from, message) => started.onDocMessage(doc, from, message),
          recordChanged: (name) => options.onChange?.('record', name),
          resync: () => {
            started.onResync();
            // Documents written here while cut off and closed since reach their homes too.
            for (const id of others()) stored.onLinkUp(id);
            options.onChange?.('resync', '');
          },
        })
        .catch((err: unknown) => log.error({ err }, 'backplane did not start'));
    },

    status: () => {
      const backplaneStatus = backplane.status();
      return {
        nodeId,
        replicationFactor: options.replicationFactor,
        members: backplaneStatus.members,
        peers: [],
        replication: replicator?.stats() ?? { documents: 0, channels: 0 },
        backplane: backplaneStatus,
      };
    },

    async close() {
      clearInterval(timer);
      catchUp?.close();
      replicator?.close();
      await backplane.close();
    },
  };
};

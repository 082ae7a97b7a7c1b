/**
 * The cluster layer of a node on a backplane, whichever adapter carries it
 * (Redis, the WebSocket mesh: mesh/mesh-cluster.ts, the in-memory medium):
 * placement over the backplane's members, the channel replicator, the stored
 * catch-up when a member appears or the backplane comes back, and
 * request/response between nodes (backplane-rpc.ts). `owner` calls are
 * forwarded to the document's primary over the backplane; on a backplane with
 * leases (owner-leases.ts) their writes are also fenced by the lease token.
 * It offers the `Cluster` face (cluster.ts), so the rest of the node does not
 * know which adapter it runs on.
 */
import type { DocName } from '../doc-name.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import type { Metrics } from '../metrics.js';
import { hasLeases, type Backplane } from './backplane.js';
import type { AckedPublisher } from './acked-publisher.js';
import { createBackplaneRpc } from './backplane-rpc.js';
import { createChannelReplicator, type ChannelReplicator } from './channel-replicator.js';
import type { Cluster, ClusterRegistry } from './cluster.js';
import { DEPLOYMENT_RECORD } from './backplane-registry.js';
import { createOwnerForwarding } from './owner-forwarding.js';
import { createOwnerLeases } from './owner-leases.js';
import { createOwnerMetrics } from './owner-metrics.js';
import { createPlacement, type PlacementMode } from './placement.js';
import { isPresenceFrame } from './presence-codec.js';
import { createPresencePlacement } from './presence-placement.js';
import { isRpcFrame } from './rpc-codec.js';
import { createNodeRequests, type CatchUpCursors } from './node-requests.js';
import { createStoredCatchUp, type StoredCatchUp, type StoredChanges } from './stored-catch-up.js';

export interface BackplaneClusterOptions {
  readonly backplane: Backplane;
  readonly replicationFactor: number;
  readonly hub: Hub;
  /** Names of the documents in this node's store (for catch-up). */
  readonly listDocs: () => AsyncIterable<DocName>;
  /** This node's change index, so a catch-up sends only what changed since the last one. */
  readonly storedChanges?: StoredChanges;
  /** Where other nodes' catch-ups to this node stand (in this node's store). */
  readonly catchUpCursors?: CatchUpCursors;
  readonly logger: Logger;
  /** @default 10000 */
  readonly antiEntropyMs?: number;
  /**
   * Whether replication tracks a document this node alone is home of (another
   * node may publish on its channel without asking). False on the mesh, where
   * a node that writes asks the home, so such a document unloads as on one node.
   * @default true
   */
  readonly trackSoleHome?: boolean;
  /** The node's registry, for the owner series. @default none */
  readonly metrics?: Metrics;
  /** Owner lease TTL; the holder renews every 30 % of it. @default 5000 */
  readonly ownerLeaseMs?: number;
  /** How long a forwarded owner call waits for the primary's answer. @default 30000 */
  readonly ownerCallTimeoutMs?: number;
  /**
   * `--ack replicated`: the publisher the hub's `replicate` hook hands every change
   * made here to (built on the same backplane); the replicator then publishes only
   * presence. The cluster closes it. @default none
   */
  readonly acked?: AckedPublisher;
  /** This node's region (`--region`), told to the others in presence reports. @default none */
  readonly region?: string;
  /** `presence`: homes follow the users' regions (presence-placement.ts). @default 'hash' */
  readonly placement?: PlacementMode;
  /** How long a region must lead before a document's homes move there. @default 10000 */
  readonly presenceDwellMs?: number;
}

const TICK_MS = 1000;

export const createBackplaneCluster = (options: BackplaneClusterOptions): Cluster => {
  const { backplane } = options;
  const nodeId = backplane.nodeId;
  const log = options.logger.child({ component: 'cluster', node: nodeId });
  // The owner leases (below) give up what this node is no longer primary of when a document moves.
  const presence =
    options.placement === 'presence'
      ? createPresencePlacement({
          selfId: nodeId,
          region: options.region,
          usersOn: (doc) => options.hub.peek(doc)?.localPresenceCount,
          send: (to, frame) => backplane.send(to, frame),
          peers: () => others(),
          logger: log,
          onMove: () => leases?.reconsider(),
          ...(options.presenceDwellMs !== undefined ? { dwellMs: options.presenceDwellMs } : {}),
        })
      : undefined;
  // A document someone here starts using, or writes, is counted in this node's next report.
  const stopPresenceWatch = presence
    ? options.hub.onUse((name) => presence.onLease(name))
    : undefined;
  const stopWriteWatch = presence
    ? options.hub.onChange((name, origin) => presence.onWrite(name, origin))
    : undefined;
  const placement = createPlacement({
    selfId: nodeId,
    replicationFactor: options.replicationFactor,
    members: () => backplane.members(),
    ...(presence ? { order: presence.order } : {}),
  });
  let replicator: ChannelReplicator | undefined;
  let catchUp: StoredCatchUp | undefined;
  let timer: NodeJS.Timeout | undefined;
  const others = (): NodeId[] => backplane.members().filter((id) => id !== nodeId);
  const ownerMetrics = options.metrics ? createOwnerMetrics(options.metrics) : undefined;

  const cursors = options.catchUpCursors ? { cursors: options.catchUpCursors } : {};
  // Owner calls are answered once start() hands in what runs them (no node can
  // ask before: the backplane is joined there).
  let serve = createNodeRequests({ hub: options.hub, ...cursors });
  const rpc = createBackplaneRpc({
    backplane,
    serve: (from, request) => serve(from, request),
    logger: log,
  });
  const { acked } = options;
  const primaryFor = (doc: DocName): NodeId | undefined =>
    placement.primaryFor(doc, (id) => backplane.isLive(id));
  const leaseMs = options.ownerLeaseMs ?? 5000;
  const leases = hasLeases(backplane)
    ? createOwnerLeases({
        backplane,
        hub: options.hub,
        placement,
        rpc,
        logger: log,
        ttlMs: leaseMs,
        renewMs: Math.round(leaseMs * 0.3),
        ...(ownerMetrics ? { metrics: ownerMetrics } : {}),
      })
    : undefined;

  return {
    nodeId,
    placement,
    primaryFor,
    ownerOf: (doc) => {
      const primary = primaryFor(doc);
      return primary !== nodeId ? primary : undefined;
    },
    owners: {
      ...(leases ? { gate: leases } : {}),
      ...createOwnerForwarding(rpc, options.ownerCallTimeoutMs ?? 30_000, ownerMetrics),
    },
    request: (to, request, timeoutMs) => rpc.request(to, request, timeoutMs),
    isPeerUpgrade: () => false,
    handleUpgrade: (_req, socket) => socket.destroy(),
    start(inbound) {
      serve = createNodeRequests({
        hub: options.hub,
        runOwnerCall: inbound.runOwnerCall,
        ...(inbound.registry?.answer ? { answerRegistry: inbound.registry.answer } : {}),
        ...cursors,
        ...(inbound.receiveTombstones ? { receiveTombstones: inbound.receiveTombstones } : {}),
      });
      const registry: ClusterRegistry | undefined = inbound.registry;
      const started = createChannelReplicator({
        selfId: nodeId,
        hub: options.hub,
        placement,
        backplane,
        logger: log,
        antiEntropyMs: options.antiEntropyMs ?? 10_000,
        demandLingerMs: 3000,
        maxPendingFrames: 4096,
        publishUpdates: !acked,
        trackSoleHome: options.trackSoleHome ?? true,
      });
      replicator = started;
      const stored = createStoredCatchUp({
        listDocs: options.listDocs,
        ...(options.storedChanges ? { changes: options.storedChanges } : {}),
        placement,
        members: () => backplane.members(),
        isConnected: (id) => backplane.isLive(id) && backplane.status().state === 'connected',
        request: (to, request, timeoutMs) => rpc.request(to, request, timeoutMs),
        hub: options.hub,
        logger: log,
      });
      catchUp = stored;
      timer = setInterval(() => {
        presence?.tick();
        started.tick();
      }, TICK_MS);
      timer.unref();
      backplane
        .start({
          memberUp: (id) => {
            log.info({ member: id }, 'member up');
            presence?.onMemberUp(id);
            started.onMemberUp(id);
            stored.onLinkUp(id);
            leases?.reconsider();
            registry?.onLinkUp(id);
            inbound.onPeerUp?.(id);
          },
          memberDown: (id) => {
            log.info({ member: id }, 'member down');
            presence?.onMemberDown(id);
            started.onMemberDown(id);
            rpc.onMemberDown(id);
            leases?.reconsider();
          },
          direct: (from, frame) =>
            isPresenceFrame(frame)
              ? presence?.onFrame(from, frame)
              : isRpcFrame(frame)
                ? rpc.onFrame(from, frame)
                : started.onDirect(from, frame),
          docMessage: (doc, from, message) => started.onDocMessage(doc, from, message),
          channelGap: (doc) => started.onGap(doc),
          recordChanged: (name) => {
            if (name === DEPLOYMENT_RECORD) registry?.onLinkUp(name);
          },
          resync: () => {
            started.onResync();
            // Documents written here while cut off and closed since reach their homes too.
            for (const id of others()) {
              stored.onLinkUp(id);
              inbound.onPeerUp?.(id);
            }
            registry?.onLinkUp('');
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
        owner: { leasesHeld: leases?.held ?? 0, callsWaiting: rpc.pending },
        ...(presence ? { presence: presence.status() } : {}),
      };
    },

    async close() {
      clearInterval(timer);
      stopPresenceWatch?.();
      stopWriteWatch?.();
      catchUp?.close();
      await leases?.close();
      rpc.close();
      acked?.close();
      replicator?.close();
      await backplane.close();
    },
  };
};

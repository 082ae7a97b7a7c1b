/**
 * The composition root: from options it builds each part of a node once, in
 * dependency order (store, hub, cluster, functions, registry, WebSocket
 * endpoint, HTTP API), passes each the ports it needs, and binds one HTTP
 * server. Reads no environment or argv (that is main.ts), so several nodes can
 * run in one test process.
 *
 * Two dependencies point back up the flow and are not constructor arguments:
 * replication and function triggers subscribe to the hub they are given
 * (hub.onUse, hub.onChange), and the cluster gets what answers other nodes
 * (forwarded `owner` calls, the registry) when it starts, since the functions
 * route their `owner` calls through it.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAccessPolicy, type AccessConfig, type AccessPolicy } from './auth/access.js';
import { createHttpApi } from './http/api.js';
import { createHub, type Hub } from './hub/hub.js';
import { DEFAULT_UPDATE_FRAMES_PER_SECOND } from './hub/update-relay.js';
import { warmLoadPath } from './hub/warm-up.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { DocName } from './doc-name.js';
import { validateNodeId, type NodeId } from './node-id.js';
import { createLevelStore } from './storage/level-store.js';
import { createNewDocGate } from './limits/new-docs.js';
import type { Store } from './storage/store.js';
import { createWsEndpoint, type WsEndpoint } from './transport/ws-endpoint.js';
import { createClientAddressOf } from './transport/client-address.js';
import { createUpgradePacer } from './transport/upgrade-pacer.js';
import {
  enforceHandshakeDeadline,
  handshakeServerOptions,
} from './transport/handshake-deadline.js';
import type { Cluster, ClusterRegistry } from './cluster/cluster.js';
import { createMeshCluster } from './cluster/mesh/mesh-cluster.js';
import type { PlacementMode } from './cluster/placement.js';
import {
  checkClusterSettings,
  checkPlacement,
  placementOptions,
} from './cluster/cluster-config.js';
import { compileDir } from './functions/compile.js';
import { createFunctionRuntime, type FunctionRuntime } from './functions/runtime.js';
import type { FunctionIsolation } from './functions/pool.js';
import { createDeployments, type Deployments } from './functions/deployments.js';
import { createForwardedCalls } from './functions/forwarded-calls.js';
import { createRegistrySync } from './cluster/registry-sync.js';
import type { Backplane } from './cluster/backplane.js';
import type { DeploymentSync } from './node-ports.js';
import { createAckedPublisher } from './cluster/acked-publisher.js';
import { createBackplaneCluster } from './cluster/backplane-cluster.js';
import { clusterHomeVectors } from './cluster/home-vectors.js';
import { createCatchUpCursors, createStoredChanges } from './cluster/stored-changes.js';
import { createBackplaneMetrics } from './cluster/backplane-metrics.js';
import { createBackplaneRegistry } from './cluster/backplane-registry.js';
import { createTombstones, type Tombstones } from './cluster/tombstones.js';
import { watchStore, type StoreWatch } from './storage/watched-store.js';
import { createHistoryCompactor } from './history/compactor.js';
import { startRetentionSweep, type RetentionSweep } from './history/retention-sweep.js';
import { createHistory } from './history/history.js';
import { createChangeFeed } from './history/change-feed.js';
import { checkWebhookSettings, startWebhooks, type Webhooks } from './webhooks/webhooks.js';
import { parseWebhookTarget } from './webhooks/webhook-target.js';
import { createTimeTravel, type TimeTravel } from './functions/time-travel.js';

/** WebSocket upgrades handled per event-loop turn (transport/upgrade-pacer.ts). */
const UPGRADES_PER_TURN = 16;

export interface ServerOptions {
  /** TCP port; 0 picks a free one. @default 1234 */
  readonly port?: number;
  /** Interface to bind. @default '0.0.0.0' */
  readonly host?: string;
  /** LevelDB directory, used when no `store` is given. @default './data' */
  readonly dataDir?: string;
  /** A ready store (e.g. `createMemoryStore()`); overrides `dataDir`. The server closes it. */
  readonly store?: Store;
  /** fsync every group-commit batch: survives power loss, not just crashes. @default false */
  readonly fsync?: boolean;
  /**
   * A stored change may wait this long for others to share its LevelDB write
   * (its `saved` acknowledgement waits with it); function results never wait.
   * @default 4
   */
  readonly commitWindowMs?: number;
  /** Unload a document this long after its last connection left. @default 30000 */
  readonly idleUnloadMs?: number;
  /** Largest WebSocket frame and HTTP body accepted. @default 8388608 (8 MiB) */
  readonly maxFrameBytes?: number;
  /** Largest stored size a document may grow to. @default 67108864 (64 MiB) */
  readonly maxDocBytes?: number;
  /** Connections one document accepts. @default 1000 */
  readonly maxConnectionsPerDoc?: number;
  /** Open WebSockets one remote address may hold. @default 500 */
  readonly maxConnectionsPerIp?: number;
  /** Open WebSockets on the whole node; past it upgrades are answered 503 (health and metrics never are). @default 50000 */
  readonly maxConnections?: number;
  /**
   * Addresses or CIDR ranges of reverse proxies / load balancers: only from these
   * peers the client address is taken from `Forwarded` / `X-Forwarded-For`, and
   * per-address limits apply to it. @default [] (headers ignored)
   */
  readonly trustProxy?: readonly string[];
  /** A connection must complete its HTTP request (head and body) or upgrade within this time, or it is closed. @default 10000 */
  readonly handshakeTimeoutMs?: number;
  /** Presence (awareness) client ids one connection may speak for; the excess is refused (PRESENCE_LIMIT). @default 4 */
  readonly maxPresenceIdsPerConnection?: number;
  /** Largest presence state, as JSON bytes; a larger one is refused (PRESENCE_TOO_LARGE). @default 65536 */
  readonly maxPresenceBytes?: number;
  /** Update frames a second one document sends its clients at once; past it they are merged per tick (hub/update-relay.ts). @default 10000 */
  readonly updateFramesPerSecond?: number;
  /**
   * Documents one multiplexed socket (`ws://HOST/`) may have open at once; a further
   * Auth is answered PermissionDenied `TOO_MANY_DOCUMENTS` (the socket stays). @default 256
   */
  readonly maxDocsPerSocket?: number;
  /** Documents one token subject may create per minute on this node; beyond, DOC_CREATION_LIMITED. @default 0 (no bound) */
  readonly newDocsPerSubjectPerMinute?: number;
  /** Documents one token subject may create in all on this node since it started; beyond, DOC_CREATION_LIMITED. @default 0 (no bound) */
  readonly maxNewDocsPerSubject?: number;
  /** Sustained messages per second per connection; beyond the burst the socket is closed. @default 200 */
  readonly maxMessagesPerSecond?: number;
  /** Messages a connection may send at once above the sustained rate. @default 1000 */
  readonly messageBurst?: number;
  /** Largest HTTP request head, which bounds what a client can send before it is authenticated. @default 16384 */
  readonly maxHeaderBytes?: number;
  /**
   * Token verification: `secret` (HS256), `publicKey` (PEM) or `jwksUrl`, plus
   * optional `issuer`, `audience`, and `anonymous` rights for callers without a
   * token. With none of secret/publicKey/jwksUrl the node is a development node:
   * open to everyone, and it says so in its log. @default {} (development)
   */
  readonly auth?: AccessConfig;
  /** Unsent bytes a client may fall behind before it is dropped. @default 16777216 (16 MiB) */
  readonly maxBufferedBytes?: number;
  /** Unsent bytes across all connections; past it the slowest readers are dropped first (SLOW_CONSUMER). @default 268435456 (256 MiB) */
  readonly maxTotalBufferedBytes?: number;
  /** Ping interval; a client that misses a pong is dropped. @default 30000 */
  readonly heartbeatMs?: number;
  /** Merge a document's log into its snapshot after this many updates. @default 500 */
  readonly compactAfterUpdates?: number;
  /**
   * How long each document's history is kept: past states and the updates
   * between them (versions, `?at=`, restore) and the change feed. 0 keeps none:
   * compaction drops the log it covers (docs/history.md). @default 2592000000 (30 days)
   */
  readonly historyRetentionMs?: number;
  /** How often the documents nobody writes to are trimmed to the retention window. @default min(historyRetentionMs, 1 hour) */
  readonly historySweepMs?: number;
  /**
   * How long a deleted document's tombstone is kept (docs/cluster.md, "Deleting
   * a document"): a node down for longer brings the document back.
   * @default historyRetentionMs, or 7 days when the history is off
   */
  readonly tombstoneTtlMs?: number;
  /**
   * Webhook targets, `URL` (every document) or `PREFIX=URL`: each change is
   * POSTed, signed, at least once (docs/history.md, "Webhooks"). Needs
   * `webhookSecret` and a history window. @default none
   */
  readonly webhooks?: readonly string[];
  /** HMAC key of the webhook signatures (`whsec_<base64>` or ≥ 16 bytes of text). @default none */
  readonly webhookSecret?: string;
  /** A document's changes within this time of its first one go out as one event. @default 1000 */
  readonly webhookDebounceMs?: number;
  /** An event whose receiver fails for longer than this is dropped (metric, log line); capped at the history retention. @default 86400000 (1 day) */
  readonly webhookMaxAgeMs?: number;
  /** Longest wait between two tries of a failing webhook (the first is 500 ms, doubling). @default 60000 */
  readonly webhookRetryMaxMs?: number;
  /** How long shutdown waits for sockets to close and writes to finish. @default 10000 */
  readonly shutdownTimeoutMs?: number;
  /** A pino logger. @default JSON lines on stdout at level `info` */
  readonly logger?: Logger;
  /** Metrics registry holder. @default a fresh one per server */
  readonly metrics?: Metrics;
  /** This node's id in the cluster (A-Z a-z 0-9 _ -); required with `peers`. @default 'standalone' */
  readonly nodeId?: string;
  /** Base URLs of the other nodes (`ws://host:port`); each node dials them and accepts them. @default [] */
  readonly peers?: readonly string[];
  /** Secret shared by the nodes of a cluster for peer links (not the token secret; ≥ 16 bytes). @default none */
  readonly peerSecret?: string;
  /** Home nodes per document (capped at the cluster size). @default 3 */
  readonly replicationFactor?: number;
  /**
   * Redis URL of the cluster backplane (`redis://[:password@]host:port`,
   * `rediss://` for TLS), instead of `peers`: membership, replication and
   * presence go through Redis (docs/cluster.md, "The Redis backplane"). @default none
   */
  readonly redis?: string;
  /**
   * A ready backplane instead of `redis` (e.g. `createMemoryBackplaneMedium().join(nodeId)`
   * for several nodes in one process); its node id is this node's. The server closes it.
   * @default none
   */
  readonly backplane?: Backplane;
  /**
   * What a `saved` acknowledgement promises: `stored` — in this node's store;
   * `replicated` — also in the backplane (Redis answered the append), which
   * needs `redis` (or `backplane`) and a Redis with appendonly yes
   * (docs/cluster.md, "Acknowledgements"). @default 'stored'
   */
  readonly ack?: 'stored' | 'replicated';
  /** This node's region (A-Z a-z 0-9 _ -), for `placement: 'presence'`. @default none */
  readonly region?: string;
  /**
   * `hash`: a document's homes by rendezvous hashing; `presence`: its first home
   * and `owner` primary move to the region where its users are (docs/cluster.md,
   * "Placement that follows the users"); needs `region`. @default 'hash'
   */
  readonly placement?: PlacementMode;
  /** With `placement: 'presence'`: how long a region must lead before a document moves. @default 10000 */
  readonly presenceDwellMs?: number;
  /**
   * How long a node that was a home of a document and left the homes (gone from the
   * membership, or not answering) still holds that document's `onStable` windows back:
   * it may be only slow and hold writes nobody else has (docs/functions.md). @default 30000
   */
  readonly stableHomeGraceMs?: number;
  /** Directory of function modules (*.ts, *.js) compiled and deployed at start. @default none */
  readonly functionsDir?: string;
  /** `GET /v1/cluster` shows peers and links only to an `admin` token; others get `{ nodeId }`. @default false */
  readonly privateClusterStatus?: boolean;
  /** Directory of static files (e.g. the built demo app) served at `/`. @default none */
  readonly staticDir?: string;
  /** Browser origins allowed to call the HTTP API (CORS), or `*`. @default none */
  readonly corsOrigins?: readonly string[];
  /** Function workers, threads or processes (`functionIsolation`), started with the first deployment. @default 2 */
  readonly functionWorkers?: number;
  /** Function workers as threads of the node, or as processes of their own: a native crash in a sandbox then ends one worker, not the node. @default 'thread' */
  readonly functionIsolation?: FunctionIsolation;
  /** Heap limit of one function's sandbox (V8 isolate) in MiB. @default 128 (as the worker heap was: a document copy lives in it) */
  readonly functionMemoryMb?: number;
  /** Time limit of one invocation unless the function sets `timeoutMs`. @default 5000 */
  readonly functionTimeoutMs?: number;
  /** Upper bound of every function's `timeoutMs`. @default 30000 */
  readonly maxFunctionTimeoutMs?: number;
  /** Largest result of one function call (JSON, UTF-8 bytes). @default 1048576 */
  readonly maxFunctionOutputBytes?: number;
  /** Invocations queued per document before OVERLOADED (503). @default 1000 */
  readonly maxQueuedInvocationsPerDoc?: number;
  /** Function calls one WebSocket may have in flight (Invoke messages) before OVERLOADED. @default 1024 */
  readonly maxInvocationsInFlightPerConnection?: number;
}

export const DEFAULTS = {
  port: 1234,
  host: '0.0.0.0',
  dataDir: './data',
  fsync: false,
  commitWindowMs: 4,
  idleUnloadMs: 30_000,
  maxFrameBytes: 8 * 1024 * 1024,
  maxDocBytes: 64 * 1024 * 1024,
  maxConnectionsPerDoc: 1000,
  maxConnectionsPerIp: 500,
  maxConnections: 50_000,
  handshakeTimeoutMs: 10_000,
  maxPresenceIdsPerConnection: 4,
  maxPresenceBytes: 64 * 1024,
  updateFramesPerSecond: DEFAULT_UPDATE_FRAMES_PER_SECOND,
  maxDocsPerSocket: 256,
  newDocsPerSubjectPerMinute: 0,
  maxNewDocsPerSubject: 0,
  maxMessagesPerSecond: 200,
  messageBurst: 1000,
  maxHeaderBytes: 16 * 1024,
  maxBufferedBytes: 16 * 1024 * 1024,
  maxTotalBufferedBytes: 256 * 1024 * 1024,
  heartbeatMs: 30_000,
  compactAfterUpdates: 500,
  historyRetentionMs: 30 * 24 * 3600 * 1000,
  webhookDebounceMs: 1000,
  webhookMaxAgeMs: 24 * 3600 * 1000,
  webhookRetryMaxMs: 60_000,
  shutdownTimeoutMs: 10_000,
  nodeId: 'standalone',
  replicationFactor: 3,
  functionMemoryMb: 128,
  functionIsolation: 'thread',
  maxFunctionTimeoutMs: 30_000,
  maxFunctionOutputBytes: 1024 * 1024,
} as const;

export interface StateweaveServer {
  /** Opens the store and binds; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** Stops accepting, closes sockets with 1001, flushes every document, closes the store. */
  close(): Promise<{ unsaved: string[] }>;
  /** The hub (after listen). */
  readonly hub: Hub;
  /** Peer links, placement and replication (after listen). */
  readonly cluster: Cluster;
  /** The function runtime (after listen). */
  readonly functions: FunctionRuntime;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** The parts of a node, each built once by compose(). */
interface NodeParts {
  /** The store as every part sees it: durable appends wake the change feed and webhooks. */
  readonly store: Store;
  readonly storeWatch: StoreWatch;
  readonly sweep: RetentionSweep | undefined;
  /** Deleted documents' tombstones, kept and exchanged across the cluster. */
  readonly tombstones: Tombstones;
  readonly hub: Hub;
  readonly cluster: Cluster;
  readonly functions: FunctionRuntime;
  readonly deployments: Deployments;
  /** The function registry shared with the other nodes (mesh or backplane). */
  readonly registry: (DeploymentSync & ClusterRegistry & { close(): void }) | undefined;
  readonly timeTravel: TimeTravel | undefined;
  readonly webhooks: Webhooks | undefined;
  readonly ws: WsEndpoint;
  readonly http: HttpServer;
}

export const createServer = (options: ServerOptions = {}): StateweaveServer => {
  const config = { ...DEFAULTS, ...stripUndefined(options) };
  const logger = options.logger ?? createLogger();
  const metrics = options.metrics ?? createMetrics();
  // Parsed now, so a bad range fails createServer rather than the first upgrade.
  const clientAddressOf = createClientAddressOf(options.trustProxy ?? []);
  const ackReplicated = options.ack === 'replicated';
  if (ackReplicated && !options.backplane && options.redis === undefined)
    throw new Error('--ack replicated needs a backplane: start the node with --redis');
  if (options.tombstoneTtlMs !== undefined && options.tombstoneTtlMs <= 0)
    throw new Error('--tombstone-ttl must be more than 0: deletions would not hold');
  checkPlacement(options);
  // Checked now, so a bad --webhook fails createServer rather than the first delivery.
  const webhookTargets = (options.webhooks ?? []).map(parseWebhookTarget);
  checkWebhookSettings(webhookTargets, options.webhookSecret, config.historyRetentionMs);
  let node: NodeParts | undefined;
  let ready = false;

  const requireNode = (): NodeParts => {
    if (!node) throw new Error('server is not listening');
    return node;
  };

  const openStore = (): Promise<Store> =>
    createLevelStore(config.dataDir, {
      fsync: config.fsync,
      commitWindowMs: config.commitWindowMs,
      onTornTail: ({ file, bytes, droppedBytes }) =>
        logger.warn(
          { file, bytes, droppedBytes },
          'store recovery: the last write in the log was torn (the process stopped in the middle of it, so it was never acknowledged); LevelDB drops those bytes',
        ),
      onReopen: () =>
        logger.warn('database reopened after a failed write; writes resume on a fresh log'),
      onBatch: (ops, ms, error) => {
        metrics.storeBatchSeconds.observe({ result: error ? 'error' : 'ok' }, ms / 1000);
        metrics.storeBatchOps.observe(ops);
      },
    });

  /** Builds every part once, each after what it needs; the cluster starts once the node listens. */
  const compose = (
    policy: AccessPolicy,
    opened: Store,
    nodeId: NodeId,
    peerUrls: readonly string[],
    backplane: Backplane | undefined,
  ): NodeParts => {
    const { store, watch: storeWatch } = watchStore(opened);
    const historyOn = config.historyRetentionMs > 0;
    const compactor = historyOn
      ? createHistoryCompactor({ store, retentionMs: config.historyRetentionMs, logger })
      : undefined;
    const sweep = compactor
      ? startRetentionSweep({
          store,
          trim: (doc) => compactor.trim(doc),
          intervalMs: options.historySweepMs ?? Math.min(config.historyRetentionMs, 3_600_000),
          logger,
        })
      : undefined;
    // Late-bound: the tombstones remove documents through the hub and reach the
    // other nodes through the cluster, and both are built after them (the hub's
    // rooms refuse what a tombstone covers).
    const late: { hub?: Hub; cluster?: Cluster } = {};
    const tombstones = createTombstones({
      store: () => store,
      hub: () => late.hub!,
      peers: () => {
        const c = late.cluster;
        return (
          c && {
            others: () => c.status().members.filter((id) => id !== c.nodeId),
            request: (to, request, timeoutMs) => c.request(to, request, timeoutMs),
          }
        );
      },
      logger,
      ttlMs:
        options.tombstoneTtlMs ??
        (config.historyRetentionMs > 0 ? config.historyRetentionMs : 7 * 24 * 3600 * 1000),
    });
    // --ack replicated: the hub hands each change made here to the backplane, and
    // `saved` waits for it too (the cluster closes the publisher).
    const acked = ackReplicated && backplane ? createAckedPublisher({ backplane }) : undefined;
    const hub = createHub({
      store,
      logger,
      tombstones,
      metrics,
      idleUnloadMs: config.idleUnloadMs,
      maxDocBytes: config.maxDocBytes,
      maxConnectionsPerDoc: config.maxConnectionsPerDoc,
      compactAfterUpdates: config.compactAfterUpdates,
      ...(compactor ? { compactor } : {}),
      maxPresenceIdsPerConnection: config.maxPresenceIdsPerConnection,
      maxPresenceBytes: config.maxPresenceBytes,
      updateFramesPerSecond: config.updateFramesPerSecond,
      newDocs: createNewDocGate({
        perMinute: config.newDocsPerSubjectPerMinute,
        total: config.maxNewDocsPerSubject,
        onResult: (result) => metrics.newDocs.inc({ result }),
      }),
      ...(acked
        ? { replicate: (doc: DocName, frame: Uint8Array) => acked.publish(doc, frame) }
        : {}),
    });
    late.hub = hub;
    // What both kinds of cluster are built from.
    const local = {
      replicationFactor: config.replicationFactor,
      hub,
      listDocs: (): AsyncIterable<DocName> => store.list(),
      storedChanges: createStoredChanges(store, { historyRetentionMs: config.historyRetentionMs }),
      catchUpCursors: createCatchUpCursors(store),
      logger,
      metrics,
      ...placementOptions(options),
    };
    const cluster = backplane
      ? createBackplaneCluster({ backplane, ...local, ...(acked ? { acked } : {}) })
      : createMeshCluster({
          nodeId,
          peers: peerUrls,
          peerSecret: options.peerSecret,
          ...local,
          // A catch-up (sync step 2) may carry a whole document.
          maxFrameBytes: Math.max(config.maxFrameBytes, config.maxDocBytes) + 1024 * 1024,
        });
    late.cluster = cluster;
    // A node with the peer secret may be dialed by peers it does not list itself.
    const clustered = backplane !== undefined || options.peerSecret !== undefined;
    const forwarder = clustered ? cluster.owners : undefined;
    const functions = createFunctionRuntime({
      hub,
      store,
      logger,
      metrics,
      ownerOf: cluster.ownerOf,
      ...(cluster.owners.gate ? { ownerGate: cluster.owners.gate } : {}),
      homes: clusterHomeVectors(cluster, () => hub, options.stableHomeGraceMs),
      ...(options.functionWorkers !== undefined ? { workers: options.functionWorkers } : {}),
      isolation: config.functionIsolation,
      memoryMb: config.functionMemoryMb,
      maxTimeoutMs: config.maxFunctionTimeoutMs,
      maxOutputBytes: config.maxFunctionOutputBytes,
      ...(options.functionTimeoutMs !== undefined ? { timeoutMs: options.functionTimeoutMs } : {}),
      ...(options.maxQueuedInvocationsPerDoc !== undefined
        ? { maxQueuedPerDoc: options.maxQueuedInvocationsPerDoc }
        : {}),
    });
    // Deployments are stored, and replicated between nodes (docs/cluster.md, "Function deployments").
    const deployments = createDeployments({
      runtime: functions,
      store,
      nodeId: nodeId,
      logger,
    });
    const registry = backplane
      ? createBackplaneRegistry({ backplane, local: deployments, logger })
      : options.peerSecret !== undefined
        ? createRegistrySync({
            nodeId: nodeId,
            request: (to, request, timeoutMs) => cluster.request(to, request, timeoutMs),
            peers: () => cluster.status().peers,
            local: deployments,
            logger,
          })
        : undefined;
    // Started by the first query at a past version.
    const timeTravel = historyOn
      ? createTimeTravel({
          memoryMb: config.functionMemoryMb,
          timeoutMs: Math.min(options.functionTimeoutMs ?? 5000, config.maxFunctionTimeoutMs),
          maxResultBytes: config.maxFunctionOutputBytes,
        })
      : undefined;
    const webhooks =
      webhookTargets.length > 0
        ? startWebhooks({
            targets: webhookTargets,
            nodeId: nodeId,
            secret: options.webhookSecret!,
            store,
            watch: storeWatch,
            logger,
            metrics,
            debounceMs: config.webhookDebounceMs,
            maxAgeMs: Math.min(config.webhookMaxAgeMs, config.historyRetentionMs),
            retry: {
              minMs: Math.min(500, config.webhookRetryMaxMs),
              maxMs: config.webhookRetryMaxMs,
            },
          })
        : undefined;
    const ws = createWsEndpoint({
      hub,
      logger,
      metrics,
      maxFrameBytes: config.maxFrameBytes,
      maxBufferedBytes: config.maxBufferedBytes,
      maxTotalBufferedBytes: config.maxTotalBufferedBytes,
      heartbeatMs: config.heartbeatMs,
      maxPendingFrames: 256,
      policy,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      maxConnections: config.maxConnections,
      clientAddressOf,
      maxMessagesPerSecond: config.maxMessagesPerSecond,
      messageBurst: config.messageBurst,
      maxDocsPerSocket: config.maxDocsPerSocket,
      functions,
      ...(forwarder ? { forwarder } : {}),
      ...(options.maxInvocationsInFlightPerConnection !== undefined
        ? { maxInvocationsInFlight: options.maxInvocationsInFlightPerConnection }
        : {}),
    });
    const app = createHttpApi({
      hub,
      policy,
      logger,
      metrics,
      maxBodyBytes: config.maxFrameBytes,
      isReady: () => ready,
      ...(options.staticDir !== undefined ? { staticDir: options.staticDir } : {}),
      ...(options.corsOrigins !== undefined ? { corsOrigins: options.corsOrigins } : {}),
      privateClusterStatus: options.privateClusterStatus ?? false,
      functions,
      deployments,
      ...(registry ? { registrySync: registry } : {}),
      ...(forwarder ? { forwarder } : {}),
      cluster: () => cluster.status(),
      history: createHistory({ hub, store, enabled: historyOn }),
      feed: createChangeFeed(store, storeWatch),
      webhooks: () => webhooks?.status() ?? [],
      dump: () => store.dump?.(),
      deleter: tombstones,
      ...(timeTravel ? { timeTravel } : {}),
    });
    const http = createHttpServer(
      {
        maxHeaderSize: config.maxHeaderBytes,
        ...handshakeServerOptions(config.handshakeTimeoutMs),
      },
      app,
    );
    enforceHandshakeDeadline(http, config.handshakeTimeoutMs, (err, socket) => {
      metrics.errors.inc({ code: err.code });
      logger.info({ remote: socket.remoteAddress, code: err.code }, 'connection closed');
    });
    // Client upgrades are paced (a reconnect storm must not hold health checks
    // behind it); peer links are few and go first.
    const pacer = createUpgradePacer(UPGRADES_PER_TURN);
    http.on('upgrade', (req, socket, head) => {
      if (cluster.isPeerUpgrade(req)) return cluster.handleUpgrade(req, socket, head);
      pacer.admit(() => {
        // Gone while it waited (the client gave up, or the handshake deadline passed).
        if (!socket.destroyed) ws.handleUpgrade(req, socket, head);
      });
    });
    return {
      store,
      storeWatch,
      sweep,
      tombstones,
      hub,
      cluster,
      functions,
      deployments,
      registry,
      timeTravel,
      webhooks,
      ws,
      http,
    };
  };

  return {
    async listen() {
      const policy = await createAccessPolicy(options.auth ?? {});
      if (policy.mode === 'development') {
        logger.warn(
          'DEVELOPMENT NODE: no token secret, public key or JWKS URL is configured, so every client may read and write every document. Set --auth-secret (or STATEWEAVE_AUTH_SECRET) before exposing this node.',
        );
      }
      const peerUrls = checkClusterSettings({
        nodeId: config.nodeId,
        peers: options.peers ?? [],
        peerSecret: options.peerSecret,
        replicationFactor: config.replicationFactor,
        redis: options.redis,
        authSecret: options.auth?.secret,
      });
      // Where this node's own id enters: checked above, branded once here.
      const nodeId = validateNodeId(config.nodeId);
      if (options.backplane && options.backplane.nodeId !== nodeId)
        throw new Error(
          `the backplane is node ${options.backplane.nodeId}'s, this node is ${nodeId}`,
        );
      const opened = options.store ?? (await openStore());
      const backplane =
        options.backplane ??
        (options.redis !== undefined
          ? // Loaded only when used: ioredis alone costs about 0.25 s of CPU at start.
            (await import('./cluster/redis/redis-backplane.js')).createRedisBackplane({
              url: options.redis,
              nodeId,
              logger,
              metrics: createBackplaneMetrics(metrics),
            })
          : undefined);
      const parts = compose(policy, opened, nodeId, peerUrls, backplane);
      node = parts;
      // Before anything is served: a room must refuse what a tombstone covers.
      await parts.tombstones.load();
      // The first opens after a start would compile the load path (hub/warm-up.ts); only
      // on the store the node opened itself: a store handed in is its owner's to read.
      if (!options.store) await warmLoadPath({ store: parts.store, logger });
      await parts.deployments.start(
        options.functionsDir !== undefined ? await compileDir(options.functionsDir) : undefined,
      );
      const { http } = parts;
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
      ready = true;
      parts.cluster.start({
        runOwnerCall: createForwardedCalls(policy, parts.functions),
        ...(parts.registry ? { registry: parts.registry } : {}),
        receiveTombstones: (from, list, cursor) => parts.tombstones.receive(from, list, cursor),
        // A node that comes (back) up learns of the deletions it missed.
        onPeerUp: (peer) => parts.tombstones.onPeerUp(peer),
      });
      const address = http.address() as AddressInfo;
      logger.info(
        {
          host: address.address,
          port: address.port,
          store: options.store ? 'custom' : config.dataDir,
          fsync: config.fsync,
          auth: policy.mode,
        },
        'listening',
      );
      return { host: address.address, port: address.port };
    },

    async close() {
      ready = false;
      const started = Date.now();
      const parts = node;
      // Stop accepting first, then say goodbye, then make everything durable.
      const httpClosed = parts
        ? new Promise<void>((resolve) => parts.http.close(() => resolve()))
        : Promise.resolve();
      parts?.http.closeIdleConnections();
      await parts?.ws.close(config.shutdownTimeoutMs);
      parts?.registry?.close();
      await parts?.cluster.close();
      await parts?.functions.close();
      await parts?.timeTravel?.close();
      await parts?.sweep?.stop();
      parts?.tombstones.close();
      // An event in flight is sent again after a restart (same id): at least once.
      await parts?.webhooks?.stop();
      const unsaved = parts ? await parts.hub.close() : [];
      parts?.storeWatch.close(); // change-feed readers stop waiting
      if (unsaved.length > 0)
        logger.error({ documents: unsaved }, 'shutdown with changes that could not be stored');
      await parts?.store.close();
      parts?.http.closeAllConnections();
      await httpClosed;
      logger.info({ ms: Date.now() - started, unsaved: unsaved.length }, 'stopped');
      return { unsaved };
    },

    get hub() {
      return requireNode().hub;
    },
    get cluster() {
      return requireNode().cluster;
    },
    get functions() {
      return requireNode().functions;
    },
    metrics,
    logger,
  };
};

const stripUndefined = <T extends object>(value: T): Partial<T> =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;

/**
 * The composition root: builds the store, hub, WebSocket endpoint and HTTP API
 * from options and wires them to one HTTP server. Reads no environment or argv
 * (that is main.ts), so several nodes can run in one test process.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpApi } from './http/api.js';
import { createHub, type Hub } from './hub/hub.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createLevelStore } from './storage/level-store.js';
import type { Store } from './storage/store.js';
import { createWsEndpoint, type WsEndpoint } from './transport/ws-endpoint.js';

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
  /** Unload a document this long after its last connection left. @default 30000 */
  readonly idleUnloadMs?: number;
  /** Largest WebSocket frame and HTTP body accepted. @default 8388608 (8 MiB) */
  readonly maxFrameBytes?: number;
  /** Largest stored size a document may grow to. @default 67108864 (64 MiB) */
  readonly maxDocBytes?: number;
  /** Connections one document accepts. @default 1000 */
  readonly maxConnectionsPerDoc?: number;
  /** Unsent bytes a client may fall behind before it is dropped. @default 16777216 (16 MiB) */
  readonly maxBufferedBytes?: number;
  /** Ping interval; a client that misses a pong is dropped. @default 30000 */
  readonly heartbeatMs?: number;
  /** Merge a document's log into its snapshot after this many updates. @default 500 */
  readonly compactAfterUpdates?: number;
  /** How long shutdown waits for sockets to close and writes to finish. @default 10000 */
  readonly shutdownTimeoutMs?: number;
  /** A pino logger. @default JSON lines on stdout at level `info` */
  readonly logger?: Logger;
  /** Metrics registry holder. @default a fresh one per server */
  readonly metrics?: Metrics;
}

export const DEFAULTS = {
  port: 1234,
  host: '0.0.0.0',
  dataDir: './data',
  fsync: false,
  idleUnloadMs: 30_000,
  maxFrameBytes: 8 * 1024 * 1024,
  maxDocBytes: 64 * 1024 * 1024,
  maxConnectionsPerDoc: 1000,
  maxBufferedBytes: 16 * 1024 * 1024,
  heartbeatMs: 30_000,
  compactAfterUpdates: 500,
  shutdownTimeoutMs: 10_000,
} as const;

export interface StateweaveServer {
  /** Opens the store and binds; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** Stops accepting, closes sockets with 1001, flushes every document, closes the store. */
  close(): Promise<{ unsaved: string[] }>;
  /** The hub (after listen). */
  readonly hub: Hub;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

export const createServer = (options: ServerOptions = {}): StateweaveServer => {
  const config = { ...DEFAULTS, ...stripUndefined(options) };
  const logger = options.logger ?? createLogger();
  const metrics = options.metrics ?? createMetrics();
  let store: Store | undefined;
  let hub: Hub | undefined;
  let http: HttpServer | undefined;
  let ws: WsEndpoint | undefined;
  let ready = false;

  const requireHub = (): Hub => {
    if (!hub) throw new Error('server is not listening');
    return hub;
  };

  return {
    async listen() {
      store =
        options.store ??
        (await createLevelStore(config.dataDir, {
          fsync: config.fsync,
          onBatch: (ops, ms, error) => {
            metrics.storeBatchSeconds.observe({ result: error ? 'error' : 'ok' }, ms / 1000);
            metrics.storeBatchOps.observe(ops);
          },
        }));
      hub = createHub({
        store,
        logger,
        metrics,
        idleUnloadMs: config.idleUnloadMs,
        maxDocBytes: config.maxDocBytes,
        maxConnectionsPerDoc: config.maxConnectionsPerDoc,
        compactAfterUpdates: config.compactAfterUpdates,
      });
      ws = createWsEndpoint({
        hub,
        logger,
        metrics,
        maxFrameBytes: config.maxFrameBytes,
        maxBufferedBytes: config.maxBufferedBytes,
        heartbeatMs: config.heartbeatMs,
        maxPendingFrames: 256,
      });
      const app = createHttpApi({ hub: requireHub, logger, metrics, maxBodyBytes: config.maxFrameBytes, isReady: () => ready });
      const server = createHttpServer(app);
      http = server;
      const endpoint = ws;
      server.on('upgrade', (req, socket, head) => endpoint.handleUpgrade(req, socket, head));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      ready = true;
      const address = server.address() as AddressInfo;
      logger.info({ host: address.address, port: address.port, store: options.store ? 'custom' : config.dataDir, fsync: config.fsync }, 'listening');
      return { host: address.address, port: address.port };
    },

    async close() {
      ready = false;
      const started = Date.now();
      // Stop accepting first, then say goodbye, then make everything durable.
      const httpClosed = http ? new Promise<void>((resolve) => http!.close(() => resolve())) : Promise.resolve();
      http?.closeIdleConnections();
      await ws?.close(config.shutdownTimeoutMs);
      const unsaved = hub ? await hub.close() : [];
      if (unsaved.length > 0) logger.error({ documents: unsaved }, 'shutdown with changes that could not be stored');
      await store?.close();
      http?.closeAllConnections();
      await httpClosed;
      logger.info({ ms: Date.now() - started, unsaved: unsaved.length }, 'stopped');
      return { unsaved };
    },

    get hub() {
      return requireHub();
    },
    metrics,
    logger,
  };
};

const stripUndefined = <T extends object>(value: T): Partial<T> =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;

/**
 * The node's connection to Redis, whichever Redis the URL names: a single
 * server, or any node of a Redis Cluster. A probe connects to the URL first and
 * asks `INFO cluster`; on a cluster it hands over to an ioredis `Cluster`
 * seeded with that node (which finds the others, and follows MOVED/ASK), with
 * the URL's credentials and TLS for every node. Until the mode is known the
 * probe is the command client: it is not ready, so nothing is sent through it.
 *
 * `source` tells the stream reader what to read from: on a single Redis a
 * connection of its own for the blocking reads and a subscriber for the pushed
 * streams; on a cluster, subscriber connections per master and the Cluster
 * client, with `ring` sounding the bell after an append that is not pushed
 * (bell-reader.ts, stream-push.ts).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { keySlot } from './key-slot.js';
import type { ReaderSource } from './stream-reader.js';
import type { PublishCommand } from './stream-push.js';

export type RedisClient = Redis | Cluster;
export type RedisMode = 'single' | 'cluster';

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://`. */
  readonly url: string;
  readonly nodeId: string;
  /** The command client is ready: the first time, or again after an outage. */
  readonly onReady: () => void;
  /** The command client lost its connection (it keeps reconnecting). */
  readonly onClose: () => void;
  readonly onError: (err: Error) => void;
}

export interface RedisConnection {
  /** The command client now (the probe until the mode is known). */
  client(): RedisClient;
  /** undefined until Redis was first reached. */
  mode(): RedisMode | undefined;
  /** Starts connecting; resolves once ready, or rejects at the first failure (it keeps trying). */
  connect(): Promise<void>;
  /** What the stream reader reads from (call once connected). */
  source(): ReaderSource;
  /** After an append to the stream `key` that was not pushed: on a cluster, wakes its readers (bell-reader.ts). */
  ring(key: string): void;
  /** How a script pushes an entry (stream-push.ts): a shard channel on a cluster. */
  publishCommand(): PublishCommand;
  close(): Promise<void>;
}

/** How long a closing node waits for Redis to answer QUIT before it cuts the connections. */
const QUIT_TIMEOUT_MS = 1000;

const retryStrategy = (times: number): number => Math.min(50 * 2 ** times, 1000);

const hostPort = (key: string): { host: string; port: number } => {
  const colon = key.lastIndexOf(':');
  return { host: key.slice(0, colon), port: Number(key.slice(colon + 1)) };
};

export const createRedisConnection = (options: RedisConnectionOptions): RedisConnection => {
  // Commands are never queued while Redis is unreachable: a message that cannot
  // leave is dropped and counted, and the state-vector exchange repairs it.
  const commandOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectionName: `stateweave-${options.nodeId}`,
  } as const;
  const probe = new Redis(options.url, { ...commandOptions, retryStrategy });
  let cluster: Cluster | undefined;
  let mode: RedisMode | undefined;
  let closed = false;
  let settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  ready.catch(() => undefined); // connect() reports it; nobody else awaits it

  /** What every connection to a node of this Redis needs: credentials, TLS, name. */
  const nodeOptions = (): RedisOptions => {
    const { username, password, tls, connectionName } = probe.options;
    return {
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(tls !== undefined ? { tls } : {}),
      ...(connectionName !== undefined ? { connectionName } : {}),
      maxRetriesPerRequest: 0,
    };
  };

  const wire = (client: RedisClient): void => {
    client.on('ready', () => {
      settle?.resolve();
      options.onReady();
    });
    client.on('close', options.onClose);
  };

  const detect = async (): Promise<void> => {
    const info = await probe.info('cluster');
    if (mode !== undefined || closed) return;
    if (!/^cluster_enabled:1\b/m.test(info)) {
      mode = 'single';
      wire(probe);
      settle?.resolve();
      options.onReady();
      return;
    }
    mode = 'cluster';
    const seed = { host: probe.options.host, port: probe.options.port };
    cluster = new Cluster([seed], {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retryStrategy,
      slotsRefreshInterval: 2000,
      redisOptions: nodeOptions(),
    });
    cluster.on('error', options.onError);
    cluster.on('node error', options.onError);
    wire(cluster);
    probe.disconnect();
    await cluster.connect();
  };

  probe.on('error', options.onError);
  probe.on('ready', () => {
    if (mode === undefined)
      detect().catch((err: unknown) => {
        options.onError(err as Error);
        settle?.reject(err as Error);
      });
  });
  probe.on('close', () => {
    if (mode === undefined) settle?.reject(new Error('redis unreachable'));
  });

  const source = (): ReaderSource => {
    const own = { enableOfflineQueue: false, retryStrategy, lazyConnect: false };
    // ioredis's own resubscribe after a reconnect leaves its promise unhandled: a
    // subscriber dropped before the reply (bell-reader.ts, its last stream gone) then
    // ended the process with "Connection is closed". The bell reader subscribes again.
    const subscriberOptions = { ...own, enableOfflineQueue: true, autoResubscribe: false };
    if (cluster === undefined)
      return {
        kind: 'single',
        connect: () => probe.duplicate(own),
        control: probe,
        pushes: {
          shardOf: () => 'single',
          // Subscriptions wait for the connection; the read that follows each makes up for
          // pushes missed meanwhile.
          subscriber: () => probe.duplicate({ ...subscriberOptions }),
          commands: probe,
          sharded: false,
          refresh: () => Promise.resolve(),
        },
      };
    const commands = cluster;
    return {
      kind: 'cluster',
      bells: {
        shardOf: (key) =>
          commands.slots[keySlot(key)]?.[0] ?? `${probe.options.host}:${probe.options.port}`,
        // Subscriptions wait for the connection (the offline queue): a bell missed meanwhile
        // is made up by the read that follows every subscription.
        subscriber: (master) =>
          new Redis({ ...nodeOptions(), ...subscriberOptions, ...hostPort(master) }),
        commands,
        sharded: true,
        refresh: () =>
          new Promise<void>((resolve, reject) =>
            commands.refreshSlotsCache((err) => (err ? reject(err) : resolve())),
          ),
      },
    };
  };

  return {
    client: () => cluster ?? probe,
    mode: () => mode,
    async connect() {
      await probe.connect();
      await ready;
    },
    source,
    ring(key) {
      cluster?.spublish(key, '').catch(options.onError);
    },
    publishCommand: () => (cluster === undefined ? 'PUBLISH' : 'SPUBLISH'),
    async close() {
      closed = true;
      const client = cluster ?? probe;
      // QUIT lets replies in flight arrive; a Redis that does not answer (down, a cluster node
      // reconnecting) must not hold the shutdown, so it is bounded and then cut.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.quit().catch(() => undefined),
        new Promise((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      client.disconnect();
      probe.disconnect();
    },
  };
};

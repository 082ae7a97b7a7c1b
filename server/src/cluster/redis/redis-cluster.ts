/** The cluster layer on a Redis backplane: what `server.ts` builds for `--redis`. */
import type { Hub } from '../../hub/hub.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import { createBackplaneCluster } from '../backplane-cluster.js';
import { createBackplaneMetrics } from '../backplane-metrics.js';
import type { Cluster } from '../cluster.js';
import { createRedisBackplane } from './redis-backplane.js';

export interface RedisClusterOptions {
  readonly url: string;
  readonly nodeId: string;
  readonly replicationFactor: number;
  readonly hub: () => Hub;
  readonly listDocs: () => AsyncIterable<string>;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export const createRedisCluster = (options: RedisClusterOptions): Cluster =>
  createBackplaneCluster({
    backplane: createRedisBackplane({
      url: options.url,
      nodeId: options.nodeId,
      logger: options.logger,
      metrics: createBackplaneMetrics(options.metrics),
    }),
    replicationFactor: options.replicationFactor,
    hub: options.hub,
    listDocs: options.listDocs,
    logger: options.logger,
  });

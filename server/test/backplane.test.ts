/**
 * Every Backplane adapter passes one contract (backplane-contract.ts): the
 * in-memory medium, Redis on a real redis-server started for this file, and
 * Redis on a real 3-master Redis Cluster (each backplane seeded with another master).
 * Plus the channel replicator's frame codec.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '@stateweave/client/protocol';
import { decodeChannelFrame, encodeChannelFrame } from '../src/cluster/channel-codec.js';
import { createBackplaneMetrics } from '../src/cluster/backplane-metrics.js';
import { createMemoryBackplaneMedium } from '../src/cluster/memory-backplane.js';
import { createRedisBackplane } from '../src/cluster/redis/redis-backplane.js';
import { createMetrics } from '../src/metrics.js';
import { backplaneContract } from './backplane-contract.js';
import { silentLogger } from './helpers/node.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { startRedisCluster, type TestRedisCluster } from './helpers/redis-cluster.js';
import { validateNodeId as nid } from '../src/node-id.js';

backplaneContract('in-memory', async (ids) => {
  const medium = createMemoryBackplaneMedium();
  return { backplanes: ids.map((id) => medium.join(id)), close: async () => {} };
});

let redis: Promise<TestRedis> | undefined;
let media = 0;
after(async () => (await redis)?.close());

backplaneContract('Redis', async (ids) => {
  redis ??= startRedis();
  const { url } = await redis;
  // A key prefix per medium: the tests share one Redis without seeing each other.
  const keyPrefix = `contract${++media}`;
  return {
    backplanes: ids.map((nodeId) =>
      createRedisBackplane({
        url,
        nodeId: nid(nodeId),
        keyPrefix,
        logger: silentLogger(),
        metrics: createBackplaneMetrics(createMetrics({ collectDefault: false })),
      }),
    ),
    close: async () => {},
  };
});

let redisCluster: Promise<TestRedisCluster> | undefined;
after(async () => (await redisCluster)?.close());

backplaneContract('Redis Cluster', async (ids) => {
  redisCluster ??= startRedisCluster(3);
  const cluster = await redisCluster;
  const keyPrefix = `contract${++media}`;
  return {
    backplanes: ids.map((nodeId, i) =>
      createRedisBackplane({
        url: cluster.urlOf(cluster.ports[i % cluster.ports.length]!),
        nodeId: nid(nodeId),
        keyPrefix,
        logger: silentLogger(),
        metrics: createBackplaneMetrics(createMetrics({ collectDefault: false })),
      }),
    ),
    close: async () => {},
  };
});

describe('channel frames', () => {
  it('round-trip every kind and refuse anything malformed', () => {
    const message = Uint8Array.from([0, 0, 1, 255]);
    for (const frame of [
      { type: 'ask', doc: 'a/b', message },
      { type: 'message', doc: 'x', message },
      { type: 'leave', doc: 'y' },
    ] as const) {
      const bytes = encodeChannelFrame(frame);
      const back = decodeChannelFrame(bytes);
      assert.equal(back.type, frame.type);
      assert.equal(back.doc, frame.doc);
      assert.deepEqual([...encodeChannelFrame(back)], [...bytes]);
    }
    const good = encodeChannelFrame({ type: 'message', doc: 'x', message });
    assert.throws(() => decodeChannelFrame(good.subarray(0, good.length - 1)), ProtocolError);
    assert.throws(() => decodeChannelFrame(Uint8Array.from([...good, 0])), ProtocolError);
    assert.throws(() => decodeChannelFrame(Uint8Array.from([9, 0])), ProtocolError);
  });
});

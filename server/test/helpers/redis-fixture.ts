/**
 * What most Redis process tests start in `before()`: a redis-server of their
 * own and `count` nodes on it that see each other as members. The test stops
 * both in `after()` (its own clients first), each by the pid it started.
 */
import {
  startRedis,
  startRedisNodes,
  waitMembers,
  type RedisNodes,
  type TestRedis,
} from './redis.js';

export interface RedisFixture {
  readonly redis: TestRedis;
  readonly cluster: RedisNodes;
}

/**
 * Starts Redis and nodes n1…n`count` with `args`, resolved once every node sees
 * all of them; if any step fails, stops what it started before it rethrows.
 */
export const startRedisFixture = async (
  count: number,
  args: string[] = [],
): Promise<RedisFixture> => {
  const redis = await startRedis();
  let cluster: RedisNodes | undefined;
  try {
    cluster = await startRedisNodes(count, redis.url, args);
    await waitMembers(
      cluster.nodes,
      cluster.nodes.map((n) => n.id),
    );
    return { redis, cluster };
  } catch (err) {
    await cluster?.close();
    await redis.close();
    throw err;
  }
};

/**
 * Membership on Redis: one sorted set of node ids scored by when each expires.
 * Every heartbeat a node runs one script that renews its own entry, drops the
 * expired ones and returns the live ids, all against Redis's clock (so the
 * nodes' clocks need not agree). A node that stops heartbeating drops out after
 * `ttlMs`, and every other node notices at its next heartbeat.
 */
import type { RedisClient } from './redis-connection.js';
import { isNodeId, type NodeId } from '../../node-id.js';

export interface MembershipOptions {
  /** The command client now (it changes once the node knows whether Redis is a cluster). */
  readonly redis: () => RedisClient;
  readonly key: string;
  readonly nodeId: NodeId;
  /** @default 1000 */
  readonly heartbeatMs?: number;
  /** A node that has not renewed for this long is gone. @default 5000 */
  readonly ttlMs?: number;
  readonly onChange: (up: NodeId[], down: NodeId[]) => void;
  /** A heartbeat failed (Redis unreachable); membership stays as last seen. */
  readonly onError: (err: Error) => void;
}

export interface Membership {
  start(): Promise<void>;
  /** Live ids, this node included (the last seen while Redis is unreachable). */
  members(): NodeId[];
  isLive(nodeId: NodeId): boolean;
  /** Renews at once (e.g. after Redis came back) instead of at the next tick. */
  beat(): Promise<void>;
  /** Removes this node's entry (others see it gone at their next heartbeat). */
  leave(): Promise<void>;
  stop(): void;
}

// KEYS[1] the set; ARGV[1] node id, ARGV[2] ttl ms. Redis ≥ 5 replicates the
// effects of a script, so reading TIME before writing is allowed.
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)`;

export const createMembership = (options: MembershipOptions): Membership => {
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const ttlMs = options.ttlMs ?? 5000;
  let live = new Set<NodeId>([options.nodeId]);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const beat = async (): Promise<void> => {
    const result: unknown = await options
      .redis()
      .eval(HEARTBEAT, 1, options.key, options.nodeId, String(ttlMs));
    if (stopped) return;
    // Where the other nodes' ids enter: what is not a node id is not a member.
    const ids = Array.isArray(result)
      ? result.filter((v): v is NodeId => typeof v === 'string' && isNodeId(v))
      : [];
    const next = new Set<NodeId>([options.nodeId, ...ids]);
    const up = [...next].filter((id) => !live.has(id));
    const down = [...live].filter((id) => !next.has(id));
    live = next;
    if (up.length > 0 || down.length > 0) options.onChange(up, down);
  };

  const tick = (): void => {
    beat()
      .catch((err: unknown) => options.onError(err as Error))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, heartbeatMs).unref();
      });
  };

  return {
    async start() {
      await beat();
      timer = setTimeout(tick, heartbeatMs).unref();
    },
    members: () => [...live].sort(),
    isLive: (id) => live.has(id),
    beat,
    async leave() {
      await options.redis().zrem(options.key, options.nodeId);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
};

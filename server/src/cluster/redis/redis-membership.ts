/**
 * Membership on Redis: one sorted set of node ids scored by when each expires.
 * Every heartbeat a node runs one script that renews its own entry, drops the
 * expired ones and returns the live ids, all against Redis's clock (so the
 * nodes' clocks need not agree). A node that stops heartbeating drops out after
 * `ttlMs`, and every other node notices at its next heartbeat.
 *
 * An entry is `<node id>:<boot id>`, so a node that restarts between two of
 * another node's heartbeats (a quick restart: its leave and its join both fall
 * inside one second) is still seen to have gone and come back — the others
 * then run what they run when a member comes up (catch-up, tombstones), which
 * its new run may need. An entry without a boot (written by hand, or by an older
 * version) is the id alone.
 *
 * A node that joins tells the others at once (redis-backplane.ts: a line in
 * each one's inbox), and they beat at once (`beatSoon`) rather than at their
 * next heartbeat: until a node counts the newcomer live it does not push its
 * appends to it (stream-push.ts), and the newcomer would hear of them only
 * from a later push or its sweep.
 */
import type { RedisClient } from './redis-connection.js';
import { isNodeId, type NodeId } from '../../node-id.js';

export interface MembershipOptions {
  /** The command client now (it changes once the node knows whether Redis is a cluster). */
  readonly redis: () => RedisClient;
  readonly key: string;
  readonly nodeId: NodeId;
  /** This run of the node: a restart is a new member even under the same id. */
  readonly boot: string;
  /** @default 1000 */
  readonly heartbeatMs?: number;
  /** A node that has not renewed for this long is gone. @default 5000 */
  readonly ttlMs?: number;
  /** `down` before `up`: a restarted node is in both (gone, then back). */
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
  /**
   * Beats now, or right after the beat under way (which Redis may have run before
   * what prompted this): a member may have joined. Errors go to `onError`.
   */
  beatSoon(): void;
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

/** `<id>:<boot>` → [id, boot]; the id alone has boot ''. Undefined: not a node id. */
const parseEntry = (entry: string): [NodeId, string] | undefined => {
  const colon = entry.indexOf(':');
  const id = colon < 0 ? entry : entry.slice(0, colon);
  return isNodeId(id) ? [id, colon < 0 ? '' : entry.slice(colon + 1)] : undefined;
};

export const createMembership = (options: MembershipOptions): Membership => {
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const ttlMs = options.ttlMs ?? 5000;
  const self = `${options.nodeId}:${options.boot}`;
  /** Live node → its boot. */
  let live = new Map<NodeId, string>([[options.nodeId, options.boot]]);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const beat = async (): Promise<void> => {
    const result: unknown = await options
      .redis()
      .eval(HEARTBEAT, 1, options.key, self, String(ttlMs));
    if (stopped) return;
    // Where the other nodes' ids enter: what is not a node id is not a member. Entries
    // come by ascending expiry, so a node's newest run (a restart's) is its last.
    const next = new Map<NodeId, string>();
    for (const v of Array.isArray(result) ? result : []) {
      const parsed = typeof v === 'string' ? parseEntry(v) : undefined;
      if (parsed) next.set(parsed[0], parsed[1]);
    }
    next.set(options.nodeId, options.boot);
    const up = [...next].filter(([id, boot]) => live.get(id) !== boot).map(([id]) => id);
    const down = [...live]
      .filter(([id, boot]) => !next.has(id) || next.get(id) !== boot)
      .map(([id]) => id);
    live = next;
    if (up.length > 0 || down.length > 0) options.onChange(up, down);
  };

  /** A beat of `beatSoon` under way, and whether another must follow it. */
  let soon: 'idle' | 'beating' | 'again' = 'idle';
  const beatSoon = (): void => {
    if (stopped) return;
    if (soon !== 'idle') return void (soon = 'again');
    soon = 'beating';
    beat()
      .catch((err: unknown) => options.onError(err as Error))
      .finally(() => {
        const more = soon === 'again';
        soon = 'idle';
        if (more) beatSoon();
      });
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
    members: () => [...live.keys()].sort(),
    isLive: (id) => live.has(id),
    beat,
    beatSoon,
    async leave() {
      await options.redis().zrem(options.key, self);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
};

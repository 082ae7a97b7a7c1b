/**
 * Owner leases and fenced writes on Redis (the lease part of backplane.ts).
 *
 * Per document, next to its stream `<prefix>:doc:{<name>}` and in the same
 * hash slot (the `{<name>}` tag):
 *
 * - `<prefix>:lease:{<name>}`: a hash `holder`, `token`, `expires` (Redis's
 *   clock, ms). The token only grows: a release sets `expires` to 0 and keeps
 *   it. The hash expires after `idleMs` without a grant.
 * - `<prefix>:calls:{<name>}`: a hash of idempotency records written by fenced
 *   writes, expiring `idleMs` after the last one.
 *
 * Each operation is one Lua script that declares every key it touches and
 * reads TIME itself, so the nodes' clocks need not agree. The fenced write
 * checks holder, token and expiry, and only then appends to the stream and
 * writes the records: a holder that was paused past its lease cannot write.
 */
import type { RedisClient } from './redis-connection.js';
import { encodeRoute, PUSH_APPEND_LUA, type PublishCommand } from './stream-push.js';
import { StateweaveError } from '../../errors.js';
import type { ChannelMessage, DocRecord, LeaseAttempt } from '../backplane.js';
import { isNodeId, validateNodeId, type NodeId } from '../../node-id.js';

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** True when ARGV[1] holds token ARGV[2], unexpired. */
const HOLDS = `
local h = redis.call('HMGET', KEYS[1], 'holder', 'token', 'expires')
local holds = h[1] == ARGV[1] and h[2] == ARGV[2] and tonumber(h[3]) > now`;

// KEYS: lease, stream. ARGV: node, ttl ms, first stream id to return ('-' or '(id'), idle ms.
const ACQUIRE = `${NOW}
local h = redis.call('HMGET', KEYS[1], 'holder', 'token', 'expires')
if h[1] and h[1] ~= ARGV[1] and tonumber(h[3]) > now then
  return {0, h[1], tonumber(h[3]) - now}
end
local token = (tonumber(h[2]) or 0) + 1
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token, 'expires', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, token, redis.call('XRANGE', KEYS[2], ARGV[3], '+')}`;

// KEYS: lease. ARGV: node, token, ttl ms.
const RENEW = `${NOW}${HOLDS}
if not holds then return 0 end
redis.call('HSET', KEYS[1], 'expires', now + tonumber(ARGV[3]))
return 1`;

// KEYS: lease. ARGV: node, token.
const RELEASE = `${NOW}${HOLDS}
if holds then redis.call('HSET', KEYS[1], 'expires', 0) end
return 1`;

// KEYS: lease, stream, calls. ARGV: node, token, boot, maxlen, idle ms, message ('' = none),
// route (stream-push.ts: the publish command and the nodes to push to), then record key, value pairs.
const FENCED_WRITE = `${PUSH_APPEND_LUA}${NOW}${HOLDS}
if not holds then return 0 end
for i = 8, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 1 then return -1 end
end
if ARGV[6] ~= '' then
  push_append(KEYS[2], ARGV[4], ARGV[1], ARGV[3], ARGV[6], ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
if #ARGV >= 8 then
  for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
return 1`;

export interface RedisLeasesOptions {
  /** The command client now (a single Redis, or a Cluster routing by the document's slot). */
  readonly redis: () => RedisClient;
  /** How the fenced write pushes its entry to the stream's readers (stream-push.ts). */
  readonly publishCommand: () => PublishCommand;
  /**
   * The nodes a fenced write pushes its entry to (the other live ones). This
   * node's own position moves past it on the next read, when a push after it
   * does not follow its position.
   */
  readonly pushTo: () => readonly string[];
  readonly prefix: string;
  readonly nodeId: NodeId;
  /** This run's boot id: entries it wrote are skipped in a backlog (the node has them). */
  readonly boot: string;
  readonly streamKey: (doc: string) => string;
  /** Where this node read the document's stream last (undefined: never). */
  readonly positionOf: (doc: string) => string | undefined;
  readonly maxStreamEntries: string;
  /** Lease hashes and call records expire this long after their last use. */
  readonly idleMs: number;
}

export interface RedisLeases {
  acquire(doc: string, ttlMs: number, fromStart: boolean): Promise<LeaseAttempt>;
  renew(doc: string, token: number, ttlMs: number): Promise<boolean>;
  release(doc: string, token: number): Promise<void>;
  publishFenced(
    doc: string,
    token: number,
    message: Uint8Array | null,
    records: readonly DocRecord[],
  ): Promise<void>;
  getRecord(doc: string, key: string): Promise<Uint8Array | undefined>;
}

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

const asBytes = (buffer: Buffer): Uint8Array =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);

/** Stream entries (as XRANGE returns them), less those of the run `skipBoot`. */
const backlogOf = (raw: unknown, skipBoot: string | undefined): ChannelMessage[] => {
  if (!Array.isArray(raw)) return [];
  const messages: ChannelMessage[] = [];
  for (const entry of raw as unknown[]) {
    const flat = Array.isArray(entry) ? (entry[1] as unknown) : undefined;
    if (!Array.isArray(flat)) continue;
    const fields = new Map<string, Buffer>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [k, v] = [flat[i] as unknown, flat[i + 1] as unknown];
      if (Buffer.isBuffer(k) && Buffer.isBuffer(v)) fields.set(k.toString(), v);
    }
    const from = fields.get('n')?.toString();
    const message = fields.get('m');
    if (from === undefined || message === undefined || !isNodeId(from)) continue;
    if (skipBoot !== undefined && fields.get('b')?.toString() === skipBoot) continue;
    messages.push({ from, message: asBytes(message) });
  }
  return messages;
};

export const createRedisLeases = (options: RedisLeasesOptions): RedisLeases => {
  const { redis, prefix, nodeId } = options;
  const leaseKey = (doc: string): string => `${prefix}:lease:{${doc}}`;
  const callsKey = (doc: string): string => `${prefix}:calls:{${doc}}`;
  const idle = String(options.idleMs);

  return {
    async acquire(doc, ttlMs, fromStart) {
      const position = fromStart ? undefined : options.positionOf(doc);
      // Buffers back: the backlog holds binary messages.
      const result: unknown = await redis().callBuffer(
        'EVAL',
        ACQUIRE,
        2,
        leaseKey(doc),
        options.streamKey(doc),
        nodeId,
        String(ttlMs),
        position === undefined || position === '0' ? '-' : `(${position}`,
        idle,
      );
      const [granted, second, third] = Array.isArray(result) ? (result as unknown[]) : [];
      if (granted === 1)
        return {
          granted: true,
          token: Number(second),
          backlog: backlogOf(third, fromStart ? undefined : options.boot),
        };
      if (granted === 0 && Buffer.isBuffer(second))
        return {
          granted: false,
          holder: validateNodeId(second.toString()),
          remainingMs: Number(third),
        };
      throw new StateweaveError('INTERNAL', 'unexpected answer of the lease script');
    },

    async renew(doc, token, ttlMs) {
      const result = await redis().eval(RENEW, 1, leaseKey(doc), nodeId, String(token), ttlMs);
      return result === 1;
    },

    async release(doc, token) {
      await redis().eval(RELEASE, 1, leaseKey(doc), nodeId, String(token));
    },

    async publishFenced(doc, token, message, records) {
      const pairs = records.flatMap((r) => [r.key, asBuffer(r.value)]);
      const result = await redis().eval(
        FENCED_WRITE,
        3,
        leaseKey(doc),
        options.streamKey(doc),
        callsKey(doc),
        nodeId,
        String(token),
        options.boot,
        options.maxStreamEntries,
        idle,
        message ? asBuffer(message) : '',
        encodeRoute(options.publishCommand(), options.pushTo()),
        ...pairs,
      );
      if (result === 1) return;
      throw new StateweaveError(
        'FENCED',
        result === -1
          ? `a record of this write already exists in ${doc}`
          : `lease token ${token} of ${doc} is no longer this node's`,
      );
    },

    async getRecord(doc, key) {
      const value = await redis().hgetBuffer(callsKey(doc), key);
      return value === null ? undefined : asBytes(value);
    },
  };
};

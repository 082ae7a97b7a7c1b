/**
 * Push delivery of document streams: every append to a document's stream is
 * one Lua script that XADDs the entry and publishes it on a channel named like
 * the stream, as `<previous id> <id> <node> <boot> <message>` (the ids, node id
 * and boot id contain no space; the message is the rest, binary). The previous
 * id is the stream's last entry before this one ('0' when there was none).
 *
 * A reader whose position is the previous id applies the entry as it is
 * pushed, with no read; any other previous id means it missed something (a
 * push lost while its subscriber reconnected, an entry appended without a
 * push, a trim), so it reads the stream from its position (bell-reader.ts).
 * The stream stays the log for catch-up.
 *
 * The channel is a shard channel (SPUBLISH) on a Redis Cluster, so it stays on
 * the master of the stream's slot (the script declares the stream, and the
 * channel shares its name and slot); a plain channel (PUBLISH) on a single
 * Redis, which works on every version.
 */
import type { Cluster, Redis } from 'ioredis';
import type { StreamEntry } from './stream-entries.js';

/** `PUBLISH` on a single Redis, `SPUBLISH` on a Redis Cluster. */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH';

/**
 * A Lua function `push_append(key, maxlen, node, boot, message, publish)`: appends
 * and publishes; returns the new id. Scripts that append to a document stream
 * include it (the key must be declared in their KEYS).
 */
export const PUSH_APPEND_LUA = `
local function push_append(key, maxlen, node, boot, message, publish)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  local prev = '0'
  if last[1] then prev = last[1][1] end
  local id = redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'n', node, 'b', boot, 'm', message)
  redis.call(publish, key, prev .. ' ' .. id .. ' ' .. node .. ' ' .. boot .. ' ' .. message)
  return id
end`;

// KEYS: stream. ARGV: maxlen, node, boot, message, publish command.
const APPEND_AND_PUSH = `${PUSH_APPEND_LUA}
return push_append(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])`;

/** The script as a command of the client: sent by its SHA1 (EVALSHA), the body only once per server. */
type RedisClient = Redis | Cluster;
interface PushCommand {
  swAppendAndPush(...args: Array<string | Buffer>): Promise<unknown>;
}
const defined = new WeakSet<RedisClient>();

/** Appends an entry to the document stream `key` and pushes it (one script, on every update). */
export const appendAndPush = (
  client: RedisClient,
  key: string,
  entry: {
    readonly maxLen: string;
    readonly node: string;
    readonly boot: string;
    readonly message: Buffer;
    readonly publish: PublishCommand;
  },
): Promise<unknown> => {
  if (!defined.has(client)) {
    client.defineCommand('swAppendAndPush', { numberOfKeys: 1, lua: APPEND_AND_PUSH });
    defined.add(client);
  }
  const { maxLen, node, boot, message, publish } = entry;
  return (client as RedisClient & PushCommand).swAppendAndPush(
    key,
    maxLen,
    node,
    boot,
    message,
    publish,
  );
};

/** One pushed entry, and the id of the entry before it in its stream. */
export interface PushedEntry {
  readonly previous: string;
  readonly entry: StreamEntry;
}

/** Decodes a push; undefined for anything else (e.g. an empty bell). */
export const decodePush = (payload: Buffer): PushedEntry | undefined => {
  const spaces: number[] = [];
  for (let i = 0; spaces.length < 4 && i < payload.length; i++)
    if (payload[i] === 0x20) spaces.push(i);
  if (spaces.length < 4) return undefined;
  const [a, b, c, d] = spaces as [number, number, number, number];
  const previous = payload.toString('latin1', 0, a);
  const id = payload.toString('latin1', a + 1, b);
  if (!isStreamId(previous) || !isStreamId(id)) return undefined;
  const fields = new Map<string, Buffer>([
    ['n', payload.subarray(b + 1, c)],
    ['b', payload.subarray(c + 1, d)],
    ['m', payload.subarray(d + 1)],
  ]);
  return { previous, entry: { id, fields } };
};

const isStreamId = (id: string): boolean => id === '0' || /^\d+-\d+$/.test(id);

/** True when stream id `a` comes after `b` ('0' comes before every entry). */
export const isAfter = (a: string, b: string): boolean => {
  const [ams = 0, aseq = 0] = a.split('-').map(Number);
  const [bms = 0, bseq = 0] = b.split('-').map(Number);
  return ams !== bms ? ams > bms : aseq > bseq;
};

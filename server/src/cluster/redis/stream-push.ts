/**
 * Push delivery of document streams: every append to a document's stream is
 * one Lua script that XADDs the entry and publishes it to each other live
 * node, on that node's channel of the stream (`<stream key>#<node id>`), as
 * `<previous id> <id> <node> <boot> <message>` (the ids, node id and boot id
 * contain no space; the message is the rest, binary). The previous id is the
 * stream's last entry before this one ('0' when there was none); the script
 * returns it with the new id, so the writer moves its own position past its
 * entry without having it pushed back.
 *
 * Why a channel per node: on one channel per stream every subscriber gets
 * every entry, the writer too — one more process woken and one more copy of
 * the message per update, for nothing but the entry's id, which the script's
 * reply carries anyway. A node's channel of a stream that node does not follow
 * has no subscriber: publishing there costs Redis a lookup.
 *
 * A reader whose position is the previous id applies the entry as it is
 * pushed, with no read; any other previous id means it missed something (a
 * push lost while its subscriber reconnected, an entry appended without a
 * push or by a writer that did not count this node live yet, a trim), so it
 * reads the stream from its position (bell-reader.ts). The stream stays the
 * log for catch-up.
 *
 * The channels are shard channels (SPUBLISH) on a Redis Cluster, so they stay
 * on the master of the stream's slot (the script declares the stream, and the
 * channels share its `{name}` tag, so its slot); plain channels (PUBLISH) on a
 * single Redis, which works on every version.
 */
import type { Cluster, Redis } from 'ioredis';
import type { StreamEntry } from './stream-entries.js';

/** `PUBLISH` on a single Redis, `SPUBLISH` on a Redis Cluster. */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH';

/** The channel on which `node` is pushed the entries of stream `key`. */
export const pushChannel = (key: string, node: string): string => `${key}#${node}`;

/**
 * Where an append is pushed, as one script argument: the publish command, then
 * the ids of the nodes to push to (`PUBLISH n2 n3`; node ids have no space).
 */
export const encodeRoute = (publish: PublishCommand, to: readonly string[]): string =>
  [publish, ...to].join(' ');

/**
 * A Lua function `push_append(key, maxlen, node, boot, message, route)`: appends
 * and pushes to the nodes of `route` (`encodeRoute`); returns the id of the
 * entry before and the new id. Scripts that append to a document stream include
 * it (the key must be declared in their KEYS).
 */
export const PUSH_APPEND_LUA = `
local function push_append(key, maxlen, node, boot, message, route)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  local prev = '0'
  if last[1] then prev = last[1][1] end
  local id = redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'n', node, 'b', boot, 'm', message)
  local publish = nil
  local payload = nil
  for word in string.gmatch(route, '%S+') do
    if publish == nil then
      publish = word
      payload = prev .. ' ' .. id .. ' ' .. node .. ' ' .. boot .. ' ' .. message
    else
      redis.call(publish, key .. '#' .. word, payload)
    end
  end
  return {prev, id}
end`;

// KEYS: stream. ARGV: maxlen, node, boot, message, route (encodeRoute).
const APPEND_AND_PUSH = `${PUSH_APPEND_LUA}
return push_append(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])`;

/** The script as a command of the client: sent by its SHA1 (EVALSHA), the body only once per server. */
type RedisClient = Redis | Cluster;
interface PushCommand {
  swAppendAndPush(...args: Array<string | Buffer>): Promise<unknown>;
}
const defined = new WeakSet<RedisClient>();

/** An entry appended by this node: its id, and the id of the entry before it ('0': none). */
export interface Appended {
  readonly previous: string;
  readonly id: string;
}

/**
 * Appends an entry to the document stream `key` and pushes it to the nodes
 * `to` (one script, on every update); resolves with its id and the one before.
 */
export const appendAndPush = async (
  client: RedisClient,
  key: string,
  entry: {
    readonly maxLen: string;
    readonly node: string;
    readonly boot: string;
    readonly message: Buffer;
    readonly publish: PublishCommand;
    readonly to: readonly string[];
  },
): Promise<Appended> => {
  if (!defined.has(client)) {
    client.defineCommand('swAppendAndPush', { numberOfKeys: 1, lua: APPEND_AND_PUSH });
    defined.add(client);
  }
  const { maxLen, node, boot, message, publish, to } = entry;
  const reply = await (client as RedisClient & PushCommand).swAppendAndPush(
    key,
    maxLen,
    node,
    boot,
    message,
    encodeRoute(publish, to),
  );
  const [previous, id] = Array.isArray(reply) ? reply.map(String) : [];
  if (previous === undefined || id === undefined || !isStreamId(previous) || !isStreamId(id))
    throw new Error(`unexpected reply to an append: ${String(reply)}`);
  return { previous, id };
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

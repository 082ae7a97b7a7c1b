/**
 * Trimming document streams by what their homes have stored (the trim part of
 * backplane.ts).
 *
 * Per document, next to its stream `<prefix>:doc:{<name>}` and in the same hash
 * slot: `<prefix>:stored:{<name>}`, a hash node id → the last stream id that
 * node has durably stored. A home records its mark (once per tick while its
 * position moves, never per update) with one script that declares both keys:
 * it raises the mark, forgets the marks of nodes that are no longer homes (a
 * home gone from membership stops holding the stream back), and, when every
 * live home has a mark, trims the stream to the lowest (XTRIM MINID). A home
 * with no mark holds the stream at its start. The writers' MAXLEN stays the cap.
 */
import type { RedisClient } from './redis-connection.js';

// KEYS: marks, stream. ARGV: node, its stored id, idle ms, then the live homes.
// Returns the entries trimmed, or -1 while a home has no mark.
const MARK_AND_TRIM = `
local function before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if tonumber(ams) ~= tonumber(bms) then return tonumber(ams) < tonumber(bms) end
  return tonumber(aseq) < tonumber(bseq)
end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or before(old, ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local homes = {}
for i = 4, #ARGV do homes[ARGV[i]] = true end
local marks = redis.call('HGETALL', KEYS[1])
local low
for i = 1, #marks, 2 do
  if not homes[marks[i]] then redis.call('HDEL', KEYS[1], marks[i]) end
end
for i = 4, #ARGV do
  local id = redis.call('HGET', KEYS[1], ARGV[i])
  if not id then return -1 end
  if not low or before(id, low) then low = id end
end
return redis.call('XTRIM', KEYS[2], 'MINID', low)`;

export interface StreamTrimOptions {
  readonly redis: () => RedisClient;
  readonly nodeId: string;
  readonly streamKey: (doc: string) => string;
  readonly marksKey: (doc: string) => string;
  /** The marks expire with the stream, this long after the last one. */
  readonly idleMs: number;
  readonly onError: (err: Error) => void;
}

export interface StreamTrim {
  /** Records that this node stored `doc`'s stream through `id`, and trims what all `homes` stored. */
  mark(doc: string, id: string, homes: readonly string[]): void;
}

export const createStreamTrim = (options: StreamTrimOptions): StreamTrim => ({
  mark(doc, id, homes) {
    if (!/^\d+-\d+$/.test(id)) return; // nothing read yet
    const client = options.redis();
    if (client.status !== 'ready') return; // marked again at the next tick
    client
      .eval(
        MARK_AND_TRIM,
        2,
        options.marksKey(doc),
        options.streamKey(doc),
        options.nodeId,
        id,
        String(options.idleMs),
        ...homes,
      )
      .catch((err: unknown) => options.onError(err as Error));
  },
});

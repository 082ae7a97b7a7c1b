/**
 * One blocking XREAD loop over every stream this node follows (its inbox and
 * the streams of its open documents), on a connection of its own: a blocked
 * XREAD holds its connection, so sharing one would stall every other command.
 * Following a new stream takes effect at the next round; `wake` (an entry in
 * the inbox) ends the current block at once.
 */
import type { Redis } from 'ioredis';

export interface StreamEntry {
  readonly id: string;
  readonly fields: ReadonlyMap<string, Buffer>;
}

export interface StreamReaderOptions {
  /** A dedicated connection (nothing else may use it). */
  readonly redis: Redis;
  /** @default 5000 */
  readonly blockMs?: number;
  /** Entries per stream per round. @default 256 */
  readonly count?: number;
  readonly onEntries: (key: string, entries: readonly StreamEntry[]) => void;
  /** A round failed (Redis unreachable); the loop retries after `retryMs`. */
  readonly onError: (err: Error) => void;
  /** @default 250 */
  readonly retryMs?: number;
}

export interface StreamReader {
  /** Follows `key` from after `afterId` ('0': everything it retains). */
  follow(key: string, afterId: string): void;
  /** Stops following `key`; returns the id read last, to resume from later. */
  unfollow(key: string): string | undefined;
  /** The id read last on `key`. */
  position(key: string): string | undefined;
  readonly size: number;
  start(): void;
  stop(): void;
}

type RawEntry = [id: Buffer, fields: Buffer[]];
type RawStream = [key: Buffer, entries: RawEntry[]];

const isRawStreams = (value: unknown): value is RawStream[] =>
  Array.isArray(value) &&
  value.every((s) => Array.isArray(s) && Buffer.isBuffer(s[0]) && Array.isArray(s[1]));

const toEntry = ([id, flat]: RawEntry): StreamEntry => {
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!.toString(), flat[i + 1]!);
  return { id: id.toString(), fields };
};

export const createStreamReader = (options: StreamReaderOptions): StreamReader => {
  const positions = new Map<string, string>();
  const blockMs = options.blockMs ?? 5000;
  const count = options.count ?? 256;
  const retryMs = options.retryMs ?? 250;
  let running = false;

  const round = async (): Promise<void> => {
    const keys = [...positions.keys()];
    if (keys.length === 0) return new Promise((resolve) => setTimeout(resolve, 50));
    const ids = keys.map((k) => positions.get(k)!);
    const result: unknown = await options.redis.callBuffer(
      'XREAD',
      'COUNT',
      String(count),
      'BLOCK',
      String(blockMs),
      'STREAMS',
      ...keys,
      ...ids,
    );
    if (result === null || !isRawStreams(result)) return;
    for (const [rawKey, raw] of result) {
      const key = rawKey.toString();
      if (!positions.has(key) || raw.length === 0) continue; // unfollowed during the block
      const entries = raw.map(toEntry);
      positions.set(key, entries[entries.length - 1]!.id);
      options.onEntries(key, entries);
    }
  };

  const loop = async (): Promise<void> => {
    while (running) {
      try {
        await round();
      } catch (err) {
        if (!running) return;
        options.onError(err as Error);
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
  };

  return {
    follow(key, afterId) {
      positions.set(key, afterId);
    },
    unfollow(key) {
      const last = positions.get(key);
      positions.delete(key);
      return last;
    },
    position: (key) => positions.get(key),
    get size() {
      return positions.size;
    },
    start() {
      if (running) return;
      running = true;
      void loop();
    },
    stop() {
      running = false;
    },
  };
};

/**
 * Reading document streams on a Redis Cluster. One blocking XREAD cannot span
 * them: Redis Cluster refuses a command over keys of different slots
 * (CROSSSLOT), even on one master, and a blocking connection per slot would
 * cost a connection per open document. Instead every append to a stream is
 * followed by a bell: `SPUBLISH <stream key>` (a shard channel, so it lives on
 * the master that holds the stream and costs nothing elsewhere). This node
 * keeps one subscriber connection per master that serves a followed stream,
 * subscribed to the bells of exactly those streams, and on each bell reads the
 * stream from its last position with a non-blocking single-key XREAD (through
 * the Cluster client, which follows MOVED/ASK).
 *
 * A bell is a hint: one lost while a subscriber reconnects is made up by the
 * next bell of that stream, by a read of every stream after the subscriber is
 * back, and by a sweep that reads every followed stream every `sweepMs`.
 */
import type { Cluster, Redis } from 'ioredis';
import { isRawStreams, toEntry, type StreamEntry, type StreamFollower } from './stream-entries.js';

export interface BellSource {
  /** The master (`host:port`) that serves `key` now. */
  shardOf(key: string): string;
  /** A new connection to `master`, used only to subscribe. */
  subscriber(master: string): Redis;
  /** Runs the reads (routes each to the master of its key). */
  readonly commands: Cluster;
  /** Reloads the slot map (a subscription was refused with MOVED). */
  refresh(): Promise<void>;
}

export interface BellReaderOptions {
  readonly source: BellSource;
  /** Entries per read. @default 256 */
  readonly count?: number;
  /** Every followed stream is read at least this often. @default 5000 */
  readonly sweepMs?: number;
  readonly onEntries: (key: string, entries: readonly StreamEntry[]) => void;
  readonly onError: (err: Error) => void;
}

interface Subscriber {
  readonly redis: Redis;
  readonly keys: Set<string>;
}

/** A reader that starts on `positions` (key → id read last) and owns them from then on. */
export const createBellReader = (
  options: BellReaderOptions,
  positions: Map<string, string>,
): StreamFollower => {
  const { source } = options;
  const count = String(options.count ?? 256);
  const subscribers = new Map<string, Subscriber>();
  const reading = new Set<string>();
  const again = new Set<string>();
  let running = true;

  const read = (key: string): void => {
    if (!running || !positions.has(key)) return;
    if (reading.has(key)) {
      again.add(key);
      return;
    }
    reading.add(key);
    void (async () => {
      try {
        for (let more = true; more && running && positions.has(key);) {
          again.delete(key);
          const result: unknown = await source.commands.callBuffer(
            'XREAD',
            'COUNT',
            count,
            'STREAMS',
            key,
            positions.get(key)!,
          );
          const raw = isRawStreams(result) ? (result[0]?.[1] ?? []) : [];
          if (raw.length > 0 && positions.has(key)) {
            const entries = raw.map(toEntry);
            positions.set(key, entries[entries.length - 1]!.id);
            options.onEntries(key, entries);
          }
          more = raw.length === Number(count) || again.has(key);
        }
      } catch (err) {
        options.onError(err as Error); // the sweep reads it again
      } finally {
        reading.delete(key);
      }
    })();
  };

  const subscriberOf = (master: string): Subscriber => {
    const existing = subscribers.get(master);
    if (existing) return existing;
    const redis = source.subscriber(master);
    const created: Subscriber = { redis, keys: new Set() };
    redis.on('error', (err: Error) => options.onError(err));
    redis.on('smessageBuffer', (channel: Buffer) => read(channel.toString()));
    // Back after a reconnect (ioredis subscribes again): bells may have been missed.
    redis.on('ready', () => created.keys.forEach(read));
    subscribers.set(master, created);
    return created;
  };

  const place = (key: string): void => {
    const sub = subscriberOf(source.shardOf(key));
    if (!sub.keys.has(key)) {
      sub.keys.add(key);
      sub.redis.ssubscribe(key).catch((err: unknown) => {
        options.onError(err as Error);
        // MOVED: the slot map changed; the sweep places it again.
        if (/^MOVED |^ASK /.test((err as Error).message)) source.refresh().catch(options.onError);
      });
    }
    read(key);
  };

  const drop = (key: string): void => {
    for (const [master, sub] of subscribers) {
      if (!sub.keys.delete(key)) continue;
      if (sub.keys.size === 0) {
        subscribers.delete(master);
        sub.redis.disconnect();
      } else sub.redis.sunsubscribe(key).catch(options.onError);
    }
  };

  /** Moves streams whose slot moved, and reads every stream once. */
  const sweep = (): void => {
    for (const key of positions.keys()) {
      const master = source.shardOf(key);
      if (!subscribers.get(master)?.keys.has(key)) drop(key);
      place(key);
    }
  };

  const timer = setInterval(sweep, options.sweepMs ?? 5000);
  timer.unref();
  for (const key of positions.keys()) place(key);

  return {
    follow(key, afterId) {
      positions.set(key, afterId);
      place(key);
    },
    unfollow(key) {
      const last = positions.get(key);
      positions.delete(key);
      drop(key);
      return last;
    },
    position: (key) => positions.get(key),
    get size() {
      return positions.size;
    },
    stop() {
      running = false;
      clearInterval(timer);
      for (const sub of subscribers.values()) sub.redis.disconnect();
      subscribers.clear();
    },
  };
};

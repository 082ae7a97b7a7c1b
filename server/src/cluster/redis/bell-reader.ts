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
import {
  clockOffsetMs,
  createStallWatch,
  startsAfter,
  trimmedPositions,
} from './position-check.js';
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
  /** This node's position in `key` was trimmed away (position-check.ts). */
  readonly onGap?: (key: string) => void;
  /** @default 1000 */
  readonly stallMs?: number;
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
  const stallMs = options.stallMs ?? 1000;
  const stall = createStallWatch(stallMs);
  /** Redis's clock minus this node's (entry ids carry Redis's time); 0 until asked. */
  let offsetMs = 0;
  source.commands.time().then((time) => (offsetMs = clockOffsetMs(time)), options.onError);
  const checking = new Set<string>();
  /** Keys followed from their start ('0') and not read yet → when (Redis's clock). */
  const followedAt = new Map<string, number>();

  /** Reports each key whose position (given, or the current one) was trimmed away, if still followed. */
  const check = (keys: Iterable<string>, at?: string): void => {
    const { onGap } = options;
    const todo: Array<[string, string]> = [];
    for (const key of keys) {
      const id = at ?? positions.get(key);
      if (id !== undefined && !checking.has(key)) todo.push([key, id]);
    }
    if (!onGap || todo.length === 0) return;
    for (const [key] of todo) checking.add(key);
    trimmedPositions(source.commands, todo)
      .then(
        (gone) => gone.filter((key) => positions.has(key)).forEach(onGap),
        (err: unknown) => options.onError(err as Error),
      )
      .finally(() => todo.forEach(([key]) => checking.delete(key)));
  };

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
          const from = positions.get(key)!;
          // Asked before the read: once it answers, timers have run again.
          const late = stall.stalled();
          const result: unknown = await source.commands.callBuffer(
            'XREAD',
            'COUNT',
            count,
            'STREAMS',
            key,
            from,
          );
          const raw = isRawStreams(result) ? (result[0]?.[1] ?? []) : [];
          if (raw.length > 0 && positions.has(key)) {
            const entries = raw.map(toEntry);
            const last = entries[entries.length - 1]!.id;
            positions.set(key, last);
            options.onEntries(key, entries);
            // Back from a stall: what followed `from` may have been trimmed first.
            if (late) {
              const since = followedAt.get(key);
              if (from !== '0') check([key], from);
              else if (since !== undefined && startsAfter(entries[0]!.id, since))
                options.onGap?.(key);
            }
            followedAt.delete(key);
            if (raw.length === Number(count)) check([key]); // behind: the cap may overtake
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
    redis.on('ready', () => {
      check(created.keys);
      created.keys.forEach(read);
    });
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
  check(positions.keys());
  for (const key of positions.keys()) place(key);

  return {
    follow(key, afterId) {
      positions.set(key, afterId);
      if (afterId === '0') followedAt.set(key, Date.now() + offsetMs);
      else followedAt.delete(key);
      check([key]); // resuming from a remembered position: is it still there?
      place(key);
    },
    unfollow(key) {
      const last = positions.get(key);
      positions.delete(key);
      followedAt.delete(key);
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
      stall.stop();
      for (const sub of subscribers.values()) sub.redis.disconnect();
      subscribers.clear();
    },
  };
};

/**
 * Reading document streams as Redis pushes them (stream-push.ts), and other
 * streams by their bells.
 *
 * Every append to a document stream publishes the entry itself, with the id of
 * the entry before it, on a channel named like the stream. This node keeps one
 * subscriber connection per master that serves a followed stream (one on a
 * single Redis), subscribed to exactly those streams' channels for this node
 * (`<stream>#<node id>`). A pushed entry whose previous id is this node's
 * position is handed on at once, with no read; otherwise (a push was missed, an
 * entry came without one, the position was trimmed) the stream is read from the
 * position with a non-blocking single-key XREAD (through the Cluster client on
 * a cluster, which follows MOVED/ASK), and the position is checked
 * (position-check.ts). This node's own entries are not pushed back to it: the
 * reply to its append (`ownAppend`) moves its position past each, and a push
 * that follows an append still unanswered (the reply and the push come on two
 * connections) waits for it, at most OWN_WAIT_MS (own-appends.ts).
 *
 * On a Redis Cluster the inbox and the records stream are read here as well:
 * an append to them is followed by a bell (an empty `SPUBLISH <stream key>`),
 * on which the stream is read. (Redis Cluster refuses one XREAD over keys of
 * several slots, and a blocking connection per slot would cost one per open
 * document.)
 *
 * A push or bell is a hint: one lost while a subscriber reconnects is made up
 * by the next one of that stream, by a read of every stream after the
 * subscriber is back, and by a sweep that reads every followed stream nothing
 * was pushed or read of for `sweepMs`.
 */
import type { Cluster, Redis } from 'ioredis';
import { createOwnAppends } from './own-appends.js';
import { decodePush, isAfter, pushChannel, type PushedEntry } from './stream-push.js';
import {
  clockOffsetMs,
  createStallWatch,
  startsAfter,
  trimmedPositions,
} from './position-check.js';
import {
  isRawStreams,
  toEntry,
  type OwnAppend,
  type StreamEntry,
  type StreamFollower,
} from './stream-entries.js';

export interface BellSource {
  /** The master (`host:port`) that serves `key` now. */
  shardOf(key: string): string;
  /** A new connection to `master`, used only to subscribe. */
  subscriber(master: string): Redis;
  /** Runs the reads (on a cluster: routes each to the master of its key). */
  readonly commands: Redis | Cluster;
  /** Shard channels (SSUBSCRIBE, a Redis Cluster) or plain ones (SUBSCRIBE, a single Redis). */
  readonly sharded: boolean;
  /** Reloads the slot map (a subscription was refused with MOVED). */
  refresh(): Promise<void>;
}

export interface BellReaderOptions {
  readonly source: BellSource;
  /** This node's id: the pushes of a stream come on its channel of it (stream-push.ts). */
  readonly nodeId: string;
  /** Streams whose appends are pushed; the others are rung (a bell on the stream's name). */
  readonly pushed: (key: string) => boolean;
  /** Entries per read. @default 256 */
  readonly count?: number;
  /** Every followed stream is read when nothing was read or pushed of it for this long. @default 5000 */
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

/** Pushes wait this long at most for this node's own appends to answer; then the stream is read. */
const OWN_WAIT_MS = 1000;

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
  /** When each stream was last read or had a push applied: the sweep reads only quiet ones. */
  const heard = new Map<string, number>();
  /** Entries pushed while their stream was being read, in order: applied after the read. */
  const held = new Map<string, PushedEntry[]>();
  let running = true;
  const stallMs = options.stallMs ?? 1000;
  const stall = createStallWatch(stallMs);
  /** Redis's clock minus this node's (entry ids carry Redis's time); 0 until asked. */
  let offsetMs = 0;
  source.commands.time().then((time) => (offsetMs = clockOffsetMs(time)), options.onError);
  const checking = new Set<string>();
  /** The position of each stream last found trimmed away. */
  const foundGone = new Map<string, string>();
  /** Keys followed from their start ('0') and not read yet → when (Redis's clock). */
  const followedAt = new Map<string, number>();
  const own = createOwnAppends(OWN_WAIT_MS);
  /** The channel each key is followed on, and back. */
  const channelOf = (key: string): string =>
    options.pushed(key) ? pushChannel(key, options.nodeId) : key;
  const keyOfChannel = new Map<string, string>();

  /** Moves the position past this node's own entries that follow it. */
  const passOwn = (key: string): void => {
    const position = positions.get(key);
    if (position === undefined) return;
    const passed = own.pass(key, position);
    if (passed === position) return;
    positions.set(key, passed);
    followedAt.delete(key);
  };

  /** Reports each key whose position (given, or the current one) was trimmed away, if still followed. */
  const check = (keys: Iterable<string>, at?: string): void => {
    const { onGap } = options;
    const todo: Array<[string, string]> = [];
    for (const key of keys) {
      const id = at ?? positions.get(key);
      // A position found gone is reported once: the exchange it started covers it.
      if (id !== undefined && !checking.has(key) && foundGone.get(key) !== id) todo.push([key, id]);
    }
    if (!onGap || todo.length === 0) return;
    for (const [key] of todo) checking.add(key);
    trimmedPositions(source.commands, todo)
      .then(
        (gone) =>
          gone
            .filter((key) => positions.has(key))
            .forEach((key) => {
              foundGone.set(key, todo.find(([k]) => k === key)![1]);
              onGap(key);
            }),
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
          heard.set(key, Date.now());
          if (raw.length > 0 && positions.has(key)) {
            const entries = raw.map(toEntry);
            const last = entries[entries.length - 1]!.id;
            // Not back: an own entry answered meanwhile may have moved it past what was read.
            if (isAfter(last, positions.get(key)!)) positions.set(key, last);
            options.onEntries(key, entries);
            passOwn(key);
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
          if (!applyHeld(key)) again.add(key);
          more = raw.length === Number(count) || again.has(key);
        }
      } catch (err) {
        options.onError(err as Error); // the sweep reads it again
      } finally {
        reading.delete(key);
        held.delete(key);
      }
    })();
  };

  /** Hands on `pushed` if it follows the position; false when something was missed before it. */
  const applyPush = (key: string, { previous, entry }: PushedEntry): boolean => {
    passOwn(key);
    const position = positions.get(key);
    if (position === undefined || !isAfter(entry.id, position)) return true; // read already
    if (previous !== position) return false;
    positions.set(key, entry.id);
    followedAt.delete(key);
    heard.set(key, Date.now());
    options.onEntries(key, [entry]);
    passOwn(key); // own entries that came right after it
    return true;
  };

  /** Applies what was pushed during a read of `key`; false when a read must follow. */
  const applyHeld = (key: string): boolean => {
    const pushed = held.get(key) ?? [];
    held.delete(key);
    return pushed.every((p) => applyPush(key, p));
  };

  const onMessage = (channel: string, payload: Buffer): void => {
    const key = keyOfChannel.get(channel);
    if (!running || key === undefined || !positions.has(key)) return;
    const pushed = decodePush(payload);
    if (pushed === undefined) return read(key); // a bell
    // In order behind pushes that wait for an append of this node's.
    if (own.holds(key)) {
      if (own.waits(key)) return own.hold(key, [pushed]);
      flushWaiting(key);
    }
    if (reading.has(key)) {
      const list = held.get(key);
      if (list) list.push(pushed);
      else held.set(key, [pushed]);
      return;
    }
    // Back from a stall, a read checks what it reads from (the homes may have trimmed meanwhile).
    if (stall.stalled()) return read(key);
    if (applyPush(key, pushed)) return;
    // An append of this node's that has not answered yet may be what it follows.
    if (own.waits(key)) return own.hold(key, [pushed]);
    missed(key);
  };

  /** A push did not follow the position (and no append of this node's can explain it). */
  const missed = (key: string): void => {
    // Something came before this entry that was not pushed to this node: read from the
    // position, and check that the position is still in the stream (a trim is a gap).
    check([key]);
    read(key);
  };

  /** Applies the pushes that waited for this node's appends, as far as they follow now. */
  const flushWaiting = (key: string): void => {
    const waiting = own.take(key);
    for (let i = 0; i < waiting.length; i++) {
      if (!positions.has(key)) return;
      if (reading.has(key)) {
        // A read is under way: what is left is applied after it, as any push during a read.
        const list = held.get(key) ?? [];
        held.set(key, list);
        list.push(...waiting.slice(i));
        return;
      }
      if (applyPush(key, waiting[i]!)) continue;
      if (own.waits(key)) {
        own.hold(key, waiting.slice(i));
        return;
      }
      missed(key);
      const list = held.get(key) ?? [];
      held.set(key, list);
      list.push(...waiting.slice(i + 1));
      return;
    }
    passOwn(key);
  };

  const ownAppend = (key: string): OwnAppend => {
    if (!running || !positions.has(key) || !options.pushed(key))
      return { done: () => undefined, failed: () => undefined };
    const ticket = own.start(key);
    let settled = false;
    const settle = (appended?: { previous: string; id: string }): void => {
      if (settled) return;
      settled = true;
      own.settle(ticket, appended);
      flushWaiting(key);
      passOwn(key);
    };
    return { done: (previous, id) => settle({ previous, id }), failed: () => settle() };
  };

  const subscriberOf = (master: string): Subscriber => {
    const existing = subscribers.get(master);
    if (existing) return existing;
    const redis = source.subscriber(master);
    const created: Subscriber = { redis, keys: new Set() };
    redis.on('error', (err: Error) => options.onError(err));
    redis.on(
      source.sharded ? 'smessageBuffer' : 'messageBuffer',
      (channel: Buffer, payload: Buffer) => onMessage(channel.toString(), payload),
    );
    // Back after a reconnect: subscribe again (not ioredis's autoResubscribe, whose
    // promise nobody handles), then read, since bells may have been missed. (The first
    // time, each subscription's own read follows it.)
    let connected = false;
    redis.on('ready', () => {
      if (!connected) return void (connected = true);
      const keys = [...created.keys];
      const channels = keys.map(channelOf);
      const subscribed =
        channels.length === 0
          ? Promise.resolve()
          : source.sharded
            ? Promise.all(channels.map((channel) => redis.ssubscribe(channel)))
            : redis.subscribe(...channels);
      const resume = (): void => {
        const still = keys.filter((key) => created.keys.has(key));
        check(still);
        still.forEach(read);
      };
      subscribed.then(resume, (err: unknown) => {
        options.onError(err as Error);
        resume();
      });
    });
    subscribers.set(master, created);
    return created;
  };

  const place = (key: string): void => {
    // After stop a late follow (an open that was under way) must not dial a new subscriber:
    // nothing would disconnect it, and its reconnects would keep the process alive.
    if (!running) return;
    const sub = subscriberOf(source.shardOf(key));
    if (!sub.keys.has(key)) {
      sub.keys.add(key);
      const channel = channelOf(key);
      keyOfChannel.set(channel, key);
      // Read once subscribed: what was appended before is in the stream, what after is pushed.
      (source.sharded ? sub.redis.ssubscribe(channel) : sub.redis.subscribe(channel)).then(
        () => read(key),
        (err: unknown) => {
          options.onError(err as Error);
          // MOVED: the slot map changed; the sweep places it again.
          if (/^MOVED |^ASK /.test((err as Error).message)) source.refresh().catch(options.onError);
          read(key);
        },
      );
      return;
    }
    read(key);
  };

  const drop = (key: string): void => {
    const channel = channelOf(key);
    for (const [master, sub] of subscribers) {
      if (!sub.keys.delete(key)) continue;
      if (sub.keys.size === 0) {
        subscribers.delete(master);
        sub.redis.disconnect();
      } else
        (source.sharded ? sub.redis.sunsubscribe(channel) : sub.redis.unsubscribe(channel)).catch(
          options.onError,
        );
    }
    if (!positions.has(key)) keyOfChannel.delete(channel);
  };

  /** Moves streams whose slot moved, and reads every stream not heard of for a sweep. */
  const sweep = (): void => {
    const quietSince = Date.now() - sweepMs;
    for (const key of positions.keys()) {
      const master = source.shardOf(key);
      if (!subscribers.get(master)?.keys.has(key)) {
        drop(key);
        place(key);
      } else if ((heard.get(key) ?? 0) <= quietSince) read(key);
    }
    // Pushes that waited too long for an append of this node's (its reply lost): on with them.
    for (const key of own.overdue()) flushWaiting(key);
  };

  const sweepMs = options.sweepMs ?? 5000;
  const timer = setInterval(sweep, sweepMs);
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
      heard.delete(key);
      foundGone.delete(key);
      own.forget(key);
      drop(key);
      return last;
    },
    position: (key) => positions.get(key),
    ownAppend,
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

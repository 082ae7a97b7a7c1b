/**
 * Following Redis streams (the inbox, the records stream, the streams of open
 * documents) and handing their new entries to the backplane, resuming each
 * from the id read last.
 *
 * - Streams whose appends are pushed (`pushed`: the document streams,
 *   stream-push.ts) are read from their pushes (bell-reader.ts), on a single
 *   Redis as on a cluster.
 * - The others on a single Redis (the inbox, the records stream): one blocking
 *   XREAD loop over them, on a connection of its own (a blocked XREAD holds its
 *   connection). Following a stream wakes the loop at once (CLIENT UNBLOCK from
 *   the command connection), so it is read without waiting for the block to end.
 * - A Redis Cluster refuses one XREAD over keys of several slots (CROSSSLOT),
 *   so there every stream is read by bells and pushes (bell-reader.ts).
 * - When a loss is plausible (position-check.ts) it checks whether the entry
 *   it read last is still there, and reports a stream whose position was
 *   trimmed with `onGap`, so the layer above exchanges state vectors at once.
 */
import type { Redis } from 'ioredis';
import { createBellReader, type BellSource } from './bell-reader.js';
import {
  clockOffsetMs,
  createStallWatch,
  startsAfter,
  trimmedPositions,
  type StallWatch,
} from './position-check.js';
import { isRawStreams, toEntry, type StreamEntry, type StreamFollower } from './stream-entries.js';

export type { StreamEntry } from './stream-entries.js';

/** What the reader reads from, known once Redis was reached. */
export type ReaderSource =
  | {
      readonly kind: 'single';
      /** A new connection for the blocking reads; nothing else may use it. */
      connect(): Redis;
      /** A connection that is not blocked, to send CLIENT UNBLOCK on. */
      readonly control: Redis;
      /** Where pushed streams are read from (without it, every stream is read by XREAD). */
      readonly pushes?: BellSource;
    }
  | { readonly kind: 'cluster'; readonly bells: BellSource };

export interface StreamReader extends StreamFollower {
  /** Starts reading (keys followed before are read from then on). */
  start(source: ReaderSource): void;
}

export interface StreamReaderOptions {
  /** @default 5000 */
  readonly blockMs?: number;
  /** Entries per stream per round. @default 256 */
  readonly count?: number;
  readonly onEntries: (key: string, entries: readonly StreamEntry[]) => void;
  /** A round failed (Redis unreachable); the loop retries after `retryMs`. */
  readonly onError: (err: Error) => void;
  /** @default 250 */
  readonly retryMs?: number;
  /** Entries were trimmed after the position this node had read of `key`: they are lost to it. */
  readonly onGap?: (key: string) => void;
  /** A stall of this process this long makes the reader check its positions. @default 1000 */
  readonly stallMs?: number;
  /** Streams whose appends are pushed (stream-push.ts), read by their pushes. @default none */
  readonly pushed?: (key: string) => boolean;
  /** This node's id: pushes come on its channels (stream-push.ts). */
  readonly nodeId: string;
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Resolves true once `redis` is ready, false after `ms` (it keeps reconnecting meanwhile). */
const ready = (redis: Redis, ms: number): Promise<boolean> =>
  redis.status === 'ready'
    ? Promise.resolve(true)
    : new Promise((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          redis.off('ready', done);
          resolve(redis.status === 'ready');
        };
        const timer = setTimeout(done, ms);
        redis.on('ready', done);
      });

/** Wake-ups sent before the XREAD reached the server are retried this often, this many times. */
const UNBLOCK_RETRY_MS = 5;
const UNBLOCK_ATTEMPTS = 40;

export const createStreamReader = (options: StreamReaderOptions): StreamReader => {
  const positions = new Map<string, string>();
  const blockMs = options.blockMs ?? 5000;
  const count = options.count ?? 256;
  const retryMs = options.retryMs ?? 250;
  let running = false;
  let stopped = false;
  let redis: Redis | undefined;
  let control: Redis | undefined;
  /** CLIENT ID of `redis` on its server, once asked (again after a reconnect). */
  let clientId: number | undefined;
  /** Which round is blocked now (0: none), so a wake-up knows whether it landed. */
  let blockedRound = 0;
  let rounds = 0;
  let idle: (() => void) | undefined;
  /** On a Redis Cluster: the bell reader, which owns `positions` from then on. */
  let bells: StreamFollower | undefined;
  let isPushed = options.pushed ?? ((): boolean => false);
  /** On a single Redis: pushed streams (their positions until started, then its reader's). */
  const pushedPositions = new Map<string, string>();
  let pushes: StreamFollower | undefined;
  const stallMs = options.stallMs ?? 1000;
  let stall: StallWatch | undefined;
  /** Redis's clock minus this node's, in ms (entry ids carry Redis's time); asked per connection. */
  let offsetMs: number | undefined;
  /** Check every position before the next read (at start, after the connection failed). */
  let recheck = true;
  const checking = new Set<string>();
  /** Keys followed from their start ('0') and not read yet → when (Redis's clock). */
  const followedAt = new Map<string, number>();

  /** Reports the keys whose position (as given) was trimmed away, if they are still followed. */
  const check = (pairs: ReadonlyArray<readonly [string, string]>): void => {
    const via = control;
    const { onGap } = options;
    const todo = pairs.filter(([key]) => !checking.has(key));
    if (!via || !onGap || todo.length === 0) return;
    for (const [key] of todo) checking.add(key);
    trimmedPositions(via, todo)
      .then(
        (gone) => gone.filter((key) => positions.has(key)).forEach(onGap),
        (err: unknown) => options.onError(err as Error),
      )
      .finally(() => todo.forEach(([key]) => checking.delete(key)));
  };

  const round = async (conn: Redis): Promise<void> => {
    if (positions.size === 0) {
      await new Promise<void>((resolve) => {
        idle = resolve;
        setTimeout(resolve, blockMs).unref();
      });
      idle = undefined;
      return;
    }
    if (!(await ready(conn, blockMs))) return;
    clientId ??= Number(await conn.client('ID'));
    offsetMs ??= clockOffsetMs(await conn.time());
    if (recheck || stall?.stalled()) {
      recheck = false;
      check([...positions]);
    }
    const keys = [...positions.keys()];
    const ids = keys.map((k) => positions.get(k)!);
    const thisRound = ++rounds;
    blockedRound = thisRound;
    let result: unknown;
    try {
      result = await conn.callBuffer(
        'XREAD',
        'COUNT',
        String(count),
        'BLOCK',
        String(blockMs),
        'STREAMS',
        ...keys,
        ...ids,
      );
    } finally {
      blockedRound = 0;
    }
    if (result === null || !isRawStreams(result)) return;
    const suspect: Array<[string, string]> = [];
    // Back from a stall: what followed the positions read from may have been trimmed first.
    const late = stall?.stalled() ?? false;
    if (late) keys.forEach((key, i) => suspect.push([key, ids[i]!]));
    for (const [rawKey, raw] of result) {
      const key = rawKey.toString();
      if (!positions.has(key) || raw.length === 0) continue; // unfollowed during the block
      const entries = raw.map(toEntry);
      const last = entries[entries.length - 1]!.id;
      positions.set(key, last);
      options.onEntries(key, entries);
      const since = followedAt.get(key);
      if (late && since !== undefined && startsAfter(entries[0]!.id, since)) options.onGap?.(key);
      followedAt.delete(key);
      // Behind: the MAXLEN cap may overtake the next read.
      if (raw.length >= count) suspect.push([key, last]);
    }
    if (suspect.length > 0) check(suspect);
  };

  /** Ends the current block so the next round reads the streams followed now. */
  const wake = (): void => {
    if (idle) return idle();
    const blocked = blockedRound;
    const id = clientId;
    if (blocked === 0 || id === undefined || control === undefined) return;
    const via = control;
    void (async () => {
      // The XREAD may not have reached the server yet (UNBLOCK answers 0): try again briefly.
      for (let i = 0; i < UNBLOCK_ATTEMPTS && blockedRound === blocked; i++) {
        if ((await via.client('UNBLOCK', id).catch(() => 0)) === 1) return;
        await sleep(UNBLOCK_RETRY_MS);
      }
    })();
  };

  const loop = async (conn: Redis): Promise<void> => {
    while (running) {
      try {
        await round(conn);
      } catch (err) {
        if (!running) return;
        clientId = undefined; // a reconnect gives the connection a new id
        offsetMs = undefined;
        recheck = true; // what was appended meanwhile may have been trimmed
        options.onError(err as Error);
        await sleep(retryMs);
      }
    }
  };

  return {
    follow(key, afterId) {
      if (bells) return bells.follow(key, afterId);
      if (isPushed(key)) {
        if (pushes) return pushes.follow(key, afterId);
        return void pushedPositions.set(key, afterId);
      }
      positions.set(key, afterId);
      if (afterId === '0') followedAt.set(key, Date.now() + (offsetMs ?? 0));
      else followedAt.delete(key);
      if (running) {
        check([[key, afterId]]); // resuming from a remembered position: is it still there?
        wake();
      }
    },
    unfollow(key) {
      if (bells) return bells.unfollow(key);
      if (isPushed(key)) {
        if (pushes) return pushes.unfollow(key);
        const last = pushedPositions.get(key);
        pushedPositions.delete(key);
        return last;
      }
      const last = positions.get(key);
      positions.delete(key);
      followedAt.delete(key);
      return last;
    },
    ownAppend(key) {
      if (bells) return bells.ownAppend(key);
      if (pushes && isPushed(key)) return pushes.ownAppend(key);
      // Read by XREAD (or not yet): its own entries come with the others.
      return { done: () => undefined, failed: () => undefined };
    },
    position(key) {
      if (bells) return bells.position(key);
      if (!isPushed(key)) return positions.get(key);
      return pushes ? pushes.position(key) : pushedPositions.get(key);
    },
    get size() {
      return bells ? bells.size : positions.size + (pushes?.size ?? pushedPositions.size);
    },
    start(source) {
      // Started once; a start after stop (a connect that resolved during close) opens nothing.
      if (running || bells || stopped) return;
      if (source.kind === 'cluster') {
        for (const [key, id] of pushedPositions) positions.set(key, id);
        pushedPositions.clear();
        bells = createBellReader({ ...options, pushed: isPushed, source: source.bells }, positions);
        return;
      }
      if (source.pushes)
        pushes = createBellReader(
          { ...options, pushed: isPushed, source: source.pushes },
          pushedPositions,
        );
      else {
        isPushed = () => false;
        for (const [key, id] of pushedPositions) positions.set(key, id);
        pushedPositions.clear();
      }
      running = true;
      stall = createStallWatch(stallMs);
      control = source.control;
      redis = source.connect();
      redis.on('error', (err: Error) => options.onError(err));
      void loop(redis);
    },
    stop() {
      running = false;
      stopped = true;
      stall?.stop();
      bells?.stop();
      pushes?.stop();
      idle?.();
      redis?.disconnect();
    },
  };
};

/**
 * "Was my stream position trimmed?" XREAD from an id that was trimmed away
 * answers silently with whatever is left after it, so a reader cannot tell
 * from its reads that it missed entries. Trimming removes a stream's oldest
 * entries only, so the test is exact the other way round: while the entry a
 * reader read last is still in the stream, nothing after it was trimmed; once
 * it is gone, entries after it may have gone too (or none had been appended
 * between it and the new first entry: then a state-vector exchange finds
 * nothing to send, a harmless false alarm).
 *
 * The readers (stream-reader.ts, bell-reader.ts) check when a loss is
 * plausible, not on every read: when a stream is followed again from a
 * remembered position, after their connection failed, when a read returned a
 * full COUNT (the reader is behind; the MAXLEN cap may overtake its new
 * position), and when this process was stalled for more than `stallMs`
 * (`createStallWatch`: paused or starved while the homes may have trimmed
 * what followed the positions it read from; a stream read from its start is
 * judged by `startsAfter`).
 */
import { stalledWithin } from '../../limits/stall-clock.js';

/** What the check needs of a client (ioredis's Redis and Cluster both have it). */
export interface RangeReader {
  xrange(key: string, start: string, end: string): Promise<unknown[]>;
}

/** Stream ids only (not '0' nor '$'): the ids a reader may have read last. */
const isEntryId = (id: string): boolean => /^\d+-\d+$/.test(id);

/** The keys among `positions` (key → id read last) whose entry is no longer in their stream. */
export const trimmedPositions = async (
  client: RangeReader,
  positions: ReadonlyArray<readonly [key: string, id: string]>,
): Promise<string[]> => {
  const read = positions.filter(([, id]) => isEntryId(id));
  // Sent without waiting for each other: one round trip for all of them.
  const found = await Promise.all(read.map(([key, id]) => client.xrange(key, id, id)));
  return read.filter((_, i) => found[i]!.length === 0).map(([key]) => key);
};

/** When the entry `id` was appended (ms, by the medium's clock). */
const appendedAt = (id: string): number => Number(id.slice(0, id.indexOf('-')));

/** Redis's clock minus this node's, in ms, from a `TIME` reply. */
export const clockOffsetMs = ([seconds, micros]: ReadonlyArray<string | number>): number =>
  Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - Date.now();

export interface StallWatch {
  /** True just after this process stood still for more than `stallMs` (for `stallMs` more). */
  stalled(): boolean;
  stop(): void;
}

/**
 * Notices that this process stood still (SIGSTOP, a VM pause, a blocked event
 * loop), through the node's one stall clock (limits/stall-clock.ts): true while
 * such a stall goes on and for `stallMs` after it, so the reads that follow
 * learn of it whether it ended before or inside the clock's timer.
 */
export const createStallWatch = (stallMs: number): StallWatch => ({
  stalled: () => stalledWithin(stallMs),
  stop: () => undefined,
});

/**
 * A stream followed from its start ('0') has no entry read last to check. What
 * was appended after it was followed (at `followedAtMs`, the medium's clock)
 * and trimmed before its first read is lost all the same: a first read that
 * comes late and begins with an entry appended after that time may have missed
 * some (a false alarm when none had been appended before it).
 */
export const startsAfter = (firstId: string, followedAtMs: number): boolean =>
  appendedAt(firstId) > followedAtMs;

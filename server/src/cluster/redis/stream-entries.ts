/** Stream entries as the readers hand them on, and their decoding from XREAD's raw reply. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: ReadonlyMap<string, Buffer>;
}

export type RawEntry = [id: Buffer, fields: Buffer[]];
export type RawStream = [key: Buffer, entries: RawEntry[]];

export const isRawStreams = (value: unknown): value is RawStream[] =>
  Array.isArray(value) &&
  value.every((s) => Array.isArray(s) && Buffer.isBuffer(s[0]) && Array.isArray(s[1]));

export const toEntry = ([id, flat]: RawEntry): StreamEntry => {
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!.toString(), flat[i + 1]!);
  return { id: id.toString(), fields };
};

/** Following streams: what both readers (stream-reader.ts, bell-reader.ts) offer. */
/** An append of this node's in flight: told how it ended, so its position can move past it. */
export interface OwnAppend {
  /** It was appended as `id`, right after `previous`. */
  done(previous: string, id: string): void;
  failed(): void;
}

export interface StreamFollower {
  /** Follows `key` from after `afterId` ('0': everything it retains). */
  follow(key: string, afterId: string): void;
  /** Stops following `key`; returns the id read last, to resume from later. */
  unfollow(key: string): string | undefined;
  /** The id read last on `key`. */
  position(key: string): string | undefined;
  /**
   * This node is appending to `key`: its entry is not pushed back to it (a
   * push that follows it waits for it). No-op for a stream read otherwise.
   */
  ownAppend(key: string): OwnAppend;
  readonly size: number;
  stop(): void;
}

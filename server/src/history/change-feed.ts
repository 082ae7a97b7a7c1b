/**
 * The change feed: the store's log entries (the same ones the history keeps)
 * read in seq order from a cursor. A cursor is a log seq, so it survives
 * restarts; delivery is at least once (a reader that resumes from its last
 * cursor sees nothing twice, one that resumes from an older one sees repeats).
 */
import type { DocName } from '../doc-name.js';
import type { Store } from '../storage/store.js';
import type { StoreWatch } from '../storage/watched-store.js';

export interface ChangeEvent {
  /** Resume after this event with `since=<cursor>` (or `Last-Event-ID`). */
  readonly cursor: string;
  readonly doc: DocName;
  /** ISO time the node stored the change. */
  readonly time: string;
  /** Who made it: `user:<sub>`, `anonymous`, `function:<name>`, `peer:<node>`, `node`. */
  readonly writers: readonly string[];
  /** The Yjs update, base64 ('' for a deletion). */
  readonly update: string;
  /**
   * The document was deleted (`DELETE /v1/docs/:name`, here or on another node):
   * what came before is gone; later events of the document start a new one.
   */
  readonly deleted?: true;
}

export interface FeedQuery {
  /** One document; without it, every document under `prefix`. */
  readonly doc?: DocName;
  readonly prefix?: string;
  /** Events after this cursor. */
  readonly since: number;
  readonly limit: number;
  /** Which documents the reader may see. @default all */
  readonly keep?: (doc: DocName) => boolean;
}

export interface ChangeFeed {
  /** The next events and the cursor to continue from (past everything looked at). */
  read(query: FeedQuery): Promise<{ events: ChangeEvent[]; cursor: number }>;
  /** Resolves when something new may be there, after `timeoutMs`, or when `signal` aborts. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

/** A cursor from a query parameter or a Last-Event-ID header; undefined when absent. */
export const parseCursor = (value: unknown): number | undefined => {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) return NaN;
  return Number(value);
};

export const createChangeFeed = (store: Store, watch: StoreWatch): ChangeFeed => ({
  async read({ doc, prefix = '', since, limit, keep }) {
    const page = await store.readChanges({
      ...(doc !== undefined ? { doc } : { prefix }),
      afterSeq: since,
      limit,
      deletions: true,
    });
    const events = page.changes
      .filter((c) => keep === undefined || keep(c.doc))
      .map((c) => ({
        cursor: String(c.seq),
        doc: c.doc,
        time: new Date(c.time).toISOString(),
        writers: c.writers,
        update: Buffer.from(c.update.buffer, c.update.byteOffset, c.update.byteLength).toString(
          'base64',
        ),
        ...(c.deleted ? { deleted: true as const } : {}),
      }));
    return { events, cursor: Math.max(since, page.scannedThrough) };
  },
  wait: (timeoutMs, signal) => watch.next(timeoutMs, signal),
});

/**
 * The webhook outbox: the store's change log after a durable cursor. Nothing is
 * copied: the history keeps the log (for the retention window), and per target
 * one record says how far delivery got:
 *
 *   { cursor }             every change up to this seq has been delivered
 *   { cursor, batchEnd }   the changes in (cursor, batchEnd] are being delivered
 *
 * `batchEnd` is stored before the first request of a batch, so a node that
 * restarts mid-delivery cuts exactly the same events again, with the same ids:
 * a receiver de-duplicates by `webhook-id`, and nothing in between is lost.
 */
import { createHash } from 'node:crypto';
import * as Y from 'yjs';
import { validateDocName } from '../doc-name.js';
import type { ChangeEntry, Store } from '../storage/store.js';
import type { WebhookTarget } from './webhook-target.js';

export interface OutboxState {
  readonly cursor: number;
  readonly batchEnd?: number;
}

/**
 * One delivery: a document's changes in (fromSeq, toSeq] of one batch, merged
 * (`document.changed`), or its deletion (`document.deleted`: one line, no update).
 */
export interface WebhookEvent {
  readonly type: 'document.changed' | 'document.deleted';
  /** Stable across retries and restarts (`webhook-id`): `sw_<node>_<first seq>_<last seq>`. */
  readonly id: string;
  readonly doc: string;
  /** Seq of the first and last change in it. */
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Epoch ms of the first and the last change. */
  readonly firstTime: number;
  readonly lastTime: number;
  readonly writers: readonly string[];
  readonly changes: number;
  /** The changes merged into one Yjs update. */
  readonly update: Uint8Array;
}

/** Log entries per batch, and the bytes past which a batch is cut early. */
export const BATCH_ENTRIES = 500;
export const BATCH_BYTES = 8 * 1024 * 1024;

const recordKey = (target: WebhookTarget): string =>
  `webhook\0${createHash('sha256').update(`${target.prefix}\0${target.url}`).digest('hex').slice(0, 32)}`;

/**
 * In a cluster every replica stores every change, but only the node a change
 * entered through delivers it (its writers are not all `peer:`), so one node
 * delivers each event.
 */
export const enteredHere = (entry: ChangeEntry): boolean =>
  entry.writers.length === 0 || entry.writers.some((w) => !w.startsWith('peer:'));

export interface Outbox {
  load(): Promise<OutboxState | undefined>;
  save(state: OutboxState): Promise<void>;
  /** The highest seq in the log now (where a new target starts). */
  logEnd(): Promise<number>;
  /**
   * The changes after `cursor` that this node delivers, up to one batch, and
   * how far the scan got (a cursor past changes of other documents).
   */
  peek(cursor: number): Promise<{ entries: ChangeEntry[]; end: number }>;
  /** The events of the batch (cursor, end]: one per document, in seq order of their first change. */
  events(cursor: number, end: number): Promise<WebhookEvent[]>;
}

/** Records only (append with no update): names the outbox's writes in store errors. */
const OUTBOX_DOC = validateDocName('stateweave:webhooks');

/** `nodeId` goes into event ids: seqs are per node, so two nodes' ids must differ. */
export const createOutbox = (store: Store, target: WebhookTarget, nodeId: string): Outbox => {
  const key = recordKey(target);
  const { prefix } = target;

  return {
    async load() {
      const raw = await store.getRecord(key);
      return raw ? (JSON.parse(Buffer.from(raw).toString('utf8')) as OutboxState) : undefined;
    },
    async save(state) {
      const value = new Uint8Array(Buffer.from(JSON.stringify(state)));
      await store.append(OUTBOX_DOC, null, [{ key, value }]);
    },
    async logEnd() {
      // A prefix no document has: each call scans the index only, a bounded page at a time.
      let at = 0;
      for (let i = 0; i < 1_000_000; i++) {
        const page = await store.readChanges({ prefix: '\0', afterSeq: at, limit: 1 });
        if (page.scannedThrough === at) return at;
        at = page.scannedThrough;
      }
      return at;
    },
    async peek(cursor) {
      const page = await store.readChanges({
        prefix,
        afterSeq: cursor,
        limit: BATCH_ENTRIES,
        deletions: true,
      });
      const entries: ChangeEntry[] = [];
      let bytes = 0;
      for (const entry of page.changes) {
        if (!enteredHere(entry)) continue;
        // A deletion is a batch of its own, so a receiver sees it after the document's
        // earlier changes and before its later ones (a batch's events go out in parallel).
        if (entry.deleted)
          return entries.length > 0
            ? { entries, end: entries.at(-1)!.seq }
            : { entries: [entry], end: entry.seq };
        if (entries.length > 0 && bytes + entry.update.byteLength > BATCH_BYTES)
          return { entries, end: entries.at(-1)!.seq };
        entries.push(entry);
        bytes += entry.update.byteLength;
      }
      const full = page.changes.length === BATCH_ENTRIES;
      return { entries, end: full ? page.changes.at(-1)!.seq : page.scannedThrough };
    },
    async events(cursor, end) {
      const byDoc = new Map<string, ChangeEntry[]>();
      const deletions: ChangeEntry[] = [];
      for (let after = cursor; after < end;) {
        const page = await store.readChanges({
          prefix,
          afterSeq: after,
          throughSeq: end,
          limit: BATCH_ENTRIES,
          deletions: true,
        });
        for (const entry of page.changes) {
          if (!enteredHere(entry)) continue;
          if (entry.deleted) {
            deletions.push(entry);
            continue;
          }
          const list = byDoc.get(entry.doc) ?? [];
          if (list.length === 0) byDoc.set(entry.doc, list);
          list.push(entry);
        }
        if (page.scannedThrough <= after) break;
        after = page.scannedThrough;
      }
      const deleted = deletions.map((entry): WebhookEvent => ({
        type: 'document.deleted',
        id: `sw_${nodeId}_${entry.seq}_${entry.seq}`,
        doc: entry.doc,
        firstSeq: entry.seq,
        lastSeq: entry.seq,
        firstTime: entry.time,
        lastTime: entry.time,
        writers: entry.writers,
        changes: 1,
        update: entry.update,
      }));
      return [...byDoc.entries()]
        .map(([doc, entries]): WebhookEvent => {
          const first = entries[0]!;
          const last = entries.at(-1)!;
          return {
            type: 'document.changed',
            id: `sw_${nodeId}_${first.seq}_${last.seq}`,
            doc,
            firstSeq: first.seq,
            lastSeq: last.seq,
            firstTime: first.time,
            lastTime: last.time,
            writers: [...new Set(entries.flatMap((e) => e.writers))],
            changes: entries.length,
            update:
              entries.length === 1
                ? first.update
                : Y.mergeUpdates(entries.map((e) => new Uint8Array(e.update))),
          };
        })
        .concat(deleted)
        .sort((a, b) => a.firstSeq - b.firstSeq);
    },
  };
};

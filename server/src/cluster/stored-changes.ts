/**
 * The store as the stored catch-up reads it (stored-catch-up.ts) and the
 * catch-up cursors other nodes leave here (node-requests.ts): a store epoch
 * kept as a record, the change index walked page by page, the cursors as
 * records of this node's store.
 */
import { randomBytes } from 'node:crypto';
import { validateDocName, type DocName } from '../doc-name.js';
import type { Store } from '../storage/store.js';
import type { CatchUpCursors } from './node-requests.js';
import type { CatchUpCursor } from './rpc-codec.js';
import type { StoredChanges } from './stored-catch-up.js';

const EPOCH_KEY = 'cluster\0store-epoch';
const MARK_KEY = 'cluster\0catch-up-mark';
const cursorKey = (nodeId: string): string => `cluster\0catch-up\0${nodeId}`;
/** Records only: `append` with no update writes no log entry. */
// Records only (append with no update): no document of this name is ever written.
const RECORDS_DOC = validateDocName('cluster');
const PAGE = 512;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface StoredChangesOptions {
  /** How long the history keeps changes; 0: off, the change index loses them at compaction. */
  readonly historyRetentionMs: number;
  readonly now?: () => number;
}

export const createStoredChanges = (store: Store, options: StoredChangesOptions): StoredChanges => {
  const now = options.now ?? Date.now;
  let epoch: Promise<string> | undefined;

  const readEpoch = async (): Promise<string> => {
    const stored = await store.getRecord(EPOCH_KEY);
    if (stored) return decoder.decode(stored);
    const fresh = randomBytes(12).toString('base64url');
    await store.append(RECORDS_DOC, null, [{ key: EPOCH_KEY, value: encoder.encode(fresh) }]);
    return fresh;
  };

  async function* walk(afterSeq: number, throughSeq: number, peer: string): AsyncIterable<DocName> {
    const fromPeer = `peer:${peer}`;
    const seen = new Set<DocName>();
    let after = afterSeq;
    // Each page moves `after` forward, so this ends within (through − after) / 1 pages at most.
    while (after < throughSeq) {
      const page = await store.readChanges({ afterSeq: after, throughSeq, limit: PAGE });
      for (const { doc, writers } of page.changes) {
        // What the peer sent here it has (an echo back would only cost reads).
        if (seen.has(doc) || (writers.length > 0 && writers.every((w) => w === fromPeer))) continue;
        seen.add(doc);
        yield doc;
      }
      if (page.scannedThrough <= after) return;
      after = page.scannedThrough;
    }
  }

  return {
    epoch: () => (epoch ??= readEpoch()),
    async head() {
      // An append takes its seq and queues its write in one step, and the group
      // commit writes in order: once a write queued now is done, so is every
      // entry up to `seq` (or it failed and never existed).
      const seq = await store.lastSeq();
      await store.append(RECORDS_DOC, null, [
        { key: MARK_KEY, value: encoder.encode(String(seq)) },
      ]);
      return seq;
    },
    changedSince(afterSeq, throughSeq, at, peer) {
      // Without history, compaction deletes index lines; with it, trimming does
      // once they are older than the retention window (half of it as a margin).
      if (options.historyRetentionMs <= 0 || now() - at > options.historyRetentionMs / 2)
        return undefined;
      return walk(afterSeq, throughSeq, peer);
    },
  };
};

export const createCatchUpCursors = (store: Store): CatchUpCursors => ({
  async get(nodeId) {
    const bytes = await store.getRecord(cursorKey(nodeId));
    if (!bytes) return undefined;
    const value = JSON.parse(decoder.decode(bytes)) as Partial<CatchUpCursor>;
    return typeof value.epoch === 'string' &&
      typeof value.seq === 'number' &&
      typeof value.at === 'number'
      ? { epoch: value.epoch, seq: value.seq, at: value.at }
      : undefined;
  },
  async put(nodeId, cursor) {
    const value = encoder.encode(JSON.stringify(cursor));
    await store.append(RECORDS_DOC, null, [{ key: cursorKey(nodeId), value }]);
  },
});

/**
 * How far other nodes' tombstones reached this node (cluster/tombstones.ts):
 * per sending node a cursor, kept as a record of this node's store — the
 * sender's tombstone epoch and a seq of the sender's store up to which this
 * node holds every one of its tombstones — and this node's own tombstone epoch,
 * which a new data directory renews (voiding every cursor others keep of it).
 */
import { randomBytes } from 'node:crypto';
import { validateDocName } from '../doc-name.js';
import type { NodeId } from '../node-id.js';
import type { Store } from '../storage/store.js';
import type { CatchUpCursor, TombstoneCursor } from './rpc-codec.js';

export interface TombstoneCursors {
  /** This store's tombstone epoch (made once, then read from its record). */
  epoch(): Promise<string>;
  /** The cursor kept of `peer`'s tombstones; undefined before the first. */
  of(peer: NodeId): Promise<CatchUpCursor | undefined>;
  /**
   * Moves the cursor of `peer` to `next` if it continues it (every tombstone of
   * `peer` up to `next.base` was here already); call it once the request's
   * tombstones are stored. Resolves with the cursor kept now.
   */
  advance(peer: NodeId, next: TombstoneCursor): Promise<CatchUpCursor | undefined>;
}

export interface TombstoneCursorsOptions {
  readonly store: () => Store;
  readonly now: () => number;
}

/** Records only: `append` with no update writes no log entry. */
const RECORDS_DOC = validateDocName('cluster');
const EPOCH_KEY = 'cluster\0tombstones-epoch';
const cursorKey = (peer: NodeId): string => `cluster\0tombstones-from\0${peer}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const createTombstoneCursors = (options: TombstoneCursorsOptions): TombstoneCursors => {
  let epoch: Promise<string> | undefined;
  /** Read once per peer, then kept here (and written through). */
  const cursors = new Map<NodeId, CatchUpCursor | undefined>();
  const reading = new Map<NodeId, Promise<CatchUpCursor | undefined>>();

  const of = async (peer: NodeId): Promise<CatchUpCursor | undefined> => {
    if (cursors.has(peer)) return cursors.get(peer);
    let read = reading.get(peer);
    if (!read) {
      read = options
        .store()
        .getRecord(cursorKey(peer))
        .then((bytes) =>
          bytes ? (JSON.parse(decoder.decode(bytes)) as CatchUpCursor) : undefined,
        );
      reading.set(peer, read);
    }
    const stored = await read;
    reading.delete(peer);
    if (!cursors.has(peer)) cursors.set(peer, stored);
    return cursors.get(peer);
  };

  return {
    epoch: () =>
      (epoch ??= (async () => {
        const store = options.store();
        const stored = await store.getRecord(EPOCH_KEY);
        if (stored) return decoder.decode(stored);
        const fresh = randomBytes(12).toString('base64url');
        await store.append(RECORDS_DOC, null, [{ key: EPOCH_KEY, value: encoder.encode(fresh) }]);
        return fresh;
      })()),

    of,

    async advance(peer, next) {
      await of(peer);
      // Checked and moved in one turn: no other request moves it in between.
      const current = cursors.get(peer);
      const reached = current?.epoch === next.epoch ? current.seq : 0;
      if (next.base > reached || next.seq <= reached) return current;
      const moved: CatchUpCursor = { epoch: next.epoch, seq: next.seq, at: options.now() };
      cursors.set(peer, moved);
      // Appends are stored in the order they are made, so the last move is what stays.
      await options
        .store()
        .append(RECORDS_DOC, null, [
          { key: cursorKey(peer), value: encoder.encode(JSON.stringify(moved)) },
        ]);
      return moved;
    },
  };
};

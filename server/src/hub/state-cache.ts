/**
 * A document's full state, encoded once and reused until the document changes.
 *
 * Every client that connects with an empty state vector (a fresh client, a node
 * that has not seen the document) needs the whole document. Encoding it is
 * O(document): about 20 ms for 250,000 single-character edits (1.2 MB), on the
 * event loop, once per joining client. The cache keeps the encoded state as a
 * ready sync-step-2 frame and serves the update itself as a view into that frame,
 * so the two forms cost one copy of the bytes, not two.
 *
 * Invalidation: dropped on every doc `update` event. Yjs emits it for every
 * transaction that added a struct or deleted something, whatever the origin
 * (clients, peers, storage replay, functions, direct `doc.transact`), after its
 * garbage collection and struct merging, so the next encode sees the final form.
 * A transaction without content emits nothing and leaves the encoding as it was,
 * which is why a fresh client's empty sync step 2 does not throw the cache away.
 * The one change without an `update` event is Yjs parking an update that lacks
 * dependencies as pending (which `encodeStateAsUpdate` includes): a document with
 * a pending part is therefore never cached, and a cached entry is dropped when a
 * pending part appears.
 *
 * The bytes handed out are shared: consumers must not write into them. Sockets,
 * `postMessage` (a structured clone), HTTP responses and the stores only read.
 */
import * as Y from 'yjs';
import { encodeSyncStep2 } from '@stateweave/client/protocol';

/**
 * Documents whose full state encodes to fewer bytes are encoded per request and
 * not kept. Below this an encode takes at most a few milliseconds (measured:
 * 0.3 ms at 16 KB, 3 ms at 84 KB of scattered edits), so caching would buy
 * little while adding memory to every idle room (most rooms are small). Above it the cache costs roughly a tenth of what the room already holds:
 * a Y.Doc takes about 11× its encoded size in heap (14 MB for the 1.2 MB
 * benchmark document), so there is no idle timer; the cache lives until the next
 * change or until the room unloads.
 */
export const MIN_CACHED_STATE_BYTES = 64 * 1024;

export interface StateCache {
  /** The whole document as a sync-step-2 frame. Shared bytes: never mutate. */
  syncStep2(): Uint8Array;
  /** The whole document as one update, as `Y.encodeStateAsUpdate(doc)`. Shared bytes: never mutate. */
  state(): Uint8Array;
  /** Forgets the cached bytes and stops listening (the room unloads). */
  destroy(): void;
}

interface Entry {
  readonly frame: Uint8Array;
  /** The update inside `frame` (its tail), not a copy. */
  readonly state: Uint8Array;
}

/** Frames this cache handed out to be shared by every joining client (socket-writer.ts). */
const sharedFrames = new WeakSet<Uint8Array>();

/**
 * True for a cached whole-document frame: every client that joins is sent the same
 * bytes, so they cost memory once however many sockets still have them queued.
 */
export const isSharedFrame = (frame: Uint8Array): boolean => sharedFrames.has(frame);

export const createStateCache = (
  doc: Y.Doc,
  minBytes: number = MIN_CACHED_STATE_BYTES,
): StateCache => {
  let entry: Entry | undefined;
  /** After destroy nothing is kept: no listener would drop it any more. */
  let destroyed = false;
  const drop = (): void => {
    entry = undefined;
  };
  doc.on('update', drop);

  const cacheable = (): boolean =>
    doc.store.pendingStructs === null && doc.store.pendingDs === null;
  /** The cached entry if it still describes the document. */
  const valid = (): Entry | undefined => {
    if (entry && !cacheable()) drop();
    return entry;
  };
  /** Keeps a freshly encoded state when it is worth keeping; else undefined. */
  const keep = (state: Uint8Array, frame?: Uint8Array): Entry | undefined => {
    if (destroyed || state.byteLength < minBytes || !cacheable()) return undefined;
    const bytes = frame ?? encodeSyncStep2(state);
    // The frame ends with the update (after its type bytes and length prefix).
    entry = { frame: bytes, state: bytes.subarray(bytes.byteLength - state.byteLength) };
    sharedFrames.add(bytes);
    return entry;
  };

  return {
    syncStep2() {
      const hit = valid();
      if (hit) return hit.frame;
      const state = Y.encodeStateAsUpdate(doc);
      const frame = encodeSyncStep2(state);
      keep(state, frame);
      return frame;
    },
    state() {
      const hit = valid();
      if (hit) return hit.state;
      const state = Y.encodeStateAsUpdate(doc);
      return keep(state)?.state ?? state;
    },
    destroy() {
      destroyed = true;
      drop();
      doc.off('update', drop);
    },
  };
};

/**
 * True when a state vector lists no client: its first varuint, the entry count,
 * is 0. A non-canonical zero (0x80 0x00) reads as false and takes the general
 * path, which gives the same answer more slowly.
 */
export const isEmptyStateVector = (stateVector: Uint8Array): boolean =>
  stateVector.byteLength > 0 && stateVector[0] === 0;

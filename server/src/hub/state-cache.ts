/**
 * A document's full state, encoded once and reused while the document changes little.
 *
 * Every client that connects with an empty state vector (a fresh client, a node
 * that has not seen the document) needs the whole document. Encoding it is
 * O(document): about 20 ms for 250,000 single-character edits (1.2 MB), 230–355 ms
 * for a 20 MB text, on the event loop. The cache keeps the encoded state as a ready
 * sync-step-2 frame and serves the update itself as a view into that frame, so the
 * two forms cost one copy of the bytes, not two.
 *
 * A change does not throw the encoding away: the doc's `update` events after it
 * are kept as a *tail*, and a fresh client gets the tail (as a few merged update
 * messages: TailGroup) followed by the cached sync step 2 (`syncFrames`). The tail first:
 * Yjs parks it as pending until the whole document arrives, so when a stock
 * y-websocket client says `synced` (after the sync step 2) it has all of it. Once
 * the tail outgrows MAX_TAIL_UPDATES or 1/TAIL_SHARE of the state, the state is
 * re-encoded on its own setImmediate — off the join path, and at most once per
 * that much change, so the encode costs a constant factor per changed byte. So
 * is it once the tail frames sent to fresh clients add up to the state's size: a
 * join storm after a burst of edits sends the tail to a few joiners, not all.
 * `state()` and `syncStep2()` need one update and re-encode when a tail exists.
 *
 * The tail is complete: Yjs emits `update` for every transaction that added a
 * struct or deleted something, whatever the origin (clients, peers, storage
 * replay, functions, direct `doc.transact`). A transaction without content emits
 * nothing and changes nothing, which is why a fresh client's empty sync step 2
 * costs no tail entry. The one change without an `update` event is Yjs parking an
 * update that lacks dependencies as pending (which `encodeStateAsUpdate` includes):
 * a document with a pending part is therefore never cached, and a cached entry is
 * dropped when a pending part appears.
 *
 * The bytes handed out are shared: consumers must not write into them. Sockets,
 * `postMessage` (a structured clone), HTTP responses and the stores only read.
 */
import * as Y from 'yjs';
import { encodeSyncStep2, encodeUpdate } from '@stateweave/client/protocol';

/**
 * Documents whose full state encodes to fewer bytes are encoded per request and
 * not kept. Below this an encode takes at most a few milliseconds (measured:
 * 0.3 ms at 16 KB, 3 ms at 84 KB of scattered edits), so caching would buy
 * little while adding memory to every idle room (most rooms are small). Above it the cache costs roughly a tenth of what the room already holds:
 * a Y.Doc takes about 11× its encoded size in heap (14 MB for the 1.2 MB
 * benchmark document), so there is no idle timer; the cache lives until the room unloads.
 */
export const MIN_CACHED_STATE_BYTES = 64 * 1024;

/** Past this many updates in the tail the state is re-encoded (merging the tail per join stays cheap). */
export const MAX_TAIL_UPDATES = 256;

/** The state is re-encoded once the tail's bytes pass 1/TAIL_SHARE of the cached state's. */
export const TAIL_SHARE = 8;

/** A tail group is closed (merged once for good) at this many bytes; an update this large is a group alone. */
export const TAIL_GROUP_BYTES = 64 * 1024;

export interface StateCache {
  /** The whole document as a sync-step-2 frame. Shared bytes: never mutate. */
  syncStep2(): Uint8Array;
  /**
   * The whole document for a fresh client, as frames to send in order: the
   * changes since the cached encoding (a few update messages, when there are
   * any), then the cached sync step 2. Shared bytes: never mutate.
   */
  syncFrames(): readonly Uint8Array[];
  /** The whole document as one update, as `Y.encodeStateAsUpdate(doc)`. Shared bytes: never mutate. */
  state(): Uint8Array;
  /** Forgets the cached bytes and stops listening (the room unloads). */
  destroy(): void;
}

/**
 * Consecutive updates of the tail, sent as one update message. A group is closed
 * once it holds TAIL_GROUP_BYTES: its frame, merged once, is kept and its updates
 * are let go. So a join merges at most the open group's few KB, however large the
 * tail (merging costs about 100 ms per MB), and a client gets a few frames.
 */
interface TailGroup {
  /** Until the group's frame is made for good (closed); then undefined. */
  updates: Uint8Array[] | undefined;
  bytes: number;
  /** The group as one update message; for an open group, until its next update. */
  frame: Uint8Array | undefined;
}

interface Entry {
  readonly frame: Uint8Array;
  /** The update inside `frame` (its tail), not a copy. */
  readonly state: Uint8Array;
  /** The doc's updates since `state` was encoded, in order, grouped. */
  readonly tail: TailGroup[];
  tailUpdates: number;
  tailBytes: number;
  /** Bytes of tail frames sent to fresh clients since `state` was encoded. */
  tailSent: number;
}

/** Frames this cache handed out to be shared by every joining client (socket-writer.ts). */
const sharedFrames = new WeakSet<Uint8Array>();

/**
 * True for a cached whole-document frame: every client that joins is sent the same
 * bytes, so they cost memory once however many sockets still have them queued.
 */
export const isSharedFrame = (frame: Uint8Array): boolean => sharedFrames.has(frame);

/** A frame and the update inside it. */
interface Whole {
  readonly frame: Uint8Array;
  readonly state: Uint8Array;
}

/**
 * A class whose instance holds four fields until a document first encodes to
 * MIN_CACHED_STATE_BYTES: every room has one, most never keep anything, and only
 * then does it listen to the doc.
 */
class DocStateCache implements StateCache {
  private entry: Entry | undefined;
  /** After destroy nothing is kept: no listener would extend it any more. */
  private destroyed = false;
  private refreshing: NodeJS.Immediate | undefined;
  /** The doc listener, made when the first entry is kept. */
  private listener: ((update: Uint8Array) => void) | undefined;

  constructor(
    private readonly doc: Y.Doc,
    private readonly minBytes: number,
  ) {}

  syncStep2(): Uint8Array {
    return this.whole().frame;
  }

  state(): Uint8Array {
    return this.whole().state;
  }

  syncFrames(): readonly Uint8Array[] {
    const hit = this.valid();
    if (!hit) return [this.encode().frame];
    if (hit.tail.length === 0) return [hit.frame];
    const tail = hit.tail.map(frameOf);
    // Each such join sends the tail on top of the state: once those bytes add up to the
    // state's own, the tail is folded (a join storm after a burst of edits sends it a few
    // times, not to every joiner; at most one encode per state's worth of bytes sent).
    for (const frame of tail) hit.tailSent += frame.byteLength;
    if (hit.tailSent >= hit.state.byteLength) this.scheduleRefresh();
    return [...tail, hit.frame];
  }

  destroy(): void {
    this.destroyed = true;
    this.entry = undefined;
    if (this.refreshing) clearImmediate(this.refreshing);
    this.refreshing = undefined;
    if (this.listener) this.doc.off('update', this.listener);
  }

  private cacheable(): boolean {
    return this.doc.store.pendingStructs === null && this.doc.store.pendingDs === null;
  }

  /** The cached entry if it still describes the document (with its tail). */
  private valid(): Entry | undefined {
    if (this.entry && !this.cacheable()) this.entry = undefined;
    return this.entry;
  }

  /** The cached entry without a tail, or a fresh encode. */
  private whole(): Whole {
    const hit = this.valid();
    return hit && hit.tail.length === 0 ? hit : this.encode();
  }

  /** The current state, encoded now, and kept when worth keeping. */
  private encode(): Whole {
    const state = Y.encodeStateAsUpdate(this.doc);
    const frame = encodeSyncStep2(state);
    this.entry = undefined;
    if (this.destroyed || state.byteLength < this.minBytes || !this.cacheable())
      return { frame, state };
    // The frame ends with the update (after its type bytes and length prefix).
    this.entry = {
      frame,
      state: frame.subarray(frame.byteLength - state.byteLength),
      tail: [],
      tailUpdates: 0,
      tailBytes: 0,
      tailSent: 0,
    };
    sharedFrames.add(frame);
    if (!this.listener) {
      this.listener = (update) => this.onUpdate(update);
      this.doc.on('update', this.listener);
    }
    return this.entry;
  }

  private refresh(): void {
    this.refreshing = undefined;
    if (this.entry && this.entry.tail.length > 0) this.encode();
  }

  private onUpdate(update: Uint8Array): void {
    const current = this.valid();
    if (!current) return;
    const open = current.tail.at(-1);
    if (open?.updates && open.bytes < TAIL_GROUP_BYTES && update.byteLength < TAIL_GROUP_BYTES) {
      open.updates.push(update);
      open.bytes += update.byteLength;
      open.frame = undefined;
    } else current.tail.push({ updates: [update], bytes: update.byteLength, frame: undefined });
    current.tailUpdates++;
    current.tailBytes += update.byteLength;
    const grown =
      current.tailUpdates > MAX_TAIL_UPDATES ||
      current.tailBytes * TAIL_SHARE > current.state.byteLength;
    if (grown) this.scheduleRefresh();
  }

  /** Re-encodes on its own turn: never on the join path itself. */
  private scheduleRefresh(): void {
    if (!this.refreshing) this.refreshing = setImmediate(() => this.refresh());
  }
}

/** A group's update message; a closed group's is made once and its updates let go. */
const frameOf = (group: TailGroup): Uint8Array => {
  if (group.frame) return group.frame;
  const updates = group.updates!;
  group.frame = encodeUpdate(updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates));
  if (group.bytes >= TAIL_GROUP_BYTES) group.updates = undefined;
  return group.frame;
};

export const createStateCache = (
  doc: Y.Doc,
  minBytes: number = MIN_CACHED_STATE_BYTES,
): StateCache => new DocStateCache(doc, minBytes);

/**
 * True when a state vector lists no client: its first varuint, the entry count,
 * is 0. A non-canonical zero (0x80 0x00) reads as false and takes the general
 * path, which gives the same answer more slowly.
 */
export const isEmptyStateVector = (stateVector: Uint8Array): boolean =>
  stateVector.byteLength > 0 && stateVector[0] === 0;

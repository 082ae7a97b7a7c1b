/**
 * One live document: a Y.Doc, its Awareness, the subscribers that receive its
 * changes, and the persister that stores them. A Room *has* a Y.Doc (it does not
 * extend one) and knows nothing about sockets: subscribers are two-method objects.
 *
 * Every change enters through `applyUpdate(update, origin)`. Updates are checked
 * at once and applied at the end of the event-loop turn, all of a turn's in one
 * Yjs transaction (end-of-turn.ts): the doc's `update` event then yields one
 * effective update, encoded once as a frame for every subscriber and handed once
 * to the persister. Under load that is one frame per receiver and one store write
 * per turn instead of one per update; at low load a batch is a single update.
 * A hot room also coalesces its client connections' frames over a tick
 * (update-relay.ts), as it does presence (presence-relay.ts).
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import {
  decodeAwarenessUpdate,
  encodeAwareness,
  encodeAwarenessEntries,
  encodeSyncStep2,
  type ProtocolError,
} from '@stateweave/client/protocol';
import { atEndOfTurn } from '../end-of-turn.js';
import type { ConnectionId } from '../connection-id.js';
import type { DocName } from '../doc-name.js';
import { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { isOrigin, sameOrigin, STORAGE_ORIGIN, writerOf, type Origin } from '../origin.js';
import type { Store, StoreRecord } from '../storage/store.js';
import { createPersister, type Compactor, type Persister } from './persister.js';
import { createStateCache, isEmptyStateVector, type StateCache } from './state-cache.js';
import { splitByTombstone, type TombstoneGuard } from './tombstone.js';
import { checkUpdate, integratesWhole, type CheckedUpdate } from './update-guard.js';
import { connectionKey, createClientIds } from './client-ids.js';
import { Members } from './members.js';
import { updateFrame } from './update-frame.js';
import {
  DEFAULT_MAX_PRESENCE_BYTES,
  DEFAULT_MAX_PRESENCE_IDS_PER_CONNECTION,
  screenPresence,
  type PresenceLimits,
} from './presence-guard.js';
import { createPresenceRelay, type FrameFor, type PresenceRelay } from './presence-relay.js';
import { expirePresence, stopExpiring } from './presence-expiry.js';
import { encodePresenceFrame } from './presence-frame.js';
import { createUpdateRelay, type UpdateRelay } from './update-relay.js';

/**
 * Presence changes within this window after one that left leave together (the
 * first leaves at once). 50 ms: cursors still move at 20 frames a second.
 */
const PRESENCE_TICK_MS = 50;

/**
 * Presence frames a room sends per second, over all its subscribers, before its
 * tick grows past PRESENCE_TICK_MS: each subscriber gets a frame per tick, and
 * each frame is a socket write. With 500 clients moving cursors, 50 ms ticks were
 * 10,000 writes a second, and the kernel's writev was most of the node's CPU.
 * Up to 250 subscribers keep 50 ms; 500 get 100 ms (10 frames a second, Liveblocks'
 * default presence throttle), 1,000 get 200 ms, and MAX_PRESENCE_TICK_MS caps it.
 */
const PRESENCE_FRAMES_PER_SECOND = 5_000;
const MAX_PRESENCE_TICK_MS = 250;

/** The coalescing window of a room with `subscribers` subscribers. */
export const presenceTickMs = (subscribers: number): number =>
  Math.min(
    MAX_PRESENCE_TICK_MS,
    Math.max(PRESENCE_TICK_MS, (subscribers * 1000) / PRESENCE_FRAMES_PER_SECOND),
  );

/**
 * Why a client's write arrives: an `edit` made now, or a `resend` of state it
 * holds (its sync step 2: after a reconnect, or after the node lost writes in a
 * crash), which may carry other people's edits and so claims no client ids.
 */
export type WriteKind = 'edit' | 'resend';

/** loading → active → draining → unloaded (draining may fall back to active). */
export type RoomState = 'loading' | 'active' | 'draining' | 'unloaded';

/** Something that receives a room's frames: a socket, a peer link, a test. */
export interface Subscriber {
  /** Key of this subscriber in the room (peer links take one from nextConnectionId too). */
  readonly connId: ConnectionId;
  /**
   * The origin whose changes this subscriber already has, so they are never sent
   * back to it (a peer's updates are not echoed to that peer).
   * @default { kind: 'client', connId }
   */
  readonly origin?: Origin;
  /**
   * Connections with the same key share the Yjs client ids they introduce
   * (client-ids.ts): one user's connections, so a reconnect need not wait for
   * the old socket to be found dead. @default its own connection
   */
  readonly writerKey?: string;
  /**
   * Instead of one `origin`: true for every origin whose changes this subscriber
   * already has (a backplane channel has every peer's, whichever node sent it).
   */
  readonly hasChangesOf?: (origin: Origin) => boolean;
  send(frame: Uint8Array): void;
  /** Ends the subscription from the room's side (the room is being evicted). */
  close?(err: StateweaveError): void;
}

/** Admits the creation of a document by a token subject; server.ts wires limits/new-docs.ts. */
export interface NewDocGate {
  /** Throws (DOC_CREATION_LIMITED) when `subject` may not create `doc` now; otherwise counts it. */
  admit(subject: string, doc: string): void;
}

export interface RoomOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxDocBytes: number;
  readonly maxConnectionsPerDoc: number;
  readonly compactAfterUpdates: number;
  /** How snapshots are stored: the history's (history/compactor.ts). @default drop the log */
  readonly compactor?: Compactor;
  /** Presence client ids one connection may speak for. @default 4 */
  readonly maxPresenceIdsPerConnection?: number;
  /** Largest presence state one connection may send, as JSON bytes. @default 65536 */
  readonly maxPresenceBytes?: number;
  /** Update frames a second one room sends at once before it coalesces them (update-relay.ts). @default 10000 */
  readonly updateFramesPerSecond?: number;
  /**
   * Admits the creation of a document by a token subject: consulted for a write that would give an empty document its first content.
   * @default none (creations are not limited)
   */
  readonly newDocs?: NewDocGate;
  /** Told after every change that was not replayed from storage (function change triggers). */
  readonly onChange?: (doc: DocName, origin: Origin | undefined) => void;
  /**
   * Called when Yjs threw half-way through applying an update that passed every
   * check: the in-memory document may hold part of it, so the owner must evict
   * the room (nothing of that update was broadcast or stored).
   */
  readonly onCorrupt?: (room: Room) => void;
  /**
   * `--ack replicated`: hands every change made on this node (not one a peer
   * sent, which the medium has already) to the cluster medium as an update
   * frame; a change counts as durable (`saved`) only once this resolves too.
   * @default none (durable = stored here)
   */
  readonly replicate?: (doc: DocName, frame: Uint8Array) => Promise<void>;
  /** Deleted documents' tombstones: what they cover is refused (tombstone.ts). @default none */
  readonly tombstones?: TombstoneGuard;
}

/** True when `subscriber` is the writer `origin` (it already has the change). */
const isOriginOf = (origin: Origin, subscriber: Subscriber): boolean =>
  subscriber.hasChangesOf
    ? subscriber.hasChangesOf(origin)
    : subscriber.origin
      ? sameOrigin(origin, subscriber.origin)
      : origin.kind === 'client' && origin.connId === subscriber.connId;

/** The client connection a subscriber is, when that is its only origin (presence-relay.ts FrameFor). */
const clientConnIdOf = (subscriber: Subscriber): number | undefined => {
  if (subscriber.hasChangesOf) return undefined;
  const { origin } = subscriber;
  if (!origin) return subscriber.connId;
  return origin.kind === 'client' ? origin.connId : undefined;
};

/** An update waiting for the end of the turn, and whoever waits for it to be durable. */
interface PendingUpdate {
  readonly update: Uint8Array;
  /** What update-guard.ts found in it. */
  readonly checked: CheckedUpdate;
  readonly origin: Origin;
  readonly resolve: (saved: Promise<void>) => void;
  readonly reject: (err: StateweaveError) => void;
}

/** A frame as a Buffer view (no copy), so no socket has to wrap it again per receiver. */
const asBuffer = (frame: Uint8Array): Buffer =>
  Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);

export class Room {
  readonly doc: Y.Doc;
  readonly awareness: awarenessProtocol.Awareness;
  /** The whole document, encoded once and extended by a tail of changes (large documents only): see state-cache.ts. */
  private readonly fullState: StateCache;
  state: RoomState = 'loading';
  /** Per connection: its subscriber, the presence ids it announced, whether it sent its state. */
  private readonly members = new Members<Subscriber>();
  private persister: Persister | undefined;
  /** While applyUpdate runs, the effective update is parked here instead of acted on. */
  private capturing = false;
  private captured: Uint8Array | undefined;
  /** True while applyGated applies an already stored update (broadcast, do not store again). */
  private applyingStored = false;
  /** Checked updates of this turn, applied together by applyBatch. */
  private batch: PendingUpdate[] | undefined;
  /** Settles once every change handed to `replicate` so far is in the medium. */
  private replicated: Promise<void> | undefined;
  private batchBytes = 0;
  /** Which live connection introduced each Yjs client id (client-ids.ts). */
  private readonly clientIds = createClientIds();
  /** Presence changes leave coalesced per tick (presence-relay.ts); made at the first change. */
  private presence: PresenceRelay | undefined;
  /** Updates to client connections, coalesced while the room is past its budget (update-relay.ts); made at the first. */
  private updates: UpdateRelay | undefined;
  /** A write that gives this empty document its first content was admitted (not yet applied). */
  private creating = false;

  constructor(
    readonly name: DocName,
    private readonly options: RoomOptions,
  ) {
    // The name as guid: Yjs would make a random uuid string per document.
    this.doc = new Y.Doc({ gc: true, guid: name });
    // A provider's events: `load` and `sync` tell a client's Y.Doc that its
    // provider loaded or synced it, and nothing emits them on a node. Their
    // listeners (Yjs's whenLoaded/whenSynced: two sets, three closures and their
    // resolvers) were ~0.7 KB of every open document.
    this.doc._observers.delete('load');
    this.doc._observers.delete('sync');
    this.awareness = new awarenessProtocol.Awareness(this.doc);
    // The Awareness listens for the doc's `destroy` to destroy itself; destroy()
    // below does that first, so the listener (a set and a closure) goes.
    this.doc._observers.delete('destroy');
    this.fullState = createStateCache(this.doc);
    // The node itself has no presence in the document.
    this.awareness.setLocalState(null);
    expirePresence(this.awareness);
    this.doc.on('update', this.onDocUpdate);
    this.awareness.on('update', this.onAwarenessUpdate);
  }

  /** Reads the stored state; the room answers nobody before this resolves. */
  async load(): Promise<void> {
    const { store, metrics, compactAfterUpdates } = this.options;
    const stopTimer = metrics.documentLoadSeconds.startTimer();
    const stored = await store.load(this.name);
    try {
      this.doc.transact(() => {
        for (const update of stored.updates) Y.applyUpdate(this.doc, update, STORAGE_ORIGIN);
      }, STORAGE_ORIGIN);
    } catch (err) {
      throw new StateweaveError('LOAD_FAILED', `stored state of ${this.name} cannot be decoded`, {
        cause: err,
      });
    }
    // The shared options, and only the counts of what was loaded (not its updates).
    const { logLength, bytes, lastSeq, compacted } = stored;
    this.persister = createPersister(
      this.options,
      this.name,
      this.doc,
      { logLength, bytes, lastSeq, compacted },
      this.fullState,
    );
    if (stored.logLength >= compactAfterUpdates) void this.persister.compact();
    stopTimer();
    this.state = 'active';
  }

  /**
   * Applies an update (at the end of this turn, with the turn's others) and
   * resolves once it is durable. Refuses (throws) before touching the document
   * when the bytes are not a Yjs update or the document would outgrow
   * maxDocBytes, so rejected input leaves no trace. `creator` (a token subject)
   * is held to the new-document limit when this write would create the document.
   */
  applyUpdate(
    update: Uint8Array,
    origin: Origin,
    creator?: string,
    kind: WriteKind = 'edit',
  ): Promise<void> {
    const deleted = this.options.tombstones?.stateVectorOf(this.name);
    if (deleted) {
      const rest = this.pastTombstone(update, origin, deleted);
      if (rest === null) return Promise.resolve();
      update = rest;
    }
    const checked = this.admit(update, origin, creator, kind);
    this.batchBytes += update.byteLength;
    return new Promise((resolve, reject) => {
      if (!this.batch) {
        this.batch = [];
        atEndOfTurn(() => this.applyBatch());
      }
      this.batch.push({ update, checked, origin, resolve, reject });
    });
  }

  /**
   * What of `update` was written after the document's deletion. Content of the
   * deleted document never comes back: a client or an HTTP writer that sends
   * some holds an old copy and is refused (DOC_DELETED, so a stock client is
   * closed with 4410 instead of writing the copy back); from a peer or a
   * catch-up it is dropped (that node has not heard of the deletion yet).
   */
  private pastTombstone(
    update: Uint8Array,
    origin: Origin,
    deleted: Map<number, number>,
  ): Uint8Array | null {
    let split;
    try {
      split = splitByTombstone(update, deleted);
    } catch {
      return update; // not a Yjs update: admit() refuses it with the usual error
    }
    if (!split.covered) return update;
    if (origin.kind === 'client' || origin.kind === 'http')
      throw new StateweaveError(
        'DOC_DELETED',
        `${this.name} was deleted; this copy holds its old content`,
      );
    this.options.metrics.errors.inc({ code: 'DOC_DELETED' });
    return split.rest;
  }

  /**
   * Applies the turn's updates in one transaction; fans out and stores the effect
   * once. A method, not a bound arrow: a closure per batch instead of one per room.
   */
  private applyBatch(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    this.batchBytes = 0;
    if (this.state === 'unloaded') {
      const err = new StateweaveError(
        'INTERNAL',
        `room ${this.name} unloaded before the update was applied`,
      );
      for (const pending of batch) pending.reject(err);
      return;
    }
    const persister = this.requirePersister();
    const { store } = this.doc;
    const structsBefore = store.pendingStructs?.update;
    const dsBefore = store.pendingDs;
    // One writer for the whole batch, or none: then every subscriber gets the
    // frame, its writers too (an echo Yjs ignores, as the reference server sends).
    let origin: Origin | undefined = batch[0]!.origin;
    for (const pending of batch)
      if (origin && !sameOrigin(origin, pending.origin)) origin = undefined;
    // The effective update is acted on only once Yjs has finished without an error:
    // Yjs emits `update` from a `finally`, even for a transaction that threw.
    this.capturing = true;
    this.captured = undefined;
    let applying = 0;
    // One update that integrates whole: Yjs need not re-encode the change (see applyWhole).
    // Not inside another transaction: that one's end would encode and emit it.
    const whole =
      batch.length === 1 &&
      this.doc._transaction === null &&
      store.pendingStructs === null &&
      store.pendingDs === null &&
      integratesWhole(batch[0]!.checked, (client) => Y.getState(store, client));
    try {
      if (whole) this.applyWhole(batch[0]!.update, origin ?? null);
      else
        this.doc.transact(() => {
          for (; applying < batch.length; applying++)
            Y.applyUpdate(this.doc, batch[applying]!.update);
        }, origin ?? null);
    } catch (err) {
      this.options.logger.error(
        { doc: this.name, err },
        'a checked update failed inside Yjs; evicting the in-memory copy',
      );
      const invalid = new StateweaveError(
        'INVALID_UPDATE',
        `not a valid Yjs update: ${(err as Error).message}`,
        { cause: err },
      );
      // The others were applied to a copy that is now thrown away, never stored: not acknowledged.
      const lost = new StateweaveError(
        'INTERNAL',
        `${this.name} was evicted while applying this update`,
      );
      batch.forEach((pending, i) => pending.reject(i === applying ? invalid : lost));
      this.options.onCorrupt?.(this);
      return;
    } finally {
      this.capturing = false;
    }
    const effective = this.captured;
    this.captured = undefined;
    for (const pending of batch) this.options.metrics.updatesInFrom(pending.origin.kind).inc();
    // Change triggers hear each writer: once for a turn of one writer, else per update.
    if (effective && this.options.onChange) {
      if (origin) this.options.onChange(this.name, origin);
      else for (const pending of batch) this.options.onChange(this.name, pending.origin);
    }
    const writers = origin
      ? [writerOf(origin)]
      : [...new Set(batch.map((pending) => writerOf(pending.origin)))];
    let saved = effective ? this.commit(effective, origin, writers) : undefined;
    // Yjs parks what lacks dependencies as pending, and the `update` event leaves
    // that part out — even when the rest of the update became visible. If this
    // batch added to the pending part, keep its raw bytes too, or a restart
    // would lose an acknowledged change. (Saves are ordered, so the last one also
    // covers `saved`.) Yjs assigns new bytes whenever the pending part changes;
    // a pending delete set is re-encoded on every update, so while one exists
    // updates are kept raw as well: redundant, never lossy.
    const parked =
      (store.pendingStructs !== null && store.pendingStructs.update !== structsBefore) ||
      (store.pendingDs !== null && store.pendingDs !== dsBefore);
    if (parked)
      for (const pending of batch)
        saved = persister.save(pending.update, [writerOf(pending.origin)]);
    const durable = this.withReplicated(saved ?? persister.covered());
    for (const pending of batch) pending.resolve(durable);
  }

  /**
   * Applies an update that integrates whole (update-guard.ts `integratesWhole`)
   * without Yjs's re-encoding of the change: Yjs encodes a transaction's change
   * only when the document has `update` listeners, and that encode was about a
   * fifth of the node's CPU per edit (profile, scenario 3). The listeners are
   * set aside for the transaction and then told of the update itself, as Yjs
   * would have told them of its own encoding of the same change. Should Yjs park
   * a part after all, they get the document's structs since the transaction
   * began (with its whole delete set): larger, never missing anything.
   */
  private applyWhole(update: Uint8Array, origin: Origin | null): void {
    const { doc } = this;
    const observers = doc._observers.get('update');
    let transaction: Y.Transaction | undefined;
    if (observers) doc._observers.delete('update');
    try {
      doc.transact((tr) => {
        transaction = tr;
        Y.applyUpdate(doc, update);
      }, origin);
    } finally {
      if (observers) doc._observers.set('update', observers);
    }
    if (!observers || !transaction) return;
    const { beforeState, afterState, deleteSet } = transaction;
    let changed = deleteSet.clients.size > 0;
    for (const [client, clock] of afterState) if (beforeState.get(client) !== clock) changed = true;
    if (!changed) return;
    const { store } = doc;
    const effective =
      store.pendingStructs === null && store.pendingDs === null
        ? update
        : Y.encodeStateAsUpdate(doc, Y.encodeStateVector(beforeState));
    doc.emit('update', [effective, origin, doc, transaction]);
  }

  /**
   * A write through the output gate (function results): validated like any
   * update, then stored together with `records` in one batch, and only then
   * applied and broadcast. Resolves once stored and applied; a refused write
   * leaves the document and every subscriber untouched.
   */
  applyGated(
    update: Uint8Array | null,
    origin: Origin,
    records: readonly StoreRecord[],
  ): Promise<void> {
    const persister = this.requirePersister();
    if (update !== null) this.admit(update);
    return persister.saveGated(update, records, () => this.applyStored(update, origin), [
      writerOf(origin),
    ]);
  }

  /**
   * `applyGated` for one batch that writes several rooms (a function's `docs`):
   * checks `update` now (throws as applyGated would); the returned commit takes
   * the shared write's outcome for this room and applies once it is durable.
   */
  stageGated(update: Uint8Array, origin: Origin): (written: Promise<number>) => Promise<void> {
    const persister = this.requirePersister();
    this.admit(update);
    return (written) =>
      persister.saveGatedWith(update, written, () => this.applyStored(update, origin));
  }

  private applyStored(update: Uint8Array | null, origin: Origin): void {
    if (update === null) return;
    this.applyBatch(); // updates that arrived before this write are applied before it, in arrival order
    this.applyingStored = true;
    try {
      Y.applyUpdate(this.doc, update, origin);
    } finally {
      this.applyingStored = false;
    }
  }

  /**
   * Applies a client's awareness update; throws INVALID_FRAME if malformed.
   * A client speaks only for the awareness client ids it introduced: entries for
   * ids another connection (or the node) owns are dropped, so presence cannot be
   * spoofed or removed for someone else. Dropping, not closing, because stock
   * y-websocket clients re-broadcast every state they receive. A client's own
   * entries pass presence-guard.ts: what it refuses is dropped and returned as
   * `refused`. `own` counts the sender's own entries (0 for a pure echo). A
   * peer's entries for ids a connection here owns are dropped too.
   */
  applyAwareness(
    update: Uint8Array,
    origin: Origin,
  ): { own: number; refused: StateweaveError | undefined } {
    let entries;
    try {
      entries = decodeAwarenessUpdate(update);
    } catch (err) {
      throw new StateweaveError('INVALID_FRAME', (err as ProtocolError).message, { cause: err });
    }
    let refused: StateweaveError | undefined;
    let own = entries.length;
    if (origin.kind === 'client') {
      const mine = entries.filter(({ clientId, clock }) => {
        if (clientId === this.doc.clientID) return false;
        const owner = this.members.ownerOf(clientId);
        if (owner !== undefined) return owner.connId === origin.connId;
        // Nobody here owns it: a state a peer relayed, echoed at a clock this room
        // already holds, is not the sender's (stock clients echo everyone's).
        const held = this.awareness.meta.get(clientId);
        return held === undefined || clock > held.clock;
      });
      own = mine.length;
      const screened = screenPresence(
        mine,
        update.byteLength,
        this.members.get(origin.connId)?.ids,
        this.presenceLimits(),
      );
      refused = screened.refused;
      if (screened.accepted.length === 0) return { own, refused };
      if (screened.accepted.length < entries.length) {
        update = encodeAwarenessEntries(screened.accepted);
        entries = screened.accepted;
      }
    } else if (origin.kind === 'peer') {
      // A peer never speaks for a client connected here: when a channel closes
      // elsewhere, the removal of the states it carried comes back around the
      // mesh, and would take a present user's state (and its count) away.
      const { members } = this;
      const foreign =
        members.presenceCount > 0
          ? entries.filter(({ clientId }) => members.ownerOf(clientId) === undefined)
          : entries;
      if (foreign.length === 0) return { own, refused };
      if (foreign.length < entries.length) {
        update = encodeAwarenessEntries(foreign);
        entries = foreign;
      }
    }
    awarenessProtocol.applyAwarenessUpdate(this.awareness, update, origin);
    return { own, refused };
  }

  /**
   * The sync step 2 that answers a sync step 1 carrying `stateVector`: for an
   * empty one (a fresh client or node) the whole document, cached while it does
   * not change; otherwise the diff, encoded now. Throws (from Yjs) when the state
   * vector is malformed. The bytes may be shared: never mutate them.
   */
  syncStep2For(stateVector: Uint8Array): Uint8Array {
    this.applyBatch(); // a socket's frames act in order: its earlier updates are in the answer
    if (isEmptyStateVector(stateVector)) return this.fullState.syncStep2();
    return encodeSyncStep2(Y.encodeStateAsUpdate(this.doc, stateVector));
  }

  /**
   * `syncStep2For` for a client: the frames to send in order. For an empty state
   * vector, the changes since the cached whole document was encoded (a few update
   * messages, when there are any) and then that cached sync step 2 (state-cache.ts):
   * no encode of the whole document on the join path.
   */
  syncFramesFor(stateVector: Uint8Array): readonly Uint8Array[] {
    this.applyBatch();
    if (isEmptyStateVector(stateVector)) return this.fullState.syncFrames();
    return [encodeSyncStep2(Y.encodeStateAsUpdate(this.doc, stateVector))];
  }

  /**
   * What a reader at `stateVector` lacks, as one update (`Y.encodeStateAsUpdate(doc,
   * stateVector)`); without one, or with an empty one, the whole document, cached
   * while it does not change. The turn's waiting updates are applied first, so
   * every reader sees the same document. Shared bytes: never mutate.
   */
  diffSince(stateVector?: Uint8Array): Uint8Array {
    this.applyBatch();
    if (stateVector === undefined || isEmptyStateVector(stateVector)) return this.fullState.state();
    return Y.encodeStateAsUpdate(this.doc, stateVector);
  }

  /** True when the document already contains everything in `update` (a no-op write). */
  containsUpdate(update: Uint8Array): boolean {
    try {
      return Y.snapshotContainsUpdate(Y.snapshot(this.doc), update);
    } catch (err) {
      throw new StateweaveError('INVALID_UPDATE', `not a Yjs update: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** The full awareness state, for a new subscriber or a query-awareness. */
  encodeAwarenessStates(): Uint8Array | undefined {
    const ids = [...this.awareness.getStates().keys()];
    if (ids.length === 0) return undefined;
    return encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, ids));
  }

  subscribe(subscriber: Subscriber): void {
    const count = this.members.subscriberCount;
    if (count >= this.options.maxConnectionsPerDoc) {
      throw new StateweaveError('TOO_MANY_CONNECTIONS', `${this.name} has ${count} connections`);
    }
    this.members.subscribe(subscriber);
  }

  /** The connection writes no more (refused, closing): the client ids it introduced are free at once. */
  releaseClientIds(connId: ConnectionId): void {
    this.clientIds.release(connId);
  }

  /** Removes the subscriber and, for everyone else, the presence it announced. */
  unsubscribe(connId: ConnectionId): void {
    const ids = this.members.remove(connId)?.ids;
    this.clientIds.release(connId);
    if (!ids || ids.length === 0) return;
    awarenessProtocol.removeAwarenessStates(this.awareness, ids, 'disconnect');
  }

  /** Closes every subscriber that can be closed (eviction): they reconnect to a fresh room. */
  closeSubscribers(err: StateweaveError): void {
    const subscribers = [...this.members.all()].map(({ subscriber }) => subscriber);
    for (const subscriber of subscribers) subscriber?.close?.(err);
  }

  get subscriberCount(): number {
    return this.members.subscriberCount;
  }

  /** Awareness states announced by this node's own client connections (not relayed by peers). */
  get localPresenceCount(): number {
    return this.members.presenceCount;
  }

  /** Resolves when every change so far (this turn's included) is durable. */
  covered(): Promise<void> {
    this.applyBatch();
    return this.withReplicated(this.requirePersister().covered());
  }

  /** `stored`, and (with `replicate`) every change so far in the medium too. */
  private withReplicated(stored: Promise<void>): Promise<void> {
    const replicated = this.replicated;
    return replicated ? Promise.all([stored, replicated]).then(() => undefined) : stored;
  }

  /** Resolves true when every change (this turn's included) is durable, false once a write failed. */
  flush(): Promise<boolean> {
    this.applyBatch();
    return this.persister ? this.persister.flush() : Promise.resolve(true);
  }

  compact(): Promise<void> {
    return this.persister ? this.persister.compact() : Promise.resolve();
  }

  get storedBytes(): number {
    return this.persister?.bytes ?? 0;
  }

  get logLength(): number {
    return this.persister?.logLength ?? 0;
  }

  /** A snapshot exists: the log from the empty document may be gone (history.ts). */
  get compacted(): boolean {
    return this.persister?.compacted ?? false;
  }

  /** Highest seq of the document's durable log entries (its newest version). */
  get lastSeq(): number {
    return this.persister?.lastSeq ?? 0;
  }

  destroy(): void {
    this.state = 'unloaded';
    this.applyBatch(); // rejects what is still waiting: the room is gone
    this.persister?.stop();
    this.fullState.destroy();
    this.presence?.close();
    this.updates?.close();
    stopExpiring(this.awareness);
    this.awareness.destroy();
    this.doc.destroy();
  }

  /**
   * The checks every write passes before it touches the document: it fits in
   * maxDocBytes together with what is stored and what waits for the turn's end,
   * and is a structurally sound Yjs update (update-guard.ts). A client's or an
   * HTTP write may not add content under a client id another live connection
   * introduced (client-ids.ts); peers and functions are trusted writers.
   */
  private admit(
    update: Uint8Array,
    origin?: Origin,
    creator?: string,
    kind: WriteKind = 'edit',
  ): CheckedUpdate {
    const persister = this.requirePersister();
    if (persister.bytes + this.batchBytes + update.byteLength > this.options.maxDocBytes) {
      throw new StateweaveError(
        'DOC_TOO_LARGE',
        `${this.name} would exceed ${this.options.maxDocBytes} bytes`,
      );
    }
    // An HTTP writer keeps nothing to re-send: while the store refuses writes,
    // say so now instead of holding the request until the repair succeeds.
    if (origin?.kind === 'http' && persister.failing)
      throw new StateweaveError(
        'STORE_FAILED',
        `storage refuses writes to ${this.name} (disk full or failing); nothing was applied, retry later`,
      );
    const checked = checkUpdate(update);
    const { ends } = checked;
    if (origin?.kind === 'client' || origin?.kind === 'http')
      this.clientIds.claim(ends, {
        known: (client) => Y.getState(this.doc.store, client),
        presenceOwner: (client) => {
          const owner = this.members.ownerOf(client);
          // Until a connection has sent its own state, its edits may still arrive
          // through others (a node that crashed lost them; they re-send them).
          return owner?.sentState ? this.writerKeyOf(owner.connId) : undefined;
        },
        writer:
          origin.kind === 'client'
            ? { connId: origin.connId, key: this.writerKeyOf(origin.connId) }
            : undefined,
        writerPresence: origin.kind === 'client' ? this.members.get(origin.connId)?.ids : undefined,
        claims: kind === 'edit',
      });
    if (origin?.kind === 'client') this.members.of(origin.connId).sentState = true;
    // Last, so that only a write that passed every other check counts as a creation.
    const { newDocs } = this.options;
    if (newDocs && creator !== undefined && ends.size > 0 && this.isEmpty()) {
      newDocs.admit(creator, this.name);
      this.creating = true;
    }
    return checked;
  }

  /** No content stored or applied, and no write admitted that would add some. */
  private isEmpty(): boolean {
    return !this.creating && this.doc.store.clients.size === 0;
  }

  /** The key a connection shares client ids under (Subscriber.writerKey). */
  private writerKeyOf(connId: ConnectionId): string {
    return this.members.get(connId)?.subscriber?.writerKey ?? connectionKey(connId);
  }

  private requirePersister(): Persister {
    if (!this.persister || this.state === 'unloaded') {
      throw new StateweaveError('INTERNAL', `room ${this.name} is ${this.state}`);
    }
    return this.persister;
  }

  /**
   * Peers and backplane channels get every frame at once; client connections get
   * them through the update relay, which coalesces them while the room is past its
   * budget of frames (update-relay.ts). A write that is not a client's (a
   * function's, a peer's) does not wait, and takes what waits with it: a caller
   * sees its function's change before the result.
   */
  private broadcast(update: Uint8Array, frame: Uint8Array, origin: Origin | undefined): void {
    let clients = false;
    for (const { subscriber } of this.members.all()) {
      if (!subscriber) continue;
      if (clientConnIdOf(subscriber) !== undefined) clients = true;
      else if (!origin || !isOriginOf(origin, subscriber)) subscriber.send(frame);
    }
    if (!clients && !this.updates) return;
    this.updates ??= createUpdateRelay({
      subscribers: () => this.members.subscriberCount,
      fanOut: (merged, from) => this.fanOutUpdate(merged, from),
      onMerged: (n) => this.options.metrics.updatesMerged.inc(n),
      ...(this.options.updateFramesPerSecond !== undefined
        ? { framesPerSecond: this.options.updateFramesPerSecond }
        : {}),
    });
    this.updates.send({ update, frame, origin }, origin?.kind !== 'client');
  }

  /** An update frame from the relay, to the client connections. */
  private fanOutUpdate(frame: Uint8Array, origin: Origin | undefined): void {
    let sent = 0;
    for (const { subscriber } of this.members.all()) {
      if (!subscriber || clientConnIdOf(subscriber) === undefined) continue;
      if (origin && isOriginOf(origin, subscriber)) continue;
      subscriber.send(frame);
      sent++;
    }
    if (sent > 0) this.options.metrics.updatesOut.inc(sent);
  }

  private readonly onDocUpdate = (update: Uint8Array, rawOrigin: unknown): void => {
    const origin = isOrigin(rawOrigin) ? rawOrigin : undefined;
    if (origin?.kind === 'storage') return;
    if (this.capturing) {
      this.captured = update;
      return;
    }
    this.options.metrics.updatesInFrom(origin?.kind ?? 'unknown').inc();
    this.options.onChange?.(this.name, origin);
    this.commit(update, origin, [writerOf(origin)])?.catch((err: unknown) => {
      this.options.logger.error(
        { doc: this.name, err },
        'a change applied outside applyUpdate could not be stored',
      );
    });
  };

  /** Fans an applied change out and stores it (unless it was stored first: applyGated). */
  private commit(
    update: Uint8Array,
    origin: Origin | undefined,
    writers: readonly string[],
  ): Promise<void> | undefined {
    // Encoded once; every receiver gets the same bytes.
    const { replicate } = this.options;
    const needed = replicate !== undefined && origin?.kind !== 'peer';
    const listening = this.members.subscriberCount > 0;
    const frame = listening || needed ? updateFrame(update) : undefined;
    if (frame && listening) this.broadcast(update, frame, origin);
    if (frame && needed) {
      // Chained, so `saved` of a change also covers every earlier one.
      const sent = replicate(this.name, frame);
      const before = this.replicated;
      const chained = before ? Promise.all([before, sent]).then(() => undefined) : sent;
      this.replicated = chained;
      // A change that could not be replicated fails the `saved` of those waiting for it
      // (their connections close and resync); later changes start a new chain.
      chained.catch(() => {
        if (this.replicated === chained) this.replicated = undefined;
      });
    }
    if (this.applyingStored) return undefined;
    return this.requirePersister().save(update, writers);
  }

  private readonly onAwarenessUpdate = (
    changes: { added: number[]; updated: number[]; removed: number[] },
    rawOrigin: unknown,
  ): void => {
    const origin = isOrigin(rawOrigin) ? rawOrigin : undefined;
    if (origin?.kind === 'client') {
      if (changes.added.length > 0) {
        const member = this.members.of(origin.connId);
        for (const id of changes.added) this.members.own(member, id);
      }
    }
    // Removed for whatever reason (left, timed out, disconnected): free the id.
    for (const id of changes.removed) this.members.disown(id);
    this.presenceRelay().changed(
      [...changes.added, ...changes.updated, ...changes.removed],
      origin,
    );
  };

  private presenceLimits(): PresenceLimits {
    const { maxPresenceIdsPerConnection, maxPresenceBytes } = this.options;
    return {
      maxIdsPerConnection: maxPresenceIdsPerConnection ?? DEFAULT_MAX_PRESENCE_IDS_PER_CONNECTION,
      maxStateBytes: maxPresenceBytes ?? DEFAULT_MAX_PRESENCE_BYTES,
    };
  }

  private presenceRelay(): PresenceRelay {
    return (this.presence ??= createPresenceRelay({
      tickMs: () => presenceTickMs(this.members.subscriberCount),
      encode: (ids, memo) => encodePresenceFrame(this.awareness, ids, memo),
      fanOut: (frame, frameFor) => this.fanOutPresence(frame, frameFor),
    }));
  }

  private fanOutPresence(frame: Uint8Array, frameFor: FrameFor): void {
    const shared = asBuffer(frame);
    for (const { subscriber } of this.members.all()) {
      if (!subscriber) continue;
      const own = frameFor((origin) => isOriginOf(origin, subscriber), clientConnIdOf(subscriber));
      if (own) subscriber.send(own === frame ? shared : asBuffer(own));
    }
  }
}

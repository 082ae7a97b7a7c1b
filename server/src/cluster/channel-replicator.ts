/**
 * Replication of open documents over a Backplane with document channels
 * (backplane.ts; the Redis and the mesh adapters).
 *
 * - A node that holds a document open subscribes to its channel and publishes
 *   every effective update and presence change made here (one room subscriber
 *   that has every peer's changes already, so nothing that came from a peer is
 *   published again: no echo loops). Messages from the channel enter the room
 *   with origin `{ kind: 'peer', nodeId }` of their sender.
 * - The channel is a hint. What guarantees convergence is the state-vector
 *   exchange over directed messages (channel-codec.ts): a node with *demand*
 *   (a lease other than replication's own) asks each live home of the document
 *   every `antiEntropyMs` (an ask is a sync step 1); the home opens the document
 *   (so it stores everything, and reads the channel while it is asked), answers
 *   step 2 and its own step 1, which the asker answers with step 2. When the
 *   backplane was cut off, or membership changes, the exchange runs at once.
 *   One exchange per pair: asks that cross (both nodes ask at once as a link
 *   comes back) are each answered with step 2 only, since each side's own ask
 *   fetches the other's changes; and an ask answered counts as this node's ask.
 * - Presence from a node belongs to that node: when it goes away, its clients'
 *   presence goes with it.
 * - A home tells the backplane, once per tick while its channel position
 *   moves, how far it has durably stored the channel (after the room's flush),
 *   so the medium can trim what every live home holds. A reader whose position
 *   was trimmed misses those messages; the state-vector exchange repairs that.
 */
import { assertNever } from '../assert-never.js';
import * as Y from 'yjs';
import {
  decodeClientMessage,
  encodeQueryAwareness,
  encodeSyncStep1,
  ProtocolError,
} from '@stateweave/client/protocol';
import { nextConnectionId, type ConnectionId } from '../connection-id.js';
import type { DocName } from '../doc-name.js';
import { toStateweaveError } from '../errors.js';
import type { Hub, RoomLease } from '../hub/hub.js';
import type { Room } from '../hub/room.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import type { Origin } from '../origin.js';
import type { Backplane } from './backplane.js';
import { decodeChannelFrame, encodeChannelFrame } from './channel-codec.js';
import { createDocPresence, type DocPresence } from './channel-presence.js';
import type { Placement } from './placement.js';

export interface ChannelReplicatorOptions {
  readonly selfId: NodeId;
  readonly hub: Hub;
  readonly placement: Placement;
  readonly backplane: Backplane;
  readonly logger: Logger;
  /** How often a node with demand repeats sync step 1 to each home. */
  readonly antiEntropyMs: number;
  /** Demand counts this long after the last non-replication lease went away. */
  readonly demandLingerMs: number;
  /** Messages held per document while it loads; beyond this they are dropped. */
  readonly maxPendingFrames: number;
  /**
   * False with `--ack replicated`: the room's `replicate` hook publishes every
   * change made here (and `saved` waits for it), so this publishes only presence.
   * @default true
   */
  readonly publishUpdates?: boolean;
  /**
   * False on the mesh: a document this node alone is home of is left alone
   * (nodes that need it ask it), so it unloads as on a single node.
   * @default true
   */
  readonly trackSoleHome?: boolean;
}

export interface ChannelReplicator {
  onDirect(from: NodeId, frame: Uint8Array): void;
  onDocMessage(doc: DocName, from: NodeId, message: Uint8Array): void;
  onMemberUp(nodeId: NodeId): void;
  onMemberDown(nodeId: NodeId): void;
  /** The backplane lost messages: exchange state vectors again for every open document. */
  onResync(): void;
  /** The backplane lost messages of `doc` (a trimmed position): exchange its state vectors now. */
  onGap(doc: DocName): void;
  tick(): void;
  /** Documents held open, and homes asked plus peers served among them. */
  stats(): { documents: number; channels: number };
  close(): void;
}

interface Pending {
  readonly from: NodeId;
  readonly message: Uint8Array;
  /** How it came: on the document's channel, or directed (an ask, or any other message). */
  readonly via: 'channel' | 'ask' | 'direct';
}

interface DocState {
  readonly name: DocName;
  readonly subscriberId: ConnectionId;
  lease: RoomLease | undefined;
  lastDemandAt: number;
  pending: Pending[];
  /** Homes this node asks to hold the document → when step 1 was last sent. */
  readonly asked: Map<NodeId, number>;
  /** Nodes asked whose step 2 has not come yet → when the ask left. */
  readonly awaiting: Map<NodeId, number>;
  /** Nodes that asked this one → when they last did. */
  readonly serving: Map<NodeId, number>;
  readonly presence: DocPresence;
  /** The channel position last marked stored, and whether a mark waits for its flush. */
  marked: string | undefined;
  marking: boolean;
}

const fromPeer = (origin: Origin): boolean => origin.kind === 'peer';

/** A gap found within this long of an unanswered ask to a home does not ask it again. */
const GAP_ASK_AFTER_MS = 1000;
export const createChannelReplicator = (options: ChannelReplicatorOptions): ChannelReplicator => {
  const { hub, placement, logger, selfId, backplane } = options;
  const docs = new Map<DocName, DocState>();
  const publishUpdates = options.publishUpdates ?? true;
  const origins = new Map<NodeId, Origin>();
  let closed = false;

  const originOf = (nodeId: NodeId): Origin => {
    let origin = origins.get(nodeId);
    if (!origin) origins.set(nodeId, (origin = Object.freeze({ kind: 'peer', nodeId })));
    return origin;
  };

  const sendDoc = (peer: NodeId, doc: DocName, message: Uint8Array): void => {
    backplane.send(peer, encodeChannelFrame({ type: 'message', doc, message }));
  };

  /** Sync step 1, as an ask (answer me with your step 1 too) or as an answer. */
  const sendStep1 = (state: DocState, peer: NodeId, room: Room, ask: boolean): void => {
    const message = encodeSyncStep1(Y.encodeStateVector(room.doc));
    const sent = backplane.send(
      peer,
      encodeChannelFrame({ type: ask ? 'ask' : 'message', doc: state.name, message }),
    );
    if (ask && sent) state.awaiting.set(peer, Date.now());
  };

  /** This node's ask to `peer` is on its way: its answer will carry what `peer` has. */
  const awaits = (state: DocState, peer: NodeId, now: number): boolean =>
    now - (state.awaiting.get(peer) ?? -Infinity) < options.antiEntropyMs;

  const hasDemand = (state: DocState, now: number): boolean => {
    if (state.lease && hub.inUse(state.name)) state.lastDemandAt = now;
    return now - state.lastDemandAt < options.demandLingerMs;
  };

  /** Removes the presence `peer` delivered (all peers' when undefined). */
  const dropPresence = (state: DocState, peer: NodeId | undefined): void =>
    state.presence.drop(state.lease?.room, peer, originOf(peer ?? selfId));

  const release = (state: DocState): void => {
    docs.delete(state.name);
    dropPresence(state, undefined);
    state.lease?.room.unsubscribe(state.subscriberId);
    if (state.lease) backplane.unsubscribe(state.name);
    state.lease?.release();
    state.lease = undefined;
  };

  const reconcile = (state: DocState): void => {
    const room = state.lease?.room;
    if (!room || closed) return;
    const now = Date.now();
    const demand = hasDemand(state, now);
    const homes = placement
      .homesFor(state.name)
      .filter((id) => id !== selfId && backplane.isLive(id));
    if (demand) {
      for (const home of homes) {
        if (now - (state.asked.get(home) ?? -Infinity) < options.antiEntropyMs) continue;
        state.asked.set(home, now);
        sendStep1(state, home, room, true);
      }
    }
    for (const peer of [...state.asked.keys()]) {
      if (demand && homes.includes(peer)) continue;
      state.asked.delete(peer);
      if (backplane.isLive(peer))
        backplane.send(peer, encodeChannelFrame({ type: 'leave', doc: state.name }));
    }
    for (const [peer, heardAt] of state.serving)
      if (now - heardAt > 3 * options.antiEntropyMs || !backplane.isLive(peer))
        state.serving.delete(peer);
    if (!demand && state.serving.size === 0) release(state);
  };

  const applyFrom = (state: DocState, room: Room, from: NodeId, update: Uint8Array): void => {
    room.applyUpdate(update, originOf(from)).catch((err: unknown) => {
      logger.error(
        { doc: state.name, peer: from, code: toStateweaveError(err).code },
        'replicated update not stored',
      );
    });
  };

  /** As a home: once what was read of the channel is durable, lets the medium trim it. */
  const markStored = (state: DocState): void => {
    const room = state.lease?.room;
    const position = backplane.channelPosition?.(state.name);
    if (!room || state.marking || position === undefined || position === state.marked) return;
    if (!placement.isHome(state.name)) return;
    state.marking = true;
    room.flush().then(
      (durable) => {
        state.marking = false;
        if (!durable || closed || docs.get(state.name) !== state) return;
        state.marked = position;
        backplane.markStored?.(state.name, position, placement.homesFor(state.name));
      },
      () => (state.marking = false),
    );
  };

  /** The states of this node's own clients (not those relayed from peers). */
  const publishOwnPresence = (state: DocState, room: Room): void => {
    const own = state.presence.ownStates(room);
    if (own) backplane.publish(state.name, own);
  };

  const handle = (state: DocState, { from, message: raw, via }: Pending): void => {
    const direct = via !== 'channel';
    const room = state.lease?.room;
    if (!room) return;
    try {
      const message = decodeClientMessage(raw);
      switch (message.type) {
        case 'sync-step-1': {
          if (!direct) return;
          sendDoc(from, state.name, room.syncStep2For(message.stateVector));
          if (via !== 'ask') return;
          // Hold the document for the sender, and get what it has that we lack: unless our
          // own ask to it crossed this one (its answer brings that), by answering with step 1.
          const now = Date.now();
          state.serving.set(from, now);
          if (!awaits(state, from, now)) sendStep1(state, from, room, false);
          // Either way this exchange is also ours with it: no ask of our own this round.
          if (hasDemand(state, now) && placement.homesFor(state.name).includes(from))
            state.asked.set(from, now);
          return;
        }
        case 'sync-step-2':
          if (direct) state.awaiting.delete(from);
          applyFrom(state, room, from, message.update);
          return;
        case 'update':
          applyFrom(state, room, from, message.update);
          return;
        case 'awareness': {
          // A channel retains presence of nodes long gone: only live nodes' counts.
          if (direct || !backplane.isLive(from)) return;
          state.presence.apply(room, from, message.update, originOf(from));
          return;
        }
        case 'query-awareness':
          if (!direct) publishOwnPresence(state, room);
          return;
        case 'hello':
        case 'token':
        case 'invoke':
          return; // client-only messages: meaningless between nodes
        default:
          return assertNever(message, 'client message');
      }
    } catch (err) {
      const code = err instanceof ProtocolError ? 'INVALID_FRAME' : toStateweaveError(err).code;
      logger.warn(
        { doc: state.name, peer: from, code, reason: (err as Error).message },
        'peer message refused',
      );
    }
  };

  const track = (name: DocName, demand: boolean): DocState => {
    const state: DocState = {
      name,
      subscriberId: nextConnectionId(), // a room key, from the connections' one counter
      lease: undefined,
      lastDemandAt: demand ? Date.now() : -Infinity,
      pending: [],
      asked: new Map(),
      awaiting: new Map(),
      serving: new Map(),
      presence: createDocPresence(),
      marked: undefined,
      marking: false,
    };
    docs.set(name, state);
    hub.open(name, 'replica').then(
      (lease) => {
        if (closed || docs.get(name) !== state) return lease.release();
        const { room } = lease;
        try {
          room.subscribe({
            connId: state.subscriberId,
            hasChangesOf: fromPeer,
            send: (frame) => {
              // A sync message (first byte 0) is an update: published here unless the hook does.
              if (publishUpdates || frame[0] !== 0) backplane.publish(name, frame);
            },
          });
        } catch (err) {
          docs.delete(name);
          lease.release();
          logger.warn(
            { doc: name, code: toStateweaveError(err).code },
            'cannot replicate document',
          );
          return;
        }
        state.lease = lease;
        backplane.subscribe(name);
        // Ask the nodes that have it open for their clients' presence.
        backplane.publish(name, encodeQueryAwareness());
        const held = state.pending;
        state.pending = [];
        for (const pending of held) handle(state, pending);
        reconcile(state);
      },
      (err: unknown) => {
        if (docs.get(name) === state) docs.delete(name);
        logger.warn(
          { doc: name, code: toStateweaveError(err).code },
          'replication could not open document',
        );
      },
    );
    return state;
  };

  const deliver = (state: DocState, pending: Pending): void => {
    if (state.lease) return handle(state, pending);
    if (state.pending.length < options.maxPendingFrames) state.pending.push(pending);
    else logger.warn({ doc: state.name }, 'dropping a message while the document loads');
  };

  /** Someone on this node took a lease on `name` (hub.onUse): sync it through the backplane. */
  const onUse = (name: DocName): void => {
    if (closed) return;
    const state = docs.get(name);
    // Even a document this node alone is home of is tracked (unless told not
    // to): other nodes may have it open and publish on its channel.
    if (!state) {
      const alone = placement.homesFor(name).every((id) => id === selfId);
      if (alone && options.trackSoleHome === false) return;
      return void track(name, true);
    }
    state.lastDemandAt = Date.now();
    // Deferred: the hub calls this from inside open(), before the caller has its lease.
    queueMicrotask(() => reconcile(state));
  };
  const stopWatching = hub.onUse(onUse);
  /** `name` was deleted (hub.onRemoved): its room is gone, so is this node's hold on it. */
  const stopRemovals = hub.onRemoved((name) => {
    const state = docs.get(name);
    if (!state) return;
    for (const peer of state.asked.keys())
      if (backplane.isLive(peer))
        backplane.send(peer, encodeChannelFrame({ type: 'leave', doc: name }));
    release(state);
  });

  return {
    onDirect(from, frame) {
      if (closed) return;
      let parsed;
      try {
        parsed = decodeChannelFrame(frame); // checks the name too
      } catch (err) {
        logger.warn({ peer: from, reason: (err as Error).message }, 'peer frame refused');
        return;
      }
      const state = docs.get(parsed.doc);
      if (parsed.type === 'leave') {
        if (state?.serving.delete(from)) reconcile(state);
        return;
      }
      // A home opens (and so stores) whatever it is sent; another node only when asked.
      if (!state && !placement.isHome(parsed.doc) && parsed.type !== 'ask') return;
      deliver(state ?? track(parsed.doc, false), {
        from,
        message: parsed.message,
        via: parsed.type === 'ask' ? 'ask' : 'direct',
      });
    },

    onDocMessage(doc, from, message) {
      const state = docs.get(doc);
      if (!closed && state) deliver(state, { from, message, via: 'channel' });
    },

    onMemberUp() {
      for (const state of [...docs.values()]) reconcile(state);
    },

    onMemberDown(nodeId) {
      for (const state of [...docs.values()]) {
        state.asked.delete(nodeId);
        state.awaiting.delete(nodeId);
        state.serving.delete(nodeId);
        state.pending = state.pending.filter((p) => p.from !== nodeId);
        state.marked = undefined; // a home fewer may let the medium trim more: mark again
        dropPresence(state, nodeId);
        reconcile(state);
      }
    },

    onResync() {
      for (const state of [...docs.values()]) {
        state.asked.clear(); // ask every home again now
        state.awaiting.clear(); // asks sent while cut off may be lost
        state.marked = undefined; // a mark sent while cut off was lost: mark again
        reconcile(state);
        const room = state.lease?.room;
        if (room) publishOwnPresence(state, room);
      }
    },

    onGap(doc) {
      const state = docs.get(doc);
      const room = state?.lease?.room;
      if (closed || !state || !room) return;
      // Asked as with demand, also by a home that only serves: it lacks what was trimmed too.
      const now = Date.now();
      const demand = hasDemand(state, now);
      for (const home of placement.homesFor(doc)) {
        if (home === selfId || !backplane.isLive(home)) continue;
        // An ask that left just now (e.g. on Redis's return, which also finds the gap) and
        // is unanswered will bring what was trimmed: a second one would double the exchange.
        const askedAt = state.awaiting.get(home);
        if (askedAt !== undefined && now - askedAt < GAP_ASK_AFTER_MS) continue;
        if (demand) state.asked.set(home, now);
        sendStep1(state, home, room, true);
      }
    },

    tick() {
      for (const state of [...docs.values()]) {
        reconcile(state);
        markStored(state);
      }
    },

    stats() {
      let channels = 0;
      for (const state of docs.values()) channels += state.asked.size + state.serving.size;
      return { documents: docs.size, channels };
    },

    close() {
      closed = true;
      stopWatching();
      stopRemovals();
      for (const state of [...docs.values()]) release(state);
    },
  };
};

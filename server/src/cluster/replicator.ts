/**
 * Replication of open documents over peer links, with the Yjs sync protocol.
 *
 * A *channel* is one document on one link. A node that has *demand* for a
 * document (a lease other than replication's own: a client, an HTTP request, a
 * function) opens a channel to each reachable home node: it subscribes the link
 * to the room and sends sync step 1 (its state vector). The receiving side opens
 * the document (holding a lease, so a home always loads and stores what it is
 * sent), answers step 2 (only what the sender lacks) and its own step 1. From
 * then on the room's updates and awareness flow both ways as ordinary frames;
 * an update from a peer enters with origin `{ kind: 'peer', nodeId }` and the
 * room never sends it back to that peer.
 *
 * Channels are soft state: the initiating side repeats step 1 every
 * `antiEntropyMs` (which also repairs anything lost), a channel nobody renews
 * expires, and a link going down closes its channels (and removes the presence
 * that came over them). After a reconnect the state-vector exchange sends only
 * what each side missed. Replication holds one lease per document and releases
 * it once there is neither demand nor a channel, so rooms still unload when idle.
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import {
  decodeAwarenessUpdate,
  decodeClientMessage,
  encodeSyncStep1,
  ProtocolError,
} from '@stateweave/client/protocol';
import { validateDocName } from '../doc-name.js';
import { toStateweaveError } from '../errors.js';
import type { Hub, RoomLease } from '../hub/hub.js';
import type { Room } from '../hub/room.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import type { Origin } from '../origin.js';
import { decodePeerFrame, encodePeerDoc, encodePeerLeave } from './peer-codec.js';
import type { Placement } from './placement.js';

export interface ReplicatorOptions {
  readonly selfId: NodeId;
  readonly hub: Hub;
  readonly placement: Placement;
  readonly logger: Logger;
  readonly send: (nodeId: NodeId, frame: Uint8Array) => boolean;
  readonly isConnected: (nodeId: NodeId) => boolean;
  /** How often an initiating node repeats sync step 1 on each channel. */
  readonly antiEntropyMs: number;
  /** Demand counts this long after the last non-replication lease went away, so a brief read still syncs once. */
  readonly demandLingerMs: number;
  /** Frames held per document while it loads; beyond this they are dropped (the next step 1 repairs). */
  readonly maxPendingFrames: number;
}

export interface Replicator {
  onFrame(nodeId: NodeId, frame: Uint8Array): void;
  onLinkUp(nodeId: NodeId): void;
  onLinkDown(nodeId: NodeId): void;
  /** Re-evaluates every document (demand, homes, expiry, anti-entropy). */
  tick(): void;
  /** Documents with at least one open channel, and channel count. */
  stats(): { documents: number; channels: number };
  close(): void;
}

interface Channel {
  readonly peer: NodeId;
  readonly subscriberId: number;
  readonly origin: Origin;
  /** True while this side wants the channel (it has demand and the peer is a home). */
  initiated: boolean;
  lastHeardAt: number;
  lastStep1At: number;
}

interface DocState {
  readonly name: string;
  lease: RoomLease | undefined;
  /** When a lease other than ours was last seen: a brief read (HTTP GET) still gets one full sync. */
  lastDemandAt: number;
  pending: Array<{ peer: NodeId; message: Uint8Array }>;
  readonly channels: Map<NodeId, Channel>;
  /**
   * Awareness client id → the peer whose message last changed its state. Only the
   * peer that delivered a change owns it: copies relayed by other peers arrive
   * with a clock already seen and change nothing, so they cannot keep the
   * presence of a dead node's clients alive.
   */
  readonly presence: Map<number, NodeId>;
}

/** A sync step 1 message starts with the bytes 0 (sync) 0 (step 1). */
const isSyncStep1 = (message: Uint8Array): boolean => message[0] === 0 && message[1] === 0;

/** Negative, so they never collide with client connection ids. */
let nextSubscriberId = -1;

export const createReplicator = (options: ReplicatorOptions): Replicator => {
  const { hub, placement, logger, selfId } = options;
  const docs = new Map<string, DocState>();
  let closed = false;

  const sendDoc = (peer: NodeId, doc: string, message: Uint8Array): void => {
    options.send(peer, encodePeerDoc(doc, message));
  };

  const hasDemand = (state: DocState, now: number): boolean => {
    if (state.lease && hub.inUse(state.name)) state.lastDemandAt = now;
    return now - state.lastDemandAt < options.demandLingerMs;
  };

  const sendStep1 = (state: DocState, channel: Channel, room: Room): void => {
    channel.lastStep1At = Date.now();
    sendDoc(channel.peer, state.name, encodeSyncStep1(Y.encodeStateVector(room.doc)));
  };

  const openChannel = (
    state: DocState,
    room: Room,
    peer: NodeId,
    initiated: boolean,
  ): Channel | undefined => {
    const origin: Origin = Object.freeze({ kind: 'peer', nodeId: peer });
    const channel: Channel = {
      peer,
      subscriberId: nextSubscriberId--,
      origin,
      initiated,
      lastHeardAt: Date.now(),
      lastStep1At: 0,
    };
    try {
      room.subscribe({
        connId: channel.subscriberId,
        origin,
        send: (frame) => sendDoc(peer, state.name, frame),
      });
    } catch (err) {
      logger.warn(
        { doc: state.name, peer, code: toStateweaveError(err).code },
        'cannot replicate document to peer',
      );
      return undefined;
    }
    state.channels.set(peer, channel);
    sendStep1(state, channel, room);
    const states = room.encodeAwarenessStates();
    if (states) sendDoc(peer, state.name, states);
    return channel;
  };

  const closeChannel = (state: DocState, channel: Channel, room: Room | undefined): void => {
    state.channels.delete(channel.peer);
    if (!room) return;
    room.unsubscribe(channel.subscriberId);
    // The presence this peer delivered leaves with it.
    const gone: number[] = [];
    for (const [clientId, owner] of state.presence) {
      if (owner !== channel.peer) continue;
      state.presence.delete(clientId);
      gone.push(clientId);
    }
    const live = gone.filter((id) => room.awareness.getStates().has(id));
    if (live.length > 0)
      awarenessProtocol.removeAwarenessStates(room.awareness, live, channel.origin);
  };

  const release = (state: DocState): void => {
    docs.delete(state.name);
    state.lease?.release();
    state.lease = undefined;
  };

  const reconcile = (state: DocState): void => {
    const lease = state.lease;
    if (!lease || closed) return;
    const { room } = lease;
    const now = Date.now();
    const homes = placement.homesFor(state.name).filter((id) => id !== selfId);
    // Serving an edge (a non-home peer) counts as demand too, so a home relays an
    // edge's writes to the other homes even when the edge reaches only some of them.
    // Only non-home peers count: two homes serving each other must not keep each
    // other's document open forever.
    const servesEdge = [...state.channels.values()].some(
      (c) => !c.initiated && !homes.includes(c.peer),
    );
    const demand = hasDemand(state, now) || servesEdge;
    if (demand) {
      for (const home of homes) {
        if (!options.isConnected(home)) continue;
        const channel = state.channels.get(home);
        if (!channel) openChannel(state, room, home, true);
        else channel.initiated = true;
      }
    }
    for (const channel of [...state.channels.values()]) {
      if (channel.initiated && (!demand || !homes.includes(channel.peer))) {
        channel.initiated = false;
        options.send(channel.peer, encodePeerLeave(state.name));
        closeChannel(state, channel, room);
      } else if (!channel.initiated && now - channel.lastHeardAt > 3 * options.antiEntropyMs) {
        closeChannel(state, channel, room); // the peer stopped renewing: it no longer needs the document
      } else if (channel.initiated && now - channel.lastStep1At >= options.antiEntropyMs) {
        sendStep1(state, channel, room);
      }
    }
    if (!demand && state.channels.size === 0) release(state);
  };

  /** Starts tracking a document: replication takes its own lease on it. */
  const track = (name: string, demand: boolean): DocState => {
    const state: DocState = {
      name,
      lease: undefined,
      lastDemandAt: demand ? Date.now() : -Infinity,
      pending: [],
      channels: new Map(),
      presence: new Map(),
    };
    docs.set(name, state);
    hub.open(name, 'replica').then(
      (lease) => {
        if (closed || docs.get(name) !== state) return lease.release();
        state.lease = lease;
        const held = state.pending;
        state.pending = [];
        for (const { peer, message } of held) handleDocMessage(state, peer, message);
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

  const handleAwareness = (
    state: DocState,
    room: Room,
    peer: NodeId,
    update: Uint8Array,
    origin: Origin,
  ): void => {
    const entries = decodeAwarenessUpdate(update);
    const clocks = entries.map(({ clientId }) => room.awareness.meta.get(clientId)?.clock);
    room.applyAwareness(update, origin);
    entries.forEach(({ clientId }, i) => {
      if (!room.awareness.getStates().has(clientId)) state.presence.delete(clientId);
      else if (room.awareness.meta.get(clientId)?.clock !== clocks[i])
        state.presence.set(clientId, peer);
    });
  };

  const handleDocMessage = (state: DocState, peer: NodeId, raw: Uint8Array): void => {
    const room = state.lease?.room;
    if (!room) return;
    let channel = state.channels.get(peer);
    if (!channel) {
      if (!options.isConnected(peer)) return; // arrived as the link went down
      channel = openChannel(state, room, peer, false);
      if (!channel) return;
    }
    channel.lastHeardAt = Date.now();
    try {
      const message = decodeClientMessage(raw);
      switch (message.type) {
        case 'sync-step-1':
          // A node that has nothing of the document yet gets the room's cached whole state.
          sendDoc(peer, state.name, room.syncStep2For(message.stateVector));
          return;
        case 'sync-step-2':
        case 'update':
          room.applyUpdate(message.update, channel.origin).catch((err: unknown) => {
            logger.error(
              { doc: state.name, peer, code: toStateweaveError(err).code },
              'replicated update not stored',
            );
          });
          return;
        case 'awareness':
          handleAwareness(state, room, peer, message.update, channel.origin);
          return;
        case 'query-awareness': {
          const states = room.encodeAwarenessStates();
          if (states) sendDoc(peer, state.name, states);
          return;
        }
        case 'hello':
        case 'token':
        case 'invoke':
          return; // client-only messages: meaningless between nodes
      }
    } catch (err) {
      const code = err instanceof ProtocolError ? 'INVALID_FRAME' : toStateweaveError(err).code;
      logger.warn(
        { doc: state.name, peer, code, reason: (err as Error).message },
        'peer message refused',
      );
    }
  };

  /** Someone on this node took a lease on `name` (hub.onUse): sync it with its homes. */
  const onUse = (name: string): void => {
    if (closed) return;
    const state = docs.get(name);
    if (!state) {
      // Nothing to sync with (a standalone node, or the only home): stay out of
      // the way, so the document unloads exactly as it would without a cluster.
      if (placement.homesFor(name).every((id) => id === selfId)) return;
      return void track(name, true);
    }
    state.lastDemandAt = Date.now();
    // Deferred: the hub calls this from inside open(), before the caller has its lease.
    queueMicrotask(() => reconcile(state));
  };
  const stopWatching = hub.onUse(onUse);

  return {
    onFrame(peer, frame) {
      if (closed) return;
      let parsed;
      try {
        parsed = decodePeerFrame(frame);
        validateDocName(parsed.doc);
      } catch (err) {
        logger.warn({ peer, reason: (err as Error).message }, 'peer frame refused');
        return;
      }
      const state = docs.get(parsed.doc);
      if (parsed.type === 'leave') {
        const channel = state?.channels.get(peer);
        if (state && channel) {
          closeChannel(state, channel, state.lease?.room);
          reconcile(state);
        }
        return;
      }
      // A home opens (and so stores) whatever it is sent. Another node opens a
      // document only when asked to sync it (step 1); stray frames for a document
      // it has just let go of are dropped instead of reloading it.
      if (!state && !placement.isHome(parsed.doc) && !isSyncStep1(parsed.message)) return;
      const target = state ?? track(parsed.doc, false);
      if (target.lease) return handleDocMessage(target, peer, parsed.message);
      if (target.pending.length < options.maxPendingFrames)
        target.pending.push({ peer, message: parsed.message });
      else
        logger.warn(
          { doc: parsed.doc, peer },
          'dropping peer frame while the document loads; anti-entropy will repair',
        );
    },

    onLinkUp() {
      for (const state of docs.values()) reconcile(state);
    },

    onLinkDown(peer) {
      for (const state of [...docs.values()]) {
        const channel = state.channels.get(peer);
        if (channel) closeChannel(state, channel, state.lease?.room);
        state.pending = state.pending.filter((p) => p.peer !== peer);
        reconcile(state);
      }
    },

    tick() {
      for (const state of [...docs.values()]) reconcile(state);
    },

    stats() {
      let channels = 0;
      for (const state of docs.values()) channels += state.channels.size;
      return { documents: docs.size, channels };
    },

    close() {
      closed = true;
      stopWatching();
      for (const state of [...docs.values()]) {
        for (const channel of [...state.channels.values()])
          closeChannel(state, channel, state.lease?.room);
        release(state);
      }
    },
  };
};

/**
 * Presence of one document on a backplane: which node delivered each awareness
 * state, so that a node's clients leave with it, and which states are this
 * node's own (the ones it answers a query with). Copies relayed by others
 * carry a clock already seen and change nothing, so only the node that
 * delivered a change owns it.
 */
import * as awarenessProtocol from 'y-protocols/awareness';
import { decodeAwarenessUpdate, encodeAwareness } from '@stateweave/client/protocol';
import type { Room } from '../hub/room.js';
import type { Origin } from '../origin.js';
import type { NodeId } from '../node-id.js';

export interface DocPresence {
  /** Applies an awareness update `from` sent, and notes the states it changed as that node's. */
  apply(room: Room, from: NodeId, update: Uint8Array, origin: Origin): void;
  /** Removes the states `peer` delivered (every peer's when undefined), with `origin`. */
  drop(room: Room | undefined, peer: NodeId | undefined, origin: Origin): void;
  /** An awareness message with this node's own clients' states, or undefined when there are none. */
  ownStates(room: Room): Uint8Array | undefined;
}

export const createDocPresence = (): DocPresence => {
  /** Awareness client id → the node whose message last changed its state. */
  const owners = new Map<number, NodeId>();
  return {
    apply(room, from, update, origin) {
      const entries = decodeAwarenessUpdate(update);
      const clocks = entries.map(({ clientId }) => room.awareness.meta.get(clientId)?.clock);
      room.applyAwareness(update, origin);
      entries.forEach(({ clientId }, i) => {
        if (!room.awareness.getStates().has(clientId)) owners.delete(clientId);
        else if (room.awareness.meta.get(clientId)?.clock !== clocks[i]) owners.set(clientId, from);
      });
    },
    drop(room, peer, origin) {
      const gone: number[] = [];
      for (const [clientId, owner] of owners) {
        if (peer !== undefined && owner !== peer) continue;
        owners.delete(clientId);
        if (room?.awareness.getStates().has(clientId)) gone.push(clientId);
      }
      if (room && gone.length > 0)
        awarenessProtocol.removeAwarenessStates(room.awareness, gone, origin);
    },
    ownStates(room) {
      const own = [...room.awareness.getStates().keys()].filter((id) => !owners.has(id));
      if (own.length === 0) return undefined;
      return encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(room.awareness, own));
    },
  };
};

/**
 * The room's one record per connection (hub/members.ts): presence ids belong to
 * the connection that announced them, whether the room finds their owner by a
 * scan (a few connections) or by its index (more than eight), and leave with it.
 */
import { roomOptions } from './helpers/room.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { createMemoryStore } from '../src/storage/memory-store.js';
import { Room } from '../src/hub/room.js';
import type { ConnectionId } from '../src/connection-id.js';
import { docName } from './helpers/doc-name.js';
import type { Origin } from '../src/origin.js';

/** An awareness update that sets `id`'s state to `state` at `clock`. */
const presence = (id: number, clock: number, state: Record<string, unknown>): Uint8Array => {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc());
  awareness.destroy(); // its renewal timer; the encoder only reads the maps below
  awareness.states.set(id, state);
  awareness.meta.set(id, { clock, lastUpdated: Date.now() });
  return awarenessProtocol.encodeAwarenessUpdate(awareness, [id]);
};

const client = (connId: number): Origin => ({ kind: 'client', connId: connId as ConnectionId });

for (const connections of [3, 12]) {
  describe(`room members, ${connections} connections`, () => {
    it('keeps each presence id with the connection that announced it, until it leaves', async (t) => {
      const store = await createMemoryStore();
      const room = new Room(docName(`members-${connections}`), {
        ...roomOptions(store),
        maxConnectionsPerDoc: 100,
      });
      await room.load();
      t.after(async () => {
        room.destroy();
        await store.close();
      });
      const received = new Map<number, number>();
      for (let connId = 1; connId <= connections; connId++) {
        received.set(connId, 0);
        room.subscribe({
          connId: connId as ConnectionId,
          send: () => received.set(connId, received.get(connId)! + 1),
        });
      }
      // Connection c speaks for ids 1000c and 1000c + 1.
      for (let connId = 1; connId <= connections; connId++) {
        room.applyAwareness(presence(1000 * connId, 1, { user: connId }), client(connId));
        room.applyAwareness(presence(1000 * connId + 1, 1, { user: connId }), client(connId));
      }
      assert.equal(room.localPresenceCount, 2 * connections);
      assert.equal(room.subscriberCount, connections);

      // Connection 2 cannot change or remove connection 1's state.
      const { own } = room.applyAwareness(presence(1000, 2, { user: 'forged' }), client(2));
      assert.equal(own, 0, "another connection's id is not the sender's");
      assert.deepEqual(room.awareness.getStates().get(1000), { user: 1 });

      // Connection 1 leaves: its two states go, everyone else's stay.
      room.unsubscribe(1 as ConnectionId);
      assert.equal(room.subscriberCount, connections - 1);
      assert.equal(room.localPresenceCount, 2 * (connections - 1));
      assert.ok(!room.awareness.getStates().has(1000));
      assert.ok(!room.awareness.getStates().has(1001));
      for (let connId = 2; connId <= connections; connId++)
        assert.deepEqual(room.awareness.getStates().get(1000 * connId), { user: connId });

      // A third id of the last connection leaves with its other two.
      room.applyAwareness(presence(500, 1, { user: 'third' }), client(connections));
      assert.equal(room.localPresenceCount, 2 * (connections - 1) + 1);
      room.unsubscribe(connections as ConnectionId);
      assert.ok(!room.awareness.getStates().has(500), 'it left with its owner');
      assert.equal(room.localPresenceCount, 2 * (connections - 2));

      // A removal by the owner (state null) frees the id as well.
      const removal = new awarenessProtocol.Awareness(new Y.Doc());
      removal.destroy();
      removal.meta.set(2000, { clock: 2, lastUpdated: Date.now() });
      room.applyAwareness(awarenessProtocol.encodeAwarenessUpdate(removal, [2000]), client(2));
      assert.ok(!room.awareness.getStates().has(2000));
      assert.equal(room.localPresenceCount, 2 * (connections - 2) - 1);
      await room.flush();
    });
  });
}

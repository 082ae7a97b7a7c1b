/**
 * Presence timeouts of every room on one shared timer (hub/presence-expiry.ts)
 * instead of one interval per y-protocols Awareness: a client that vanished
 * without a goodbye still leaves everyone's list after 30 s, with origin 'timeout',
 * and the Awareness's own interval is gone.
 */
import { docName } from './helpers/doc-name.js';
import { roomOptions } from './helpers/room.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { createMemoryStore } from '../src/storage/memory-store.js';
import { Room } from '../src/hub/room.js';
import { nextConnectionId } from '../src/connection-id.js';
import { waitFor } from './helpers/wait.js';

/** A client's awareness update with one state. */
const presenceOf = (state: Record<string, unknown>): { id: number; update: Uint8Array } => {
  const client = new awarenessProtocol.Awareness(new Y.Doc());
  client.setLocalState(state);
  const update = awarenessProtocol.encodeAwarenessUpdate(client, [client.clientID]);
  const id = client.clientID;
  client.destroy();
  return { id, update };
};

describe('presence expiry', () => {
  it('removes a state not renewed for 30 s, on the shared timer, with origin timeout', async (t) => {
    const store = await createMemoryStore();
    const room = new Room(docName('expiry'), roomOptions(store));
    t.after(() => room.destroy());
    await room.load();
    const { awareness } = room;
    assert.equal(awareness._checkInterval, undefined, "the Awareness's own interval is stopped");

    const gone = presenceOf({ user: 'gone' });
    const here = presenceOf({ user: 'here' });
    room.applyAwareness(gone.update, { kind: 'client', connId: nextConnectionId() });
    room.applyAwareness(here.update, { kind: 'client', connId: nextConnectionId() });
    const removed: Array<{ ids: number[]; origin: unknown }> = [];
    awareness.on('update', ({ removed: ids }: { removed: number[] }, origin: unknown) => {
      if (ids.length > 0) removed.push({ ids, origin });
    });
    // As if the first client's last renewal was 31 s ago (waiting 30 s is not a unit test).
    awareness.meta.get(gone.id)!.lastUpdated = Date.now() - 31_000;
    await waitFor(() => !awareness.states.has(gone.id), 'the outdated state to be removed', 10_000);
    assert.deepEqual(removed, [{ ids: [gone.id], origin: 'timeout' }]);
    assert.ok(awareness.states.has(here.id), 'a renewed state stays');
  });
});

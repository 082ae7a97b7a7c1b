/**
 * An update that integrates whole is acted on as received (hub/room.ts
 * applyWhole, update-guard.ts integratesWhole): Yjs is not asked to re-encode
 * it, and receivers and the store get the writer's own bytes. Anything else —
 * a re-send overlapping the document, an update waiting for content it does not
 * carry, several updates in one turn — still goes out as Yjs's encoding of the
 * change. Either way every receiver ends with the room's document.
 * Update frames are written without a lib0 encoder (hub/update-frame.ts), byte
 * for byte as the protocol module writes them.
 */
import { docName } from './helpers/doc-name.js';
import { roomOptions } from './helpers/room.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import { encodeUpdate, MessageType, SyncType } from '@stateweave/client/protocol';
import { Room } from '../src/hub/room.js';
import { checkUpdate, integratesWhole } from '../src/hub/update-guard.js';
import { updateFrame } from '../src/hub/update-frame.js';
import { createMemoryStore } from '../src/storage/memory-store.js';
import { nextConnectionId } from '../src/connection-id.js';

/** The update carried by a room's update frame; undefined for other frames (presence). */
const updateOf = (frame: Uint8Array): Uint8Array | undefined => {
  const d = decoding.createDecoder(frame);
  if (decoding.readVarUint(d) !== MessageType.Sync) return undefined;
  assert.equal(decoding.readVarUint(d), SyncType.Update);
  return decoding.readVarUint8Array(d);
};

/** The update `doc` produces for `edit`. */
const updateFrom = (doc: Y.Doc, edit: () => void): Uint8Array => {
  let out: Uint8Array | undefined;
  const listener = (update: Uint8Array): void => {
    out = update;
  };
  doc.on('update', listener);
  doc.transact(edit);
  doc.off('update', listener);
  assert.ok(out);
  return out;
};

const known = (doc: Y.Doc) => (client: number) => Y.getState(doc.store, client);

describe('updates that integrate whole', () => {
  it('integratesWhole: true only for content that follows the document and depends on nothing missing', () => {
    const doc = new Y.Doc();
    const author = new Y.Doc();
    const first = updateFrom(author, () => author.getText('t').insert(0, 'ab'));
    assert.equal(integratesWhole(checkUpdate(first), known(doc)), true);
    Y.applyUpdate(doc, first);
    // A re-send of what the document holds starts before its end.
    assert.equal(integratesWhole(checkUpdate(first), known(doc)), false);
    const second = updateFrom(author, () => author.getText('t').insert(2, 'c'));
    const third = updateFrom(author, () => author.getText('t').insert(3, 'd'));
    // Skips the second: its clocks start past the document's.
    assert.equal(integratesWhole(checkUpdate(third), known(doc)), false);
    assert.equal(integratesWhole(checkUpdate(second), known(doc)), true);
    // Another client inserting next to content the document lacks.
    const other = new Y.Doc();
    Y.applyUpdate(other, Y.encodeStateAsUpdate(author));
    const dependent = updateFrom(other, () => other.getText('t').insert(4, 'e'));
    assert.equal(integratesWhole(checkUpdate(dependent), known(doc)), false);
    // A deletion of content the document lacks.
    const deletion = updateFrom(other, () => other.getText('t').delete(3, 1));
    assert.equal(integratesWhole(checkUpdate(deletion), known(doc)), false);
    Y.applyUpdate(doc, second);
    Y.applyUpdate(doc, third);
    assert.equal(integratesWhole(checkUpdate(deletion), known(doc)), true);
    // Two updates of one client merged with a gap between them.
    const gap = Y.mergeUpdates([first, third]);
    assert.equal(checkUpdate(gap).gaps, true);
  });

  it('a room sends and stores a whole update as received, and Yjs encodings otherwise; receivers converge', async () => {
    const store = await createMemoryStore();
    const name = docName('whole');
    const room = new Room(name, roomOptions(store));
    await room.load();
    const received: Uint8Array[] = [];
    const reader = new Y.Doc();
    room.subscribe({
      connId: nextConnectionId(),
      send: (frame) => {
        const update = updateOf(frame);
        if (!update) return;
        received.push(update);
        Y.applyUpdate(reader, update);
      },
    });
    const writer = nextConnectionId();
    room.subscribe({ connId: writer, send: () => undefined });
    const origin = { kind: 'client', connId: writer } as const;
    const author = new Y.Doc();

    const edit = updateFrom(author, () => author.getMap('m').set('k', 1));
    await room.applyUpdate(edit, origin);
    assert.deepEqual(received.at(-1), edit, 'a whole update goes out as received');

    // Overlapping re-send carrying one new edit: Yjs's encoding of only what is new.
    const newer = updateFrom(author, () => author.getMap('m').set('k', 2));
    const resend = Y.encodeStateAsUpdate(author);
    const before = received.length;
    await room.applyUpdate(resend, origin);
    assert.equal(received.length, before + 1);
    assert.notDeepEqual(received.at(-1), resend);
    assert.deepEqual(
      Y.decodeUpdate(received.at(-1)!).structs.map((s) => s.id),
      Y.decodeUpdate(newer).structs.map((s) => s.id),
    );

    // A re-send of nothing new: no frame, no change.
    await room.applyUpdate(resend, origin);
    assert.equal(received.length, before + 1);

    // The diff against the room's state vector: whole, but its delete set repeats
    // the deletion of k=1, which Yjs's own encoding of the change would leave out.
    author.getMap('m').set('k', 3);
    const diff = Y.encodeStateAsUpdate(author, Y.encodeStateVector(room.doc));
    await room.applyUpdate(diff, origin);
    assert.deepEqual(received.at(-1), diff, 'the whole diff goes out as received');

    assert.deepEqual(reader.getMap('m').toJSON(), { k: 3 });
    assert.deepEqual(room.doc.getMap('m').toJSON(), { k: 3 });
    await room.flush();
    const stored = new Y.Doc();
    for (const update of (await store.load(name)).updates) Y.applyUpdate(stored, update);
    assert.deepEqual(stored.getMap('m').toJSON(), { k: 3 });
    room.destroy();
    await store.close();
  });
});

describe('update frames', () => {
  it('updateFrame writes the bytes encodeUpdate writes, at every varint length', () => {
    for (const length of [0, 1, 127, 128, 300, 16383, 16384, 70000, 2_097_152]) {
      const update = Uint8Array.from({ length }, (_, i) => (i * 7) & 0xff);
      assert.deepEqual(
        new Uint8Array(updateFrame(update)),
        encodeUpdate(update),
        `length ${length}`,
      );
    }
  });
});

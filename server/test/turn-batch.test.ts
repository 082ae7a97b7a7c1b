/**
 * Updates that reach a room in one event-loop turn are applied in one Yjs
 * transaction, fanned out as one frame per receiver and stored as one log entry
 * (hub/room.ts, end-of-turn.ts) — without changing what anyone sees: every edit
 * arrives, every writer is acknowledged, a writer alone is not sent its own
 * writes, and a socket's later sync step 1 is answered with its earlier updates.
 */
import { docName } from './helpers/doc-name.js';
import { roomOptions } from './helpers/room.js';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import { encodeSyncStep1, encodeUpdate, MessageType, SyncType } from '@stateweave/client/protocol';
import { Room } from '../src/hub/room.js';
import { createLevelStore } from '../src/storage/level-store.js';
import { rawClient, textUpdate, type RawClient } from './helpers/clients.js';
import { startNode, tempDir } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';
import { nextConnectionId } from '../src/connection-id.js';

/** Sync frames of type `syncType` among `frames`. */
const syncFrames = (frames: readonly Uint8Array[], syncType: number): Uint8Array[] =>
  frames.flatMap((frame) => {
    const d = decoding.createDecoder(frame);
    if (decoding.readVarUint(d) !== MessageType.Sync || decoding.readVarUint(d) !== syncType)
      return [];
    return [decoding.readVarUint8Array(d)];
  });

/**
 * Writes `frames` to the socket as one TCP write (ws has no public cork; `_socket`
 * is its net.Socket), so the node reads them in one turn.
 */
const sendTogether = (client: RawClient, frames: readonly Uint8Array[]): void => {
  const socket = (client.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  socket.cork();
  for (const frame of frames) client.ws.send(frame);
  socket.uncork();
};

/** `count` text edits by a fresh author, each a separate update; the author holds their sum. */
const edits = (count: number, tag: string): { author: Y.Doc; updates: Uint8Array[] } => {
  const author = new Y.Doc();
  const updates = Array.from({ length: count }, (_, i) => textUpdate(author, `${tag}${i} `));
  return { author, updates };
};

const setUp = async (t: TestContext, maxDocBytes?: number) => {
  const dir = await tempDir();
  const store = await createLevelStore(dir.path);
  const node = await startNode({ store, ...(maxDocBytes ? { maxDocBytes } : {}) });
  t.after(async () => {
    await node.close();
    await store.close();
    await dir.remove();
  });
  return { node, store };
};

describe('updates of one turn', () => {
  it('from several writers: one transaction, one frame per receiver, one log entry; everyone sees and is acknowledged for everything', async (t) => {
    const { node, store } = await setUp(t);
    const writers = await Promise.all([0, 1, 2].map(() => rawClient(node.wsUrl, 'batched')));
    const reader = await rawClient(node.wsUrl, 'batched');
    t.after(() => [...writers, reader].forEach((c) => c.close()));
    const framesBefore = reader.frames.length;
    const logBefore = (await store.load(docName('batched'))).logLength;

    const work = writers.map((_, k) => edits(20, `w${k}-`));
    writers.forEach((w, k) => {
      for (const update of work[k]!.updates) Y.applyUpdate(w.doc, update, 'local');
      sendTogether(
        w,
        work[k]!.updates.map((u) => encodeUpdate(u)),
      );
    });

    const expected = new Y.Doc();
    for (const { author } of work) Y.applyUpdate(expected, Y.encodeStateAsUpdate(author));
    const want = expected.getText('text').toString();
    await waitFor(
      () => reader.doc.getText('text').toString().length === want.length,
      'every edit at the reader',
    );
    // Yjs orders concurrent inserts the same way everywhere: the same text, not just the same length.
    assert.equal(reader.doc.getText('text').toString(), want);
    for (const w of writers) {
      await waitFor(
        () => w.savedSeq() >= 21,
        'all 20 edits acknowledged (seq 1 was the sync step 2)',
      );
      await waitFor(
        () => w.doc.getText('text').toString() === want,
        "the others' edits at each writer",
      );
    }

    const updateFrames = syncFrames(reader.frames.slice(framesBefore), SyncType.Update);
    assert.ok(
      updateFrames.length < 60,
      `60 updates reached the reader in ${updateFrames.length} frames`,
    );
    const logAfter = (await store.load(docName('batched'))).logLength;
    assert.ok(logAfter - logBefore < 60, `60 updates took ${logAfter - logBefore} log entries`);
    // What is stored is everything: a fresh load holds the whole text.
    const stored = new Y.Doc();
    for (const update of (await store.load(docName('batched'))).updates)
      Y.applyUpdate(stored, update);
    assert.equal(stored.getText('text').toString(), want);
  });

  it('from one writer alone: the writer is not sent its own edits', async (t) => {
    const { node } = await setUp(t);
    const writer = await rawClient(node.wsUrl, 'alone');
    const reader = await rawClient(node.wsUrl, 'alone');
    t.after(() => [writer, reader].forEach((c) => c.close()));
    const writerFramesBefore = writer.frames.length;
    const { author, updates } = edits(30, 'a');
    for (const update of updates) Y.applyUpdate(writer.doc, update, 'local');
    sendTogether(
      writer,
      updates.map((u) => encodeUpdate(u)),
    );

    const want = author.getText('text').toString();
    await waitFor(() => reader.doc.getText('text').toString() === want, 'the edits at the reader');
    await waitFor(() => writer.savedSeq() >= 31, 'the writer acknowledged');
    assert.deepEqual(
      syncFrames(writer.frames.slice(writerFramesBefore), SyncType.Update),
      [],
      'no echo to a lone writer',
    );
  });

  it('counts the updates still waiting for the turn against maxDocBytes', async (t) => {
    const { node, store } = await setUp(t, 2_000);
    const writer = await rawClient(node.wsUrl, 'sized');
    t.after(() => writer.close());
    // Three updates of ~800 bytes in one turn: each fits alone, the third does not fit after the first two.
    const author = new Y.Doc();
    const updates = [0, 1, 2].map((i) => textUpdate(author, String(i).repeat(800)));
    sendTogether(
      writer,
      updates.map((u) => encodeUpdate(u)),
    );

    const closed = await writer.closed(5_000);
    assert.equal(closed.code, 4413, 'refused with DOC_TOO_LARGE');
    const stored = new Y.Doc();
    for (const update of (await store.load(docName('sized'))).updates)
      Y.applyUpdate(stored, update);
    assert.equal(
      stored.getText('text').length,
      1_600,
      'the two that fit are kept, the third is not',
    );
  });

  it("answers a socket's sync step 1 with the updates it sent before it in the same turn", async (t) => {
    const { node } = await setUp(t);
    const client = await rawClient(node.wsUrl, 'ordered');
    t.after(() => client.close());
    const framesBefore = client.frames.length;
    const { author, updates } = edits(5, 'o');
    sendTogether(client, [
      ...updates.map((u) => encodeUpdate(u)),
      encodeSyncStep1(Y.encodeStateVector(new Y.Doc())),
    ]);

    await waitFor(
      () => syncFrames(client.frames.slice(framesBefore), SyncType.Step2).length > 0,
      'the sync step 2',
    );
    const answer = new Y.Doc();
    Y.applyUpdate(answer, syncFrames(client.frames.slice(framesBefore), SyncType.Step2)[0]!);
    assert.equal(answer.getText('text').toString(), author.getText('text').toString());
  });
  it('shows readers (functions, HTTP) the updates still waiting for the turn, with and without a state vector', async (t) => {
    const dir = await tempDir();
    const store = await createLevelStore(dir.path);
    const room = new Room(docName('readers'), roomOptions(store));
    t.after(async () => {
      room.destroy();
      await store.close();
      await dir.remove();
    });
    await room.load();
    const author = new Y.Doc();
    const first = textUpdate(author, 'stored ');
    const writer = { kind: 'client', connId: nextConnectionId() } as const;
    await room.applyUpdate(first, writer);
    const reader = new Y.Doc();
    Y.applyUpdate(reader, room.diffSince());
    const seen = Y.encodeStateVector(reader);

    // Not awaited: the update waits for the end of this turn when the reads below run.
    const waiting = room.applyUpdate(textUpdate(author, 'waiting'), writer);
    const whole = new Y.Doc();
    Y.applyUpdate(whole, room.diffSince());
    assert.equal(
      whole.getText('text').toString(),
      'stored waiting',
      'the whole document includes the waiting update',
    );
    Y.applyUpdate(reader, room.diffSince(seen));
    assert.equal(
      reader.getText('text').toString(),
      'stored waiting',
      'so does the diff since a state vector',
    );
    await waiting;
  });
});

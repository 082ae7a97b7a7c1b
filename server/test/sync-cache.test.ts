/**
 * The cached full state of a room (hub/state-cache.ts): what a fresh client, the
 * binary HTTP GET, functions and compaction get instead of a new encode.
 *
 * - The cache alone, on a Y.Doc: same bytes as Y.encodeStateAsUpdate, reused
 *   while nothing changes (also across a transaction without content, as every
 *   joining client's empty sync step 2 is), dropped on any change, never kept
 *   for a document with a pending part or below the size threshold; the tail of
 *   changes since the encoding is folded once it outgrows its share, or once the
 *   joins it was sent to carried a state's worth of it.
 * - A node on real WebSocket and LevelDB: fresh clients get the whole document,
 *   also after an insert and after a deletion; a client with a state vector
 *   gets only the diff; a room unloaded (and a node restarted) serves the right
 *   state from LevelDB; the binary GET agrees with what clients see.
 *
 * The documents are larger than MIN_CACHED_STATE_BYTES, or nothing is cached.
 */
import { docName } from './helpers/doc-name.js';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as decoding from 'lib0/decoding';
import { encodeSyncStep1, MessageType, SyncType } from '@stateweave/client/protocol';
import {
  createStateCache,
  isEmptyStateVector,
  MAX_TAIL_UPDATES,
  MIN_CACHED_STATE_BYTES,
  TAIL_GROUP_BYTES,
  TAIL_SHARE,
} from '../src/hub/state-cache.js';
import { rawClient, stockClient, textUpdate } from './helpers/clients.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

/** Deterministic text well above the cache threshold (one insert: cheap to build, ~100 KB encoded). */
const LARGE_TEXT = Array.from({ length: 100_000 }, (_, i) =>
  String.fromCharCode(97 + ((i * 7) % 26)),
).join('');

const largeDoc = (): Y.Doc => {
  const doc = new Y.Doc();
  doc.getText('text').insert(0, LARGE_TEXT);
  return doc;
};

/** Same content, same state vector and same delete set. */
const assertSameState = (actual: Y.Doc, expected: Y.Doc, what: string): void => {
  assert.equal(
    actual.getText('text').toString(),
    expected.getText('text').toString(),
    `${what}: text`,
  );
  assert.ok(
    Y.equalSnapshots(Y.snapshot(actual), Y.snapshot(expected)),
    `${what}: state vector and delete set`,
  );
};

/** The update inside a sync step 2 or update message. */
const readSyncPayload = (frame: Uint8Array): Uint8Array => {
  const decoder = decoding.createDecoder(frame);
  assert.equal(decoding.readVarUint(decoder), MessageType.Sync);
  decoding.readVarUint(decoder);
  return decoding.readVarUint8Array(decoder);
};

const docOf = (update: Uint8Array): Y.Doc => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, update);
  return doc;
};

describe('state cache on a Y.Doc', () => {
  it('serves the bytes Y.encodeStateAsUpdate gives, and reuses them while the document is unchanged', () => {
    const doc = largeDoc();
    const cache = createStateCache(doc);
    const first = cache.state();
    assert.ok(first.byteLength >= MIN_CACHED_STATE_BYTES);
    assert.deepEqual(first, Y.encodeStateAsUpdate(doc));
    assert.equal(cache.state(), first, 'the second call returns the cached bytes');
    // The frame ends with the very same bytes: one copy serves both forms.
    const frame = cache.syncStep2();
    assert.equal(frame.buffer, first.buffer);
    assert.deepEqual(frame.subarray(frame.byteLength - first.byteLength), first);
    // A transaction without content (a fresh client's empty sync step 2) keeps it.
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(new Y.Doc()));
    doc.transact(() => {});
    assert.equal(cache.state(), first);
    cache.destroy();
  });

  it('re-encodes one update after an insert, a deletion and a change from any origin', () => {
    const doc = largeDoc();
    const cache = createStateCache(doc);
    const changes: Array<[string, () => void]> = [
      ['insert', () => doc.getText('text').insert(5, 'new')],
      ['deletion only (the state vector stays)', () => doc.getText('text').delete(0, 3)],
      [
        'storage replay',
        () =>
          Y.applyUpdate(doc, textUpdate(new Y.Doc(), 'from elsewhere', 'other'), {
            kind: 'storage',
          }),
      ],
    ];
    for (const [what, change] of changes) {
      const before = cache.state();
      change();
      const after = cache.state();
      assert.notEqual(after, before, what);
      assert.deepEqual(after, Y.encodeStateAsUpdate(doc), what);
    }
    cache.destroy();
  });

  it('never serves a stale state when Yjs parks an update as pending (no update event)', () => {
    const doc = largeDoc();
    const cache = createStateCache(doc);
    const before = cache.state();
    // An update whose dependency the document lacks: Yjs keeps it pending and emits nothing.
    const author = new Y.Doc();
    const missing = textUpdate(author, 'first', 'p');
    const dependent = textUpdate(author, ' second', 'p');
    Y.applyUpdate(doc, dependent);
    assert.ok(doc.store.pendingStructs, 'the update is pending');
    const withPending = cache.state();
    assert.notEqual(withPending, before);
    assert.deepEqual(withPending, Y.encodeStateAsUpdate(doc));
    assert.notEqual(cache.state(), withPending, 'a document with a pending part is not cached');
    Y.applyUpdate(doc, missing);
    assert.equal(doc.store.pendingStructs, null);
    assert.deepEqual(cache.state(), Y.encodeStateAsUpdate(doc));
    assert.equal(docOf(cache.state()).getText('p').toString(), 'first second');
    cache.destroy();
  });

  it('serves the changes since the cached encoding as a tail before the same cached frame', () => {
    const doc = largeDoc();
    const cache = createStateCache(doc);
    const [frame] = cache.syncFrames();
    assert.ok(frame);
    doc.getText('text').insert(5, 'new');
    doc.getText('text').delete(100, 20); // a deletion only: the state vector stays
    doc.getText('text').insert(0, 'head');
    const frames = cache.syncFrames();
    assert.equal(frames.length, 2, 'the tail, then the whole document');
    assert.equal(frames[1], frame, 'the cached frame is not re-encoded');
    assert.equal(
      cache.syncFrames()[0],
      frames[0],
      'the merged tail is reused until the next change',
    );
    // Applied in the order sent, as a client does: the tail waits as pending until the state.
    const client = new Y.Doc();
    for (const sent of frames) Y.applyUpdate(client, readSyncPayload(sent));
    assertSameState(client, doc, 'tail + cached state');
    // Without the tail the client would miss the changes: the test above can fail.
    const stale = docOf(readSyncPayload(frame));
    assert.notEqual(stale.getText('text').toString(), doc.getText('text').toString());
    // One update (compaction, HTTP, functions) is encoded now and becomes the new cache.
    assert.deepEqual(cache.state(), Y.encodeStateAsUpdate(doc));
    assert.equal(cache.syncFrames().length, 1);
    cache.destroy();
  });

  it('sends a large tail as a few update messages, each merged once', () => {
    const doc = largeDoc();
    const cache = createStateCache(doc);
    const [frame] = cache.syncFrames();
    const text = doc.getText('text');
    text.insert(0, 'small before');
    text.insert(3, 'z'.repeat(TAIL_GROUP_BYTES)); // closes the first group, a group alone
    text.delete(10, 5);
    text.insert(7, 'small after');
    const frames = cache.syncFrames();
    assert.equal(
      frames.length,
      4,
      'two groups of small updates around the large one, then the state',
    );
    assert.equal(frames[3], frame);
    text.insert(0, 'one more');
    const again = cache.syncFrames();
    assert.equal(again[0], frames[0], 'a closed group is not merged again');
    assert.equal(again[1], frames[1]);
    assert.notEqual(again[2], frames[2], 'the open group took the new update');
    const client = new Y.Doc();
    for (const sent of again) Y.applyUpdate(client, readSyncPayload(sent));
    assertSameState(client, doc, 'groups + cached state');
    cache.destroy();
  });

  it('re-encodes on its own turn once the tail outgrows its share of the state', async () => {
    const doc = largeDoc();
    const cache = createStateCache(doc);
    const [frame] = cache.syncFrames();
    const text = doc.getText('text');
    for (let i = 0; i < MAX_TAIL_UPDATES; i++) text.insert(i, 'x');
    assert.equal(cache.syncFrames()[1], frame, 'still the tail: the limit is not passed');
    text.insert(0, 'one more');
    // The limit is passed, but the join path itself never encodes the whole document.
    assert.equal(cache.syncFrames()[1], frame);
    await new Promise((resolve) => setImmediate(resolve));
    const refreshed = cache.syncFrames();
    assert.equal(refreshed.length, 1, 'no tail after the re-encode');
    assert.notEqual(refreshed[0], frame);
    assert.deepEqual(readSyncPayload(refreshed[0]!), Y.encodeStateAsUpdate(doc));
    // A tail of many bytes passes the share limit as well.
    const big = 'y'.repeat(Math.ceil(readSyncPayload(refreshed[0]!).byteLength / TAIL_SHARE));
    text.insert(0, big);
    assert.equal(cache.syncFrames().length, 2);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(cache.syncFrames().length, 1);
    assertSameState(docOf(readSyncPayload(cache.syncFrames()[0]!)), doc, 're-encoded');
    cache.destroy();
  });

  it('folds the tail on its own turn once the joins it went to carried a state of bytes', async () => {
    const doc = largeDoc();
    const cache = createStateCache(doc);
    const [frame] = cache.syncFrames();
    const stateBytes = readSyncPayload(frame!).byteLength;
    // A tail well under its share of the state: the change alone folds nothing.
    doc.getText('text').insert(0, 'z'.repeat(Math.floor(stateBytes / (4 * TAIL_SHARE))));
    const first = cache.syncFrames();
    assert.equal(first.length, 2);
    const tailBytes = first[0]!.byteLength;
    // Joins until the tail frames sent add up to the state's bytes, less one join.
    const joins = Math.ceil(stateBytes / tailBytes);
    for (let i = 2; i < joins; i++) assert.equal(cache.syncFrames()[1], frame, 'no fold yet');
    await new Promise((resolve) => setImmediate(resolve));
    // Nothing was folded one join short; this join passes the mark and is still served
    // from the cache: the fold runs on its own turn.
    assert.equal(cache.syncFrames()[1], frame);
    await new Promise((resolve) => setImmediate(resolve));
    const folded = cache.syncFrames();
    assert.equal(folded.length, 1, 'no tail after the fold');
    assert.deepEqual(readSyncPayload(folded[0]!), Y.encodeStateAsUpdate(doc));
    cache.destroy();
  });

  it('keeps nothing for a small document, nor after destroy', () => {
    const small = new Y.Doc();
    small.getText('text').insert(0, 'small');
    const cache = createStateCache(small);
    assert.notEqual(cache.state(), cache.state());
    assert.deepEqual(cache.state(), Y.encodeStateAsUpdate(small));
    cache.destroy();
    const large = largeDoc();
    const destroyed = createStateCache(large);
    destroyed.destroy();
    assert.notEqual(destroyed.syncStep2(), destroyed.syncStep2());
  });

  it('tells an empty state vector from the others', () => {
    assert.equal(isEmptyStateVector(Y.encodeStateVector(new Y.Doc())), true);
    assert.equal(isEmptyStateVector(Y.encodeStateVector(largeDoc())), false);
    assert.equal(isEmptyStateVector(new Uint8Array()), false, 'no bytes is malformed, not empty');
  });
});

// ---------------------------------------------------------------- over the wire

/** A node on LevelDB in a temp dir; both are removed when the test ends. */
const levelNode = async (
  t: TestContext,
  dataDir?: string,
  options: Parameters<typeof startNode>[0] = {},
) => {
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  if (!dataDir) {
    dir = await tempDir();
    t.after(() => dir!.remove());
  }
  const node = await startNode({ dataDir: dataDir ?? dir!.path, ...options });
  t.after(() => node.close());
  return { node, dataDir: dataDir ?? dir!.path };
};

/** A stock client that syncs, hands its document over and leaves. */
const freshState = async (node: TestNode, name: string): Promise<Y.Doc> => {
  const client = await stockClient(node.wsUrl, name);
  const copy = docOf(Y.encodeStateAsUpdate(client.doc));
  client.destroy();
  return copy;
};

/** Opens a socket, sends sync step 1 with `stateVector`, and returns the payload of the node's sync step 2. */
const step2For = async (
  node: TestNode,
  name: string,
  stateVector: Uint8Array,
): Promise<Uint8Array> => {
  const ws = new WebSocket(`${node.wsUrl}/${name}`);
  ws.binaryType = 'arraybuffer';
  try {
    const reply = new Promise<Uint8Array>((resolve, reject) => {
      ws.on('message', (data: ArrayBuffer) => {
        const decoder = decoding.createDecoder(new Uint8Array(data));
        if (decoding.readVarUint(decoder) !== MessageType.Sync) return;
        if (decoding.readVarUint(decoder) !== SyncType.Step2) return;
        resolve(decoding.readVarUint8Array(decoder));
      });
      ws.once('close', (code) => reject(new Error(`closed with ${code} before sync step 2`)));
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(encodeSyncStep1(stateVector));
    return await reply;
  } finally {
    ws.close();
  }
};

const getBinary = async (node: TestNode, name: string): Promise<Uint8Array> => {
  const res = await fetch(`${node.url}/v1/docs/${name}`, {
    headers: { accept: 'application/octet-stream' },
  });
  assert.equal(res.status, 200);
  return new Uint8Array(await res.arrayBuffer());
};

/** Writes `update` through a raw client and waits until the node has stored it. */
const write = async (node: TestNode, name: string, update: Uint8Array): Promise<void> => {
  const writer = await rawClient(node.wsUrl, name);
  const seq = writer.sendUpdate(update);
  await waitFor(() => writer.savedSeq() >= seq, 'the write to be saved');
  writer.close();
};

describe('sync of a large document from the cache', () => {
  it('gives a fresh client the whole document, and keeps the cache across its join', async (t) => {
    const { node } = await levelNode(t);
    const expected = largeDoc();
    await write(node, 'whole', Y.encodeStateAsUpdate(expected));
    assertSameState(await freshState(node, 'whole'), expected, 'first fresh client');
    // The joins above and below apply empty sync steps 2: those must not drop the cache.
    const lease = await node.server.hub.open(docName('whole'));
    try {
      const cached = lease.room.syncStep2For(new Uint8Array([0]));
      assertSameState(await freshState(node, 'whole'), expected, 'second fresh client');
      assert.equal(
        lease.room.syncStep2For(new Uint8Array([0])),
        cached,
        'the join kept the cached frame',
      );
    } finally {
      lease.release();
    }
  });

  it('gives a fresh client the new state after an insert and after a deletion', async (t) => {
    const { node } = await levelNode(t);
    const expected = largeDoc();
    await write(node, 'edited', Y.encodeStateAsUpdate(expected));
    assertSameState(await freshState(node, 'edited'), expected, 'before the edits'); // fills the cache

    const insertFrom = Y.encodeStateVector(expected);
    expected.getText('text').insert(10, 'INSERTED');
    await write(node, 'edited', Y.encodeStateAsUpdate(expected, insertFrom));
    assertSameState(await freshState(node, 'edited'), expected, 'after an insert');

    // A deletion leaves the state vector as it was: only the delete set differs.
    const deleteFrom = Y.encodeStateVector(expected);
    expected.getText('text').delete(0, 20);
    const deletion = Y.encodeStateAsUpdate(expected, deleteFrom);
    await write(node, 'edited', deletion);
    assertSameState(await freshState(node, 'edited'), expected, 'after a deletion');
  });

  it('gives a stock client that joins right after edits all of them by the time it is synced', async (t) => {
    const { node } = await levelNode(t);
    const expected = largeDoc();
    await write(node, 'pending', Y.encodeStateAsUpdate(expected));
    assertSameState(await freshState(node, 'pending'), expected, 'before the edits'); // fills the cache
    const lease = await node.server.hub.open(docName('pending'));
    t.after(() => lease.release());
    const [cached] = lease.room.syncFramesFor(new Uint8Array([0]));

    // Edits from another client: an insert, a deletion, and an insert by a second writer.
    for (const edit of [
      (text: Y.Text) => text.insert(10, 'INSERTED'),
      (text: Y.Text) => text.delete(0, 20),
    ]) {
      const from = Y.encodeStateVector(expected);
      edit(expected.getText('text'));
      await write(node, 'pending', Y.encodeStateAsUpdate(expected, from));
    }
    const other = docOf(Y.encodeStateAsUpdate(expected));
    const from = Y.encodeStateVector(other);
    other.getText('text').insert(50, 'second writer');
    const last = Y.encodeStateAsUpdate(other, from);
    Y.applyUpdate(expected, last);
    await write(node, 'pending', last);
    const frames = lease.room.syncFramesFor(new Uint8Array([0]));
    assert.equal(frames.length, 2, 'the join is served from the cache and a tail');
    assert.equal(frames[1], cached, 'the whole document was not encoded again');

    // What the stock client holds at the moment it reports `synced`.
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(node.wsUrl, 'pending', doc, {
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    t.after(() => {
      provider.destroy();
      doc.destroy();
    });
    const atSynced = await new Promise<Y.Doc>((resolve) =>
      provider.on('sync', (synced: boolean) => {
        if (synced) resolve(docOf(Y.encodeStateAsUpdate(doc)));
      }),
    );
    assert.equal(atSynced.store.pendingStructs, null, 'nothing left waiting for dependencies');
    assertSameState(atSynced, expected, 'a stock client at synced');
  });

  it('gives a client with a non-empty state vector only the diff', async (t) => {
    const { node } = await levelNode(t);
    const expected = largeDoc();
    await write(node, 'diff', Y.encodeStateAsUpdate(expected));
    const known = docOf(Y.encodeStateAsUpdate(expected));
    assert.ok(
      (await step2For(node, 'diff', new Uint8Array([0]))).byteLength >= LARGE_TEXT.length,
      'empty: everything',
    );

    const from = Y.encodeStateVector(expected);
    expected.getText('text').insert(0, 'news');
    await write(node, 'diff', Y.encodeStateAsUpdate(expected, from));
    const diff = await step2For(node, 'diff', Y.encodeStateVector(known));
    assert.ok(diff.byteLength < 200, `a diff of ${diff.byteLength} bytes`);
    Y.applyUpdate(known, diff);
    assertSameState(known, expected, 'old copy plus diff');
  });

  it('serves the right state from LevelDB after the room unloads and after a restart', async (t) => {
    const { node, dataDir } = await levelNode(t, undefined, { idleUnloadMs: 50 });
    const expected = largeDoc();
    await write(node, 'reload', Y.encodeStateAsUpdate(expected));
    assertSameState(await freshState(node, 'reload'), expected, 'before unload');
    const openDocuments = async () =>
      (await node.server.metrics.openDocuments.get()).values[0]?.value ?? 0;
    await waitFor(async () => (await openDocuments()) === 0, 'the room to unload');

    const from = Y.encodeStateVector(expected);
    expected.getText('text').insert(LARGE_TEXT.length, ' appended after reload');
    await write(node, 'reload', Y.encodeStateAsUpdate(expected, from));
    assertSameState(await freshState(node, 'reload'), expected, 'after the reload and an edit');
    await waitFor(async () => (await openDocuments()) === 0, 'the room to unload again');
    await node.close();

    const { node: restarted } = await levelNode(t, dataDir);
    assertSameState(await freshState(restarted, 'reload'), expected, 'after a restart');
  });

  it('answers the binary GET with the state clients see, before and after an edit', async (t) => {
    const { node } = await levelNode(t);
    const expected = largeDoc();
    await write(node, 'http', Y.encodeStateAsUpdate(expected));
    const first = await getBinary(node, 'http');
    assertSameState(docOf(first), expected, 'GET');
    assert.deepEqual(await getBinary(node, 'http'), first, 'a second GET: same bytes');
    assertSameState(await freshState(node, 'http'), expected, 'a fresh client');

    const from = Y.encodeStateVector(expected);
    expected.getText('text').delete(100, 50);
    expected.getText('text').insert(0, 'edited over http');
    await write(node, 'http', Y.encodeStateAsUpdate(expected, from));
    assertSameState(docOf(await getBinary(node, 'http')), expected, 'GET after the edit');
    assertSameState(await freshState(node, 'http'), expected, 'a fresh client after the edit');
  });
});

/**
 * The cached full state of a room (hub/state-cache.ts): what a fresh client, the
 * binary HTTP GET, functions and compaction get instead of a new encode.
 *
 * - The cache alone, on a Y.Doc: same bytes as Y.encodeStateAsUpdate, reused
 *   while nothing changes (also across a transaction without content, as every
 *   joining client's empty sync step 2 is), dropped on any change, never kept
 *   for a document with a pending part or below the size threshold.
 * - A node on real WebSocket and LevelDB: fresh clients get the whole document,
 *   also after an insert and after a deletion; a client with a state vector
 *   gets only the diff; a room unloaded (and a node restarted) serves the right
 *   state from LevelDB; the binary GET agrees with what clients see.
 *
 * The documents are larger than MIN_CACHED_STATE_BYTES, or nothing is cached.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import * as decoding from 'lib0/decoding';
import { encodeSyncStep1, MessageType, SyncType } from '@stateweave/client/protocol';
import {
  createStateCache,
  isEmptyStateVector,
  MIN_CACHED_STATE_BYTES,
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

  it('drops the cached state on an insert, a deletion and a change from any origin', () => {
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
    const lease = await node.server.hub.open('whole');
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

/**
 * Tombstones of deleted documents on one node: how an update is split by one
 * (hub/tombstone.ts), that a client holding the old copy cannot write it back
 * while a new client starts a new document, and that tombstones expire
 * (`tombstoneTtlMs`) with their line in the change feed. Cluster behaviour:
 * cluster-delete.test.ts.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { encodeSyncStep1, encodeSyncStep2 } from '@stateweave/client/protocol';
import { encodeStateVector, splitByTombstone } from '../src/hub/tombstone.js';
import { createMemoryStore } from '../src/storage/level-store.js';
import type { Store } from '../src/storage/store.js';
import { startNode, type TestNode } from './helpers/node.js';
import { waitFor, withTimeout } from './helpers/wait.js';

const textDoc = (text: string, base?: Y.Doc): Y.Doc => {
  const doc = new Y.Doc();
  if (base) Y.applyUpdate(doc, Y.encodeStateAsUpdate(base));
  doc.getText('t').insert(doc.getText('t').length, text);
  return doc;
};

describe('splitting an update by a tombstone', () => {
  const old = textDoc('old');
  const deleted = Y.decodeStateVector(Y.encodeStateVector(old));

  it('drops what the deleted document held, keeps what came after', () => {
    assert.deepEqual(splitByTombstone(Y.encodeStateAsUpdate(old), deleted), {
      covered: true,
      rest: null,
    });
    const fresh = Y.encodeStateAsUpdate(textDoc('new'));
    assert.deepEqual(splitByTombstone(fresh, deleted), { covered: false, rest: fresh });
    // Old and new together (a copy that kept editing): only the new part is left.
    const both = textDoc(' more', old);
    const { covered, rest } = splitByTombstone(Y.encodeStateAsUpdate(both), deleted);
    assert.equal(covered, true);
    assert.ok(rest);
    const { from } = Y.parseUpdateMeta(rest);
    for (const [client, clock] of from) assert.ok(clock >= (deleted.get(client) ?? 0));
    // Deleting old text only: covered, nothing left.
    const cut = textDoc('', old);
    cut.getText('t').delete(0, 1);
    const deletion = Y.encodeStateAsUpdate(cut, Y.encodeStateVector(old));
    assert.deepEqual(splitByTombstone(deletion, deleted), { covered: true, rest: null });
    assert.deepEqual(Y.decodeStateVector(encodeStateVector(deleted)), deleted);
  });
});

describe('a deleted document on one node', { timeout: 60_000 }, () => {
  let node: TestNode | undefined;
  let store: Store;
  after(async () => node?.close());

  const rawSession = async (doc: Y.Doc) => {
    const ws = new WebSocket(`${node!.wsUrl}/notes`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(encodeSyncStep1(Y.encodeStateVector(doc)));
    ws.send(encodeSyncStep2(Y.encodeStateAsUpdate(doc)));
    return { ws, closed };
  };

  const text = async (): Promise<string | undefined> => {
    const res = await fetch(`${node!.url}/v1/docs/notes`);
    if (res.status === 404) return undefined;
    return ((await res.json()) as { t: string }).t;
  };

  it('refuses the old copy with 4410, takes new content, and forgets the tombstone after its TTL', async () => {
    store = await createMemoryStore();
    node = await startNode({ store, tombstoneTtlMs: 1500 });
    // A name nobody wrote: nothing to delete, no tombstone (counted below).
    const nothing = await fetch(`${node.url}/v1/docs/never-written`, { method: 'DELETE' });
    assert.equal(nothing.status, 200);
    const old = textDoc('old');
    const first = await rawSession(old);
    await waitFor(async () => (await text()) === 'old', 'the old content stored');
    const res = await fetch(`${node.url}/v1/docs/notes`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { deleted: true, replicatedTo: [], pending: [] });
    assert.equal(await withTimeout(first.closed, 5000, 'the close'), 4410);

    // The same copy again: refused, nothing written back.
    const stale = await rawSession(old);
    assert.equal(await withTimeout(stale.closed, 5000, 'the stale copy refused'), 4410);
    assert.equal(await text(), undefined);
    const http = await fetch(`${node.url}/v1/docs/notes/updates`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Y.encodeStateAsUpdate(old),
    });
    assert.equal(http.status, 410);

    // A new client: a new document.
    const fresh = await rawSession(textDoc('new'));
    await waitFor(async () => (await text()) === 'new', 'the new content stored');
    fresh.ws.close();

    // After the TTL the tombstone and its line in the feed are gone.
    const tombstones = async () => {
      let n = 0;
      for await (const _ of store.tombstones()) n++;
      return n;
    };
    assert.equal(await tombstones(), 1, 'only the deleted document has one');
    await waitFor(async () => (await tombstones()) === 0, 'the tombstone to expire', 10_000);
    const { changes } = await store.readChanges({ afterSeq: 0, limit: 100, deletions: true });
    assert.ok(!changes.some((c) => c.deleted));
    assert.equal(await text(), 'new');
  });
});

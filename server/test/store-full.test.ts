/**
 * A store that refuses writes (a full disk): the LevelDB store reopens the
 * database before writing again (a failed write may leave a torn log record that
 * LevelDB's recovery would later drop together with acknowledged writes behind
 * it), refuses at once while there is no space, and keeps serving reads; the
 * node refuses HTTP writes with STORE_FAILED while a document's repair runs.
 * The chaos suite (`npm run chaos`, scenario enospc) does this on a real full
 * tmpfs.
 */
import { docName } from './helpers/doc-name.js';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { Level } from 'level';
import type { AbstractLevel } from 'abstract-level';
import { createAbstractLevelStore, createLevelStore } from '../src/storage/level-store.js';
import { StoreError } from '../src/storage/store.js';
import { rawClient, textUpdate } from './helpers/clients.js';
import { startNode, tempDir } from './helpers/node.js';
import { delegateStore } from './helpers/store-wrapper.js';
import { waitFor } from './helpers/wait.js';

type Db = AbstractLevel<string | Uint8Array, string, Uint8Array>;

const textOf = (updates: readonly Uint8Array[]): string => {
  const doc = new Y.Doc();
  for (const u of updates) Y.applyUpdate(doc, u);
  return doc.getText('text').toString();
};

const update = (text: string): Uint8Array => {
  const doc = new Y.Doc();
  doc.getText('text').insert(0, text);
  return Y.encodeStateAsUpdate(doc);
};

describe('LevelDB store after a failed write', () => {
  it('refuses while space is short, keeps reads, and reopens before the next write', async (t: TestContext) => {
    const dir = await tempDir();
    t.after(() => dir.remove());
    let failBatches = false;
    // A real LevelDB whose batch fails on demand, as it does when the disk is full.
    const db = new Level<string, Uint8Array>(dir.path, {
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    });
    // The store writes through chained batches (level-batch.ts): their `write` fails.
    type Chained = { write: (...args: unknown[]) => Promise<void> };
    const patched = db as unknown as { batch: (...args: unknown[]) => unknown };
    const realBatch = patched.batch.bind(db);
    patched.batch = (...args) => {
      const made = realBatch(...args);
      if (args.length > 0) return made;
      const chained = made as Chained;
      const write = chained.write.bind(chained);
      chained.write = (...writeArgs) =>
        failBatches
          ? Promise.reject(new Error('IO error: No space left on device'))
          : write(...writeArgs);
      return chained;
    };
    let opens = 0;
    db.on('opening', () => opens++);
    let free = 0;
    const reopened: unknown[] = [];
    const store = await createAbstractLevelStore(db as unknown as Db, {
      freeBytes: () => Promise.resolve(free),
      onReopen: (err) => reopened.push(err),
    });
    t.after(() => store.close());
    const opensAtStart = opens;

    await store.append(docName('doc'), update('a'));
    failBatches = true;
    await assert.rejects(store.append(docName('doc'), update('b')), StoreError);
    failBatches = false;

    // No space: refused at once, the database stays open and readable.
    await assert.rejects(
      store.append(docName('doc'), update('c')),
      /no space left for the database/,
    );
    assert.equal(opens, opensAtStart, 'not reopened without space');
    assert.equal(textOf((await store.load(docName('doc'))).updates), 'a');

    // Space again: reopened once, then written.
    free = 1 << 30;
    await store.append(docName('doc'), update('d'));
    assert.equal(opens, opensAtStart + 1, 'reopened once before the write');
    assert.equal(reopened.length, 1);
    await store.append(docName('doc'), update('e'));
    assert.equal(opens, opensAtStart + 1, 'a good write does not reopen');
    const loaded = await store.load(docName('doc'));
    assert.equal(loaded.logLength, 3);
  });
});

describe('a node whose store refuses writes', () => {
  it('refuses HTTP writes with 503 STORE_FAILED, serves reads, and recovers by itself', async (t: TestContext) => {
    const dir = await tempDir();
    t.after(() => dir.remove());
    const inner = await createLevelStore(dir.path);
    let failing = false;
    const store = delegateStore(inner, {
      append(doc, u, records) {
        if (failing) return Promise.reject(new StoreError('injected: no space left on device'));
        return inner.append(doc, u, records);
      },
    });
    const node = await startNode({ store });
    t.after(() => node.close());
    const writer = await rawClient(node.wsUrl, 'full');
    t.after(() => writer.close());
    const first = writer.sendUpdate(textUpdate(writer.doc, 'stored '));
    await waitFor(() => writer.savedSeq() >= first, 'the first write saved');

    failing = true;
    const pending = writer.sendUpdate(textUpdate(writer.doc, 'waits '));
    const room = node.server.hub.peek(docName('full'))!;
    await waitFor(() => room.doc.getText('text').toString() === 'stored waits ', 'applied');
    const patch = () =>
      fetch(`${node.url}/v1/docs/full`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ meta: { by: 'http' } }),
        signal: AbortSignal.timeout(5000),
      });
    const refused = await waitFor(async () => {
      const res = await patch();
      return res.status === 503 ? res : undefined;
    }, 'an HTTP write refused while the repair runs');
    const body = (await refused.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'STORE_FAILED');
    assert.equal(room.doc.getMap('meta').size, 0, 'the refused write changed nothing');
    const read = await fetch(`${node.url}/v1/docs/full`, { signal: AbortSignal.timeout(5000) });
    assert.equal(read.status, 200, 'reads keep working');
    assert.ok(writer.savedSeq() < pending, 'not acknowledged while writes fail');

    failing = false;
    await waitFor(() => writer.savedSeq() >= pending, 'the repair, then the ack', 10_000);
    assert.equal((await patch()).status, 200, 'writes work again');
    const loaded = await inner.load(docName('full'));
    const doc = new Y.Doc();
    for (const u of loaded.updates) Y.applyUpdate(doc, u);
    assert.equal(doc.getText('text').toString(), 'stored waits ');
    assert.equal(doc.getMap('meta').get('by'), 'http');
  });
});

/**
 * The history part of the Store contract (run by `storeContract`): the change
 * index in seq order with time and writers, compaction that keeps the log,
 * checkpoints, trimming, and removal of all of it.
 */
import { validateDocName as docName } from '../doc-name.js';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../storage/store.js';

const bytes = (label: string): Uint8Array => new TextEncoder().encode(label);
const text = (update: Uint8Array): string => new TextDecoder().decode(update);

export const historyContract = (fresh: () => Promise<Store>): void => {
  it('reads entries back in seq order with their writers and a time that never decreases', async () => {
    const store = await fresh();
    const before = Date.now();
    const a = await store.append(docName('doc'), bytes('a'), undefined, ['user:alice']);
    const [b, c] = await store.appendAll([
      { doc: docName('other'), update: bytes('b'), writers: ['function:f'] },
      { doc: docName('doc'), update: bytes('c') },
    ]);
    const page = await store.readChanges({ doc: docName('doc'), afterSeq: 0, limit: 10 });
    assert.deepEqual(
      page.changes.map((e) => [e.seq, e.doc, text(e.update), e.writers]),
      [
        [a, 'doc', 'a', ['user:alice']],
        [c, 'doc', 'c', []],
      ],
    );
    assert.ok(page.changes[0]!.time >= before && page.changes[1]!.time >= page.changes[0]!.time);
    const all = await store.readChanges({ afterSeq: 0, limit: 10 });
    assert.deepEqual(
      all.changes.map((e) => [e.seq, e.doc]),
      [
        [a, 'doc'],
        [b, 'other'],
        [c, 'doc'],
      ],
    );
    const tail = await store.readChanges({ afterSeq: a, limit: 1 });
    assert.deepEqual(
      tail.changes.map((e) => e.seq),
      [b],
    );
    assert.equal(tail.scannedThrough, b);
  });

  it('filters the change index by name prefix and reports how far it looked', async () => {
    const store = await fresh();
    await store.append(docName('team/a'), bytes('1'));
    const skipped = await store.append(docName('elsewhere'), bytes('2'));
    const last = await store.append(docName('team/b'), bytes('3'));
    const page = await store.readChanges({ prefix: 'team/', afterSeq: 0, limit: 10 });
    assert.deepEqual(
      page.changes.map((e) => e.doc),
      ['team/a', 'team/b'],
    );
    assert.equal(page.scannedThrough, last);
    const none = await store.readChanges({ prefix: 'nobody/', afterSeq: 0, limit: 10 });
    assert.equal(none.changes.length, 0);
    assert.ok(none.scannedThrough >= skipped);
  });

  it('keeps compacted entries for the history when asked, without loading them again', async () => {
    const store = await fresh();
    const first = await store.append(docName('doc'), bytes('one'));
    const second = await store.append(docName('doc'), bytes('two'));
    await store.compact(docName('doc'), bytes('snap'), first, true);
    const loaded = await store.load(docName('doc'));
    assert.deepEqual(loaded.updates.map(text), ['snap', 'two']);
    assert.equal(loaded.logLength, 1);
    assert.equal(loaded.lastSeq, second);
    assert.equal(loaded.compacted, true);
    const kept = await store.readChanges({ doc: docName('doc'), afterSeq: 0, limit: 10 });
    assert.deepEqual(
      kept.changes.map((e) => text(e.update)),
      ['one', 'two'],
    );
    await store.compact(docName('doc'), bytes('snap2'), second, true);
    assert.deepEqual((await store.load(docName('doc'))).updates.map(text), ['snap2']);
    assert.equal((await store.load(docName('doc'))).lastSeq, second);
    // Compaction without history drops the kept entries and unnamed checkpoints too.
    await store.putCheckpoint(docName('doc'), { seq: first, time: 1 }, bytes('cp'));
    await store.putCheckpoint(
      docName('doc'),
      { seq: second, time: 2, label: 'keep me' },
      bytes('named'),
    );
    await store.compact(docName('doc'), bytes('snap3'), second);
    assert.equal(
      (await store.readChanges({ doc: docName('doc'), afterSeq: 0, limit: 10 })).changes.length,
      0,
    );
    assert.equal((await store.readChanges({ afterSeq: 0, limit: 10 })).changes.length, 0);
    assert.deepEqual(
      (await store.checkpoints(docName('doc'))).map((c) => c.label),
      ['keep me'],
    );
  });

  it('stores checkpoints with their labels and drops the old ones and old entries on trim', async () => {
    const store = await fresh();
    const seqs: number[] = [];
    for (const u of ['1', '2', '3', '4']) seqs.push(await store.append(docName('doc'), bytes(u)));
    await store.compact(docName('doc'), bytes('snap'), seqs[2]!, true);
    await store.putCheckpoint(docName('doc'), { seq: seqs[0]!, time: 10 }, bytes('cp1'));
    await store.putCheckpoint(
      docName('doc'),
      { seq: seqs[1]!, time: 20, label: 'v1', by: 'user:a' },
      bytes('n'),
    );
    await store.putCheckpoint(docName('doc'), { seq: seqs[2]!, time: 30 }, bytes('cp3'));
    assert.deepEqual(await store.checkpoints(docName('doc')), [
      { seq: seqs[0]!, time: 10, bytes: 3 },
      { seq: seqs[1]!, time: 20, bytes: 1, label: 'v1', by: 'user:a' },
      { seq: seqs[2]!, time: 30, bytes: 3 },
    ]);
    assert.equal(text((await store.checkpointState(docName('doc'), seqs[2]!))!), 'cp3');
    assert.equal(await store.checkpointState(docName('doc'), 999_999), undefined);
    await store.trimHistory(docName('doc'), seqs[2]!);
    assert.deepEqual(
      (await store.readChanges({ doc: docName('doc'), afterSeq: 0, limit: 10 })).changes.map(
        (e) => e.seq,
      ),
      [seqs[3]!],
    );
    assert.deepEqual(
      (await store.checkpoints(docName('doc'))).map((c) => c.seq),
      [seqs[1]!, seqs[2]!],
    );
    // Trimming past the snapshot keeps what load needs.
    await store.trimHistory(docName('doc'), seqs[3]!);
    assert.deepEqual(
      (await store.readChanges({ doc: docName('doc'), afterSeq: 0, limit: 10 })).changes.map(
        (e) => e.seq,
      ),
      [seqs[3]!],
    );
    assert.deepEqual((await store.load(docName('doc'))).updates.map(text), ['snap', '4']);
  });

  it('removes the history with the document', async () => {
    const store = await fresh();
    const seq = await store.append(docName('doc'), bytes('x'));
    await store.append(docName('doc-2'), bytes('y'));
    await store.compact(docName('doc'), bytes('snap'), seq, true);
    await store.putCheckpoint(docName('doc'), { seq, time: 1, label: 'named' }, bytes('n'));
    await store.remove(docName('doc'));
    assert.deepEqual(await store.checkpoints(docName('doc')), []);
    assert.equal(await store.checkpointState(docName('doc'), seq), undefined);
    assert.deepEqual(
      (await store.readChanges({ afterSeq: 0, limit: 10 })).changes.map((e) => e.doc),
      ['doc-2'],
    );
  });
};

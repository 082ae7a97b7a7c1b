/**
 * The contract every Store adapter must pass (the in-memory one too). Call
 * `storeContract(name, makeStore)` from a test file; `makeStore` returns a fresh,
 * empty, open store each time, and the suite closes every store it makes.
 */
import { validateDocName as docName, type DocName } from '../doc-name.js';
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError, type Store, type StoredDoc } from '../storage/store.js';
import { historyContract } from './history-contract.js';

/** Deterministic opaque bytes: the store must not care what they are. */
export const bytesOf = (label: string, length = 16): Uint8Array => {
  const out = new Uint8Array(length);
  let x = 2166136261;
  for (const ch of label) x = Math.imul(x ^ ch.charCodeAt(0), 16777619) >>> 0;
  for (let i = 0; i < length; i++) {
    x = Math.imul(x ^ i, 16777619) >>> 0;
    out[i] = x & 0xff;
  }
  return out;
};

/** All names a store yields from list(). */
export const listAll = async (store: Store): Promise<DocName[]> => {
  const names: DocName[] = [];
  for await (const name of store.list()) names.push(name);
  return names;
};

const sum = (parts: readonly Uint8Array[]): number => parts.reduce((n, p) => n + p.byteLength, 0);

/** Compares stored updates as plain arrays, so Buffer vs Uint8Array does not matter. */
const plain = (updates: readonly Uint8Array[]): number[][] => updates.map((u) => [...u]);

const assertDoc = (
  actual: StoredDoc,
  expected: { updates: Uint8Array[]; logLength: number; lastSeq: number },
): void => {
  assert.deepEqual(plain(actual.updates), plain(expected.updates));
  assert.equal(actual.logLength, expected.logLength, 'logLength');
  assert.equal(actual.lastSeq, expected.lastSeq, 'lastSeq');
  assert.equal(actual.bytes, sum(expected.updates), 'bytes');
};

export const storeContract = (name: string, makeStore: () => Promise<Store>): void => {
  describe(`Store contract: ${name}`, () => {
    const open: Store[] = [];
    const fresh = async (): Promise<Store> => {
      const store = await makeStore();
      open.push(store);
      return store;
    };
    afterEach(async () => {
      // close() is idempotent by contract; tests that close themselves are fine.
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    it('loads an unknown document as empty', async () => {
      const store = await fresh();
      assertDoc(await store.load(docName('nobody-wrote-this')), {
        updates: [],
        logLength: 0,
        lastSeq: 0,
      });
    });

    it('returns appended updates in append order, byte for byte', async () => {
      const store = await fresh();
      const updates = [
        bytesOf('one'),
        bytesOf('two', 1),
        bytesOf('three', 3000),
        Uint8Array.from({ length: 256 }, (_, i) => i),
      ];
      const seqs: number[] = [];
      for (const u of updates) seqs.push(await store.append(docName('doc'), u));
      assertDoc(await store.load(docName('doc')), {
        updates,
        logLength: updates.length,
        lastSeq: seqs.at(-1)!,
      });
    });

    it("keeps what was appended, not the caller's buffer, over a long log and compactions", async () => {
      const store = await fresh();
      // Sizes from 1 byte to past any small initial buffer; the caller reuses one buffer.
      const scratch = new Uint8Array(5000);
      const kept: Uint8Array[] = [];
      const seqs: number[] = [];
      for (let i = 0; i < 300; i++) {
        const u = bytesOf(`u${i}`, 1 + ((i * 37) % 4000));
        scratch.set(u);
        seqs.push(await store.append(docName('doc'), scratch.subarray(0, u.byteLength)));
        scratch.fill(0xee); // what the store holds must not change with it
        kept.push(u);
        if (i === 149) {
          const snapshot = bytesOf('half', 100);
          await store.compact(docName('doc'), snapshot, seqs[99]!);
          kept.splice(0, 100, snapshot);
        }
      }
      assertDoc(await store.load(docName('doc')), {
        updates: kept,
        logLength: 200,
        lastSeq: seqs.at(-1)!,
      });
    });
    it('appends to several documents with records in one batch (appendAll)', async () => {
      const store = await fresh();
      const first = await store.append(docName('a'), bytesOf('a0'));
      const seqs = await store.appendAll!(
        [
          { doc: docName('a'), update: bytesOf('a1') },
          { doc: docName('b'), update: bytesOf('b1') },
        ],
        [{ key: 'k', value: bytesOf('record') }],
      );
      assert.equal(seqs.length, 2);
      assert.ok(
        seqs[0]! > first && seqs[1]! > seqs[0]!,
        `increasing seqs: ${first}, ${seqs.join(', ')}`,
      );
      assertDoc(await store.load(docName('a')), {
        updates: [bytesOf('a0'), bytesOf('a1')],
        logLength: 2,
        lastSeq: seqs[0]!,
      });
      assertDoc(await store.load(docName('b')), {
        updates: [bytesOf('b1')],
        logLength: 1,
        lastSeq: seqs[1]!,
      });
      assert.deepEqual([...((await store.getRecord!('k')) ?? [])], [...bytesOf('record')]);
    });

    it('keeps call order for concurrent appends to one document', async () => {
      const store = await fresh();
      const updates = Array.from({ length: 200 }, (_, i) => bytesOf(`u${i}`, 1 + (i % 7)));
      const seqs = await Promise.all(updates.map((u) => store.append(docName('doc'), u)));
      assertDoc(await store.load(docName('doc')), {
        updates,
        logLength: updates.length,
        lastSeq: Math.max(...seqs),
      });
    });

    it('hands out strictly increasing sequence numbers, across documents too', async () => {
      const store = await fresh();
      const sequential: number[] = [];
      for (let i = 0; i < 20; i++)
        sequential.push(await store.append(docName(`doc-${i % 3}`), bytesOf(`s${i}`)));
      const concurrent = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.append(docName(`doc-${i % 5}`), bytesOf(`c${i}`)),
        ),
      );
      const all = [...sequential, ...concurrent];
      for (let i = 1; i < all.length; i++)
        assert.ok(all[i]! > all[i - 1]!, `seq ${all[i]} after ${all[i - 1]}`);
      assert.ok(all[0]! > 0, 'sequence numbers start above 0 (0 means "none")');
    });

    it('reports a last sequence number no entry exceeds, below every later one', async () => {
      const store = await fresh();
      const before = await store.lastSeq();
      const a = await store.append(docName('doc-a'), bytesOf('a'));
      assert.ok(a > before, `the entry (${a}) comes after lastSeq (${before})`);
      const mark = await store.lastSeq();
      assert.ok(mark >= a, `lastSeq ${mark} covers the entry ${a}`);
      const b = await store.append(docName('doc-b'), bytesOf('b'));
      assert.ok(b > mark, `a later entry (${b}) comes after lastSeq (${mark})`);
    });

    it('compaction replaces the snapshot and drops exactly the log entries up to throughSeq', async () => {
      const store = await fresh();
      const early = [bytesOf('e1'), bytesOf('e2'), bytesOf('e3')];
      const earlySeqs: number[] = [];
      for (const u of early) earlySeqs.push(await store.append(docName('doc'), u));
      const late = [bytesOf('l1'), bytesOf('l2')];
      const lateSeqs: number[] = [];
      for (const u of late) lateSeqs.push(await store.append(docName('doc'), u));

      const snapshot1 = bytesOf('snapshot-1', 40);
      await store.compact(docName('doc'), snapshot1, earlySeqs.at(-1)!);
      assertDoc(await store.load(docName('doc')), {
        updates: [snapshot1, ...late],
        logLength: late.length,
        lastSeq: lateSeqs.at(-1)!,
      });

      // A second compaction replaces the first snapshot, it does not add to it.
      const later = bytesOf('l3');
      const laterSeq = await store.append(docName('doc'), later);
      const snapshot2 = bytesOf('snapshot-2', 60);
      await store.compact(docName('doc'), snapshot2, lateSeqs.at(-1)!);
      assertDoc(await store.load(docName('doc')), {
        updates: [snapshot2, later],
        logLength: 1,
        lastSeq: laterSeq,
      });

      // Compacting through the last seq leaves only the snapshot (lastSeq 0: no log).
      const snapshot3 = bytesOf('snapshot-3', 8);
      await store.compact(docName('doc'), snapshot3, laterSeq);
      assertDoc(await store.load(docName('doc')), {
        updates: [snapshot3],
        logLength: 0,
        lastSeq: 0,
      });

      // Appends after a full compaction still get higher seqs and follow the snapshot.
      const after = bytesOf('after');
      const afterSeq = await store.append(docName('doc'), after);
      assert.ok(afterSeq > laterSeq);
      assertDoc(await store.load(docName('doc')), {
        updates: [snapshot3, after],
        logLength: 1,
        lastSeq: afterSeq,
      });
    });

    it('keeps appends that race with a compaction', async () => {
      const store = await fresh();
      const first = await store.append(docName('doc'), bytesOf('first'));
      const racing = [bytesOf('r1'), bytesOf('r2'), bytesOf('r3')];
      const snapshot = bytesOf('snap');
      const [, ...seqs] = await Promise.all([
        store.compact(docName('doc'), snapshot, first),
        ...racing.map((u) => store.append(docName('doc'), u)),
      ]);
      assertDoc(await store.load(docName('doc')), {
        updates: [snapshot, ...racing],
        logLength: racing.length,
        lastSeq: Math.max(...seqs),
      });
    });

    it('lists every document exactly once, in key order, including snapshot-only and log-only ones', async () => {
      const store = await fresh();
      assert.deepEqual(await listAll(store), []);
      for (let i = 0; i < 5; i++) await store.append(docName('log-only'), bytesOf(`x${i}`));
      await store.compact(docName('snapshot-only'), bytesOf('s'), 0);
      const both = await store.append(docName('both'), bytesOf('b1'));
      await store.append(docName('both'), bytesOf('b2'));
      await store.compact(docName('both'), bytesOf('bs'), both);
      await store.append(docName('b'), bytesOf('short'));
      await store.append(docName('zz/deep/name'), bytesOf('deep'));
      assert.deepEqual(await listAll(store), [
        'b',
        'both',
        'log-only',
        'snapshot-only',
        'zz/deep/name',
      ]);
    });

    it('keeps documents whose names are prefixes of each other apart', async () => {
      const store = await fresh();
      const names = ['a', 'a/b', 'ab', 'a.b', 'a-', 'a/b/c', 'aa'].map(docName);
      const written = new Map<string, { updates: Uint8Array[]; seqs: number[] }>();
      // Interleave the writes so that neighbouring keys really are mixed on disk.
      for (let round = 0; round < 3; round++) {
        for (const doc of names) {
          const update = bytesOf(`${doc}#${round}`, 5 + round);
          const seq = await store.append(doc, update);
          const entry = written.get(doc) ?? { updates: [], seqs: [] };
          entry.updates.push(update);
          entry.seqs.push(seq);
          written.set(doc, entry);
        }
      }
      for (const doc of names) {
        const { updates, seqs } = written.get(doc)!;
        assertDoc(await store.load(doc), { updates, logLength: 3, lastSeq: seqs.at(-1)! });
      }
      assert.deepEqual(await listAll(store), [...names].sort());

      // Compacting 'a' through the very last seq handed out touches no other document.
      const snapshot = bytesOf('a-snapshot');
      const lastSeq = Math.max(...[...written.values()].flatMap((w) => w.seqs));
      await store.compact(docName('a'), snapshot, lastSeq);
      assertDoc(await store.load(docName('a')), { updates: [snapshot], logLength: 0, lastSeq: 0 });
      for (const doc of names.filter((d) => d !== 'a')) {
        const { updates, seqs } = written.get(doc)!;
        assertDoc(await store.load(doc), { updates, logLength: 3, lastSeq: seqs.at(-1)! });
      }
      // And a snapshot of 'a/b' is not mistaken for anything of 'a'.
      await store.compact(docName('a/b'), bytesOf('ab-snapshot'), 0);
      assertDoc(await store.load(docName('a')), { updates: [snapshot], logLength: 0, lastSeq: 0 });
      assert.deepEqual(await listAll(store), [...names].sort());
    });

    it('removes one document whole (snapshot and log), and nothing of its neighbours', async () => {
      const store = await fresh();
      const names = ['a', 'a/b', 'ab'].map(docName);
      for (const doc of names) await store.append(doc, bytesOf(`${doc}#1`));
      await store.compact(
        docName('a'),
        bytesOf('a-snapshot'),
        await store.append(docName('a'), bytesOf('a#2')),
      );
      const third = await store.append(docName('a'), bytesOf('a#3'), [
        { key: 'fn\0kept', value: bytesOf('r') },
      ]);
      assert.ok(third > 0);
      await store.remove(docName('a'));
      assertDoc(await store.load(docName('a')), { updates: [], logLength: 0, lastSeq: 0 });
      assert.deepEqual(await listAll(store), ['a/b', 'ab']);
      for (const doc of ['a/b', 'ab'].map(docName))
        assert.deepEqual(plain((await store.load(doc)).updates), plain([bytesOf(`${doc}#1`)]));
      assert.deepEqual([...(await store.getRecord('fn\0kept'))!], [...bytesOf('r')]);
      // Written again after a removal, it starts from nothing.
      const again = await store.append(docName('a'), bytesOf('a#4'));
      assertDoc(await store.load(docName('a')), {
        updates: [bytesOf('a#4')],
        logLength: 1,
        lastSeq: again,
      });
      await store.remove(docName('never-written')); // a no-op, not an error
    });

    it('keeps a deletion: its tombstone until dropped, and one line in the change index', async () => {
      const store = await fresh();
      await store.append(docName('gone'), bytesOf('gone#1'));
      const kept = await store.append(docName('kept'), bytesOf('kept#1'));
      const first = await store.remove(docName('gone'), {
        writers: ['user:a'],
        tombstone: bytesOf('t1'),
      });
      assert.ok(first > kept, 'the deletion takes a new seq');
      assert.deepEqual(await listAll(store), ['kept']);
      const tombstones = async () => {
        const out = [];
        for await (const t of store.tombstones()) out.push({ ...t, tombstone: [...t.tombstone] });
        return out;
      };
      assert.deepEqual(await tombstones(), [
        { doc: 'gone', seq: first, tombstone: [...bytesOf('t1')] },
      ]);
      // Readers of the history do not see it; the change feed asks for it.
      assert.deepEqual(
        (await store.readChanges({ afterSeq: 0, limit: 10 })).changes.map((c) => c.doc),
        ['kept'],
      );
      const feed = await store.readChanges({ afterSeq: 0, limit: 10, deletions: true });
      assert.deepEqual(
        feed.changes.map((c) => [c.doc, c.deleted ?? false, c.writers]),
        [
          ['kept', false, []],
          ['gone', true, ['user:a']],
        ],
      );
      // Written again, then deleted again: one tombstone and one line, the newest.
      const again = await store.append(docName('gone'), bytesOf('gone#2'));
      const one = await store.readChanges({
        doc: docName('gone'),
        afterSeq: 0,
        limit: 10,
        deletions: true,
      });
      assert.deepEqual(
        one.changes.map((c) => [c.seq, c.deleted ?? false]),
        [
          [first, true],
          [again, false],
        ],
      );
      const second = await store.remove(docName('gone'), {
        writers: ['user:b'],
        tombstone: bytesOf('t2'),
      });
      assert.deepEqual(
        (await store.readChanges({ afterSeq: 0, limit: 10, deletions: true })).changes.map(
          (c) => c.seq,
        ),
        [kept, second],
      );
      await store.dropTombstone(docName('gone'), first); // not the current one: kept
      assert.equal((await tombstones()).length, 1);
      await store.dropTombstone(docName('gone'), second);
      assert.deepEqual(await tombstones(), []);
      assert.deepEqual(
        (await store.readChanges({ afterSeq: 0, limit: 10, deletions: true })).changes.map(
          (c) => c.doc,
        ),
        ['kept'],
      );
    });

    it('lists documents a page at a time with the size load reads and the time of the last change', async () => {
      const store = await fresh();
      const summary = async (doc: DocName) =>
        (await store.docs({ prefix: doc, limit: 1 })).find((d) => d.name === doc);
      const before = Date.now();
      const a = [
        await store.append(docName('a/1'), bytesOf('a1', 40)),
        await store.append(docName('a/1'), bytesOf('a2', 7)),
      ];
      await store.append(docName('a/2'), bytesOf('b', 5));
      await store.append(docName('b/1'), bytesOf('c', 9));
      await store.append(docName('rec'), null, [{ key: 'k', value: bytesOf('r') }]);
      const first = await summary(docName('a/1'));
      assert.equal(first?.bytes, (await store.load(docName('a/1'))).bytes);
      assert.ok(first.lastChange >= before && first.lastChange <= Date.now());
      assert.deepEqual(
        (await store.docs({ limit: 10 })).map((d) => d.name),
        ['a/1', 'a/2', 'b/1'],
        'records are no documents',
      );
      assert.deepEqual(
        (await store.docs({ prefix: 'a/', limit: 10 })).map((d) => d.name),
        ['a/1', 'a/2'],
      );
      assert.deepEqual(
        (await store.docs({ prefix: 'a/', after: 'a/1', limit: 10 })).map((d) => d.name),
        ['a/2'],
      );
      assert.deepEqual(
        (await store.docs({ after: 'a/2', limit: 1 })).map((d) => d.name),
        ['b/1'],
      );
      assert.deepEqual(await store.docs({ prefix: 'a/', after: 'a/2', limit: 10 }), []);

      // A write moves the time; a compaction (with or without the log kept) changes the size, not the time.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const third = await store.append(docName('a/1'), bytesOf('a3', 11));
      const written = await summary(docName('a/1'));
      assert.ok(written!.lastChange > first.lastChange, 'a write moves lastChange');
      assert.equal(written!.bytes, (await store.load(docName('a/1'))).bytes);
      await store.compact(docName('a/1'), bytesOf('snap', 30), a[1]!, true);
      const compacted = await summary(docName('a/1'));
      assert.equal(
        compacted?.bytes,
        (await store.load(docName('a/1'))).bytes,
        'snapshot plus the entry after it',
      );
      assert.equal(compacted?.bytes, 30 + 11);
      assert.equal(compacted?.lastChange, written!.lastChange);
      await store.compact(docName('a/1'), bytesOf('snap2', 50), third);
      assert.deepEqual(await summary(docName('a/1')), {
        name: 'a/1',
        bytes: 50,
        lastChange: written!.lastChange,
      });

      await store.remove(docName('a/1'));
      assert.equal(await summary(docName('a/1')), undefined, 'a removed document is not listed');
      await store.append(docName('a/1'), bytesOf('again', 3));
      assert.equal(
        (await summary(docName('a/1')))?.bytes,
        3,
        'a new document under the name starts from 0',
      );
    });

    it('stores records with an update and reads them back, apart from documents', async () => {
      const store = await fresh();
      assert.ok(store.getRecord, 'this store supports records');
      assert.equal(await store.getRecord('fn\0nobody'), undefined);
      const update = bytesOf('with-record');
      const seq = await store.append(docName('doc'), update, [
        { key: 'fn\0k1', value: bytesOf('result-1') },
      ]);
      assert.ok(seq > 0);
      assert.deepEqual([...(await store.getRecord('fn\0k1'))!], [...bytesOf('result-1')]);
      // Records only: no log entry, no sequence number, no document.
      assert.equal(
        await store.append(docName('other'), null, [{ key: 'fn\0k2', value: bytesOf('result-2') }]),
        0,
      );
      assert.deepEqual([...(await store.getRecord('fn\0k2'))!], [...bytesOf('result-2')]);
      assertDoc(await store.load(docName('doc')), {
        updates: [update],
        logLength: 1,
        lastSeq: seq,
      });
      assertDoc(await store.load(docName('other')), { updates: [], logLength: 0, lastSeq: 0 });
      assert.deepEqual(await listAll(store), ['doc']);
    });

    it('drains pending appends on close', async () => {
      const store = await fresh();
      const events: string[] = [];
      const appends = Array.from({ length: 100 }, (_, i) =>
        store.append(docName(`doc-${i % 4}`), bytesOf(`p${i}`)).then((seq) => {
          events.push('append');
          return seq;
        }),
      );
      await store.close();
      events.push('closed');
      const results = await Promise.allSettled(appends);
      assert.deepEqual(
        results.filter((r) => r.status === 'rejected'),
        [],
        'every append made before close is written',
      );
      assert.equal(
        events.indexOf('closed'),
        appends.length,
        'close resolved only after every pending append',
      );
    });

    it('rejects appends and compactions after close with a StoreError', async () => {
      const store = await fresh();
      await store.append(docName('doc'), bytesOf('before'));
      await store.close();
      await assert.rejects(store.append(docName('doc'), bytesOf('after')), StoreError);
      await assert.rejects(store.compact(docName('doc'), bytesOf('snap'), 1), StoreError);
      await store.close(); // a second close is harmless
    });

    historyContract(fresh);
  });
};

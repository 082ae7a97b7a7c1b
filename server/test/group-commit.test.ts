import { docName } from './helpers/doc-name.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createGroupCommit, type BatchOp } from '../src/storage/group-commit.js';
import { createLevelStore, createMemoryStore } from '../src/storage/level-store.js';
import { tempDir } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';
import { bytesOf } from '../src/testing/index.js';

const put = (key: string): BatchOp => ({ type: 'put', key, value: new Uint8Array([1]) });

/** A promise with its resolve/reject outside, to hold a batch in flight. */
const deferred = () => {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/** Settles to 'ok' / 'failed' so a test can look at an outcome without awaiting it forever. */
const outcome = (p: Promise<unknown>) => {
  const state = { value: 'pending' as 'pending' | 'ok' | 'failed' };
  p.then(
    () => (state.value = 'ok'),
    () => (state.value = 'failed'),
  );
  return state;
};

describe('group commit', () => {
  const dirs: Array<{ remove: () => Promise<void> }> = [];
  after(async () => {
    await Promise.all(dirs.map((d) => d.remove()));
  });

  it('writes 1000 concurrent appends to many documents in far fewer batches (LevelDB)', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const batches: number[] = [];
    const store = await createLevelStore(dir.path, {
      onBatch: (ops, _ms, error) => {
        assert.equal(error, undefined);
        batches.push(ops);
      },
    });
    try {
      const docs = 50;
      const seqs = await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          store.append(docName(`doc-${i % docs}`), bytesOf(`${i}`)),
        ),
      );
      assert.equal(new Set(seqs).size, 1000);
      assert.ok(batches.length <= 10, `1000 appends took ${batches.length} batches`);
      // Three operations per append: the log entry, its change-index line (history, change
      // feed) and its document's summary change (the document list; one put per document).
      assert.equal(
        batches.reduce((a, b) => a + b, 0),
        3000,
        'every append is in exactly one reported batch',
      );
      for (let d = 0; d < docs; d++)
        assert.equal((await store.load(docName(`doc-${d}`))).logLength, 1000 / docs);
    } finally {
      await store.close();
    }
  });

  it('gathers appends that arrive while a batch is in flight into the next batch', async () => {
    // Appends trickle in from separate timers while LevelDB is writing; they
    // must share batches rather than cost one write each.
    const dir = await tempDir();
    dirs.push(dir);
    let batches = 0;
    const store = await createLevelStore(dir.path, { fsync: true, onBatch: () => batches++ });
    try {
      const appends: Promise<number>[] = [];
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 25; i++)
          appends.push(store.append(docName(`doc-${i}`), bytesOf(`${round}/${i}`)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(appends);
      assert.ok(batches < appends.length / 10, `${appends.length} appends took ${batches} batches`);
    } finally {
      await store.close();
    }
  });

  it('rejects exactly the waiters of a failed batch; earlier and later batches succeed', async () => {
    const batches: string[][] = [];
    const gates: Array<ReturnType<typeof deferred>> = [];
    const commit = createGroupCommit({
      write: async (ops) => {
        batches.push(ops.map((o) => o.key));
        const gate = deferred();
        gates.push(gate);
        await gate.promise;
      },
    });
    // Batch 1: a alone (flushes on the next turn); batch 2: b, c (arrive while 1 writes).
    const a = outcome(commit.submit([put('a')]));
    await waitFor(() => gates.length === 1, 'batch 1 to start');
    const b = outcome(commit.submit([put('b')]));
    const c = outcome(commit.submit([put('c1'), put('c2')]));
    gates[0]!.resolve();
    await waitFor(() => gates.length === 2, 'batch 2 to start');
    assert.equal(a.value, 'ok');
    assert.deepEqual(batches[1], ['b', 'c1', 'c2'], 'b and c share the second batch');
    // Batch 3: d, queued while batch 2 is in flight; batch 2 then fails.
    const d = outcome(commit.submit([put('d')]));
    gates[1]!.reject(new Error('disk full'));
    await waitFor(() => gates.length === 3, 'batch 3 to start');
    await waitFor(
      () => b.value !== 'pending' && c.value !== 'pending',
      'batch 2 waiters to be answered',
    );
    assert.equal(b.value, 'failed');
    assert.equal(c.value, 'failed');
    assert.equal(d.value, 'pending', 'the failure of batch 2 does not touch batch 3');
    assert.deepEqual(batches[2], ['d']);
    gates[2]!.resolve();
    await waitFor(() => d.value !== 'pending', 'batch 3 to be answered');
    assert.equal(d.value, 'ok');
    // The writer is not stuck after a failure.
    const e = commit.submit([put('e')]);
    await waitFor(() => gates.length === 4, 'batch 4 to start');
    gates[3]!.resolve();
    await e;
    await commit.drain();
    assert.equal(a.value, 'ok', 'a stays answered as written');
  });

  it('reports each batch, failed ones with their error, through onBatch', async () => {
    const reports: Array<{ ops: number; error: unknown }> = [];
    let fail = true;
    const commit = createGroupCommit({
      write: async () => {
        if (fail) throw new Error('boom');
      },
      onBatch: (ops, ms, error) => {
        assert.ok(ms >= 0);
        reports.push({ ops, error });
      },
    });
    await assert.rejects(
      Promise.all([commit.submit([put('x')]), commit.submit([put('y'), put('z')])]),
      /boom/,
    );
    fail = false;
    await commit.submit([put('w')]);
    assert.equal(reports.length, 2);
    assert.equal(reports[0]!.ops, 3);
    assert.match(String(reports[0]!.error), /boom/);
    assert.deepEqual(reports[1], { ops: 1, error: undefined });
  });

  it('does not let documents wait on each other beyond sharing a batch', async () => {
    // A slow batch holds only its own waiters: a waiter is answered when its
    // batch is written, not when the queue empties.
    const batches: string[][] = [];
    const gates: Array<ReturnType<typeof deferred>> = [];
    const commit = createGroupCommit({
      write: async (ops) => {
        batches.push([...new Set(ops.map((o) => o.key.split('/')[0]!))]);
        const gate = deferred();
        gates.push(gate);
        await gate.promise;
      },
      maxOpsPerBatch: 100,
    });
    const small = outcome(commit.submit([put('small/1')]));
    await waitFor(() => gates.length === 1, 'batch 1 to start');
    // A huge compaction of another document goes alone (over maxOpsPerBatch)...
    const huge = outcome(commit.submit(Array.from({ length: 500 }, (_, i) => put(`huge/${i}`))));
    const other = outcome(commit.submit([put('other/1')]));
    gates[0]!.resolve();
    await waitFor(() => gates.length === 2, 'batch 2 to start');
    assert.equal(small.value, 'ok', 'small is answered as soon as its own batch is written');
    assert.equal(huge.value, 'pending');
    // ...and the next document's append is written right after it, not held behind more.
    gates[1]!.resolve();
    await waitFor(() => gates.length === 3, 'batch 3 to start');
    assert.equal(huge.value, 'ok');
    assert.equal(other.value, 'pending');
    gates[2]!.resolve();
    await waitFor(() => other.value !== 'pending', 'batch 3 to be answered');
    assert.equal(other.value, 'ok');
    assert.deepEqual(batches, [['small'], ['huge'], ['other']]);
  });

  it('splits batches at maxOpsPerBatch without splitting one waiter', async () => {
    const sizes: number[] = [];
    const commit = createGroupCommit({
      write: async (ops) => void sizes.push(ops.length),
      maxOpsPerBatch: 10,
    });
    await Promise.all([
      ...Array.from({ length: 25 }, (_, i) => commit.submit([put(`k${i}`)])),
      commit.submit(Array.from({ length: 12 }, (_, i) => put(`big${i}`))),
    ]);
    assert.deepEqual(sizes, [10, 10, 5, 12]);
  });

  it('with a window, plain submits wait for each other until an urgent one (or drain) starts the batch', async () => {
    const batches: string[][] = [];
    const commit = createGroupCommit({
      write: async (ops) => void batches.push(ops.map((op) => op.key)),
      windowMs: 60_000, // never ends by itself within the test
    });
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const a = outcome(commit.submit([put('a')]));
    await turn();
    const b = outcome(commit.submit([put('b')]));
    for (let i = 0; i < 5; i++) await turn();
    assert.deepEqual(batches, [], 'nothing written while the window is open');
    assert.equal(a.value, 'pending');
    await commit.submit([put('c')], true);
    assert.deepEqual(batches, [['a', 'b', 'c']], 'the urgent write took the waiting ones along');
    assert.equal(a.value, 'ok');
    assert.equal(b.value, 'ok');

    const d = commit.submit([put('d')]);
    await turn();
    assert.deepEqual(batches.length, 1);
    await commit.drain();
    await d;
    assert.deepEqual(batches, [['a', 'b', 'c'], ['d']], 'drain does not wait for the window');
  });

  it('LevelDB with a commit window: an append waits for it, an append with records does not', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const batches: number[] = [];
    const store = await createLevelStore(dir.path, {
      commitWindowMs: 60_000,
      onBatch: (ops) => batches.push(ops),
    });
    try {
      const plain = outcome(store.append(docName('w'), bytesOf('plain')));
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(plain.value, 'pending');
      assert.deepEqual(batches, []);
      await store.append(docName('w'), bytesOf('gated'), [
        { key: 'inv/1', value: new Uint8Array([1]) },
      ]);
      assert.equal(plain.value, 'ok');
      assert.equal(batches.length, 1, 'both in one batch');
      assert.equal((await store.load(docName('w'))).logLength, 2);
    } finally {
      await store.close();
    }
  });

  it('on a memory store, appends of one document are answered in batch order while other documents write', async () => {
    const order: string[] = [];
    const store = await createMemoryStore();
    try {
      await Promise.all(
        Array.from({ length: 300 }, (_, i) => {
          const doc = docName(`doc-${i % 3}`);
          return store.append(doc, bytesOf(`${i}`)).then((seq) => order.push(`${doc}:${seq}`));
        }),
      );
      for (const doc of ['doc-0', 'doc-1', 'doc-2']) {
        const seqs = order
          .filter((o) => o.startsWith(`${doc}:`))
          .map((o) => Number(o.split(':')[1]));
        assert.deepEqual(
          seqs,
          [...seqs].sort((x, y) => x - y),
          `${doc} answered in seq order`,
        );
      }
    } finally {
      await store.close();
    }
  });
});

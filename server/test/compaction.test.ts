/**
 * Compaction merges a document's update log into one snapshot. It must change
 * nothing a client can observe (content, state vector, delete set) and must
 * actually shrink the log. Real LevelDB in a temp dir throughout.
 */
import type { DocName } from '../src/doc-name.js';
import { docName } from './helpers/doc-name.js';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { createLevelStore } from '../src/storage/level-store.js';
import type { Store } from '../src/storage/store.js';
import { delegateStore } from './helpers/store-wrapper.js';
import { rawClient, stockClient, type RawClient } from './helpers/clients.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';
import { FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';
import { prng } from './helpers/fuzz.js';

/** Cleanups of one test, run last-registered first (clients, then nodes, then stores). */
const cleanups = new WeakMap<TestContext, Array<() => unknown>>();
const defer = (t: TestContext, cleanup: () => unknown): void => {
  let list = cleanups.get(t);
  if (!list) {
    const fns: Array<() => unknown> = [];
    cleanups.set(t, (list = fns));
    t.after(async () => {
      for (const fn of fns.reverse()) await fn();
    });
  }
  list.push(cleanup);
};

const levelStore = async (t: TestContext): Promise<{ path: string; store: Store }> => {
  const dir = await tempDir();
  defer(t, () => dir.remove());
  const store = await createLevelStore(dir.path);
  defer(t, () => store.close());
  return { path: dir.path, store };
};

const node = async (
  t: TestContext,
  options: Parameters<typeof startNode>[0],
): Promise<TestNode> => {
  const started = await startNode(options);
  defer(t, () => started.close());
  return started;
};

/** One random edit (insert, delete, map set, list push) on `doc`, returned as an update. */
const randomEdit = (doc: Y.Doc, random: () => number, i: number): Uint8Array => {
  const before = Y.encodeStateVector(doc);
  const text = doc.getText('text');
  const r = random();
  if (r < 0.45 || text.length < 5) text.insert(Math.floor(random() * (text.length + 1)), `w${i} `);
  else if (r < 0.65) text.delete(Math.floor(random() * (text.length - 3)), 3);
  else if (r < 0.85)
    doc.getMap('map').set(`k${Math.floor(random() * 20)}`, { i, at: Math.floor(random() * 1000) });
  else doc.getArray('list').push([i]);
  return Y.encodeStateAsUpdate(doc, before);
};

/** What a client observes, derived from the full state as an update (content + state vector + delete set). */
const observe = (doc: Y.Doc) => {
  const copy = new Y.Doc();
  Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc));
  return {
    text: copy.getText('text').toString(),
    map: copy.getMap('map').toJSON(),
    list: copy.getArray('list').toJSON(),
    stateVector: [...Y.decodeStateVector(Y.encodeStateVector(copy))].sort((a, b) => a[0] - b[0]),
    snapshot: Y.snapshot(copy),
  };
};
type Observed = ReturnType<typeof observe>;

const assertSame = (actual: Observed, expected: Observed, what: string): void => {
  assert.equal(actual.text, expected.text, `${what}: text`);
  assert.deepEqual(actual.map, expected.map, `${what}: map`);
  assert.deepEqual(actual.list, expected.list, `${what}: list`);
  assert.deepEqual(actual.stateVector, expected.stateVector, `${what}: state vector`);
  assert.ok(Y.equalSnapshots(actual.snapshot, expected.snapshot), `${what}: delete set`);
};

/** What a fresh stock client is served for `name`. */
const served = async (n: TestNode, name: string): Promise<Observed> => {
  const client = await stockClient(n.wsUrl, name);
  try {
    return observe(client.doc);
  } finally {
    client.destroy();
  }
};

/** What the store holds for `name`, applied to an empty doc. */
const stored = async (store: Store, name: DocName): Promise<Observed> => {
  const doc = new Y.Doc();
  for (const update of (await store.load(name)).updates) Y.applyUpdate(doc, update);
  return observe(doc);
};

/**
 * Sends `count` random edits from `client`, each after the previous one's ack: the
 * node stores the updates of one turn as one log entry, and these tests need a log
 * of one entry per edit to compact.
 */
const edit = async (
  client: RawClient,
  author: Y.Doc,
  random: () => number,
  count: number,
  from = 0,
): Promise<void> => {
  for (let i = from; i < from + count; i++) {
    const seq = client.sendUpdate(randomEdit(author, random, i));
    await waitFor(() => client.savedSeq() >= seq, `ack of edit ${i}`, 10_000, 1);
  }
};

describe('compaction', () => {
  it('leaves the served state identical and shrinks the log (explicit compaction, seed 1)', async (t) => {
    const { path, store } = await levelStore(t);
    const n = await node(t, { store, compactAfterUpdates: 1_000_000, idleUnloadMs: 30 });
    const author = new Y.Doc();
    const writer = await rawClient(n.wsUrl, 'manual');
    await edit(writer, author, prng(1), 150);
    writer.close();

    const before = await served(n, 'manual');
    assertSame(before, observe(author), 'served before compaction vs author');
    const logBefore = (await store.load(docName('manual'))).logLength;
    assert.ok(logBefore >= 150, `log holds every update before compaction (${logBefore})`);

    await n.server.hub.withRoom(docName('manual'), (room) => room.compact());
    const after = await store.load(docName('manual'));
    assert.equal(after.logLength, 0, 'the log is merged away');
    assert.equal(after.updates.length, 1, 'only the snapshot is left');
    assertSame(await served(n, 'manual'), before, 'served after compaction');
    assertSame(await stored(store, docName('manual')), before, 'stored after compaction');

    // Loaded again from the snapshot alone, after an idle unload and after a restart.
    await waitFor(() => n.server.hub.peek(docName('manual')) === undefined, 'the idle unload');
    assertSame(await served(n, 'manual'), before, 'served after reload from the snapshot');
    await n.close();
    const reopened = await createLevelStore(path);
    const restarted = await node(t, { store: reopened });
    assertSame(await served(restarted, 'manual'), before, 'served after a restart');
  });

  it('compacts on its own after compactAfterUpdates and loses nothing written meanwhile (seeds 2, 3)', async (t) => {
    const { path, store } = await levelStore(t);
    const compactAfterUpdates = 20;
    const n = await node(t, { store, compactAfterUpdates });
    const watcher = await stockClient(n.wsUrl, 'auto');
    defer(t, () => watcher.destroy());

    // Two writers interleave, so compactions run while updates keep arriving.
    const authors = [new Y.Doc(), new Y.Doc()];
    const writers = await Promise.all(authors.map(() => rawClient(n.wsUrl, 'auto')));
    defer(t, () => writers.forEach((w) => w.close()));
    const randoms = [prng(2), prng(3)];
    for (let round = 0; round < 10; round++) {
      await Promise.all(writers.map((w, k) => edit(w, authors[k]!, randoms[k]!, 20, round * 20)));
    }
    const expected = new Y.Doc();
    for (const a of authors) Y.applyUpdate(expected, Y.encodeStateAsUpdate(a));

    await waitFor(
      async () => (await store.load(docName('auto'))).logLength < compactAfterUpdates,
      'the log to be compacted',
    );
    const compacted = await store.load(docName('auto'));
    assert.ok(
      compacted.updates.length <= compactAfterUpdates,
      `${compacted.updates.length} stored updates for 400 edits`,
    );
    const room = n.server.hub.peek(docName('auto'));
    assert.ok(room);
    await waitFor(
      async () => room.logLength === (await store.load(docName('auto'))).logLength,
      'settled bookkeeping',
    );
    assert.equal(
      room.logLength,
      (await store.load(docName('auto'))).logLength,
      "the room's log count matches the store",
    );
    assert.ok(
      (await n.server.metrics.compactions.get()).values.some(
        (v) => v.labels.result === 'ok' && v.value > 0,
      ),
      'compactions are counted',
    );
    assert.ok(
      !(await n.server.metrics.compactions.get()).values.some(
        (v) => v.labels.result === 'error' && v.value > 0,
      ),
    );

    const want = observe(expected);
    assertSame(observe(watcher.doc), want, 'a client that watched all along');
    assertSame(await served(n, 'auto'), want, 'a fresh client');
    assertSame(await stored(store, docName('auto')), want, 'the store');

    await n.close();
    const reopened = await createLevelStore(path);
    const restarted = await node(t, { store: reopened });
    assertSame(await served(restarted, 'auto'), want, 'after a restart');
  });

  it('a document loaded with a long log is compacted at load (seed 4)', async (t) => {
    const { store } = await levelStore(t);
    const author = new Y.Doc();
    const random = prng(4);
    for (let i = 0; i < 60; i++) await store.append(docName('long'), randomEdit(author, random, i));
    const n = await node(t, { store, compactAfterUpdates: 25 });

    assertSame(await served(n, 'long'), observe(author), 'served');
    await waitFor(
      async () => (await store.load(docName('long'))).logLength === 0,
      'the compaction at load',
    );
    assert.equal((await store.load(docName('long'))).updates.length, 1);
    assertSame(await stored(store, docName('long')), observe(author), 'stored');
  });

  it('a failed compaction keeps the log as it was and the next one succeeds', async (t) => {
    const { store: inner } = await levelStore(t);
    let failNext = true;
    const store = delegateStore(inner, {
      async compact(doc, snapshot, throughSeq) {
        if (failNext) {
          failNext = false;
          await sleep(5);
          throw new Error('injected: compaction write failed');
        }
        return inner.compact(doc, snapshot, throughSeq);
      },
    });
    const n = await node(t, { store, compactAfterUpdates: 1_000_000 });
    const author = new Y.Doc();
    const writer = await rawClient(n.wsUrl, 'retry');
    defer(t, () => writer.close());
    await edit(writer, author, prng(5), 30);

    await n.server.hub.withRoom(docName('retry'), (room) => room.compact());
    assert.equal(
      (await inner.load(docName('retry'))).logLength,
      30,
      'the failed compaction dropped nothing',
    );
    assertSame(await stored(inner, docName('retry')), observe(author), 'stored after the failure');
    await n.server.hub.withRoom(docName('retry'), (room) => room.compact());
    assert.equal((await inner.load(docName('retry'))).logLength, 0);
    assertSame(await served(n, 'retry'), observe(author), 'served after the retry');
  });

  it('keeps a function write that is stored but not yet applied when a compaction runs between', async (t) => {
    const { store: inner } = await levelStore(t);
    // Runs once, after the store wrote a multi-document call's batch and before the
    // rooms applied it: the one moment a log entry is durable but not in the Y.Doc.
    let betweenWriteAndApply: (() => Promise<void>) | undefined;
    const store = delegateStore(inner, {
      async appendAll(entries, records) {
        const seqs = await inner.appendAll(entries, records);
        const hook = betweenWriteAndApply;
        betweenWriteAndApply = undefined;
        if (hook) await hook();
        return seqs;
      },
    });
    const n = await node(t, {
      store,
      functionsDir: FIXTURE_FUNCTIONS,
      compactAfterUpdates: 1_000_000,
    });
    for (const [id, balance] of [
      ['a', 100],
      ['b', 0],
    ] as const)
      assert.equal((await invoke(n.url, 'openAccount', { id, balance })).status, 200);
    let compacted = false;
    betweenWriteAndApply = async () => {
      await n.server.hub.withRoom(docName('accounts/b'), (room) => room.compact());
      compacted = true;
    };
    const moved = await invoke(n.url, 'transfer', { from: 'a', to: 'b', amount: 30 });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.ok(compacted, 'the compaction ran between the write and the apply');
    // What a crash now would leave: the stored state alone must hold the transfer.
    const stored = new Y.Doc();
    for (const update of (await inner.load(docName('accounts/b'))).updates)
      Y.applyUpdate(stored, update);
    assert.equal(stored.getMap('account').get('balance'), 30, 'the stored write survived');
  });
});

/**
 * Regression tests for the races of the document lifecycle
 * (loading → active → draining → unloaded), each one by name. The node runs on
 * real LevelDB; a small delegating Store in front of it counts, delays or fails
 * calls to open the race windows on purpose.
 */
import type { DocName } from '../src/doc-name.js';
import { docName } from './helpers/doc-name.js';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import * as decoding from 'lib0/decoding';
import { MessageType, SyncType } from '@stateweave/client/protocol';
import { StateweaveError } from '../src/errors.js';
import { createLevelStore } from '../src/storage/level-store.js';
import { StoreError, type Store } from '../src/storage/store.js';
import { rawClient, stockClient, textUpdate } from './helpers/clients.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { sleep, waitFor, withTimeout } from './helpers/wait.js';
import { delegateStore } from './helpers/store-wrapper.js';

/** A promise with its resolve outside, to hold a store call until the test says so. */
const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
};

/** Resolves a promise's outcome into a flag the test can read without awaiting. */
const track = <T>(p: Promise<T>) => {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(state, { done: true, value }),
    (error: unknown) => Object.assign(state, { done: true, error }),
  );
  return state;
};

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

/** Real LevelDB in a temp dir, removed when the test ends (after its node closed). */
const levelStore = async (t: TestContext): Promise<{ path: string; inner: Store }> => {
  const dir = await tempDir();
  defer(t, () => dir.remove());
  const inner = await createLevelStore(dir.path);
  defer(t, () => inner.close()); // idempotent: usually the node closed it already
  return { path: dir.path, inner };
};

const node = async (
  t: TestContext,
  options: Parameters<typeof startNode>[0],
): Promise<TestNode> => {
  const started = await startNode(options);
  defer(t, () => started.close());
  return started;
};

/** Stores `text` in document `name` directly, before any node has it open. */
const seed = async (store: Store, name: DocName, text: string): Promise<Y.Doc> => {
  const doc = new Y.Doc();
  doc.getText('text').insert(0, text);
  await store.append(name, Y.encodeStateAsUpdate(doc));
  return doc;
};

/** The text a store holds for `name`, as a fresh Y.Doc would see it. */
const storedText = async (store: Store, name: DocName): Promise<string> => {
  const doc = new Y.Doc();
  for (const update of (await store.load(name)).updates) Y.applyUpdate(doc, update);
  return doc.getText('text').toString();
};

const openDocumentsMetric = async (n: TestNode): Promise<number> =>
  (await n.server.metrics.openDocuments.get()).values[0]?.value ?? 0;

/** A bare WebSocket that records frames and how it closed; it says nothing itself. */
const probe = (wsUrl: string, name: string) => {
  const ws = new WebSocket(`${wsUrl}/${name}`);
  ws.binaryType = 'arraybuffer';
  const frames: Uint8Array[] = [];
  ws.on('message', (data: ArrayBuffer) => frames.push(new Uint8Array(data)));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return { ws, frames, closed };
};

/** The state vector in a node's sync step 1 frame, or undefined for any other frame. */
const stateVectorOfStep1 = (frame: Uint8Array): Map<number, number> | undefined => {
  const decoder = decoding.createDecoder(frame);
  if (decoding.readVarUint(decoder) !== MessageType.Sync) return undefined;
  if (decoding.readVarUint(decoder) !== SyncType.Step1) return undefined;
  return Y.decodeStateVector(decoding.readVarUint8Array(decoder));
};

describe('document lifecycle races', () => {
  it('concurrent first connections load the document once', async (t) => {
    const { inner } = await levelStore(t);
    await seed(inner, docName('crowd'), 'seeded');
    const loads: string[] = [];
    const store = delegateStore(inner, {
      async load(doc) {
        loads.push(doc);
        await sleep(100); // keep the load in flight while everyone arrives
        return inner.load(doc);
      },
    });
    const n = await node(t, { store });

    const [clients, leases] = await Promise.all([
      Promise.all(Array.from({ length: 8 }, () => stockClient(n.wsUrl, 'crowd'))),
      Promise.all(Array.from({ length: 4 }, () => n.server.hub.open(docName('crowd')))),
    ]);
    defer(t, () => clients.forEach((c) => c.destroy()));
    assert.deepEqual(loads, ['crowd']);
    for (const c of clients) assert.equal(c.doc.getText('text').toString(), 'seeded');
    assert.ok(
      leases.every((l) => l.room === leases[0]!.room),
      'everyone holds the same room',
    );
    assert.equal(n.server.hub.openDocuments, 1);
    for (const l of leases) l.release();
  });

  it('no client is answered before the load finished', async (t) => {
    const { inner } = await levelStore(t);
    const seeded = await seed(inner, docName('slow'), 'stored content');
    const loadGate = gate();
    let loads = 0;
    const store = delegateStore(inner, {
      async load(doc) {
        loads++;
        await loadGate.opened;
        return inner.load(doc);
      },
    });
    const n = await node(t, { store });

    const silent = probe(n.wsUrl, 'slow');
    defer(t, () => silent.ws.close());
    const raw = track(rawClient(n.wsUrl, 'slow'));
    const stock = track(stockClient(n.wsUrl, 'slow'));
    await waitFor(() => loads === 1, 'the load to start');
    await sleep(150); // plenty of time for a node that answers too early
    assert.equal(silent.frames.length, 0, 'nothing is sent while loading');
    assert.equal(raw.done, false, 'raw client not synced while loading');
    assert.equal(stock.done, false, 'stock client not synced while loading');

    loadGate.open();
    await waitFor(() => raw.done && stock.done, 'both clients to sync');
    assert.ifError(raw.error);
    assert.ifError(stock.error);
    defer(t, () => raw.value!.close());
    defer(t, () => stock.value!.destroy());
    // A stock provider counts as synced on the first sync step 2 it receives:
    // that very first answer must already hold the stored content.
    assert.equal(stock.value!.doc.getText('text').toString(), 'stored content');
    assert.equal(raw.value!.doc.getText('text').toString(), 'stored content');
    // The node's first frame to each socket is its state vector, already the loaded one.
    const expected = Y.decodeStateVector(Y.encodeStateVector(seeded));
    await waitFor(() => silent.frames.length > 0, 'the silent probe to be greeted');
    assert.deepEqual(stateVectorOfStep1(silent.frames[0]!), expected);
    assert.deepEqual(stateVectorOfStep1(raw.value!.frames[0]!), expected);
    assert.equal(loads, 1);
  });

  it('idle unload frees the document and a later connection loads it again', async (t) => {
    const { inner } = await levelStore(t);
    let loads = 0;
    const store = delegateStore(inner, {
      load(doc) {
        loads++;
        return inner.load(doc);
      },
    });
    const n = await node(t, { store, idleUnloadMs: 50 });

    const writer = await rawClient(n.wsUrl, 'idle');
    const seq = writer.sendUpdate(textUpdate(writer.doc, 'persist me'));
    await waitFor(() => writer.savedSeq() >= seq, 'saved ack');
    const room = n.server.hub.peek(docName('idle'));
    assert.ok(room);
    assert.equal(n.server.hub.openDocuments, 1);
    assert.equal(await openDocumentsMetric(n), 1);
    await sleep(120);
    assert.equal(
      n.server.hub.peek(docName('idle')),
      room,
      'a held document is not unloaded however long it idles',
    );

    writer.close();
    await waitFor(
      () => n.server.hub.peek(docName('idle')) === undefined,
      'the idle document to unload',
    );
    assert.equal(room.state, 'unloaded');
    assert.equal(n.server.hub.openDocuments, 0);
    assert.equal(await openDocumentsMetric(n), 0);
    assert.equal(await storedText(inner, docName('idle')), 'persist me');

    const reader = await stockClient(n.wsUrl, 'idle');
    defer(t, () => reader.destroy());
    assert.equal(reader.doc.getText('text').toString(), 'persist me');
    assert.equal(loads, 2, 'loaded afresh after the unload');
    assert.notEqual(n.server.hub.peek(docName('idle')), room);
    assert.equal(await openDocumentsMetric(n), 1);
  });

  it('a client arriving while the document drains gets the stored state', async (t) => {
    const { inner } = await levelStore(t);
    let slow = false;
    let loads = 0;
    const store = delegateStore(inner, {
      load(doc) {
        loads++;
        return inner.load(doc);
      },
      // Slow writes hold the drain open: it waits for the append, then compacts.
      async append(doc, update) {
        if (slow) await sleep(300);
        return inner.append(doc, update);
      },
      // Shorter than the append: a drain that did not wait for the write would finish first.
      async compact(doc, snapshot, throughSeq) {
        if (slow) await sleep(100);
        return inner.compact(doc, snapshot, throughSeq);
      },
    });
    const n = await node(t, { store, idleUnloadMs: 20 });

    const writer = await rawClient(n.wsUrl, 'drain');
    const first = writer.sendUpdate(textUpdate(writer.doc, 'first '));
    await waitFor(() => writer.savedSeq() >= first, 'first write saved');
    const room = n.server.hub.peek(docName('drain'));
    assert.ok(room);
    slow = true;
    // The last write is still on its way to disk when the writer leaves.
    writer.sendUpdate(textUpdate(writer.doc, 'last write'));
    await sleep(10);
    writer.close();

    await waitFor(() => room.state === 'draining', 'the room to start draining', 2000, 2);
    assert.equal(
      await storedText(inner, docName('drain')),
      'first ',
      'the last write is not yet stored when draining starts',
    );
    const reader = await stockClient(n.wsUrl, 'drain');
    defer(t, () => reader.destroy());
    assert.equal(reader.doc.getText('text').toString(), 'first last write');
    assert.equal(room.state, 'unloaded', 'the reader did not attach to the drained room');
    assert.notEqual(n.server.hub.peek(docName('drain')), room);
    assert.equal(loads, 2);
    assert.equal(n.server.hub.openDocuments, 1);
  });

  it('an open waiting for a drain when the node shuts down is refused, not loaded again', async (t) => {
    const { path, inner } = await levelStore(t);
    let slow = false;
    let loads = 0;
    const store = delegateStore(inner, {
      load(doc) {
        loads++;
        return inner.load(doc);
      },
      async compact(doc, snapshot, throughSeq) {
        if (slow) await sleep(200);
        return inner.compact(doc, snapshot, throughSeq);
      },
    });
    const n = await node(t, { store, idleUnloadMs: 20 });

    const writer = await rawClient(n.wsUrl, 'late');
    const seq = writer.sendUpdate(textUpdate(writer.doc, 'kept'));
    await waitFor(() => writer.savedSeq() >= seq, 'saved ack');
    const room = n.server.hub.peek(docName('late'));
    assert.ok(room);
    slow = true;
    writer.close();
    await waitFor(() => room.state === 'draining', 'the room to start draining', 2000, 2);

    const opening = track(n.server.hub.open(docName('late')));
    await n.close();
    await waitFor(() => opening.done, 'the waiting open to be answered');
    assert.ok(
      opening.error instanceof StateweaveError,
      `open refused, got ${String(opening.error ?? 'a room')}`,
    );
    assert.equal(opening.error.code, 'SHUTTING_DOWN');
    assert.equal(loads, 1, 'no load after shutdown began');
    assert.equal(n.server.hub.peek(docName('late')), undefined, 'no room left behind');
    assert.equal(n.server.hub.openDocuments, 0);
    const reopened = await createLevelStore(path);
    defer(t, () => reopened.close());
    assert.equal(
      await storedText(reopened, docName('late')),
      'kept',
      'the drain finished before the store closed',
    );
  });

  it('a failed load leaves no room behind and a later load succeeds', async (t) => {
    const { inner } = await levelStore(t);
    await seed(inner, docName('flaky'), 'survived');
    let failures = 1;
    let loads = 0;
    // The failing load is held until both connections and the direct open wait
    // on it (a fixed sleep lost that race on a loaded machine and the test hung).
    let everyoneWaits: Promise<unknown> | undefined = undefined;
    const store = delegateStore(inner, {
      async load(doc) {
        loads++;
        if (failures > 0) await everyoneWaits;
        if (failures > 0) {
          failures--;
          throw new StoreError('injected: disk read error');
        }
        return inner.load(doc);
      },
    });
    const n = await node(t, { store });

    everyoneWaits = waitFor(
      () => n.server.hub.leases(docName('flaky')) >= 3,
      'two connections and one open waiting on the first load',
    );
    const first = probe(n.wsUrl, 'flaky');
    const second = probe(n.wsUrl, 'flaky');
    const opened = assert.rejects(
      n.server.hub.open(docName('flaky')),
      (err: unknown) => err instanceof StateweaveError && err.code === 'LOAD_FAILED',
    );
    const both = Promise.all([first.closed, second.closed]);
    for (const { code, reason } of await withTimeout(
      both,
      10_000,
      'both closed with LOAD_FAILED',
    )) {
      assert.equal(code, 4503);
      assert.match(reason, /^LOAD_FAILED/);
    }
    await opened;
    assert.equal(loads, 1);
    assert.equal(n.server.hub.peek(docName('flaky')), undefined, 'no room left behind');
    assert.equal(n.server.hub.openDocuments, 0);
    assert.equal(await openDocumentsMetric(n), 0);

    const reader = await stockClient(n.wsUrl, 'flaky');
    defer(t, () => reader.destroy());
    assert.equal(reader.doc.getText('text').toString(), 'survived');
    assert.equal(loads, 2);
    assert.equal(n.server.hub.openDocuments, 1);
  });

  it('a failed write is never acknowledged and is repaired', async (t) => {
    const { path, inner } = await levelStore(t);
    let failing = false;
    let failedAppends = 0;
    const store = delegateStore(inner, {
      async append(doc, update) {
        if (failing) {
          failedAppends++;
          throw new StoreError('injected: disk full');
        }
        return inner.append(doc, update);
      },
    });
    const n = await node(t, { store });

    const writer = await rawClient(n.wsUrl, 'repair');
    defer(t, () => writer.close());
    const saved = writer.sendUpdate(textUpdate(writer.doc, 'saved '));
    await waitFor(() => writer.savedSeq() >= saved, 'the first write to be saved');

    failing = true;
    const lost = writer.sendUpdate(textUpdate(writer.doc, 'lost? '));
    await sleep(50);
    const after = writer.sendUpdate(textUpdate(writer.doc, 'no.'));
    await waitFor(() => failedAppends >= 3, 'the append and a repair attempt to fail');
    await sleep(150);
    assert.equal(
      writer.savedSeq(),
      saved,
      'nothing after the failure is acknowledged while writes fail',
    );

    failing = false;
    await waitFor(
      () => writer.savedSeq() >= after,
      'the repair to succeed and the ack to arrive',
      5000,
    );
    assert.ok(writer.savedSeq() >= lost);
    assert.equal(await storedText(inner, docName('repair')), 'saved lost? no.');

    // A restarted node on the same directory serves what was acknowledged.
    writer.close();
    await n.close();
    const reopened = await createLevelStore(path);
    const restarted = await node(t, { store: reopened });
    const reader = await stockClient(restarted.wsUrl, 'repair');
    defer(t, () => reader.destroy());
    assert.equal(reader.doc.getText('text').toString(), 'saved lost? no.');
  });

  it('unload is postponed while a write has failed', async (t) => {
    const { inner } = await levelStore(t);
    let failing = false;
    const store = delegateStore(inner, {
      async append(doc, update) {
        if (failing) throw new StoreError('injected: disk full');
        return inner.append(doc, update);
      },
    });
    const n = await node(t, { store, idleUnloadMs: 20 });

    const writer = await rawClient(n.wsUrl, 'postponed');
    failing = true;
    const seq = writer.sendUpdate(textUpdate(writer.doc, 'only in memory'));
    await sleep(20);
    writer.close();

    // Many idle periods pass while the store refuses writes: the room must stay,
    // since unloading it would throw away the only copy of the change.
    await sleep(400);
    const room = n.server.hub.peek(docName('postponed'));
    assert.ok(room, 'the room with unsaved changes is still loaded');
    assert.notEqual(room.state, 'unloaded');
    assert.equal(room.doc.getText('text').toString(), 'only in memory');
    assert.equal(n.server.hub.openDocuments, 1);
    assert.equal(await storedText(inner, docName('postponed')), '');
    assert.ok(writer.savedSeq() < seq);

    // A client may still join in the meantime and sees the unsaved change.
    const visitor = await stockClient(n.wsUrl, 'postponed');
    assert.equal(visitor.doc.getText('text').toString(), 'only in memory');
    assert.equal(n.server.hub.peek(docName('postponed')), room);
    visitor.destroy();

    failing = false;
    await waitFor(
      () => n.server.hub.peek(docName('postponed')) === undefined,
      'the unload once the repair succeeded',
      5000,
    );
    assert.equal(room.state, 'unloaded');
    assert.equal(await storedText(inner, docName('postponed')), 'only in memory');
    const reader = await stockClient(n.wsUrl, 'postponed');
    defer(t, () => reader.destroy());
    assert.equal(reader.doc.getText('text').toString(), 'only in memory');
  });

  it('closing the node while writes fail reports the document unsaved and stops retrying', async (t) => {
    const { inner } = await levelStore(t);
    let attempts = 0;
    const store = delegateStore(inner, {
      async append() {
        attempts++;
        throw new StoreError('injected: disk full');
      },
    });
    // Not through node(): this test reads what close() returns, and closes only once.
    const n = await startNode({ store });
    const writer = await rawClient(n.wsUrl, 'stuck');
    defer(t, () => writer.close());
    const seq = writer.sendUpdate(textUpdate(writer.doc, 'never stored'));
    await waitFor(() => attempts >= 2, 'the append and the first repair attempt to fail');

    const started = Date.now();
    const { unsaved } = await n.server.close();
    assert.deepEqual(unsaved, ['stuck']);
    assert.ok(Date.now() - started < 3000, 'close does not wait out the repair backoff');
    assert.ok(writer.savedSeq() < seq, 'never acknowledged');
    const attemptsAtClose = attempts;
    await sleep(700); // two more backoff periods of a repair that kept going
    assert.equal(attempts, attemptsAtClose, 'no write attempts after the node closed');
  });

  it('an update that waits for missing dependencies is stored when acknowledged, and survives an unload', async (t) => {
    const { inner } = await levelStore(t);
    const n = await node(t, { store: inner, idleUnloadMs: 30 });
    // B1 depends on B0, which the node has not seen; A's part applies at once.
    const a = new Y.Doc();
    a.getText('text').insert(0, 'A');
    const b = new Y.Doc();
    b.getText('deps').insert(0, 'B0');
    const b0 = Y.encodeStateAsUpdate(b);
    const before = Y.encodeStateVector(b);
    b.getText('deps').insert(2, 'B1');
    const mixed = Y.mergeUpdates([Y.encodeStateAsUpdate(a), Y.encodeStateAsUpdate(b, before)]);

    const writer = await rawClient(n.wsUrl, 'parked');
    const seq = writer.sendUpdate(mixed);
    await waitFor(() => writer.savedSeq() >= seq, 'the ack of the partly pending update');
    const room = n.server.hub.peek(docName('parked'));
    assert.ok(room);
    assert.equal(room.doc.getText('text').toString(), 'A');
    // What the store holds at the ack is what a kill -9 right now would leave.
    const durable = new Y.Doc();
    for (const update of (await inner.load(docName('parked'))).updates)
      Y.applyUpdate(durable, update);
    Y.applyUpdate(durable, b0);
    assert.equal(durable.getText('deps').toString(), 'B0B1', 'the pending part B1 is in the store');
    writer.close();
    await waitFor(() => n.server.hub.peek(docName('parked')) === undefined, 'the unload');

    const late = await rawClient(n.wsUrl, 'parked');
    defer(t, () => late.close());
    const lateSeq = late.sendUpdate(b0);
    await waitFor(() => late.savedSeq() >= lateSeq, 'the missing dependency to be saved');
    const reloaded = n.server.hub.peek(docName('parked'));
    assert.ok(reloaded && reloaded !== room);
    assert.equal(
      reloaded.doc.getText('deps').toString(),
      'B0B1',
      'B1 was stored although it could not be applied yet',
    );
    assert.equal(reloaded.doc.getText('text').toString(), 'A');
  });
});

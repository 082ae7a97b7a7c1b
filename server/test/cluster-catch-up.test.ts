/**
 * The stored catch-up sends only what changed since the link was last up: the
 * peer keeps a cursor of this node's change index, and the next link-up walks
 * the index after it instead of every stored document. Two in-process nodes on
 * real LevelDB; documents read are counted with a store wrapper.
 */
import type { DocName } from '../src/doc-name.js';
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { createStoredChanges } from '../src/cluster/stored-changes.js';
import { createLevelStore, createMemoryStore } from '../src/storage/level-store.js';
import type { Store } from '../src/storage/store.js';
import { HTTP_ORIGIN } from '../src/origin.js';
import { freePorts, PEER_SECRET } from './helpers/cluster.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { delegateStore } from './helpers/store-wrapper.js';
import { waitFor } from './helpers/wait.js';
import { validateNodeId as nid } from '../src/node-id.js';

const DOCS = 200;
const CURSOR_OF_N1 = 'cluster\0catch-up\0n1';

/** A LevelDB store that counts the documents loaded from it. */
const countingStore = async (dir: string) => {
  const inner = await createLevelStore(dir);
  const loaded: string[] = [];
  const store: Store = delegateStore(inner, {
    load: (doc) => {
      loaded.push(doc);
      return inner.load(doc);
    },
  });
  return { store, inner, loaded };
};

const textUpdate = (text: string): Uint8Array => {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, text);
  return Y.encodeStateAsUpdate(doc);
};

const cursorSeq = async (store: Store): Promise<number | undefined> => {
  const bytes = await store.getRecord(CURSOR_OF_N1);
  return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as { seq: number }).seq : undefined;
};

const textOn = async (store: Store, name: DocName): Promise<string> => {
  const doc = new Y.Doc();
  for (const update of (await store.load(name)).updates) Y.applyUpdate(doc, update);
  return doc.getText('t').toString();
};

describe('stored catch-up on link-up', () => {
  let dirs: Awaited<ReturnType<typeof tempDir>>;
  let ports: number[];
  let n1: TestNode | undefined;
  let n2: TestNode | undefined;
  let n1Store: Awaited<ReturnType<typeof countingStore>>;

  const start = async (id: 'n1' | 'n2', store: Store): Promise<TestNode> => {
    const [own, other] = id === 'n1' ? [ports[0]!, ports[1]!] : [ports[1]!, ports[0]!];
    return startNode({
      nodeId: id,
      port: own,
      store,
      peers: [`ws://127.0.0.1:${other}`],
      peerSecret: PEER_SECRET,
      replicationFactor: 2,
      // Closed documents are what the stored catch-up is for: unload them soon.
      idleUnloadMs: 20,
    });
  };

  before(async () => {
    dirs = await tempDir();
    ports = await freePorts(2);
  });
  after(async () => {
    await n1?.close();
    await n2?.close();
    await dirs.remove();
  });

  it('walks every document on first contact, then only the ones changed while the link was down', async () => {
    n1Store = await countingStore(`${dirs.path}/n1`);
    n1 = await start('n1', n1Store.store);
    const node1 = n1;
    for (let i = 0; i < DOCS; i++)
      await node1.server.hub.applyUpdate(docName(`docs/d${i}`), textUpdate(`d${i}`), HTTP_ORIGIN);
    await waitFor(() => node1.server.hub.openDocuments === 0, 'n1 to unload its documents');

    // First contact: n2 has no cursor of n1, so n1 sends every document.
    n1Store.loaded.length = 0;
    const first = await countingStore(`${dirs.path}/n2`);
    n2 = await start('n2', first.store);
    const firstSeq = await waitFor(
      () => cursorSeq(first.inner),
      'n2 to record n1’s catch-up',
      30_000,
      50,
    );
    const fullReads = new Set(n1Store.loaded).size;
    assert.equal(fullReads, DOCS, 'the first catch-up reads every stored document');
    assert.equal(await textOn(first.inner, docName('docs/d7')), 'd7', 'n2 holds what n1 stored');
    await n2.close();
    n2 = undefined;

    // While the link is down: two documents change, three are new.
    await node1.server.hub.applyUpdate(docName('docs/d3'), textUpdate('x'), HTTP_ORIGIN);
    await node1.server.hub.applyUpdate(docName('docs/d150'), textUpdate('y'), HTTP_ORIGIN);
    for (const name of ['docs/new1', 'docs/new2', 'docs/new3'].map(docName))
      await node1.server.hub.applyUpdate(name, textUpdate(name), HTTP_ORIGIN);
    await waitFor(() => node1.server.hub.openDocuments === 0, 'n1 to unload its documents');

    n1Store.loaded.length = 0;
    const again = await countingStore(`${dirs.path}/n2`);
    n2 = await start('n2', again.store);
    await waitFor(
      async () => ((await cursorSeq(again.inner)) ?? 0) > firstSeq,
      'n2 to record the next catch-up',
      30_000,
      50,
    );
    const reads = [...new Set(n1Store.loaded)].sort();
    console.log(
      `# stored catch-up of ${DOCS + 3} documents: ${fullReads} read on first contact, ${reads.length} after 5 changed while the link was down`,
    );
    assert.deepEqual(
      reads,
      ['docs/d150', 'docs/d3', 'docs/new1', 'docs/new2', 'docs/new3'],
      'only the changed documents are read',
    );
    for (const name of ['docs/new1', 'docs/new2', 'docs/new3'].map(docName))
      assert.equal(await textOn(again.inner, name), name);
    assert.match(await textOn(again.inner, docName('docs/d3')), /x/);
    assert.match(await textOn(again.inner, docName('docs/d150')), /y/);
  });
});

describe('stored changes (what a catch-up walks)', () => {
  const collect = async (
    docs: AsyncIterable<string> | undefined,
  ): Promise<string[] | undefined> => {
    if (!docs) return undefined;
    const out: string[] = [];
    for await (const doc of docs) out.push(doc);
    return out;
  };

  it('names each document changed after a cursor once, leaving out what the peer itself sent', async () => {
    const store = await createMemoryStore();
    let now = 1_000_000;
    const changes = createStoredChanges(store, {
      historyRetentionMs: 60_000,
      now: () => now,
    });
    await store.append(docName('a'), textUpdate('a'), [], ['user:ann']);
    const mark = await changes.head();
    await store.append(docName('b'), textUpdate('b'), [], ['user:ann']);
    await store.append(docName('a'), textUpdate('a2'), [], ['peer:n2']);
    await store.append(docName('c'), textUpdate('c'), [], ['peer:n2']);
    await store.append(docName('b'), textUpdate('b2'), [], ['peer:n3']);
    const head = await changes.head();
    assert.deepEqual(await collect(changes.changedSince(mark, head, now, nid('n2'))), ['b']);
    assert.deepEqual(await collect(changes.changedSince(mark, head, now, nid('n3'))), [
      'b',
      'a',
      'c',
    ]);
    assert.deepEqual(await collect(changes.changedSince(head, head, now, nid('n2'))), []);
    now += 30_001; // past half the retention window: trimming may have dropped index lines
    assert.equal(changes.changedSince(mark, head, now - 30_001, nid('n2')), undefined);
    assert.equal(await changes.epoch(), await changes.epoch(), 'one epoch per store');
  });

  it('offers no shortcut without history (compaction drops the change index)', async () => {
    const store = await createMemoryStore();
    const changes = createStoredChanges(store, { historyRetentionMs: 0 });
    await store.append(docName('a'), textUpdate('a'));
    assert.equal(changes.changedSince(0, await changes.head(), Date.now(), nid('n2')), undefined);
  });
});

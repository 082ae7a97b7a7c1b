/**
 * Offline edits: a client keeps editing while its node is down (a real child
 * process with a LevelDB data dir); when the node comes back on the same port
 * with the same data, everything converges, and `pending` reaches 0 only after
 * the node has stored the edits — proven by killing it with SIGKILL right after
 * and reading the edits back from disk.
 */
import 'fake-indexeddb/auto';
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import {
  spawnNode,
  stopChild,
  tempDir,
  type ChildNode,
} from '../../server/dist/test/helpers/node.js';
import { sdkClient, settled, sleep, textOf, waitFor } from './helpers.js';

const readDoc = async (node: ChildNode, name: string): Promise<unknown> => {
  const res = await fetch(`${node.url}/v1/docs/${name}`);
  assert.equal(res.status, 200, `GET /v1/docs/${name}`);
  return res.json();
};

describe('editing while the node is down', () => {
  let data: Awaited<ReturnType<typeof tempDir>>;
  let node: ChildNode | undefined;
  let port = 0; // 0 on the first start; then the port that start got

  before(async () => {
    data = await tempDir();
  });
  afterEach(async () => {
    if (node) await stopChild(node, 'SIGKILL');
    node = undefined;
  });
  after(() => data.remove());

  const start = async (): Promise<ChildNode> => {
    node = await spawnNode(data.path, [], port);
    port = node.port;
    return node;
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (node) await stopChild(node, signal);
    node = undefined;
  };

  it('keeps offline edits, merges them on reconnect, and reports saved only once they are stored', async () => {
    const first = await start();
    const url = first.wsUrl;
    const a = sdkClient({ url });
    const b = sdkClient({ url });
    const ha = a.open('offline');
    const hb = b.open('offline');
    await Promise.all([ha.synced, hb.synced]);
    ha.doc.getText('text').insert(0, 'online;');
    await settled(ha, 'a before the outage');
    await waitFor(() => textOf(hb) === 'online;', 'b to see the first edit');

    await stop();
    await waitFor(
      () => ha.status !== 'connected' && hb.status !== 'connected',
      'both clients to notice',
    );
    const savedAt: number[] = [];
    ha.on('saved', () => savedAt.push(performance.now()));
    hb.on('saved', () => savedAt.push(performance.now()));

    ha.doc.getText('text').insert(ha.doc.getText('text').length, 'A offline;');
    hb.doc.getText('text').insert(0, 'B offline;');
    ha.doc.getMap('m').set('a', 1);
    assert.equal(ha.pending, 2, 'two local updates while down');
    assert.equal(hb.pending, 1);
    await sleep(300); // a few reconnect attempts fail meanwhile
    assert.equal(ha.pending, 2, 'nothing is acknowledged while the node is down');
    assert.equal(hb.pending, 1);
    assert.equal(ha.isSynced, false);

    const restartedAt = performance.now();
    await start(); // same port, same data dir
    await waitFor(
      () => ha.pending === 0 && hb.pending === 0,
      'both clients to have everything saved',
      10_000,
    );
    assert.ok(
      savedAt.length >= 2 && savedAt.every((t) => t > restartedAt),
      'saved only after the node came back',
    );
    await waitFor(
      () => textOf(ha) === textOf(hb) && textOf(ha).length === 'online;A offline;B offline;'.length,
      'a and b to converge',
    );
    assert.ok(
      textOf(ha).includes('A offline;') &&
        textOf(ha).includes('B offline;') &&
        textOf(ha).includes('online;'),
    );
    assert.deepEqual(hb.doc.getMap('m').toJSON(), { a: 1 });

    // pending 0 means stored: a SIGKILL right now loses none of it.
    await stop('SIGKILL');
    const after = await start();
    assert.deepEqual(await readDoc(after, 'offline'), { text: textOf(ha), m: { a: 1 } });
    await Promise.all([a.destroy(), b.destroy()]);
  });

  it('keeps offline edits across a reload with IndexedDB persistence', async () => {
    const first = await start();
    const url = first.wsUrl;
    const page1 = sdkClient({ url, persistence: 'indexeddb' });
    const h1 = page1.open('reload');
    await h1.synced;
    h1.doc.getText('text').insert(0, 'saved;');
    await settled(h1, 'the first page');

    await stop();
    await waitFor(() => h1.status !== 'connected', 'the page to notice the outage');
    h1.doc.getText('text').insert(6, 'typed offline;');
    assert.equal(h1.pending, 1);
    // Wait until the edit is in IndexedDB (read through a second y-indexeddb instance).
    await waitFor(async () => {
      const probe = new IndexeddbPersistence('stateweave:reload', new Y.Doc());
      await probe.whenSynced;
      const text = probe.doc.getText('text').toString();
      await probe.destroy();
      return text === 'saved;typed offline;';
    }, 'the offline edit to reach IndexedDB');
    await page1.destroy(); // the reload: this page is gone

    const page2 = sdkClient({ url, persistence: 'indexeddb' });
    const h2 = page2.open('reload');
    await waitFor(
      () => textOf(h2) === 'saved;typed offline;',
      'the reloaded page to load the local copy',
    );
    assert.notEqual(h2.status, 'connected');
    assert.ok(h2.pending >= 1, 'the loaded copy is not known to be saved yet');

    const again = await start();
    await settled(h2, 'the reloaded page', 10_000);
    assert.deepEqual(await readDoc(again, 'reload'), { text: 'saved;typed offline;' });
    await page2.destroy();
  });
});

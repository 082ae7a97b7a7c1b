/**
 * `onStable` across node processes: two homes of a document linked through a
 * TCP proxy. While the proxy is cut, both sides take writes in one window and
 * the window does not fire (the primary cannot learn what the other home has);
 * once healed, it fires exactly once, after both homes hold both writes, with
 * the same output on both replicas.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type * as Y from 'yjs';
import {
  clusterArgs,
  clusterStatus,
  freePorts,
  startProxy,
  type CuttableProxy,
} from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';
import { windowStart } from '../src/functions/stable-window.js';

const STABLE = fileURLToPath(new URL('../../test/fixtures/stable', import.meta.url));
const WINDOW_MS = 500;
const DOC = 'events/partitioned';

interface Fired {
  readonly start: number;
  readonly end: number;
  readonly ids: string[];
}

const windowsOf = (doc: Y.Doc) => doc.getMap<Fired>('windows');
const runsOf = (doc: Y.Doc) => doc.getArray<number>('runs').toArray();

describe('cluster: onStable windows wait for every home', () => {
  let a: ChildNode | undefined;
  let b: ChildNode | undefined;
  let proxy: CuttableProxy | undefined;
  const dirs: Array<{ remove(): Promise<void> }> = [];
  const clients: StockClient[] = [];

  before(async () => {
    const [portB] = await freePorts(1);
    const dirA = await tempDir();
    const dirB = await tempDir();
    dirs.push(dirA, dirB);
    const args = ['--functions', STABLE];
    // Only A dials, and only through the proxy, so cutting it partitions the pair.
    b = await spawnNode(dirB.path, [...clusterArgs('b', []), ...args], portB);
    proxy = await startProxy(b.port);
    const nodeA = (a = await spawnNode(dirA.path, [...clusterArgs('a', [proxy.url]), ...args]));
    await waitFor(
      async () => (await clusterStatus(nodeA.url)).peers.some((p) => p.state === 'connected'),
      'a to link with b',
      10_000,
      50,
    );
  });

  after(async () => {
    for (const c of clients) c.destroy();
    for (const node of [a, b]) if (node) await stopChild(node, 'SIGKILL');
    await proxy?.close();
    await Promise.all(dirs.map((d) => d.remove()));
  });

  it('fires a window only once the cut-off home has caught up, and exactly once', async () => {
    assert.ok(a && b && proxy);
    const nodeA = a;
    const onA = await stockClient(a.wsUrl, DOC);
    const onB = await stockClient(b.wsUrl, DOC);
    clients.push(onA, onB);
    const push = (client: StockClient, id: string, at: number) =>
      client.doc.getArray('events').push([{ id, at }]);

    // Linked: a window fires as usual, seen by both replicas.
    const t0 = Date.now();
    push(onA, 'before', t0);
    const before = String(windowStart(t0, WINDOW_MS));
    await waitFor(
      () => windowsOf(onA.doc).has(before) && windowsOf(onB.doc).has(before),
      'the window before the cut to fire',
      30_000,
    );
    assert.deepEqual(windowsOf(onB.doc).get(before)!.ids, ['before']);

    proxy.cut();
    await waitFor(
      async () => (await clusterStatus(nodeA.url)).peers.every((p) => p.state !== 'connected'),
      'a to see the link down',
      10_000,
      20,
    );
    // One write on each side, in the same window.
    const tc = Date.now();
    push(onA, 'on-a', tc);
    push(onB, 'on-b', tc);
    const cut = windowStart(tc, WINDOW_MS);
    const key = String(cut);
    // Four windows past its end, it has not fired on either side.
    await sleep(cut + WINDOW_MS - Date.now() + 4 * WINDOW_MS);
    assert.equal(windowsOf(onA.doc).has(key), false, 'not fired on a while b is cut off');
    assert.equal(windowsOf(onB.doc).has(key), false, 'not fired on b while a is cut off');

    proxy.heal();
    await waitFor(
      () => windowsOf(onA.doc).has(key) && windowsOf(onB.doc).has(key),
      'the window to fire after the heal',
      30_000,
    );
    // Whichever home computed it held both writes: the window waited for the catch-up.
    assert.deepEqual(windowsOf(onA.doc).get(key)!.ids, ['on-a', 'on-b']);
    assert.deepEqual(windowsOf(onB.doc).get(key), windowsOf(onA.doc).get(key));

    // A few windows later, every window has run once, on one node.
    await sleep(4 * WINDOW_MS);
    await waitFor(
      () => runsOf(onA.doc).length === runsOf(onB.doc).length,
      'the replicas to agree on the runs',
      10_000,
    );
    const runs = runsOf(onA.doc);
    assert.equal(runs.filter((s) => s === cut).length, 1, `runs: ${runs.join(',')}`);
    assert.equal(new Set(runs).size, runs.length, `each window ran once: ${runs.join(',')}`);
  });
});

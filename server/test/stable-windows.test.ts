/**
 * `onStable` windows: the stable vector and the window step (pure), the home
 * vectors' rounds, and one node firing each window once, also across a restart.
 */
import { docName } from './helpers/doc-name.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import {
  coversClocks,
  decodeCursor,
  encodeCursor,
  maxClocks,
  minClocks,
  stepWindow,
  windowStart,
} from '../src/functions/stable-window.js';
import { createHomeVectors } from '../src/cluster/home-vectors.js';
import { STABLE_CURSORS } from '../src/functions/stable-windows.js';
import { createPlacement } from '../src/cluster/placement.js';
import { StateweaveError } from '../src/errors.js';
import { validateNodeId as nid } from '../src/node-id.js';
import type { RpcRequest } from '../src/cluster/rpc-codec.js';
import { startNode, tempDir } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';
import { sleep, waitFor } from './helpers/wait.js';
import { nodeDoc } from './helpers/cluster.js';
import { sample, scrape } from './helpers/metrics.js';

const STABLE = fileURLToPath(new URL('../../test/fixtures/stable', import.meta.url));

const clocks = (entries: Array<[number, number]>): Map<number, number> => new Map(entries);

describe('stable vector', () => {
  it('is the pointwise minimum: a client missing from one home counts zero', () => {
    const a = clocks([
      [1, 5],
      [2, 3],
    ]);
    const b = clocks([
      [1, 2],
      [3, 7],
    ]);
    assert.deepEqual([...minClocks([a, b])], [[1, 2]]);
    assert.deepEqual(
      [...maxClocks([a, b])].sort(),
      [
        [1, 5],
        [2, 3],
        [3, 7],
      ].sort(),
    );
    assert.equal(coversClocks(a, minClocks([a, b])), true);
    assert.equal(coversClocks(minClocks([a, b]), maxClocks([a, b])), false);
    assert.equal(coversClocks(a, clocks([])), true);
  });

  it('reads real Yjs state vectors', () => {
    const one = new Y.Doc();
    const two = new Y.Doc();
    one.getArray('e').push([1, 2]);
    Y.applyUpdate(two, Y.encodeStateAsUpdate(one));
    two.getArray('e').push([3]);
    const vectors = [one, two].map((d) => Y.decodeStateVector(Y.encodeStateVector(d)));
    assert.equal(coversClocks(minClocks(vectors), maxClocks(vectors)), false);
    Y.applyUpdate(one, Y.encodeStateAsUpdate(two));
    const caughtUp = [one, two].map((d) => Y.decodeStateVector(Y.encodeStateVector(d)));
    assert.equal(coversClocks(minClocks(caughtUp), maxClocks(vectors)), true);
  });
});

describe('window step', () => {
  const open = { start: 1000, end: 1500, frontier: undefined };
  const ahead = clocks([
    [1, 4],
    [2, 2],
  ]);
  const behind = clocks([[1, 4]]);

  it('waits while the window is open, and while a home did not answer', () => {
    assert.equal(stepWindow(open, 1499, [ahead, ahead]).kind, 'wait');
    const unanswered = stepWindow(open, 1500, undefined);
    assert.equal(unanswered.kind === 'wait' && unanswered.why, 'unreachable');
    assert.equal(unanswered.window.frontier, undefined, 'no cut is taken without every home');
  });

  it('takes the cut once, then fires only when the lagging home has caught up', () => {
    const first = stepWindow(open, 1500, [ahead, behind]);
    assert.equal(first.kind === 'wait' && first.why, 'lagging');
    assert.deepEqual([...first.window.frontier!].sort(), [...ahead].sort());
    // Later writes do not move the cut: the window waits only for what it closed with.
    const later = clocks([
      [1, 9],
      [2, 2],
    ]);
    const still = stepWindow(first.window, 2000, [later, behind]);
    assert.equal(still.kind, 'wait');
    const fired = stepWindow(still.window, 2100, [later, ahead]);
    assert.equal(fired.kind, 'fire');
    assert.deepEqual([...fired.window.frontier].sort(), [...ahead].sort());
  });

  it('aligns windows to the epoch and round-trips its cursor', () => {
    assert.equal(windowStart(12_345, 1000), 12_000);
    const cursor = { end: 12_000, frontier: ahead };
    const back = decodeCursor(encodeCursor(cursor));
    assert.equal(back?.end, 12_000);
    assert.deepEqual([...back!.frontier], [...ahead]);
    assert.equal(decodeCursor(new TextEncoder().encode('nonsense')), undefined);
  });
});

describe('home vectors', () => {
  const setup = (failing: Set<string>) => {
    const asked: string[] = [];
    let now = 10_000;
    const placement = createPlacement({
      selfId: nid('a'),
      replicationFactor: 3,
      members: () => [nid('b'), nid('c')],
    });
    const vectors = createHomeVectors({
      selfId: nid('a'),
      placement,
      primaryFor: (doc) => placement.homesFor(doc)[0],
      request: (to, request: RpcRequest) => {
        asked.push(to);
        if (failing.has(to))
          return Promise.reject(new StateweaveError('PRIMARY_UNREACHABLE', 'cut off'));
        assert.equal(request.type, 'state-vector');
        return Promise.resolve({ type: 'state-vector', stateVector: new Uint8Array([0]) });
      },
      localVector: () => Promise.resolve(new Uint8Array([0])),
      minIntervalMs: 250,
      now: () => now,
    });
    return { vectors, asked, advance: (ms: number) => (now += ms), now: () => now };
  };

  it('asks every home once per round, and shares a recent round', async () => {
    const { vectors, asked, advance, now } = setup(new Set());
    const round = await vectors.vectors(docName('d'), now());
    assert.deepEqual([...round!.keys()].sort(), ['a', 'b', 'c']);
    assert.deepEqual(asked.sort(), ['b', 'c'], 'this node answers from its own replica');
    assert.equal(await vectors.vectors(docName('d'), now()), round, 'shared within the interval');
    advance(10);
    assert.equal(
      await vectors.vectors(docName('d'), now()),
      undefined,
      'too soon for a newer round',
    );
    advance(250);
    const next = await vectors.vectors(docName('d'), now());
    assert.notEqual(next, round);
    assert.equal(asked.length, 4);
  });

  it('has no answer while a home does not answer', async () => {
    const { vectors } = setup(new Set(['c']));
    assert.equal(await vectors.vectors(docName('d'), 0), undefined);
  });

  it('waits for a home that left the membership, up to the grace, then goes on without it', async () => {
    let now = 0;
    let members = [nid('b'), nid('c')];
    const asked: string[] = [];
    const placement = createPlacement({
      selfId: nid('a'),
      replicationFactor: 3,
      members: () => members,
    });
    const vectors = createHomeVectors({
      selfId: nid('a'),
      placement,
      primaryFor: (doc) => placement.homesFor(doc)[0],
      request: (to) => {
        asked.push(to);
        // As the backplane's request does: a node that is not a live member fails at once.
        return members.includes(to)
          ? Promise.resolve({ type: 'state-vector', stateVector: new Uint8Array([0]) })
          : Promise.reject(new StateweaveError('PRIMARY_UNREACHABLE', 'not a live member'));
      },
      localVector: () => Promise.resolve(new Uint8Array([0])),
      minIntervalMs: 250,
      goneHomeGraceMs: 10_000,
      now: () => now,
    });
    assert.deepEqual([...(await vectors.vectors(docName('d'), now))!.keys()].sort(), [
      'a',
      'b',
      'c',
    ]);
    members = [nid('b')]; // c stopped heartbeating: no longer a member, so no longer a home
    now += 5000;
    assert.equal(
      await vectors.vectors(docName('d'), now),
      undefined,
      'c may be only slow: wait for it',
    );
    assert.equal(asked.at(-1), 'c', 'the home that went away is still asked');
    members = [nid('b'), nid('c')]; // back within the grace: a home again, and answering
    now += 1000;
    assert.deepEqual([...(await vectors.vectors(docName('d'), now))!.keys()].sort(), [
      'a',
      'b',
      'c',
    ]);
    members = [nid('b')];
    now += 1000;
    assert.equal(await vectors.vectors(docName('d'), now), undefined);
    now += 10_001; // gone for longer than the grace since it was last a home: it holds nothing
    assert.deepEqual([...(await vectors.vectors(docName('d'), now))!.keys()].sort(), ['a', 'b']);
    now += 1000;
    asked.length = 0;
    await vectors.vectors(docName('d'), now);
    assert.deepEqual(asked, ['b'], 'and is no longer asked');
  });
});

type Run = number;

const windowsOf = (doc: Y.Doc) =>
  doc.getMap<{ start: number; end: number; ids: string[]; now: number }>('windows');

describe('onStable on one node', () => {
  it('fires each window once with the events written in it, also across a restart', async () => {
    const dir = await tempDir();
    let node = await startNode({ functionsDir: STABLE, dataDir: dir.path });
    try {
      let client = await stockClient(node.wsUrl, 'events/one');
      const push = (id: string, at: number) => client.doc.getArray('events').push([{ id, at }]);
      const at1 = Date.now();
      push('e1', at1);
      push('e2', at1);
      const first = windowStart(at1, 500);
      await waitFor(() => windowsOf(client.doc).has(String(first)), 'the first window to fire');
      const fired = windowsOf(client.doc).get(String(first))!;
      assert.deepEqual(fired.ids, ['e1', 'e2']);
      assert.equal(fired.end - fired.start, 500);
      assert.equal(fired.now, fired.end, 'now() is the window end');
      // The run's update carries the window's end into the document (the cursor every home sees).
      await waitFor(
        () => client.doc.getMap(STABLE_CURSORS).get('countWindow') === first + 500,
        'the cursor to be in the document',
      );
      // Quiet: no further windows run without changes.
      await sleep(1200);
      await node.server.functions.triggersIdle();
      // A new pair starts one window before its first change (which may have been late).
      const runsBefore = client.doc.getArray<Run>('runs').toArray();
      assert.deepEqual(runsBefore, [first - 500, first]);
      assert.deepEqual(windowsOf(client.doc).get(String(first - 500))!.ids, []);

      // Restart with a change stored but not yet run: it resumes from its cursor.
      const at3 = Date.now();
      push('e3', at3);
      const third = windowStart(at3, 500);
      await waitFor(
        async () => (await nodeDoc(node.url, 'events/one'))?.getArray('events').length === 3,
        'the node to store e3',
      );
      client.destroy();
      await node.close();
      node = await startNode({ functionsDir: STABLE, dataDir: dir.path });
      client = await stockClient(node.wsUrl, 'events/one');
      await waitFor(() => windowsOf(client.doc).has(String(third)), 'the window after restart');
      await sleep(1200);
      await node.server.functions.triggersIdle();
      const runs = client.doc.getArray<Run>('runs').toArray();
      assert.equal(new Set(runs).size, runs.length, `each window ran once: ${runs.join(',')}`);
      assert.deepEqual(windowsOf(client.doc).get(String(third))!.ids, ['e3']);
      // After a restart the node runs every window from its cursor to the restart's.
      assert.ok(runs.includes(third) && runs.every((s) => s >= first - 500));
      client.destroy();
    } finally {
      await node.close();
      await dir.remove();
    }
  });

  it('skips a window whose run keeps failing, so the next ones still run', async () => {
    const node = await startNode({ functionsDir: STABLE });
    try {
      const client = await stockClient(node.url.replace('http', 'ws'), 'broken/one');
      client.doc.getArray('events').push([{ id: 'x', at: Date.now() }]);
      const failed = () =>
        scrape(node.url).then((text) =>
          sample(text, 'stateweave_stable_windows_total{function="brokenWindow",outcome="failed"}'),
        );
      // A new pair runs the window before its first change's and that one: both fail 3 times.
      await waitFor(async () => (await failed()) >= 2, 'both windows to be given up', 15_000, 100);
      await node.server.functions.triggersIdle();
      assert.equal(
        sample(
          await scrape(node.url),
          'stateweave_stable_windows_total{function="brokenWindow",outcome="fired"}',
        ),
        0,
      );
      assert.equal(client.doc.getArray('events').length, 1, 'a failed run writes nothing');
      client.destroy();
    } finally {
      await node.close();
    }
  });
});

/**
 * Schedules in a cluster: every node ticks, and only the primary of the
 * function's document runs the tick, so each time slot runs once cluster-wide
 * (not once per node). Three node processes on the mesh, 127.0.0.1 only; the
 * fixture's `tick` appends its slot time to the document `ticks` every 100 ms.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import { startCluster, waitConnected, type TestCluster } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

const FUNCTIONS = fileURLToPath(new URL('../../test/fixtures/triggers', import.meta.url));

const ticksOn = async (url: string): Promise<number[]> => {
  const res = await fetch(`${url}/v1/docs/ticks`, {
    headers: { accept: 'application/octet-stream' },
  });
  if (res.status !== 200) return [];
  const doc = new Y.Doc();
  Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()));
  return doc.getArray<number>('ticks').toArray();
};

describe('schedules in a cluster', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster(3, ['--functions', FUNCTIONS]);
    await waitConnected(cluster.nodes);
  });
  after(() => cluster?.close());

  it('runs each slot once cluster-wide, on one node', async () => {
    // Slots from before every link was up may have run on several nodes (each was
    // its own primary then): count from a moment after.
    const from = Date.now() + 1000;
    const until = from + 3000;
    await waitFor(
      async () => (await ticksOn(cluster.nodes[0]!.url)).some((at) => at >= until),
      'slots after the window on node 1',
      30_000,
      100,
    );
    // The window is in the past: once every replica holds the same slots of it, any
    // node shows what ran (ticks replicate).
    const inWindow = async (url: string) =>
      (await ticksOn(url)).filter((at) => at >= from && at < until);
    let window: number[] = [];
    await waitFor(
      async () => {
        const seen = await Promise.all(cluster.nodes.map((n) => inWindow(n.url)));
        window = seen[0]!;
        return seen.every((w) => w.length === window.length);
      },
      'replicas agree on the window',
      15_000,
      100,
    );
    const slots = new Set(window);
    assert.ok(slots.size >= 10, `only ${slots.size} slots ran in 3 s of a 100 ms schedule`);
    assert.equal(
      window.length,
      slots.size,
      `${window.length - slots.size} slots ran more than once (of ${slots.size})`,
    );
  });
});

/**
 * `onStable` when the primary dies, on Redis with three node processes and a
 * real redis-server: events stream in from the node that is not a home; the
 * document's primary is killed (SIGKILL, not restarted) mid-stream. The other
 * home becomes primary once the dead one leaves the membership (5 s), holds the
 * windows while the dead one might be only slow (`--stable-home-grace`, 30 s by
 * default, 10 s here so the test does not wait out the default), then
 * fires every window from the cursor the dead primary wrote into the document:
 * every window with events runs, with exactly its events, and none twice.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type * as Y from 'yjs';
import { rank } from '../src/cluster/placement.js';
import { windowStart } from '../src/functions/stable-window.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { stopChild } from './helpers/node.js';
import type { RedisNodes, TestRedis } from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { sleep, waitFor } from './helpers/wait.js';

const STABLE = fileURLToPath(new URL('../../test/fixtures/stable', import.meta.url));
const WINDOW_MS = 500;
const IDS = ['n1', 'n2', 'n3'];
/** The dead primary holds windows back for this long after it left the membership. */
const GRACE_MS = 10_000;

const windowsOf = (doc: Y.Doc) => doc.getMap<{ ids: string[] }>('windows');
const runsOf = (doc: Y.Doc) => doc.getArray<number>('runs').toArray();

describe('redis: onStable windows when the primary dies', () => {
  let redis: TestRedis | undefined;
  let cluster: RedisNodes | undefined;
  const clients: StockClient[] = [];

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(3, [
      '--functions',
      STABLE,
      '--replication-factor',
      '2',
      '--stable-home-grace',
      String(GRACE_MS / 1000),
    ]));
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await cluster?.close();
    await redis?.close();
  });

  it('fires every window with events once, before and after the new primary takes over', async () => {
    assert.ok(cluster);
    const doc = `events/dies-${Date.now()}`;
    const [primaryId, otherId, edgeId] = rank(doc, IDS);
    const byId = (id: string | undefined) => cluster!.nodes.find((n) => n.id === id)!;
    const [primary, other, edge] = [byId(primaryId), byId(otherId), byId(edgeId)];
    const writer = await stockClient(edge.wsUrl, doc);
    const watcher = await stockClient(other.wsUrl, doc);
    clients.push(writer, watcher);
    const written: Array<{ id: string; at: number }> = [];
    const timer = setInterval(() => {
      const event = { id: `e${written.length}`, at: Date.now() };
      written.push(event);
      writer.doc.getArray('events').push([event]);
    }, 150);
    let killedAt = 0;
    try {
      await waitFor(() => windowsOf(watcher.doc).size >= 4, 'windows to fire', 30_000);
      await stopChild(primary.node, 'SIGKILL');
      killedAt = Date.now();
      await sleep(3000);
    } finally {
      clearInterval(timer);
    }
    // Out of the membership after 4–5 s, the dead primary may still be only slow for the
    // grace: no window after the kill fires before then (the other home knew it as a home).
    await sleep(killedAt + GRACE_MS - Date.now());
    const early = [...windowsOf(watcher.doc).keys()].map(Number).filter((s) => s >= killedAt);
    assert.deepEqual(early, [], 'no window fired while the dead primary may be only slow');
    const expected = new Map<number, string[]>();
    for (const { id, at } of written) {
      const start = windowStart(at, WINDOW_MS);
      expected.set(start, [...(expected.get(start) ?? []), id].sort());
    }
    // 5 s until the dead node leaves the membership, the grace it may be only slow, then the
    // rest. The deadline is set so the default grace (30 s) would miss it: the flag must count.
    await waitFor(
      () => [...expected.keys()].every((start) => windowsOf(watcher.doc).has(String(start))),
      'every window with events to fire on the new primary, well before the default grace',
      killedAt + 5000 + GRACE_MS + 13_000 - Date.now(),
      100,
    );
    await sleep(4 * WINDOW_MS);
    await waitFor(
      () => runsOf(writer.doc).length === runsOf(watcher.doc).length,
      'the replicas to agree on the runs',
      10_000,
    );
    for (const [start, ids] of expected)
      assert.deepEqual(windowsOf(watcher.doc).get(String(start))!.ids, ids, `window ${start}`);
    const runs = runsOf(watcher.doc);
    assert.equal(new Set(runs).size, runs.length, `each window ran once: ${runs.join(',')}`);
    const first = windowStart(written[0]!.at, WINDOW_MS);
    const last = windowStart(written.at(-1)!.at, WINDOW_MS);
    for (let start = first; start <= last; start += WINDOW_MS)
      assert.ok(runs.includes(start), `window ${start} ran (runs: ${runs.join(',')})`);
  });
});

/**
 * `onStable` on the Redis backplane, with two node processes and a real
 * redis-server: the home that is not the primary is paused (SIGSTOP) while the
 * primary takes a write; the window waits for it, and fires once, with the
 * write, after it resumes and has read the write from the document's stream.
 * Paused for less than the membership's 5 s expiry it stays a home; paused
 * for longer it drops out of the membership, and still holds the window back
 * (home-vectors.ts: a home that went away may be only slow, for up to 30 s).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type * as Y from 'yjs';
import { rank } from '../src/cluster/placement.js';
import { windowStart } from '../src/functions/stable-window.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { backplaneStatus, type RedisNodes, type TestRedis } from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { sleep, waitFor } from './helpers/wait.js';

const STABLE = fileURLToPath(new URL('../../test/fixtures/stable', import.meta.url));
const WINDOW_MS = 500;
const DOC = 'events/on-redis';

const windowsOf = (doc: Y.Doc) => doc.getMap<{ ids: string[] }>('windows');
const runsOf = (doc: Y.Doc) => doc.getArray<number>('runs').toArray();

describe('redis: onStable windows wait for a paused home', () => {
  let redis: TestRedis | undefined;
  let cluster: RedisNodes | undefined;
  const clients: StockClient[] = [];

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(2, ['--functions', STABLE]));
  });

  after(async () => {
    for (const c of clients) c.destroy();
    for (const n of cluster?.nodes ?? []) n.node.child.kill('SIGCONT');
    await cluster?.close();
    await redis?.close();
  });

  it('fires only after the paused home has caught up, and exactly once', async () => {
    assert.ok(cluster);
    const primaryId = rank(DOC, ['n1', 'n2'])[0];
    const primary = cluster.nodes.find((n) => n.id === primaryId)!;
    const other = cluster.nodes.find((n) => n.id !== primaryId)!;
    const onPrimary = await stockClient(primary.wsUrl, DOC);
    const onOther = await stockClient(other.wsUrl, DOC);
    clients.push(onPrimary, onOther);
    const push = (client: StockClient, id: string, at: number) =>
      client.doc.getArray('events').push([{ id, at }]);

    const t0 = Date.now();
    push(onOther, 'before', t0);
    const first = String(windowStart(t0, WINDOW_MS));
    await waitFor(
      () => windowsOf(onPrimary.doc).has(first) && windowsOf(onOther.doc).has(first),
      'a window to fire with both homes up',
      30_000,
    );

    other.node.child.kill('SIGSTOP');
    try {
      const tc = Date.now();
      push(onPrimary, 'while-paused', tc);
      const paused = windowStart(tc, WINDOW_MS);
      // Three windows past its end (still well inside the 5 s membership expiry).
      await sleep(paused + WINDOW_MS - Date.now() + 3 * WINDOW_MS);
      assert.equal(
        windowsOf(onPrimary.doc).has(String(paused)),
        false,
        'not fired while a home cannot answer',
      );
      other.node.child.kill('SIGCONT');
      await waitFor(
        () => windowsOf(onOther.doc).has(String(paused)),
        'the window to fire after the home resumed',
        30_000,
      );
      assert.deepEqual(windowsOf(onOther.doc).get(String(paused))!.ids, ['while-paused']);
      await sleep(4 * WINDOW_MS);
      await waitFor(
        () => runsOf(onPrimary.doc).length === runsOf(onOther.doc).length,
        'the replicas to agree on the runs',
        10_000,
      );
      const runs = runsOf(onPrimary.doc);
      assert.equal(runs.filter((s) => s === paused).length, 1, `runs: ${runs.join(',')}`);
      assert.equal(new Set(runs).size, runs.length, `each window ran once: ${runs.join(',')}`);
    } finally {
      other.node.child.kill('SIGCONT');
    }
  });

  it('holds the window for a home paused past the membership expiry, fires once it is back', async () => {
    assert.ok(cluster);
    const DOC2 = 'events/paused-long';
    const primaryId = rank(DOC2, ['n1', 'n2'])[0];
    const primary = cluster.nodes.find((n) => n.id === primaryId)!;
    const other = cluster.nodes.find((n) => n.id !== primaryId)!;
    const onPrimary = await stockClient(primary.wsUrl, DOC2);
    const onOther = await stockClient(other.wsUrl, DOC2);
    clients.push(onPrimary, onOther);
    const t0 = Date.now();
    onOther.doc.getArray('events').push([{ id: 'before', at: t0 }]);
    await waitFor(
      () => windowsOf(onPrimary.doc).has(String(windowStart(t0, WINDOW_MS))),
      'a window to fire with both homes up',
      30_000,
    );

    other.node.child.kill('SIGSTOP');
    try {
      const tc = Date.now();
      onPrimary.doc.getArray('events').push([{ id: 'while-paused', at: tc }]);
      const paused = windowStart(tc, WINDOW_MS);
      // The paused node drops out of the membership (5 s without a heartbeat)…
      await waitFor(
        async () => !(await backplaneStatus(primary.url)).members.includes(other.id),
        'the paused node to leave the membership',
        15_000,
        100,
      );
      // … and two windows later the window still waits for it.
      await sleep(Math.max(0, paused + WINDOW_MS - Date.now()) + 2 * WINDOW_MS);
      assert.ok(Date.now() - tc > 5000, 'paused for longer than the membership expiry');
      assert.equal(
        windowsOf(onPrimary.doc).has(String(paused)),
        false,
        'not fired while a home that went away may be only slow',
      );
      other.node.child.kill('SIGCONT');
      await waitFor(
        () => windowsOf(onOther.doc).has(String(paused)),
        'the window to fire after the home resumed',
        30_000,
      );
      assert.deepEqual(windowsOf(onOther.doc).get(String(paused))!.ids, ['while-paused']);
      await sleep(4 * WINDOW_MS);
      await waitFor(
        () => runsOf(onPrimary.doc).length === runsOf(onOther.doc).length,
        'the replicas to agree on the runs',
        10_000,
      );
      const runs = runsOf(onPrimary.doc);
      assert.equal(runs.filter((s) => s === paused).length, 1, `runs: ${runs.join(',')}`);
      assert.equal(new Set(runs).size, runs.length, `each window ran once: ${runs.join(',')}`);
    } finally {
      other.node.child.kill('SIGCONT');
    }
  });
});

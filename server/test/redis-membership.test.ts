/**
 * Membership on a real redis-server: a node that restarts between two of
 * another node's heartbeats (its leave and its join inside one beat) is still
 * seen to go and come back, because an entry names the node's run (its boot),
 * not only its id. Without that, the others skipped what they do when a member
 * comes up (catch-up, tombstones) for a node that may have missed it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { Backplane, BackplaneEvents } from '../src/cluster/backplane.js';
import { createBackplaneMetrics } from '../src/cluster/backplane-metrics.js';
import { createRedisBackplane } from '../src/cluster/redis/redis-backplane.js';
import { createMetrics } from '../src/metrics.js';
import { validateNodeId as nid } from '../src/node-id.js';
import { silentLogger } from './helpers/node.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { waitFor } from './helpers/wait.js';

describe('redis membership', () => {
  let redis: TestRedis;
  let r: Redis;
  const open: Backplane[] = [];

  before(async () => {
    redis = await startRedis();
    r = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    for (const b of open) await b.close().catch(() => undefined);
    r?.disconnect();
    await redis?.close();
  });

  const make = (id: string, heartbeatMs: number): Backplane => {
    const b = createRedisBackplane({
      url: redis.url,
      nodeId: nid(id),
      keyPrefix: 'members',
      logger: silentLogger(),
      metrics: createBackplaneMetrics(createMetrics({ collectDefault: false })),
      heartbeatMs,
    });
    open.push(b);
    return b;
  };

  const recording = (log: string[]): BackplaneEvents => ({
    memberUp: (id) => log.push(`up ${id}`),
    memberDown: (id) => log.push(`down ${id}`),
    direct: () => undefined,
    docMessage: () => undefined,
    recordChanged: () => undefined,
    resync: () => undefined,
  });

  it('sees a node restarted inside one heartbeat go and come back, in that order', async () => {
    const log: string[] = [];
    // a beats every 1.5 s; b is closed and started again well inside one of a's beats.
    const a = make('a', 1500);
    await a.start(recording(log));
    const first = make('b', 100);
    await first.start(recording([]));
    await waitFor(() => log.includes('up b'), 'a to see b');
    log.length = 0;

    const beats = (await r.zrange('members:members', 0, -1)).filter((e) => e.startsWith('b'));
    assert.equal(beats.length, 1);
    assert.match(beats[0]!, /^b:./, 'an entry names the run, not only the node');

    await first.close();
    const second = make('b', 100);
    await second.start(recording([]));
    await waitFor(() => log.length >= 2, "a to notice b's restart", 10_000);
    assert.deepEqual(log, ['down b', 'up b']);
    assert.ok(a.isLive(nid('b')));
    assert.deepEqual(a.members(), [nid('a'), nid('b')]);
  });

  it('counts a node that joins live at once, not at its next heartbeat', async () => {
    // Until d counts e live it does not push its appends to e (stream-push.ts).
    const log: string[] = [];
    const d = make('d', 60_000);
    await d.start(recording(log));
    const joined = async (id: string): Promise<boolean> =>
      (await r.zrange('members:members', 0, -1)).some((m) => m.startsWith(`${id}:`));
    await waitFor(() => joined('d'), 'd to have beaten once');
    const e = make('e', 60_000);
    await e.start(recording([]));
    await waitFor(() => log.includes('up e'), 'd to see e long before its next heartbeat', 10_000);
    assert.ok(d.isLive(nid('e')));
  });

  it('reads an entry without a run (an older version, or one written by hand) as the id', async () => {
    const log: string[] = [];
    const c = make('c', 100);
    await c.start(recording(log));
    const [seconds] = await r.time();
    await r.zadd('members:members', (Number(seconds) + 600) * 1000, 'ghost');
    await waitFor(() => log.includes('up ghost'), 'c to see the entry as a member');
    await r.zrem('members:members', 'ghost');
    await waitFor(() => log.includes('down ghost'), 'c to see it leave');
  });
});

/**
 * Failures on the Redis backplane, with real processes: `kill -9` of a node
 * while clients on every node write (the survivors hold everything any node
 * acknowledged, without waiting for the dead one), and `kill -9` of Redis
 * during writes, restarted with its data and then without it (the nodes keep
 * serving and acknowledging meanwhile, and converge once Redis is back).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rawClient } from './helpers/clients.js';
import {
  ackedKeys,
  startWriter,
  stopWriters,
  waitConverged,
  type Writer,
} from './helpers/acked-writers.js';
import { backplaneStatus, waitMembers, type RedisNodes, type TestRedis } from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { sleep, waitFor } from './helpers/wait.js';

describe('cluster on redis: kill -9 of a node during writes', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  const writers: Writer[] = [];

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(3));
  });

  after(async () => {
    for (const w of writers) {
      w.stopped = true;
      w.client.close();
    }
    await cluster?.close();
    await redis?.close();
  });

  it('the survivors hold every acknowledged write, and the dead node leaves membership', async () => {
    const DOC = 'crash-doc';
    for (const node of cluster.nodes)
      writers.push(startWriter(node.id, await rawClient(node.wsUrl, DOC)));
    // Under load a fresh node may take a while to acknowledge its first write.
    await waitFor(
      () => writers.every((w) => w.client.savedSeq() > 0),
      'every node to acknowledge a write',
      10_000,
    );
    await sleep(200);
    const victim = cluster.nodes[2]!;
    victim.node.child.kill('SIGKILL');
    await victim.node.exited;
    const [w1, w2, w3] = writers as [Writer, Writer, Writer];
    await w3.loop;
    const victimAcked = ackedKeys(w3);
    assert.ok(victimAcked.length > 0, 'the victim acknowledged writes before it died');
    await sleep(300);
    await stopWriters([w1, w2]);
    await waitFor(
      () => [w1, w2].every((w) => w.client.savedSeq() >= Math.max(...w.keys.keys())),
      'the survivors to acknowledge every write',
      10_000,
    );
    const survivors = cluster.nodes.slice(0, 2);
    const required = [...w1.keys.values(), ...w2.keys.values(), ...victimAcked];
    const ms = await waitConverged(
      survivors.map((n) => n.url),
      DOC,
      required,
      'the survivors to hold every acknowledged write',
    );
    await waitMembers(survivors, ['n1', 'n2'], 10_000);
    console.log(
      `# redis crash: ${victimAcked.length} writes acknowledged by the killed node, ${required.length} in all; survivors converged in ${ms} ms`,
    );

    // The dead node comes back on its data and catches up.
    await cluster.restart(2);
    await waitMembers(cluster.nodes, ['n1', 'n2', 'n3']);
    await waitConverged(
      cluster.nodes.map((n) => n.url),
      DOC,
      required,
      'the restarted node to catch up',
    );
  });
});

describe('cluster on redis: kill -9 of Redis during writes', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  const writers: Writer[] = [];

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(3));
  });

  after(async () => {
    for (const w of writers) {
      w.stopped = true;
      w.client.close();
    }
    await cluster?.close();
    await redis?.close();
  });

  for (const keepData of [true, false]) {
    it(`keeps serving, and converges after Redis restarts ${keepData ? 'with' : 'without'} its data`, async () => {
      const doc = `redis-down-${keepData ? 'kept' : 'lost'}`;
      const round: Writer[] = [];
      for (const node of cluster.nodes)
        round.push(startWriter(node.id, await rawClient(node.wsUrl, doc)));
      writers.push(...round);
      await sleep(300);
      await redis.stop('SIGKILL');
      await waitFor(
        async () => (await backplaneStatus(cluster.nodes[0]!.url)).state === 'down',
        'n1 to report the backplane down',
        10_000,
      );
      // Every node keeps acknowledging its own clients' writes while Redis is down.
      const before = round.map((w) => w.client.savedSeq());
      await waitFor(
        () => round.every((w, i) => w.client.savedSeq() > before[i]!),
        'every node to acknowledge its clients while Redis is down',
        10_000,
      );
      const health = await fetch(`${cluster.nodes[0]!.url}/healthz`);
      assert.equal(health.status, 200, '/healthz stays up');
      const ready = await fetch(`${cluster.nodes[0]!.url}/readyz`);
      assert.equal(ready.status, 200, 'the node stays ready: it serves its clients');
      assert.deepEqual(await ready.json(), { status: 'ready', backplane: 'down' });

      await redis.restart({ keepData });
      await sleep(300);
      await stopWriters(round);
      await waitFor(
        () => round.every((w) => w.client.savedSeq() >= Math.max(...w.keys.keys())),
        'every node to acknowledge every write',
        10_000,
      );
      await waitMembers(cluster.nodes, ['n1', 'n2', 'n3']);
      const required = round.flatMap((w) => [...w.keys.values()]);
      const ms = await waitConverged(
        cluster.nodes.map((n) => n.url),
        doc,
        required,
        'every node to hold every write after Redis is back',
      );
      const status = await backplaneStatus(cluster.nodes[0]!.url);
      assert.ok(status.outages >= 1, 'the outage is counted');
      console.log(
        `# redis ${keepData ? 'restarted with data' : 'restarted empty'}: ${required.length} acknowledged writes on every node ${ms} ms after the writers stopped; ${status.messagesDropped} messages dropped on n1 while down`,
      );
    });
  }
});

/**
 * Failures on the Redis backplane, with real processes: `kill -9` of a node
 * while clients on every node write (the survivors hold everything any node
 * acknowledged, without waiting for the dead one), and `kill -9` of Redis
 * during writes, restarted with its data and then without it (the nodes keep
 * serving and acknowledging meanwhile, and converge once Redis is back).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { fingerprint, nodeDoc } from './helpers/cluster.js';
import { rawClient, type RawClient } from './helpers/clients.js';
import {
  backplaneStatus,
  startRedis,
  startRedisNodes,
  waitMembers,
  type RedisNodes,
  type TestRedis,
} from './helpers/redis.js';
import { sleep, waitFor } from './helpers/wait.js';

interface Writer {
  readonly name: string;
  readonly client: RawClient;
  /** seq → key written under it. */
  readonly keys: Map<number, string>;
  stopped: boolean;
  loop: Promise<void>;
}

/** Writes one key every 5 ms until stopped, the socket closes, or 20 s pass. */
const startWriter = (name: string, client: RawClient): Writer => {
  const writer: Writer = { name, client, keys: new Map(), stopped: false, loop: Promise.resolve() };
  const deadline = Date.now() + 20_000;
  writer.loop = (async () => {
    for (let i = 0; i < 4000 && Date.now() < deadline; i++) {
      if (writer.stopped || client.ws.readyState !== client.ws.OPEN) return;
      const before = Y.encodeStateVector(client.doc);
      const key = `${name}-${i}`;
      client.doc.getMap('m').set(key, i);
      writer.keys.set(client.sendUpdate(Y.encodeStateAsUpdate(client.doc, before)), key);
      await sleep(5);
    }
  })();
  return writer;
};

/** Keys the node acknowledged as saved to this writer. */
const ackedKeys = (writer: Writer): string[] =>
  [...writer.keys].filter(([seq]) => seq <= writer.client.savedSeq()).map(([, key]) => key);

const stopWriters = async (writers: readonly Writer[]): Promise<void> => {
  for (const w of writers) w.stopped = true;
  await Promise.all(writers.map((w) => w.loop));
};

/** Waits until every node in `urls` holds the same state with every key in `required`. */
const waitConverged = async (
  urls: readonly string[],
  doc: string,
  required: readonly string[],
  what: string,
  timeoutMs = 30_000,
): Promise<number> => {
  const started = Date.now();
  await waitFor(
    async () => {
      const docs = await Promise.all(urls.map((url) => nodeDoc(url, doc)));
      if (docs.some((d) => !d)) return false;
      const prints = new Set(docs.map((d) => fingerprint(d!)));
      return prints.size === 1 && required.every((key) => docs[0]!.getMap('m').has(key));
    },
    what,
    timeoutMs,
    100,
  );
  return Date.now() - started;
};

describe('cluster on redis: kill -9 of a node during writes', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  const writers: Writer[] = [];

  before(async () => {
    redis = await startRedis();
    cluster = await startRedisNodes(3, redis.url);
    await waitMembers(cluster.nodes, ['n1', 'n2', 'n3']);
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
    await sleep(500);
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
    redis = await startRedis();
    cluster = await startRedisNodes(3, redis.url);
    await waitMembers(cluster.nodes, ['n1', 'n2', 'n3']);
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
      await sleep(500);
      round.forEach((w, i) =>
        assert.ok(w.client.savedSeq() > before[i]!, `${w.name} acknowledges while Redis is down`),
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

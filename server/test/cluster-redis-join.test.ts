/**
 * Membership at run time on Redis: a fourth node started later is a member
 * within seconds, becomes a home of its share of the documents (rendezvous
 * hashing moves about R/N of the homes to it), and stores those documents by
 * state-vector catch-up although nobody opens them. A node started while Redis
 * is down serves at once and joins when Redis comes up.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { rank } from '../src/cluster/placement.js';
import { nodeDoc } from './helpers/cluster.js';
import { spawnNode, stopChild } from './helpers/node.js';
import {
  backplaneStatus,
  startRedis,
  startRedisNodes,
  waitMembers,
  type RedisNode,
  type RedisNodes,
  type TestRedis,
} from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { scrape, sample } from './helpers/metrics.js';
import { sleep, waitFor } from './helpers/wait.js';

const R = 2;
const DOCS = 40;
const names = Array.from({ length: DOCS }, (_, i) => `join-${i}`);

const write = async (url: string, doc: string, text: string): Promise<void> => {
  const ydoc = new Y.Doc();
  ydoc.getText('t').insert(0, text);
  const res = await fetch(`${url}/v1/docs/${doc}/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Y.encodeStateAsUpdate(ydoc),
  });
  assert.equal(res.status, 200, `write ${doc}`);
};

describe('cluster on redis: a node joins at run time', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(3, ['--replication-factor', String(R)]));
  });

  after(async () => {
    await cluster?.close();
    await redis?.close();
  });

  it('takes its share of the documents and stores them', async () => {
    for (const doc of names) await write(cluster.nodes[0]!.url, doc, `text of ${doc}`);
    // Let the homes store what n1 wrote (each HTTP write syncs with its homes).
    await sleep(500);
    const joined = await cluster.add();
    assert.equal(joined.id, 'n4');
    await waitMembers(cluster.nodes, ['n1', 'n2', 'n3', 'n4']);
    const moved = names.filter((doc) =>
      rank(doc, ['n1', 'n2', 'n3', 'n4']).slice(0, R).includes('n4'),
    );
    const share = moved.length / DOCS;
    console.log(
      `# redis join: n4 became a home of ${moved.length} of ${DOCS} documents (R = ${R}, expected about ${R}/4)`,
    );
    assert.ok(share > 0.25 && share < 0.75, `n4's share ${share} is about ${R}/4`);

    // n4 stores its documents without anyone opening them (stored catch-up by
    // state vector). Each other node logs when its catch-up with n4 is done;
    // then n4 has been sent everything, and counts one peer update per document.
    await waitFor(
      async () =>
        cluster.nodes.slice(0, 3).every((n) =>
          n.node
            .output()
            .split('\n')
            .some((l) => l.includes('stored documents caught up') && l.includes('"peer":"n4"')),
        ) &&
        sample(await scrape(joined.url), 'stateweave_updates_in_total{origin="peer"}') >=
          moved.length,
      'n1–n3 to catch n4 up',
      30_000,
      100,
    );
    await sleep(500); // n4 reads its inbox asynchronously; a graceful stop then flushes
    assert.equal((await stopChild(joined.node)).code, 0);
    // Alone, without Redis: only its own LevelDB answers.
    const alone = await spawnNode(joined.dataDir, ['--node-id', 'n4'], joined.port);
    try {
      const missing: string[] = [];
      for (const doc of moved) {
        const ydoc = await nodeDoc(alone.url, doc);
        if (ydoc?.getText('t').toString() !== `text of ${doc}`) missing.push(doc);
      }
      assert.deepEqual(missing, [], 'n4 stored every document it is a home of');
    } finally {
      await stopChild(alone);
    }
  });
});

describe('cluster on redis: a node started before its Redis', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;

  before(async () => {
    redis = await startRedis();
    await redis.stop('SIGKILL');
  });

  after(async () => {
    await cluster?.close();
    await redis?.close();
  });

  it('serves at once and joins when Redis comes up', async () => {
    cluster = await startRedisNodes(2, redis.url);
    const [n1, n2] = cluster.nodes as [RedisNode, RedisNode];
    assert.notEqual((await backplaneStatus(n1.url)).state, 'connected');
    await write(n1.url, 'before-redis', 'written before Redis existed');
    await redis.restart();
    await waitMembers(cluster.nodes, ['n1', 'n2']);
    // The stored catch-up on member up brings n1's write to n2, a home (R = 3).
    await waitFor(
      async () => (await scrape(n2.url)).includes('stateweave_updates_in_total{origin="peer"}'),
      'n2 to receive the write made before Redis came up',
      15_000,
      100,
    );
    const doc = await nodeDoc(n2.url, 'before-redis');
    assert.equal(doc?.getText('t').toString(), 'written before Redis existed');
  });
});

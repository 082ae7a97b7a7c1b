/**
 * Membership at run time on Redis: a fourth node started later is a member
 * within seconds, becomes a home of its share of the documents (rendezvous
 * hashing moves about R/N of the homes to it), and stores those documents by
 * state-vector catch-up although nobody opens them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { rank } from '../src/cluster/placement.js';
import { nodeDoc } from './helpers/cluster.js';
import { spawnNode, stopChild } from './helpers/node.js';
import {
  startRedis,
  startRedisNodes,
  waitMembers,
  type RedisNodes,
  type TestRedis,
} from './helpers/redis.js';
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
    redis = await startRedis();
    cluster = await startRedisNodes(3, redis.url, ['--replication-factor', String(R)]);
    await waitMembers(cluster.nodes, ['n1', 'n2', 'n3']);
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
    // state vector): one update from a peer per document, counted before reading.
    await waitFor(
      async () => {
        const metrics = await scrape(joined.url);
        return sample(metrics, 'stateweave_updates_in_total{origin="peer"}') >= moved.length;
      },
      'n4 to receive its documents',
      15_000,
      100,
    );
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

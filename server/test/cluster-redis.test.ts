/**
 * Three node processes on one real Redis (`--redis`, no --peers): membership,
 * stock y-websocket clients on every node editing at once, presence across
 * nodes, and a fresh client on any node seeing everything acknowledged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint, nodeDoc } from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { scrape, sample } from './helpers/metrics.js';
import {
  backplaneStatus,
  startRedis,
  startRedisNodes,
  waitMembers,
  type RedisNodes,
  type TestRedis,
} from './helpers/redis.js';
import { waitFor } from './helpers/wait.js';

describe('cluster on redis: three nodes converge', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  const clients: StockClient[] = [];

  before(async () => {
    redis = await startRedis();
    cluster = await startRedisNodes(3, redis.url);
    await waitMembers(cluster.nodes, ['n1', 'n2', 'n3']);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await cluster?.close();
    await redis?.close();
  });

  it('shows the live members and the backplane on GET /v1/cluster and /metrics', async () => {
    const status = await backplaneStatus(cluster.nodes[0]!.url);
    assert.equal(status.state, 'connected');
    assert.deepEqual(status.members, ['n1', 'n2', 'n3']);
    const metrics = await scrape(cluster.nodes[0]!.url);
    assert.equal(sample(metrics, 'stateweave_backplane_up'), 1);
    assert.equal(sample(metrics, 'stateweave_backplane_members'), 3);
  });

  it('converges every client and replica when clients on every node edit concurrently', async () => {
    const perNode = 2;
    const edits = 40;
    for (const node of cluster.nodes)
      for (let i = 0; i < perNode; i++) clients.push(await stockClient(node.wsUrl, 'shared'));
    const started = Date.now();
    await Promise.all(
      clients.map(async (client, c) => {
        const text = client.doc.getText('t');
        const map = client.doc.getMap('m');
        for (let i = 0; i < edits; i++) {
          text.insert(Math.floor(text.length / 2), `c${c}e${i};`);
          map.set(`c${c}`, i);
          if (i % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }),
    );
    let expectedLength = 0;
    for (let c = 0; c < clients.length; c++)
      for (let i = 0; i < edits; i++) expectedLength += `c${c}e${i};`.length;
    await waitFor(
      () => {
        const prints = new Set(clients.map((c) => fingerprint(c.doc)));
        return prints.size === 1 && clients[0]!.doc.getText('t').length === expectedLength;
      },
      'every client to converge',
      20_000,
      20,
    );
    const converged = Date.now() - started;
    const want = fingerprint(clients[0]!.doc);
    for (const node of cluster.nodes) {
      const doc = await nodeDoc(node.url, 'shared');
      assert.ok(doc, `${node.id} has the document`);
      assert.equal(fingerprint(doc), want, `${node.id} holds the converged state`);
    }
    // A fresh client on any node sees everything.
    for (const node of cluster.nodes) {
      const fresh = await stockClient(node.wsUrl, 'shared');
      clients.push(fresh);
      await waitFor(() => fingerprint(fresh.doc) === want, `a fresh client on ${node.id} to sync`);
    }
    console.log(
      `# redis: ${clients.length - 3} clients × ${edits} edits on 3 nodes converged in ${converged} ms`,
    );
  });

  it('relays presence across nodes', async () => {
    const alice = await stockClient(cluster.nodes[0]!.wsUrl, 'presence');
    const bob = await stockClient(cluster.nodes[2]!.wsUrl, 'presence');
    clients.push(alice, bob);
    alice.provider.awareness.setLocalStateField('user', 'alice');
    await waitFor(
      () =>
        [...bob.provider.awareness.getStates().values()].some(
          (s) => (s as { user?: string }).user === 'alice',
        ),
      "bob on n3 to see alice's presence from n1",
      10_000,
    );
  });
});

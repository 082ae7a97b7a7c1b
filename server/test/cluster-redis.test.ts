/**
 * Three node processes on one real Redis (`--redis`, no --peers): membership,
 * stock y-websocket clients on every node editing at once, presence across
 * nodes, and a fresh client on any node seeing everything acknowledged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint, nodeDoc } from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { spawnNode, stopChild } from './helpers/node.js';
import { scrape, sample } from './helpers/metrics.js';
import { backplaneStatus, type RedisNodes, type TestRedis } from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { waitFor } from './helpers/wait.js';

describe('cluster on redis: three nodes converge', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  const clients: StockClient[] = [];

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(3));
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

  it('replicates to a client on another node within milliseconds', async () => {
    const writer = await stockClient(cluster.nodes[0]!.wsUrl, 'latency');
    const reader = await stockClient(cluster.nodes[2]!.wsUrl, 'latency');
    clients.push(writer, reader);
    writer.doc.getMap('m').set('k', -1);
    await waitFor(() => reader.doc.getMap('m').get('k') === -1, 'the first write to arrive');
    const samples: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      writer.doc.getMap('m').set('k', i);
      await waitFor(
        () => reader.doc.getMap('m').get('k') === i,
        'the reader to see the write',
        5000,
        0,
      );
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    const p50 = samples[Math.floor(samples.length * 0.5)]!;
    const p99 = samples[Math.floor(samples.length * 0.99)]!;
    console.log(
      `# redis: replication latency n1 client -> n3 client: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    );
    assert.ok(p50 < 100, `p50 ${p50} ms`);
  });

  it('relays presence across nodes', async () => {
    const alice = await stockClient(cluster.nodes[0]!.wsUrl, 'presence');
    const bob = await stockClient(cluster.nodes[2]!.wsUrl, 'presence');
    clients.push(alice, bob);
    const seesAlice = (): boolean =>
      [...bob.provider.awareness.getStates().values()].some(
        (s) => (s as { user?: string }).user === 'alice',
      );
    alice.provider.awareness.setLocalStateField('user', 'alice');
    await waitFor(seesAlice, "bob on n3 to see alice's presence from n1", 10_000);
    // Alice leaves: her presence goes on every node.
    alice.destroy();
    await waitFor(() => !seesAlice(), "bob to see alice's presence go", 10_000);
  });

  it('stores what was written through one node on every home (R = 3)', async () => {
    const only = await stockClient(cluster.nodes[0]!.wsUrl, 'homes-only');
    clients.push(only);
    only.doc.getText('t').insert(0, 'stored by every home');
    // Every node stores the document even though no client of theirs opened it.
    await waitFor(
      async () => {
        for (const node of cluster.nodes.slice(1)) {
          const text = await fetch(`${node.url}/metrics`).then((r) => r.text());
          if (!/stateweave_updates_in_total\{origin="peer"\} [1-9]/.test(text)) return false;
        }
        return true;
      },
      'n2 and n3 to receive replicated updates',
      10_000,
    );
    for (const c of clients) c.destroy();
    clients.length = 0;
    for (const node of cluster.nodes) assert.equal((await stopChild(node.node)).code, 0);
    for (const node of cluster.nodes) {
      // Alone, without Redis: only its own LevelDB answers.
      const alone = await spawnNode(node.dataDir, ['--node-id', node.id], node.port);
      try {
        const doc = await nodeDoc(alone.url, 'homes-only');
        assert.equal(doc?.getText('t').toString(), 'stored by every home', `${node.id} stored it`);
      } finally {
        await stopChild(alone);
      }
    }
  });
});

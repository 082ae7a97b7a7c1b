/**
 * Three node processes, real LevelDB: stock y-websocket clients on every node
 * edit one document at once; every replica and every client converges, and
 * every home node's store holds the document (checked by restarting each node
 * alone, without peers, and reading it back).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  clusterStatus,
  fingerprint,
  nodeDoc,
  startCluster,
  waitConnected,
  type TestCluster,
} from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { spawnNode, stopChild } from './helpers/node.js';
import { scrape, sample } from './helpers/metrics.js';
import { waitFor } from './helpers/wait.js';

describe('cluster: three nodes converge', () => {
  let cluster: TestCluster;
  const clients: StockClient[] = [];

  before(async () => {
    cluster = await startCluster(3);
    await waitConnected(cluster.nodes);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await cluster.close();
  });

  it('shows membership and connected links on GET /v1/cluster', async () => {
    const status = await clusterStatus(cluster.nodes[0]!.url);
    assert.equal(status.nodeId, 'n1');
    assert.deepEqual(status.members, ['n1', 'n2', 'n3']);
    assert.equal(status.replicationFactor, 3);
    await waitFor(
      async () =>
        (await clusterStatus(cluster.nodes[0]!.url)).peers.every(
          (p) => p.nodeId === undefined || p.lagMs !== undefined,
        ),
      'a lag figure',
    );
    const metrics = await scrape(cluster.nodes[0]!.url);
    assert.equal(sample(metrics, 'stateweave_peer_link_state{peer="n2"}'), 2);
    assert.equal(sample(metrics, 'stateweave_peer_link_state{peer="n3"}'), 2);
    assert.ok(metrics.includes('stateweave_peer_lag_seconds{peer="n2"}'));
    assert.ok(metrics.includes('stateweave_peer_bytes_out_total'));
    // A URL not dialed successfully yet is listed without a node id; the links are what matter.
    const linked = status.peers.filter((p) => p.nodeId !== undefined);
    assert.deepEqual(linked.map((p) => [p.nodeId, p.state]).sort(), [
      ['n2', 'connected'],
      ['n3', 'connected'],
    ]);
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
    const expectedLength = clients.reduce((sum, _c, c) => {
      for (let i = 0; i < edits; i++) sum += `c${c}e${i};`.length;
      return sum;
    }, 0);
    await waitFor(
      // The last op of each client is a map set after its last insert: wait for both.
      () =>
        clients.every(
          (client) =>
            client.doc.getText('t').length === expectedLength &&
            clients.every((_other, c) => client.doc.getMap('m').get(`c${c}`) === edits - 1),
        ),
      'every client to see every edit',
      15_000,
      20,
    );
    const convergedMs = Date.now() - started;
    const reference = clients[0]!.doc;
    for (const client of clients) {
      assert.equal(client.doc.getText('t').toString(), reference.getText('t').toString());
      assert.equal(fingerprint(client.doc), fingerprint(reference));
      for (let c = 0; c < clients.length; c++)
        assert.equal(client.doc.getMap('m').get(`c${c}`), edits - 1);
    }
    await waitFor(
      async () => {
        for (const node of cluster.nodes) {
          const doc = await nodeDoc(node.url, 'shared');
          if (!doc || fingerprint(doc) !== fingerprint(reference)) return false;
        }
        return true;
      },
      'every node to hold the converged state',
      10_000,
      50,
    );
    console.log(
      `# ${clients.length} clients on 3 nodes, ${clients.length * edits} edits: converged in ${convergedMs} ms`,
    );
    const status = await clusterStatus(cluster.nodes[0]!.url);
    assert.ok(
      status.peers.every((p) => p.nodeId === undefined || (p.bytesIn > 0 && p.bytesOut > 0)),
      'bytes are counted per peer',
    );
  });

  it('replicates to a client on another node within milliseconds', async () => {
    const writer = await stockClient(cluster.nodes[0]!.wsUrl, 'latency');
    const reader = await stockClient(cluster.nodes[2]!.wsUrl, 'latency');
    clients.push(writer, reader);
    // Let both nodes open their channels before measuring.
    await waitFor(
      async () => (await clusterStatus(cluster.nodes[0]!.url)).replication.channels >= 3,
      'channels to open',
    );
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
      `# replication latency n1 client -> n3 client: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    );
    assert.ok(p50 < 100, `p50 ${p50} ms`);
  });

  it('stores the document on every home node, including one whose clients never wrote', async () => {
    // Written only through n1: n2 and n3 are homes (R = 3) and must store it.
    const only = await stockClient(cluster.nodes[0]!.wsUrl, 'homes-only');
    clients.push(only);
    only.doc.getText('t').insert(0, 'stored by every home');
    await waitFor(async () => {
      const text = await fetch(`${cluster.nodes[2]!.url}/metrics`).then((r) => r.text());
      return /stateweave_updates_in_total\{origin="peer"\} [1-9]/.test(text);
    }, 'n3 to receive replicated updates');
    const reference = fingerprint(clients[0]!.doc);
    for (const c of clients) c.destroy();
    clients.length = 0;
    // Graceful stop of every node, then each alone, without peers: only its own LevelDB answers.
    for (const node of cluster.nodes) assert.equal((await stopChild(node.node)).code, 0);
    for (const node of cluster.nodes) {
      const alone = await spawnNode(node.dataDir, ['--node-id', node.id], node.port);
      try {
        const shared = await nodeDoc(alone.url, 'shared');
        assert.ok(shared, `${node.id} stored "shared"`);
        assert.equal(fingerprint(shared), reference, `${node.id} stored the converged "shared"`);
        const homesOnly = await nodeDoc(alone.url, 'homes-only');
        assert.equal(
          homesOnly?.getText('t').toString(),
          'stored by every home',
          `${node.id} stored "homes-only"`,
        );
      } finally {
        await stopChild(alone);
      }
    }
  });
});

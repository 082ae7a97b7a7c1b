/**
 * Failover: an SDK client given several node URLs is on a node that is killed
 * (kill -9). It moves to another node of the cluster, and the edits it made
 * while disconnected (never acknowledged) still arrive on every surviving node.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createClient, type StateweaveClient } from '@stateweave/client';
import { nodeDoc, startCluster, waitConnected, type TestCluster } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

describe('cluster: client failover', () => {
  let cluster: TestCluster;
  let client: StateweaveClient | undefined;

  before(async () => {
    cluster = await startCluster(3);
    await waitConnected(cluster.nodes);
  });

  after(async () => {
    await client?.destroy();
    await cluster.close();
  });

  it('moves to another node and delivers its unsaved edits there', async () => {
    const [n1, n2, n3] = cluster.nodes as [
      (typeof cluster.nodes)[number],
      (typeof cluster.nodes)[number],
      (typeof cluster.nodes)[number],
    ];
    client = createClient({
      urls: [n3.wsUrl, n1.wsUrl, n2.wsUrl],
      WebSocket: WebSocket as never,
      backoff: { baseMs: 50, maxMs: 200 },
      connectTimeoutMs: 2000,
    });
    const handle = client.open('failover');
    await handle.synced;
    assert.match(handle.url ?? '', new RegExp(`:${n3.port}`));
    handle.doc.getMap('m').set('before', 1);
    await waitFor(() => handle.pending === 0, 'the first edit to be saved on n3');

    n3.node.child.kill('SIGKILL');
    await n3.node.exited;
    await waitFor(() => handle.status !== 'connected', 'the client to notice', 5000);
    handle.doc.getMap('m').set('during', 2); // made while disconnected: not saved anywhere yet
    assert.ok(handle.pending > 0);

    await waitFor(
      () => handle.status === 'connected' && handle.pending === 0,
      'the client to fail over and save',
      15_000,
      20,
    );
    assert.doesNotMatch(handle.url ?? '', new RegExp(`:${n3.port}`));
    for (const node of [n1, n2]) {
      await waitFor(async () => {
        const doc = await nodeDoc(node.url, 'failover');
        return doc?.getMap('m').get('before') === 1 && doc.getMap('m').get('during') === 2;
      }, `${node.id} to hold both edits`);
    }
  });
});

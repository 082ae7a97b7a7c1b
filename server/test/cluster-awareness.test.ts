/**
 * Presence across nodes: a client's awareness state reaches clients on other
 * nodes, its departure is relayed, and when a whole node dies (kill -9) its
 * clients' presence disappears from the other nodes with its link.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, waitConnected, type TestCluster } from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { waitFor } from './helpers/wait.js';

describe('cluster: awareness relay', () => {
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

  it('shows presence on every node and removes it with its node', async () => {
    const [n1, n2, n3] = cluster.nodes as [
      (typeof cluster.nodes)[number],
      (typeof cluster.nodes)[number],
      (typeof cluster.nodes)[number],
    ];
    const alice = await stockClient(n1.wsUrl, 'presence');
    const bob = await stockClient(n2.wsUrl, 'presence');
    const carol = await stockClient(n3.wsUrl, 'presence');
    clients.push(alice, bob, carol);
    alice.provider.awareness.setLocalStateField('user', 'alice');
    carol.provider.awareness.setLocalStateField('user', 'carol');
    const sees = (viewer: StockClient, who: StockClient, user: string) =>
      (viewer.provider.awareness.getStates().get(who.doc.clientID) as { user?: string } | undefined)
        ?.user === user;
    await waitFor(
      () => sees(bob, alice, 'alice') && sees(bob, carol, 'carol') && sees(alice, carol, 'carol'),
      'presence on every node',
    );

    // A client that leaves takes its presence along, on the other nodes too.
    carol.provider.awareness.setLocalState(null);
    await waitFor(
      () => !bob.provider.awareness.getStates().has(carol.doc.clientID),
      'carol to disappear from n2',
    );

    // A node that dies takes its clients' presence with it.
    n1.node.child.kill('SIGKILL');
    await n1.node.exited;
    await waitFor(
      () => !bob.provider.awareness.getStates().has(alice.doc.clientID),
      'alice to disappear with n1',
      10_000,
    );
    assert.equal(sees(bob, alice, 'alice'), false);
  });
});

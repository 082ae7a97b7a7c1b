/**
 * Presence across nodes: a client's awareness state reaches clients on other
 * nodes, its departure is relayed, and when a whole node dies (kill -9) its
 * clients' presence disappears from the other nodes with its link.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  startCluster,
  waitConnected,
  type ClusterNode,
  type TestCluster,
} from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { errorCount } from './helpers/metrics.js';
import { sleep, waitFor } from './helpers/wait.js';

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

  it('does not count a stock client echoing presence relayed from other nodes as its own', async () => {
    // Five named users on n1 and n2; a sixth on n3 is sent five states that came
    // from other nodes, and (a stock client) echoes them all in one message.
    const crowd: StockClient[] = [];
    const [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    for (const [i, node] of [n1, n2, n1, n2, n1, n3].entries()) {
      const client = await stockClient(node.wsUrl, 'crowd');
      client.provider.awareness.setLocalStateField('user', `user-${i}`);
      crowd.push(client);
      clients.push(client);
      if (i === 4)
        await waitFor(
          () =>
            crowd.every((c) =>
              crowd.every((o) => c.provider.awareness.getStates().has(o.doc.clientID)),
            ),
          'the five to see each other',
          10_000,
        );
    }
    const refusedBefore = await Promise.all(
      cluster.nodes.map((n) => errorCount(n.url, 'PRESENCE_LIMIT')),
    );
    await waitFor(
      () =>
        crowd.every((c) =>
          crowd.every((o) => c.provider.awareness.getStates().has(o.doc.clientID)),
        ),
      'every user to see the five others',
      10_000,
    );
    // Past the echo of every state (a renewal would repeat it; the relay is done).
    await sleep(500);
    const refused = await Promise.all(
      cluster.nodes.map((n) => errorCount(n.url, 'PRESENCE_LIMIT')),
    );
    assert.deepEqual(refused, refusedBefore, 'no connection was refused for presence it echoed');
    assert.ok(crowd.every((c) => c.provider.wsconnected));
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

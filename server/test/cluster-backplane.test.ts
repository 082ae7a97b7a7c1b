/**
 * The channel replicator on the in-memory backplane, three nodes in one
 * process: convergence, repair after a node was cut off (its messages dropped
 * both ways, as in a Redis outage) and presence leaving with its node. Fast,
 * and independent of Redis: what it proves is the replicator's logic.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  createMemoryBackplaneMedium,
  type MemoryBackplaneMedium,
} from '../src/cluster/memory-backplane.js';
import { fingerprint } from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { startNode, type TestNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

describe('cluster on the in-memory backplane', () => {
  let medium: MemoryBackplaneMedium;
  const nodes: TestNode[] = [];
  const clients: StockClient[] = [];

  before(async () => {
    medium = createMemoryBackplaneMedium();
    for (const id of ['n1', 'n2', 'n3'])
      nodes.push(await startNode({ nodeId: id, backplane: medium.join(id) }));
  });

  after(async () => {
    for (const c of clients) c.destroy();
    for (const n of nodes) await n.close();
  });

  const client = async (i: number, doc: string): Promise<StockClient> => {
    const c = await stockClient(nodes[i]!.wsUrl, doc);
    clients.push(c);
    return c;
  };

  it('converges clients on every node', async () => {
    const all = [await client(0, 'm1'), await client(1, 'm1'), await client(2, 'm1')];
    all.forEach((c, i) => c.doc.getMap('m').set(`k${i}`, i));
    await waitFor(
      () => all.every((c) => c.doc.getMap('m').size === 3),
      'every client to see every write',
    );
    assert.equal(new Set(all.map((c) => fingerprint(c.doc))).size, 1);
  });

  it('repairs what a cut-off node missed and what it could not send, once healed', async () => {
    const [a, b] = [await client(0, 'm2'), await client(1, 'm2')];
    a.doc.getMap('m').set('before', 1);
    await waitFor(() => b.doc.getMap('m').get('before') === 1, 'the first write to cross');
    medium.cut('n1');
    a.doc.getMap('m').set('from-n1-while-cut', 1);
    b.doc.getMap('m').set('from-n2-while-cut', 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(b.doc.getMap('m').has('from-n1-while-cut'), false, 'nothing crossed the cut');
    const dropped = nodes[0]!.server.cluster.status().backplane?.messagesDropped ?? 0;
    assert.ok(dropped > 0, 'n1 counted what it could not send');
    medium.heal('n1');
    await waitFor(
      () =>
        a.doc.getMap('m').has('from-n2-while-cut') && b.doc.getMap('m').has('from-n1-while-cut'),
      'both sides to hold both writes after the heal',
      5000,
    );
    assert.equal(fingerprint(a.doc), fingerprint(b.doc));
  });

  it("removes a node's clients' presence when it leaves", async () => {
    const [viewer, leaver] = [await client(0, 'm3'), await client(2, 'm3')];
    leaver.provider.awareness.setLocalStateField('user', 'leaver');
    const sees = (): boolean =>
      [...viewer.provider.awareness.getStates().values()].some(
        (s) => (s as { user?: string }).user === 'leaver',
      );
    await waitFor(sees, "the viewer to see the leaver's presence");
    // n3 stops abruptly as far as the others can tell: its backplane leaves, its sockets stay.
    await nodes[2]!.server.cluster.close();
    await waitFor(() => !sees(), "the leaver's presence to go with its node", 5000);
  });
});

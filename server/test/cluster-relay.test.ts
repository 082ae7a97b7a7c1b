/**
 * An update that must pass through a peer: with one home per document
 * (--replication-factor 1), two edge nodes that are not the home sync only with
 * the home, so every edit between their clients is relayed by it. If a node
 * stopped forwarding what a peer sent it to its other peers, these clients would
 * never see each other (a full mesh of homes hides that; this test does not).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rank } from '../src/cluster/placement.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import {
  clusterArgs,
  clusterStatus,
  freePorts,
  startCluster,
  waitConnected,
  type TestCluster,
} from './helpers/cluster.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

/** A document whose first-ranked (only) home is `home` among `members`. */
const docHomedOn = (home: string, members: string[]): string => {
  for (let i = 0; i < 1000; i++) {
    const name = `relay/doc-${i}`;
    if (rank(name, members)[0] === home) return name;
  }
  throw new Error(`no document name ranks ${home} first`);
};

const RELAY_WITHIN_MS = 5_000;

describe('cluster: updates relayed through the home node', { timeout: 60_000 }, () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster(3, ['--replication-factor', '1']);
    await waitConnected(cluster.nodes);
  });
  after(() => cluster.close());

  it('carries edits between two edge nodes that only talk to the home', async () => {
    const [home, left, right] = cluster.nodes as [
      (typeof cluster.nodes)[0],
      (typeof cluster.nodes)[0],
      (typeof cluster.nodes)[0],
    ];
    const name = docHomedOn(
      home.id,
      cluster.nodes.map((n) => n.id),
    );
    const clients: StockClient[] = [];
    try {
      const a = await stockClient(left.wsUrl, name);
      clients.push(a);
      const b = await stockClient(right.wsUrl, name);
      clients.push(b);
      a.doc.getText('t').insert(0, 'from the left ');
      b.doc.getText('t').insert(0, 'from the right ');
      await waitFor(
        () =>
          a.doc.getText('t').toString() === b.doc.getText('t').toString() &&
          a.doc.getText('t').length === 'from the left from the right '.length,
        `both edge clients to see both edits (left: ${a.doc.getText('t').toString()})`,
        // Pushed through the home, this takes milliseconds. The anti-entropy pull
        // (every 10 s) would repair a node that stopped forwarding, but only after
        // the edits are ~10 s old: the bound tells the two apart.
        RELAY_WITHIN_MS,
      );
      assert.match(b.doc.getText('t').toString(), /from the left/);
      assert.match(a.doc.getText('t').toString(), /from the right/);
    } finally {
      for (const c of clients) c.destroy();
    }
  });
});

/**
 * A chain n1 — n2 — n3: n1 and n3 list only n2 as a peer, so no link joins them
 * and every edit between their clients must pass through n2, whatever the
 * placement says.
 */
describe('cluster: updates relayed along a chain with no direct link', { timeout: 60_000 }, () => {
  const nodes: ChildNode[] = [];
  const dirs: Array<{ remove: () => Promise<void> }> = [];
  before(async () => {
    const ports = await freePorts(3);
    const peerUrl = (i: number) => `ws://127.0.0.1:${ports[i]!}`;
    const peersOf = [[peerUrl(1)], [peerUrl(0), peerUrl(2)], [peerUrl(1)]];
    for (const [i, peers] of peersOf.entries()) {
      const dir = await tempDir();
      dirs.push(dir);
      nodes.push(await spawnNode(dir.path, clusterArgs(`n${i + 1}`, peers), ports[i]));
    }
    const links = [1, 2, 1];
    await waitFor(
      async () => {
        for (const [i, node] of nodes.entries()) {
          const { peers } = await clusterStatus(node.url);
          if (peers.filter((p) => p.state === 'connected').length < links[i]!) return false;
        }
        return true;
      },
      'the chain links to connect',
      15_000,
      50,
    );
  });
  after(async () => {
    await Promise.all(nodes.map((n) => stopChild(n)));
    await Promise.all(dirs.map((d) => d.remove()));
  });

  it('carries edits between the ends through the middle node', async () => {
    const [first, , last] = nodes as [ChildNode, ChildNode, ChildNode];
    const { peers } = await clusterStatus(first.url);
    assert.deepEqual(
      peers.filter((p) => p.state === 'connected').map((p) => p.nodeId),
      ['n2'],
      'n1 talks to n2 alone',
    );
    const clients: StockClient[] = [];
    try {
      const a = await stockClient(first.wsUrl, 'chain/doc');
      clients.push(a);
      const b = await stockClient(last.wsUrl, 'chain/doc');
      clients.push(b);
      a.doc.getText('t').insert(0, 'from n1 ');
      b.doc.getText('t').insert(0, 'from n3 ');
      await waitFor(
        () =>
          a.doc.getText('t').toString() === b.doc.getText('t').toString() &&
          a.doc.getText('t').length === 'from n1 from n3 '.length,
        `both end clients to see both edits (n1: ${a.doc.getText('t').toString()})`,
        RELAY_WITHIN_MS,
      );
    } finally {
      for (const c of clients) c.destroy();
    }
  });
});

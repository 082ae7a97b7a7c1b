/**
 * Crash: `kill -9` of one node of three while clients on every node write. The
 * other two keep serving and acknowledging; the killed node restarts on its data
 * directory and catches up; every write any client was told is saved is present
 * on every node afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import {
  fingerprint,
  nodeDoc,
  startCluster,
  waitConnected,
  type TestCluster,
} from './helpers/cluster.js';
import { rawClient, type RawClient } from './helpers/clients.js';
import { sleep, waitFor } from './helpers/wait.js';

interface Writer {
  readonly name: string;
  readonly client: RawClient;
  /** seq → key written under it. */
  readonly keys: Map<number, string>;
  stopped: boolean;
  loop: Promise<void>;
}

const DOC = 'crash-doc';

const startWriter = (name: string, client: RawClient): Writer => {
  const writer: Writer = { name, client, keys: new Map(), stopped: false, loop: Promise.resolve() };
  writer.loop = (async () => {
    for (let i = 0; !writer.stopped && client.ws.readyState === client.ws.OPEN; i++) {
      const before = Y.encodeStateVector(client.doc);
      const key = `${name}-${i}`;
      client.doc.getMap('m').set(key, i);
      writer.keys.set(client.sendUpdate(Y.encodeStateAsUpdate(client.doc, before)), key);
      await sleep(5);
    }
  })();
  return writer;
};

/** Keys the node acknowledged as saved to this writer. */
const ackedKeys = (writer: Writer): string[] =>
  [...writer.keys].filter(([seq]) => seq <= writer.client.savedSeq()).map(([, key]) => key);

describe('cluster: kill -9 of a node during writes', () => {
  let cluster: TestCluster;
  const writers: Writer[] = [];

  before(async () => {
    cluster = await startCluster(3);
    await waitConnected(cluster.nodes);
  });

  after(async () => {
    for (const w of writers) {
      w.stopped = true;
      w.client.close();
    }
    await cluster.close();
  });

  it('keeps serving, catches up after restart, and loses nothing that was acknowledged', async () => {
    for (const node of cluster.nodes)
      writers.push(startWriter(node.id, await rawClient(node.wsUrl, DOC)));
    await sleep(400);
    const victim = cluster.nodes[2]!;
    victim.node.child.kill('SIGKILL');
    await victim.node.exited;
    const [w1, w2, w3] = writers as [Writer, Writer, Writer];
    await w3.loop;
    const victimAcked = ackedKeys(w3);
    assert.ok(victimAcked.length > 0, 'the victim acknowledged writes before it died');

    // The survivors keep taking and acknowledging writes.
    const savedBefore = [w1.client.savedSeq(), w2.client.savedSeq()];
    await sleep(500);
    assert.ok(w1.client.savedSeq() > savedBefore[0]!, 'n1 keeps acknowledging');
    assert.ok(w2.client.savedSeq() > savedBefore[1]!, 'n2 keeps acknowledging');

    const restarted = await cluster.restart(2);
    await waitConnected(cluster.nodes);
    await sleep(300);
    w1.stopped = true;
    w2.stopped = true;
    await Promise.all([w1.loop, w2.loop]);
    await waitFor(
      () => [w1, w2].every((w) => w.client.savedSeq() >= Math.max(...w.keys.keys())),
      'the survivors to acknowledge every write',
      10_000,
    );
    const required = [...w1.keys.values(), ...w2.keys.values(), ...victimAcked];
    const restartedAt = Date.now();
    await waitFor(
      async () => {
        const docs = await Promise.all(cluster.nodes.map((n) => nodeDoc(n.url, DOC)));
        if (docs.some((d) => !d)) return false;
        const prints = new Set(docs.map((d) => fingerprint(d!)));
        return prints.size === 1 && required.every((key) => docs[0]!.getMap('m').has(key));
      },
      'every node to hold every acknowledged write',
      20_000,
      100,
    );
    console.log(
      `# crash: ${victimAcked.length} writes acknowledged by the killed node, ${required.length} acknowledged in all; all nodes converged ${Date.now() - restartedAt} ms after ${restarted.id} restarted and linked`,
    );
  });
});

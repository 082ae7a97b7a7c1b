/**
 * Partition: two node processes linked through a TCP proxy that the test cuts
 * while clients on both sides keep editing. After it heals both converge, and
 * the bytes the catch-up costs follow the missed edits, not the document size
 * (the state-vector exchange sends only what each side lacks).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  clusterArgs,
  clusterStatus,
  fingerprint,
  freePorts,
  nodeDoc,
  startProxy,
  type CuttableProxy,
} from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

describe('cluster: partition and heal', () => {
  let a: ChildNode;
  let b: ChildNode;
  let proxy: CuttableProxy;
  let dirAPath: string;
  const dirs: Array<{ remove(): Promise<void> }> = [];
  const clients: StockClient[] = [];

  before(async () => {
    const [portB] = await freePorts(1);
    const dirA = await tempDir();
    const dirB = await tempDir();
    dirs.push(dirA, dirB);
    // Only A dials, and only through the proxy, so cutting it partitions the pair.
    b = await spawnNode(dirB.path, [...clusterArgs('b', []), '--idle-unload-ms', '100'], portB);
    proxy = await startProxy(b.port);
    a = await spawnNode(dirA.path, [...clusterArgs('a', [proxy.url]), '--idle-unload-ms', '100']);
    dirAPath = dirA.path;
    await waitFor(
      async () => (await clusterStatus(a.url)).peers.some((p) => p.state === 'connected'),
      'a to link with b',
      10_000,
      50,
    );
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await Promise.all([stopChild(a, 'SIGKILL'), stopChild(b, 'SIGKILL')]);
    await proxy.close();
    await Promise.all(dirs.map((d) => d.remove()));
  });

  it('converges after the partition heals, sending bytes in proportion to the missed edits', async () => {
    const onA = await stockClient(a.wsUrl, 'big');
    const onB = await stockClient(b.wsUrl, 'big');
    clients.push(onA, onB);
    // A large document first: 1 MiB of text, replicated to b before the cut.
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 16; i++) onA.doc.getText('t').insert(0, chunk);
    await waitFor(
      () => onB.doc.getText('t').length === 16 * chunk.length,
      'b to receive the large document',
      20_000,
      20,
    );
    const docBytes = (await nodeDoc(b.url, 'big'))!.getText('t').length;

    proxy.cut();
    await waitFor(
      async () => (await clusterStatus(a.url)).peers.every((p) => p.state !== 'connected'),
      'a to see the link down',
      10_000,
      20,
    );
    assert.equal(
      (await clusterStatus(a.url)).peers.find((p) => p.nodeId === 'b')?.state !== 'connected',
      true,
    );

    // Both sides keep taking edits while cut off from each other.
    let missedBytes = 0;
    const count = (update: Uint8Array, origin: unknown) => {
      if (origin === null || origin === undefined) missedBytes += update.byteLength;
    };
    onA.doc.on('update', count);
    onB.doc.on('update', count);
    for (let i = 0; i < 50; i++) {
      onA.doc.getMap('m').set(`a${i}`, `edit ${i} on a`);
      onB.doc.getMap('m').set(`b${i}`, `edit ${i} on b`);
      onA.doc.getText('t').insert(i, 'A');
      onB.doc.getText('t').insert(i, 'B');
    }
    onA.doc.off('update', count);
    onB.doc.off('update', count);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(onA.doc.getMap('m').get('b0'), undefined, 'a must not see b during the partition');

    proxy.resetBytes();
    const healedAt = Date.now();
    proxy.heal();
    await waitFor(
      () =>
        onA.doc.getMap('m').size === 100 &&
        onB.doc.getMap('m').size === 100 &&
        onA.doc.getText('t').length === onB.doc.getText('t').length,
      'both sides to converge after healing',
      20_000,
      10,
    );
    const catchUpMs = Date.now() - healedAt;
    const catchUpBytes = proxy.bytes();
    assert.equal(fingerprint(onA.doc), fingerprint(onB.doc));
    assert.equal(onA.doc.getText('t').toString(), onB.doc.getText('t').toString());
    await waitFor(
      async () =>
        fingerprint((await nodeDoc(a.url, 'big'))!) === fingerprint((await nodeDoc(b.url, 'big'))!),
      'both nodes to hold the same state',
    );
    console.log(
      `# partition catch-up: document ${docBytes} bytes, missed edits ${missedBytes} bytes, catch-up ${catchUpBytes} bytes through the proxy (incl. handshake), ${catchUpMs} ms after healing (includes reconnect backoff)`,
    );
    assert.ok(
      catchUpBytes < docBytes / 20,
      `catch-up ${catchUpBytes} bytes must be far below the document size ${docBytes}`,
    );
    assert.ok(
      catchUpBytes < 4 * missedBytes + 8192,
      `catch-up ${catchUpBytes} bytes must follow the missed edits (${missedBytes} bytes)`,
    );
  });

  it('brings a document written during the partition and closed since to the other home, without anyone opening it', async () => {
    proxy.cut();
    await waitFor(
      async () => (await clusterStatus(a.url)).peers.every((p) => p.state !== 'connected'),
      'a to see the link down',
      10_000,
      20,
    );
    const writer = await stockClient(b.wsUrl, 'closed-during-partition');
    writer.doc.getText('t').insert(0, 'written on b while a was unreachable');
    await waitFor(
      async () => (await nodeDoc(b.url, 'closed-during-partition')) !== undefined,
      'b to store it',
    );
    writer.destroy();
    // Closed on b (idle unload after 100 ms) and never opened on a.
    await new Promise((resolve) => setTimeout(resolve, 500));
    proxy.heal();
    await waitFor(
      async () => (await clusterStatus(a.url)).peers.some((p) => p.state === 'connected'),
      'the link to come back',
      10_000,
      20,
    );
    await waitFor(
      async () =>
        /stateweave_updates_in_total\{origin="peer"\} [0-9]+/.test(
          await fetch(`${a.url}/metrics`).then((r) => r.text()),
        ),
      'a to receive peer updates',
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Only a's own LevelDB answers now: restart it alone, without peers.
    assert.equal((await stopChild(a)).code, 0);
    a = await spawnNode(dirAPath, ['--node-id', 'a']);
    const stored = await nodeDoc(a.url, 'closed-during-partition');
    assert.equal(stored?.getText('t').toString(), 'written on b while a was unreachable');
  });
});

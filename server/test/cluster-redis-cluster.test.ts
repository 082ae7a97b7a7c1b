/**
 * Three node processes on a real 3-master Redis Cluster that requires a
 * password, each node given a different master's URL with the password in it
 * (it finds the rest, and uses the password on each): documents spread over slots on
 * every master, stock y-websocket clients on every node editing them at once,
 * fresh clients seeing everything, and `kill -9` of a node under writes losing
 * nothing it acknowledged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keySlot } from '../src/cluster/redis/key-slot.js';
import { fingerprint, nodeDoc } from './helpers/cluster.js';
import { rawClient, stockClient, type StockClient } from './helpers/clients.js';
import {
  ackedKeys,
  startWriter,
  stopWriters,
  waitConverged,
  type Writer,
} from './helpers/acked-writers.js';
import { startRedisNodes, waitMembers, type RedisNodes } from './helpers/redis.js';
import { startRedisCluster, type TestRedisCluster } from './helpers/redis-cluster.js';
import { sleep, waitFor } from './helpers/wait.js';

type SlotRange = [start: number, end: number, master: [host: string, port: number, ...unknown[]]];

/** The port of the master serving each slot, from CLUSTER SLOTS. */
const slotOwners = async (redis: TestRedisCluster): Promise<(slot: number) => number> => {
  const ranges = (await redis.master(redis.ports[0]!).cluster('SLOTS')) as unknown as SlotRange[];
  return (slot) => {
    const range = ranges.find(([start, end]) => slot >= start && slot <= end);
    if (!range) throw new Error(`slot ${slot} is served by no master`);
    return Number(range[2][1]);
  };
};

/** `perMaster` document names whose stream lives on each master. */
const docsOnEveryMaster = (
  ports: readonly number[],
  ownerOf: (slot: number) => number,
  perMaster: number,
  prefix: string,
): Map<number, string[]> => {
  const byPort = new Map(ports.map((p) => [p, [] as string[]]));
  for (let i = 0; i < 1000; i++) {
    const name = `${prefix}-${i}`;
    const list = byPort.get(ownerOf(keySlot(`sw:doc:{${name}}`)))!;
    if (list.length < perMaster) list.push(name);
    if ([...byPort.values()].every((l) => l.length === perMaster)) return byPort;
  }
  throw new Error('could not place documents on every master');
};

describe('cluster on a Redis Cluster (3 masters)', () => {
  let redis: TestRedisCluster;
  let cluster: RedisNodes;
  const clients: StockClient[] = [];
  const writers: Writer[] = [];

  before(async () => {
    redis = await startRedisCluster(3, { password: 'cluster-pass-0123' });
    // Each node is pointed at a different master: any node of the cluster finds all of it.
    cluster = await startRedisNodes(3, (i) => redis.urlOf(redis.ports[i]!));
    await waitMembers(cluster.nodes, ['n1', 'n2', 'n3']);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    for (const w of writers) {
      w.stopped = true;
      w.client.close();
    }
    await cluster?.close();
    await redis?.close();
  });

  it('hashes keys to the slots Redis computes (hash tags included)', async () => {
    const master = redis.master(redis.ports[0]!);
    for (const key of ['sw:members', 'sw:records', 'sw:doc:{a}', 'sw:doc:{ünï}', 'x{}y', '{}{z}']) {
      assert.equal(keySlot(key), await master.cluster('KEYSLOT', key), key);
    }
    assert.equal(keySlot('sw:doc:{doc-1}'), keySlot('sw:lease:{doc-1}'), 'one document, one slot');
  });

  it('converges stock clients on every node editing documents on all three masters', async () => {
    const ownerOf = await slotOwners(redis);
    const byMaster = docsOnEveryMaster(redis.ports, ownerOf, 2, 'spread');
    const docs = [...byMaster.values()].flat();
    const perDoc = new Map<string, StockClient[]>();
    for (const doc of docs) {
      const list: StockClient[] = [];
      for (const node of cluster.nodes) list.push(await stockClient(node.wsUrl, doc));
      perDoc.set(doc, list);
      clients.push(...list);
    }
    const edits = 20;
    await Promise.all(
      [...perDoc.values()].flat().map(async (client, c) => {
        for (let i = 0; i < edits; i++) {
          client.doc.getMap('m').set(`c${c}-${i}`, i);
          if (i % 5 === 0) await sleep(5);
        }
      }),
    );
    for (const [doc, list] of perDoc) {
      const want = list.length * edits;
      await waitFor(
        () =>
          new Set(list.map((c) => fingerprint(c.doc))).size === 1 &&
          list[0]!.doc.getMap('m').size === want,
        `every client of ${doc} to converge`,
        20_000,
        20,
      );
    }
    // Each document's stream is on the master that serves its slot: all three hold some.
    for (const [port, names] of byMaster) {
      const master = redis.master(port);
      for (const name of names) {
        const key = `sw:doc:{${name}}`;
        assert.ok((await master.xlen(key)) > 0, `master ${port} holds the stream of ${name}`);
      }
      const streams = await master.keys('sw:doc:*');
      assert.ok(streams.length >= names.length, `master ${port} holds document streams`);
    }
    // Every node (each a home) marks what it stored next to the stream, in its slot (no CROSSSLOT).
    for (const [port, names] of byMaster)
      for (const name of names)
        await waitFor(
          async () =>
            (await redis.master(port).hlen(`sw:stored:{${name}}`)) === cluster.nodes.length,
          `every home to mark ${name} stored on master ${port}`,
          20_000,
          50,
        );
    // A fresh client on any node sees everything acknowledged.
    for (const [doc, list] of perDoc) {
      const want = fingerprint(list[0]!.doc);
      for (const node of cluster.nodes) {
        const fresh = await stockClient(node.wsUrl, doc);
        clients.push(fresh);
        await waitFor(
          () => fingerprint(fresh.doc) === want,
          `a fresh client of ${doc} on ${node.id}`,
        );
        assert.equal(
          fingerprint((await nodeDoc(node.url, doc))!),
          want,
          `${node.id} stores ${doc}`,
        );
      }
    }
  });

  it('delivers a write to another node at once, on every master (bells, not the 5 s sweep)', async () => {
    const ownerOf = await slotOwners(redis);
    const byMaster = docsOnEveryMaster(redis.ports, ownerOf, 1, 'latency');
    const samples: number[] = [];
    for (const doc of [...byMaster.values()].flat()) {
      const writer = await stockClient(cluster.nodes[0]!.wsUrl, doc);
      const reader = await stockClient(cluster.nodes[2]!.wsUrl, doc);
      clients.push(writer, reader);
      writer.doc.getMap('m').set('k', -1);
      await waitFor(() => reader.doc.getMap('m').get('k') === -1, `the first write of ${doc}`);
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        writer.doc.getMap('m').set('k', i);
        await waitFor(() => reader.doc.getMap('m').get('k') === i, `write ${i} of ${doc}`, 5000, 0);
        samples.push(performance.now() - t0);
      }
    }
    samples.sort((a, b) => a - b);
    const p50 = samples[Math.floor(samples.length * 0.5)]!;
    const p99 = samples[Math.floor(samples.length * 0.99)]!;
    console.log(
      `# redis cluster: n1 client -> n3 client over 3 masters: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    );
    // Without bells a write would wait for the sweep (5 s) or the next ask (10 s).
    assert.ok(p50 < 1000, `p50 ${p50} ms`);
  });

  it("keeps delivering a document's writes after its slot moves to another master (MOVED)", async () => {
    const ownerOf = await slotOwners(redis);
    const [doc] = docsOnEveryMaster(redis.ports, ownerOf, 1, 'moving').get(redis.ports[0]!)!;
    const slot = keySlot(`sw:doc:{${doc!}}`);
    const writer = await stockClient(cluster.nodes[0]!.wsUrl, doc!);
    const reader = await stockClient(cluster.nodes[2]!.wsUrl, doc!);
    clients.push(writer, reader);
    writer.doc.getMap('m').set('before', 1);
    await waitFor(() => reader.doc.getMap('m').get('before') === 1, 'a write before the move');
    await redis.moveSlot(slot, redis.ports[1]!);
    assert.equal(await redis.ownerOf(slot), redis.ports[1]!);
    // Written right after the move: the nodes learn of it from MOVED answers.
    for (let i = 0; i < 20; i++) writer.doc.getMap('m').set(`after-${i}`, i);
    await waitFor(
      () => reader.doc.getMap('m').get('after-19') === 19,
      'the writes after the move to arrive',
      20_000,
    );
    assert.ok(
      (await redis.master(redis.ports[1]!).xlen(`sw:doc:{${doc!}}`)) > 0,
      'the new master holds the stream',
    );
    // Once the readers have followed the slot (the 5 s sweep at the latest), bells ring again.
    await sleep(6000);
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      writer.doc.getMap('m').set('k', i);
      await waitFor(() => reader.doc.getMap('m').get('k') === i, `write ${i}`, 5000, 0);
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    const p50 = samples[5]!;
    console.log(`# redis cluster: after a slot moved, delivery p50 ${p50.toFixed(1)} ms`);
    assert.ok(p50 < 1000, `p50 ${p50} ms`);
  });

  it('loses no acknowledged update when a node is killed (kill -9) under writes', async () => {
    const ownerOf = await slotOwners(redis);
    // Two documents on two different masters, written through every node.
    const byMaster = docsOnEveryMaster(redis.ports, ownerOf, 1, 'crash');
    const docs = [...byMaster.values()].flat().slice(0, 2);
    for (const doc of docs)
      for (const node of cluster.nodes)
        writers.push(startWriter(`${doc}-${node.id}`, await rawClient(node.wsUrl, doc)));
    await sleep(500);
    const victim = cluster.nodes[2]!;
    victim.node.child.kill('SIGKILL');
    await victim.node.exited;
    const onVictim = writers.filter((w) => w.name.endsWith('-n3'));
    const survivors = writers.filter((w) => !w.name.endsWith('-n3'));
    await Promise.all(onVictim.map((w) => w.loop));
    await sleep(300);
    await stopWriters(survivors);
    await waitFor(
      () => survivors.every((w) => w.client.savedSeq() >= Math.max(...w.keys.keys())),
      'the survivors to acknowledge every write',
      10_000,
    );
    const urls = cluster.nodes.slice(0, 2).map((n) => n.url);
    let acked = 0;
    for (const doc of docs) {
      const required = [
        ...survivors
          .filter((w) => w.name.startsWith(`${doc}-`))
          .flatMap((w) => [...w.keys.values()]),
        ...onVictim.filter((w) => w.name.startsWith(`${doc}-`)).flatMap(ackedKeys),
      ];
      acked += required.length;
      await waitConverged(
        urls,
        doc,
        required,
        `the survivors to hold every acknowledged write of ${doc}`,
      );
    }
    const victimAcked = onVictim.flatMap(ackedKeys).length;
    assert.ok(victimAcked > 0, 'the killed node acknowledged writes before it died');
    await waitMembers(cluster.nodes.slice(0, 2), ['n1', 'n2'], 10_000);
    console.log(
      `# redis cluster crash: ${victimAcked} writes acknowledged by the killed node, ${acked} in all: none lost`,
    );
  });
});

describe('cluster on a Redis Cluster over TLS (rediss://, password)', () => {
  let redis: TestRedisCluster;
  let cluster: RedisNodes;
  const clients: StockClient[] = [];

  before(async () => {
    redis = await startRedisCluster(3, { password: 'tls-pass-0123', tls: true });
    // The nodes trust the test CA as an operator would trust a private one.
    cluster = await startRedisNodes(2, (i) => redis.urlOf(redis.ports[i]!), [], {
      ...process.env,
      NODE_EXTRA_CA_CERTS: redis.caFile,
    });
    await waitMembers(cluster.nodes, ['n1', 'n2']);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await cluster?.close();
    await redis?.close();
  });

  it('finds every master over TLS and converges documents on all of them', async () => {
    const ownerOf = await slotOwners(redis);
    const byMaster = docsOnEveryMaster(redis.ports, ownerOf, 1, 'tls');
    for (const [port, [doc]] of byMaster) {
      const [a, b] = [
        await stockClient(cluster.nodes[0]!.wsUrl, doc!),
        await stockClient(cluster.nodes[1]!.wsUrl, doc!),
      ];
      clients.push(a, b);
      a.doc.getMap('m').set('from', 'n1');
      b.doc.getMap('m').set('to', 'n2');
      await waitFor(
        () => a.doc.getMap('m').get('to') === 'n2' && b.doc.getMap('m').get('from') === 'n1',
        `${doc!} to converge over TLS`,
        15_000,
      );
      assert.ok((await redis.master(port).xlen(`sw:doc:{${doc!}}`)) > 0, `master ${port} holds it`);
    }
  });
});

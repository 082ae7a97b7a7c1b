/**
 * `--ack replicated` on the Redis backplane, with real processes: `saved` waits
 * until Redis answered the append, so while Redis is down (kill -9) nothing new
 * is acknowledged; after Redis restarts on its data (appendonly, appendfsync
 * always) every acknowledged update is in Redis's own copy of the document's
 * stream — 0 acknowledged updates lost — and every node converges on them.
 * Writers: a protocol-level client per node (every `saved` seq counted) and the
 * SDK awaiting `whenSaved()` after each write.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import * as Y from 'yjs';
import { createClient, type StateweaveClient } from '@stateweave/client';
import { decodeClientMessage } from '@stateweave/client/protocol';
import { WebSocket } from 'ws';
import { rank } from '../src/cluster/placement.js';
import { createServer } from '../src/server.js';
import { fingerprint, nodeDoc } from './helpers/cluster.js';
import { rawClient, type RawClient } from './helpers/clients.js';
import { backplaneStatus, waitMembers, type RedisNodes, type TestRedis } from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { sleep, waitFor } from './helpers/wait.js';

/** Well under the stream's ~1,000 entries: nothing acknowledged is trimmed away. */
const WRITES_PER_CLIENT = 200;

interface Writer {
  readonly name: string;
  readonly client: RawClient;
  /** seq → key written under it. */
  readonly keys: Map<number, string>;
  stopped: boolean;
  loop: Promise<void>;
}

const startWriter = (name: string, client: RawClient): Writer => {
  const writer: Writer = { name, client, keys: new Map(), stopped: false, loop: Promise.resolve() };
  const deadline = Date.now() + 20_000;
  writer.loop = (async () => {
    for (let i = 0; i < WRITES_PER_CLIENT && Date.now() < deadline; i++) {
      if (writer.stopped || client.ws.readyState !== client.ws.OPEN) return;
      const before = Y.encodeStateVector(client.doc);
      const key = `${name}-${i}`;
      client.doc.getMap('m').set(key, i);
      writer.keys.set(client.sendUpdate(Y.encodeStateAsUpdate(client.doc, before)), key);
      await sleep(10);
    }
  })();
  return writer;
};

/** The SDK: one key at a time, each awaited until the node says it is saved. */
interface SdkWriter {
  readonly saved: string[];
  stopped: boolean;
  loop: Promise<void>;
}

const startSdkWriter = (client: StateweaveClient, doc: string): SdkWriter => {
  const writer: SdkWriter = { saved: [], stopped: false, loop: Promise.resolve() };
  const handle = client.open(doc);
  const deadline = Date.now() + 30_000;
  writer.loop = (async () => {
    await handle.synced;
    for (let i = 0; i < 60 && Date.now() < deadline && !writer.stopped; i++) {
      const key = `sdk-${i}`;
      handle.doc.getMap('m').set(key, i);
      await handle.whenSaved();
      writer.saved.push(key);
      await sleep(10);
    }
    await handle.close();
  })();
  return writer;
};

const ackedKeys = (writer: Writer): string[] =>
  [...writer.keys].filter(([seq]) => seq <= writer.client.savedSeq()).map(([, key]) => key);

/** The document as Redis's stream alone holds it (every update message applied). */
const docInRedis = async (url: string, doc: string): Promise<Y.Doc> => {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const entries = await redis.xrangeBuffer(`sw:doc:{${doc}}`, '-', '+');
    const ydoc = new Y.Doc();
    for (const [, fields] of entries) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i]!.toString() !== 'm') continue;
        const message = decodeClientMessage(new Uint8Array(fields[i + 1]!));
        if (message.type === 'update' || message.type === 'sync-step-2')
          Y.applyUpdate(ydoc, message.update);
      }
    }
    return ydoc;
  } finally {
    redis.disconnect();
  }
};

describe('--ack replicated', () => {
  it('is refused without a backplane to replicate to', () => {
    assert.throws(() => createServer({ ack: 'replicated' }), /needs a backplane/);
  });
});

describe('cluster on redis with --ack replicated: kill -9 of Redis during writes', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  const writers: Writer[] = [];
  let sdk: StateweaveClient | undefined;

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(3, ['--ack', 'replicated']));
    // Streams are trimmed to what every live home stored; a member that never
    // stores (registered here by hand) holds them whole, so the check below can
    // read every acknowledged update back from Redis.
    const ghost = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const [seconds] = await ghost.time();
    await ghost.zadd('sw:members', (Number(seconds) + 3600) * 1000, 'ghost');
    ghost.disconnect();
    await waitMembers(cluster.nodes, ['ghost', 'n1', 'n2', 'n3']);
  });

  after(async () => {
    for (const w of writers) {
      w.stopped = true;
      w.client.close();
    }
    await sdk?.destroy();
    await cluster?.close();
    await redis?.close();
  });

  it('acknowledges nothing while Redis is down, and loses nothing acknowledged', async () => {
    // A document the ghost is a home of (R = 3 of 4 members).
    let doc = '';
    for (let i = 0; i < 1000 && doc === ''; i++)
      if (
        rank(docName(`acked-doc-${i}`), ['ghost', 'n1', 'n2', 'n3'])
          .slice(0, 3)
          .includes('ghost')
      )
        doc = `acked-doc-${i}`;
    for (const node of cluster.nodes)
      writers.push(startWriter(node.id, await rawClient(node.wsUrl, doc)));
    sdk = createClient({ urls: [cluster.nodes[1]!.wsUrl], WebSocket: WebSocket as never });
    const sdkWriter = startSdkWriter(sdk, doc);
    await sleep(300);
    assert.ok(
      writers.every((w) => w.client.savedSeq() > 0),
      'every node acknowledges while Redis is up',
    );
    await redis.stop('SIGKILL');
    await waitFor(
      async () =>
        (await Promise.all(cluster.nodes.map((n) => backplaneStatus(n.url)))).every(
          (s) => s.state === 'down',
        ),
      'every node to see Redis down',
      10_000,
    );
    await sleep(200); // answers Redis gave before it died have arrived
    const frozen = writers.map((w) => w.client.savedSeq());
    const ackedBefore = writers.flatMap(ackedKeys);
    const sdkFrozen = sdkWriter.saved.length;
    await sleep(700);
    assert.equal(sdkWriter.saved.length, sdkFrozen, 'the SDK is told nothing is saved meanwhile');
    const sentMeanwhile = writers.map((w) => Math.max(...w.keys.keys()));
    writers.forEach((w, i) => {
      assert.ok(sentMeanwhile[i]! > frozen[i]!, `${w.name} kept writing`);
      assert.equal(w.client.savedSeq(), frozen[i], `${w.name}: nothing acknowledged without Redis`);
    });

    await redis.restart({ keepData: true });
    await Promise.all(writers.map((w) => w.loop));
    await waitFor(
      () => writers.every((w) => w.client.savedSeq() >= Math.max(...w.keys.keys())),
      'every write to be acknowledged once Redis is back',
      20_000,
    );
    await sdkWriter.loop;
    assert.ok(sdkWriter.saved.length > sdkFrozen, 'the SDK saves again once Redis is back');
    const acked = [...writers.flatMap(ackedKeys), ...sdkWriter.saved];
    assert.equal(
      acked.length,
      writers.reduce((n, w) => n + w.keys.size, 0) + sdkWriter.saved.length,
    );

    const inRedis = (await docInRedis(redis.url, doc)).getMap('m');
    const missing = acked.filter((key) => !inRedis.has(key));
    assert.deepEqual(missing, [], 'every acknowledged update is in Redis');
    assert.ok(ackedBefore.every((key) => inRedis.has(key)));

    await waitFor(
      async () => {
        const docs = await Promise.all(cluster.nodes.map((n) => nodeDoc(n.url, doc)));
        if (docs.some((d) => !d)) return false;
        return (
          new Set(docs.map((d) => fingerprint(d!))).size === 1 &&
          acked.every((key) => docs[0]!.getMap('m').has(key))
        );
      },
      'every node to hold every acknowledged write',
      30_000,
      100,
    );
    console.log(
      `# ack replicated: ${ackedBefore.length} acknowledged before Redis died, ${acked.length} in all, all in Redis's stream after its restart`,
    );
  });
});

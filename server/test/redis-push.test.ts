/**
 * Push delivery of document streams (stream-push.ts) on a real redis-server,
 * two Redis backplanes of one process: an entry reaches the other node as it
 * is pushed, with no XREAD of the stream by either node (counted with MONITOR),
 * and is not pushed back to the node that wrote it;
 * a push whose previous id is not the reader's position makes it read the
 * stream from its position (and hand on what it missed, in stream order); and
 * when that position was trimmed away, the reader reports a gap. After its
 * subscriber reconnects a node is pushed to again, subscribing itself (ioredis's own
 * resubscribe leaves a promise unhandled, which ends a node).
 */
import { docName } from './helpers/doc-name.js';
import type { DocName } from '../src/doc-name.js';
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { Backplane, BackplaneEvents } from '../src/cluster/backplane.js';
import { createBackplaneMetrics } from '../src/cluster/backplane-metrics.js';
import { createRedisBackplane } from '../src/cluster/redis/redis-backplane.js';
import { createRedisConnection } from '../src/cluster/redis/redis-connection.js';
import { createMetrics } from '../src/metrics.js';
import { validateNodeId as nid } from '../src/node-id.js';
import { silentLogger } from './helpers/node.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { sleep, waitFor } from './helpers/wait.js';

interface Seen {
  readonly messages: Array<{ from: string; text: string }>;
  gaps: number;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('redis push delivery', () => {
  let redis: TestRedis;
  let r: Redis;
  let monitor: Awaited<ReturnType<Redis['monitor']>>;
  /** Every XREAD Redis executed, as the keys it names. */
  const xreads: string[][] = [];
  let marker = 0;
  let backplanes: Backplane[] = [];
  let media = 0;

  before(async () => {
    redis = await startRedis();
    r = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    monitor = await r.monitor();
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toUpperCase() === 'XREAD') xreads.push(args);
    });
  });
  afterEach(async () => {
    for (const b of backplanes) await b.close();
    backplanes = [];
  });
  after(async () => {
    monitor?.disconnect();
    r?.disconnect();
    await redis?.close();
  });

  /** The XREADs of `key` Redis executed since `from` (the monitor has seen all before a marker). */
  const readsOf = async (key: string, from: number): Promise<number> => {
    const echo = `marker-${++marker}`;
    let seen = false;
    const onEcho = (_time: string, args: string[]): void => {
      if (args[0]?.toUpperCase() === 'ECHO' && args[1] === echo) seen = true;
    };
    monitor.on('monitor', onEcho);
    await r.echo(echo);
    await waitFor(() => seen, 'the monitor to see the marker');
    monitor.off('monitor', onEcho);
    return xreads.slice(from).filter((args) => args.includes(key)).length;
  };

  /** Two started nodes on their own key prefix, both subscribed to `doc`. */
  const twoNodes = async (
    doc: DocName,
  ): Promise<{ a: Backplane; b: Backplane; seenA: Seen; seenB: Seen; key: string }> => {
    const keyPrefix = `push${++media}`;
    const make = (id: string): Backplane =>
      createRedisBackplane({
        url: redis.url,
        nodeId: nid(id),
        keyPrefix,
        logger: silentLogger(),
        metrics: createBackplaneMetrics(createMetrics({ collectDefault: false })),
      });
    const events = (seen: Seen): BackplaneEvents => ({
      memberUp: () => undefined,
      memberDown: () => undefined,
      direct: () => undefined,
      docMessage: (_doc, from, message) =>
        seen.messages.push({ from, text: new TextDecoder().decode(message) }),
      recordChanged: () => undefined,
      resync: () => undefined,
      channelGap: () => seen.gaps++,
    });
    const [a, b] = [make('a'), make('b')];
    backplanes.push(a, b);
    const [seenA, seenB]: Seen[] = [
      { messages: [], gaps: 0 },
      { messages: [], gaps: 0 },
    ];
    await a.start(events(seenA!));
    await b.start(events(seenB!));
    await waitFor(() => a.isLive(nid('b')) && b.isLive(nid('a')), 'both nodes to be members');
    const key = `${keyPrefix}:doc:{${doc}}`;
    const subscribedAt = xreads.length;
    a.subscribe(doc);
    b.subscribe(doc);
    // Each node reads the stream once it is subscribed to its pushes (its catch-up).
    await waitFor(async () => (await readsOf(key, subscribedAt)) === 2, 'both catch-up reads');
    a.publish(doc, text('warm-up'));
    await waitFor(() => seenB!.messages.length === 1, 'b to get the warm-up message');
    await waitFor(
      () => a.channelPosition?.(doc) === b.channelPosition?.(doc),
      'a to be at its own entry too',
    );
    return { a, b, seenA: seenA!, seenB: seenB!, key };
  };

  it('delivers entries as they are pushed: no XREAD of the stream, by the reader or the writer', async () => {
    const { a, b, seenA, seenB, key } = await twoNodes(docName('pushed'));
    const from = xreads.length;
    for (let i = 0; i < 50; i++) a.publish(docName('pushed'), text(`a${i}`));
    for (let i = 0; i < 10; i++) b.publish(docName('pushed'), text(`b${i}`));
    await waitFor(() => seenB.messages.length === 51, 'b to get every message of a');
    await waitFor(() => seenA.messages.length === 10, 'a to get every message of b');
    assert.deepEqual(
      seenB.messages.slice(1).map((m) => m.text),
      Array.from({ length: 50 }, (_, i) => `a${i}`),
    );
    assert.deepEqual(
      seenA.messages.map((m) => m.text),
      Array.from({ length: 10 }, (_, i) => `b${i}`),
    );
    assert.ok(
      seenA.messages.every((m) => m.from === 'b'),
      'a got none of its own back',
    );
    // Both stand at the stream's last entry, their own entries included.
    const last = (await r.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0];
    await waitFor(
      () =>
        a.channelPosition?.(docName('pushed')) === last &&
        b.channelPosition?.(docName('pushed')) === last,
      'both positions to reach the last entry',
    );
    assert.equal(await readsOf(key, from), 0, 'XREADs of the document stream while pushing');
  });

  it('pushes an entry to the other nodes only, not back to its writer', async () => {
    const { a, b, seenB, key } = await twoNodes(docName('not-back'));
    // Listening on both nodes' channels of the stream (stream-push.ts).
    const listener = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      const heard = new Map<string, string[]>();
      listener.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
        const list = heard.get(channel.toString()) ?? [];
        list.push(payload.toString());
        heard.set(channel.toString(), list);
      });
      await listener.subscribe(`${key}#a`, `${key}#b`);
      for (let i = 0; i < 3; i++) a.publish(docName('not-back'), text(`a${i}`));
      // b's entry comes after a's three: once it is on a's channel, theirs would have been too.
      await waitFor(() => seenB.messages.length === 4, "b to get a's three");
      b.publish(docName('not-back'), text('b0'));
      await waitFor(() => (heard.get(`${key}#a`) ?? []).length === 1, "b's entry on a's channel");
      assert.deepEqual(
        (heard.get(`${key}#b`) ?? []).map((p) => p.split(' ').pop()),
        ['a0', 'a1', 'a2'],
      );
      assert.deepEqual(
        (heard.get(`${key}#a`) ?? []).map((p) => p.split(' ').pop()),
        ['b0'],
        "a was pushed b's entry and none of its own",
      );
      // Each writer's position moved past its own entries all the same.
      const last = (await r.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0];
      await waitFor(
        () =>
          a.channelPosition?.(docName('not-back')) === last &&
          b.channelPosition?.(docName('not-back')) === last,
        'both positions to reach the last entry',
      );
    } finally {
      listener.disconnect();
    }
  });

  it('reads the stream from its position when a push does not follow it', async () => {
    const { a, seenB, key } = await twoNodes(docName('unpushed'));
    const from = xreads.length;
    // An entry appended without a push (as a node of an earlier version writes).
    await r.xadd(key, '*', 'n', 'a', 'b', 'an-earlier-run', 'm', 'not pushed');
    a.publish(docName('unpushed'), text('pushed'));
    await waitFor(() => seenB.messages.length === 3, 'b to get both entries');
    assert.deepEqual(
      seenB.messages.map((m) => m.text),
      ['warm-up', 'not pushed', 'pushed'],
    );
    assert.ok((await readsOf(key, from)) >= 1, 'b read the stream');
    assert.equal(seenB.gaps, 0);
  });

  it('finds its position trimmed when a push does not follow it', async () => {
    const { a, seenB, key } = await twoNodes(docName('trimmed'));
    // An entry appended without a push, and b's position (the warm-up entry) trimmed away.
    const missed = await r.xadd(key, '*', 'n', 'a', 'b', 'an-earlier-run', 'm', 'missed');
    await r.xtrim(key, 'MINID', missed!);
    a.publish(docName('trimmed'), text('pushed'));
    await waitFor(() => seenB.gaps === 1, 'b to report the gap');
    await waitFor(() => seenB.messages.length === 3, 'b to read what the stream retains');
    assert.deepEqual(
      seenB.messages.map((m) => m.text),
      ['warm-up', 'missed', 'pushed'],
    );
  });

  /** Pub/sub connections Redis holds now. */
  const subscribers = async (): Promise<number> =>
    String(await r.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
      .split('\n')
      .filter((line) => line.trim() !== '').length;

  it('is pushed to again after its subscriber reconnects', async () => {
    const { a, seenB, key } = await twoNodes(docName('resubscribed'));
    const before = await subscribers();
    assert.ok(before >= 2, `${before} subscribers`);
    await r.client('KILL', 'TYPE', 'pubsub');
    await waitFor(async () => (await subscribers()) === before, 'both nodes to subscribe again');
    // The read each node makes after subscribing again, then no more: b must be pushed to.
    await sleep(200);
    const from = xreads.length;
    a.publish(docName('resubscribed'), text('after the reconnect'));
    await waitFor(() => seenB.messages.length === 2, 'b to get the message');
    assert.equal(await readsOf(key, from), 0, 'b was pushed the entry, it did not read it');
  });

  it('makes subscriber connections without the resubscribe of ioredis', async () => {
    // ioredis's autoResubscribe sends SUBSCRIBE after a reconnect with no handler on its
    // promise: a subscriber dropped before Redis answered ended the node ("Connection is
    // closed"). The bell reader subscribes again itself (the test above). The race itself
    // cannot be forced here: on loopback Redis answers before the closing socket is read.
    const connection = createRedisConnection({
      url: redis.url,
      nodeId: 'resubscribe-test',
      onReady: () => undefined,
      onClose: () => undefined,
      onError: () => undefined,
    });
    let sub: Redis | undefined;
    try {
      await connection.connect();
      const source = connection.source();
      assert.equal(source.kind, 'single');
      sub = source.kind === 'single' ? source.pushes?.subscriber('single') : undefined;
      assert.ok(sub);
      assert.equal(sub.options.autoResubscribe, false);
    } finally {
      sub?.disconnect();
      await connection.close();
    }
  });
});

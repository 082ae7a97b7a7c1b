/**
 * Document streams on Redis are trimmed by what their homes have stored, on a
 * real redis-server with two node processes (both homes): the stream shrinks
 * once both stored; a live home that never stored (a member registered here by
 * hand, which never reads) holds every entry; once it leaves membership it
 * stops holding the stream; a home that was down while the stream was trimmed
 * past everything it missed still converges (state-vector exchange); a
 * node that is no home, reopening a document whose stream was trimmed past the
 * position it remembers, converges too; and a node that is no home, paused
 * (SIGSTOP) while it reads a document and the homes trim its stream, finds its
 * position trimmed when it resumes and exchanges state vectors at once.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { decodeChannelFrame } from '../src/cluster/channel-codec.js';
import { rank } from '../src/cluster/placement.js';
import { nodeDoc } from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import {
  backplaneStatus,
  waitMembers,
  type RedisNode,
  type RedisNodes,
  type TestRedis,
} from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { sleep, waitFor } from './helpers/wait.js';

const DOC = 'trimmed';
const STREAM = `sw:doc:{${DOC}}`;
const MARKS = `sw:stored:{${DOC}}`;

/** Entries ever appended to a stream (XINFO STREAM entries-added, Redis ≥ 7). */
const entriesAddedTo = async (r: Redis, stream: string): Promise<number> => {
  const info = (await r.call('XINFO', 'STREAM', stream)) as unknown[];
  return Number(info[info.indexOf('entries-added') + 1]);
};

describe('cluster on redis: streams trimmed by what the homes stored', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  let r: Redis;
  let writer: StockClient;
  const clients: StockClient[] = [];
  let expected = '';

  const entriesAdded = (): Promise<number> => entriesAddedTo(r, STREAM);
  const lastId = async (): Promise<string | undefined> =>
    (await r.xrevrange(STREAM, '+', '-', 'COUNT', 1))[0]?.[0];

  /** `count` edits from the writer on n1, each its own update; returns the stream's peak length seen. */
  const write = async (count: number, tag: string): Promise<number> => {
    let peak = 0;
    const text = writer.doc.getText('t');
    for (let i = 0; i < count; i++) {
      const piece = `${tag}${i};`;
      text.insert(text.length, piece);
      expected += piece;
      await sleep(2);
      if (i % 20 === 0) peak = Math.max(peak, await r.xlen(STREAM));
    }
    return peak;
  };
  const holds = async (index: number): Promise<boolean> =>
    (await nodeDoc(cluster.nodes[index]!.url, DOC))?.getText('t').toString() === expected;

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(2));
    r = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    writer = await stockClient(cluster.nodes[0]!.wsUrl, DOC);
    clients.push(writer);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    r?.disconnect();
    await cluster?.close();
    await redis?.close();
  });

  it('shrinks the stream once every home has stored it', async () => {
    const peak = await write(200, 'a');
    await waitFor(() => holds(1), 'n2 to store every edit', 20_000, 100);
    const added = await entriesAdded();
    assert.ok(added >= 50, `${added} entries appended`);
    await waitFor(async () => (await r.xlen(STREAM)) <= 3, 'the stream to be trimmed', 20_000);
    const marks = await r.hgetall(MARKS);
    assert.deepEqual(Object.keys(marks).sort(), ['n1', 'n2']);
    console.log(
      `# trim: ${added} entries appended, XLEN peak ${peak} while writing, ${await r.xlen(STREAM)} once both homes stored`,
    );
  });

  it('keeps every entry while a live home has not stored', async () => {
    const [seconds] = await r.time();
    await r.zadd('sw:members', (Number(seconds) + 600) * 1000, 'ghost');
    await waitMembers(cluster.nodes, ['ghost', 'n1', 'n2']);
    const lengthBefore = await r.xlen(STREAM);
    const addedBefore = await entriesAdded();
    await write(100, 'b');
    await waitFor(() => holds(1), 'n2 to store every edit', 20_000, 100);
    // Both real homes have marked everything they read: only the ghost holds the stream.
    await waitFor(
      async () => {
        const last = await lastId();
        const [n1, n2] = await r.hmget(MARKS, 'n1', 'n2');
        return last !== undefined && n1 === last && n2 === last;
      },
      'n1 and n2 to mark the last entry stored',
      20_000,
    );
    const addedSince = (await entriesAdded()) - addedBefore;
    assert.ok(addedSince >= 20, `${addedSince} entries appended`);
    assert.equal(await r.xlen(STREAM), lengthBefore + addedSince, 'nothing was trimmed');
    assert.equal(await r.hget(MARKS, 'ghost'), null);
  });

  it('stops holding the stream once that home is gone from membership', async () => {
    const held = await r.xlen(STREAM);
    await r.zrem('sw:members', 'ghost');
    await waitMembers(cluster.nodes, ['n1', 'n2']);
    await waitFor(async () => (await r.xlen(STREAM)) <= 3, 'the stream to be trimmed', 20_000);
    console.log(
      `# trim: a home that never stored held ${held} entries; gone, XLEN ${await r.xlen(STREAM)}`,
    );
  });

  it('a home whose stream position was trimmed away converges by state vectors', async () => {
    const victim = cluster.nodes[1]!;
    victim.node.child.kill('SIGKILL');
    const addedBefore = await entriesAdded();
    await write(100, 'c');
    await waitMembers([cluster.nodes[0]!], ['n1']);
    await waitFor(async () => (await r.xlen(STREAM)) <= 3, 'n1 alone to trim the stream', 20_000);
    const missed = (await entriesAdded()) - addedBefore;
    const retained = await r.xlen(STREAM);
    assert.ok(missed > retained + 20, `${missed} entries appended, ${retained} retained`);
    await cluster.restart(1);
    await waitMembers(cluster.nodes, ['n1', 'n2']);
    const reader = await stockClient(cluster.nodes[1]!.wsUrl, DOC);
    clients.push(reader);
    await waitFor(
      () => reader.doc.getText('t').toString() === expected,
      'a client on n2 to see every edit',
      20_000,
    );
    await waitFor(() => holds(1), 'n2 to store every edit', 20_000, 100);
  });
});

/** When (Redis ms) `from` asked `to` for a state-vector exchange of `doc`: read from `to`'s inbox. */
const asksOf = async (r: Redis, from: string, to: string, doc: string): Promise<number[]> => {
  const entries = await r.xrangeBuffer(`sw:inbox:{${to}}`, '-', '+');
  const times: number[] = [];
  for (const [id, flat] of entries) {
    const fields = new Map<string, Buffer>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!.toString(), flat[i + 1]!);
    const message = fields.get('m');
    if (fields.get('n')?.toString() !== from || !message) continue;
    let frame;
    try {
      frame = decodeChannelFrame(message);
    } catch {
      continue; // not a channel frame (a request/response of another kind)
    }
    if (frame.type === 'ask' && frame.doc === doc) times.push(Number(id.toString().split('-')[0]));
  }
  return times;
};

/** A document whose homes (replication factor 2) are n1 and n2: n3 only reads its stream. */
const notOnN3 = (prefix: string): string => {
  for (let i = 0; i < 1000; i++) {
    const homes = rank(docName(`${prefix}-${i}`), ['n1', 'n2', 'n3']).slice(0, 2);
    if (!homes.includes('n3')) return `${prefix}-${i}`;
  }
  throw new Error('no such document name');
};

describe('cluster on redis: reopening a document past a trimmed position', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  let r: Redis;
  const clients: StockClient[] = [];

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(3, ['--replication-factor', '2']));
    r = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });

  after(async () => {
    for (const c of clients) c.destroy();
    r?.disconnect();
    await cluster?.close();
    await redis?.close();
  });

  it('a node whose remembered stream position was trimmed converges by state vectors', async () => {
    // A document whose homes are n1 and n2: n3 only reads its stream while it has clients.
    let doc = '';
    for (let i = 0; i < 1000 && doc === ''; i++) {
      const homes = rank(docName(`reopen-${i}`), ['n1', 'n2', 'n3']).slice(0, 2);
      if (!homes.includes('n3')) doc = `reopen-${i}`;
    }
    assert.notEqual(doc, '');
    const stream = `sw:doc:{${doc}}`;
    const [n1, n2, n3] = cluster.nodes as [RedisNode, RedisNode, RedisNode];
    const writer = await stockClient(n1.wsUrl, doc);
    clients.push(writer);
    const text = writer.doc.getText('t');
    text.insert(0, 'first;');
    const early = await stockClient(n3.wsUrl, doc);
    await waitFor(() => early.doc.getText('t').toString() === 'first;', 'n3 to read the stream');
    early.destroy();
    // n3 closes the document (its demand lingers 3 s) and remembers where it read.
    await waitFor(
      async () => (await backplaneStatus(n3.url)).channels === 0,
      'n3 to stop reading the stream',
      20_000,
      100,
    );
    const addedBefore = await entriesAddedTo(r, stream);
    for (let i = 0; i < 100; i++) {
      text.insert(text.length, `w${i};`);
      await sleep(2);
    }
    const expected = text.toString();
    await waitFor(
      async () => (await nodeDoc(n2.url, doc))?.getText('t').toString() === expected,
      'n2 to store every edit',
      20_000,
      100,
    );
    await waitFor(async () => (await r.xlen(stream)) <= 3, 'the homes to trim the stream', 20_000);
    const missed = (await entriesAddedTo(r, stream)) - addedBefore;
    const retained = await r.xlen(stream);
    assert.ok(missed > retained + 20, `${missed} entries appended, ${retained} retained`);
    const reader = await stockClient(n3.wsUrl, doc);
    clients.push(reader);
    await waitFor(
      () => reader.doc.getText('t').toString() === expected,
      'a client on n3 to see every edit',
      20_000,
    );
  });

  it('a reading node paused while its position was trimmed catches up at once when it resumes', async () => {
    const doc = notOnN3('paused');
    const stream = `sw:doc:{${doc}}`;
    const [n1, n2, n3] = cluster.nodes as [RedisNode, RedisNode, RedisNode];
    const writer = await stockClient(n1.wsUrl, doc);
    const reader = await stockClient(n3.wsUrl, doc);
    clients.push(writer, reader);
    const text = writer.doc.getText('t');
    text.insert(0, 'first;');
    await waitFor(() => reader.doc.getText('t').toString() === 'first;', 'n3 to read the stream');
    const gapsBefore = (await backplaneStatus(n3.url)).gaps ?? 0;
    // n3 stands still with its read of the stream outstanding while n1 writes and the
    // homes store and trim: the first write answers that read, the rest are trimmed.
    n3.node.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    let expected: string;
    let resumedAt: number;
    try {
      const addedBefore = await entriesAddedTo(r, stream);
      for (let i = 0; i < 100; i++) {
        text.insert(text.length, `p${i};`);
        await sleep(2);
      }
      expected = text.toString();
      await waitFor(
        async () => (await nodeDoc(n2.url, doc))?.getText('t').toString() === expected,
        'n2 to store every edit',
        20_000,
        100,
      );
      await waitFor(
        async () => (await r.xlen(stream)) <= 3,
        'the homes to trim the stream',
        20_000,
      );
      const missed = (await entriesAddedTo(r, stream)) - addedBefore;
      assert.ok(missed > (await r.xlen(stream)) + 20, `${missed} entries appended`);
      // The premise: a stall longer than the readers' 1 s stall rule (position-check.ts).
      // On a quiet machine the homes trim within a second; a shorter pause leaves the
      // position to the 10 s anti-entropy, which is what the rule is there to beat.
      await sleep(Math.max(0, 1500 - (Date.now() - stoppedAt)));
    } finally {
      n3.node.child.kill('SIGCONT');
      resumedAt = Date.now();
    }
    const [seconds, micros] = await r.time();
    const resumedAtRedis = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await waitFor(
      () => reader.doc.getText('t').toString() === expected,
      'the client on n3 to see every edit',
      20_000,
    );
    const caughtUpMs = Date.now() - resumedAt;
    const status = await backplaneStatus(n3.url);
    assert.ok((status.gaps ?? 0) > gapsBefore, 'n3 found its stream position trimmed');
    // n3 asked a home again sooner than its anti-entropy period (10 s) after its previous
    // ask: the trimmed position, not the periodic exchange, made it ask.
    const asks = [...(await asksOf(r, 'n3', 'n1', doc)), ...(await asksOf(r, 'n3', 'n2', doc))];
    const before = Math.max(...asks.filter((t) => t < resumedAtRedis - 100));
    const again = Math.min(...asks.filter((t) => t >= resumedAtRedis - 100));
    assert.ok(Number.isFinite(before) && Number.isFinite(again), `asks at ${asks.join(', ')}`);
    assert.ok(again - before < 10_000, `asked ${again - before} ms after the previous ask`);
    console.log(
      `# trim: n3 resumed past a trimmed position, asked again ${again - before} ms after its previous ask, caught up in ${caughtUpMs} ms`,
    );
  });
});

/**
 * The single-Redis stream reader against a real redis-server: a position that
 * was trimmed away is reported as a gap, one that is still there is not, and a
 * reader that stalled while the stream was trimmed reports the gap, also when
 * it had followed the stream from its start and not read it yet.
 */
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { trimmedPositions } from '../src/cluster/redis/position-check.js';
import { createStreamReader, type StreamReader } from '../src/cluster/redis/stream-reader.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { sleep, waitFor } from './helpers/wait.js';

describe('redis stream positions', () => {
  let redis: TestRedis;
  let r: Redis;
  const readers: StreamReader[] = [];
  const connections: Redis[] = [];

  before(async () => {
    redis = await startRedis();
    r = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });

  after(async () => {
    for (const reader of readers) reader.stop();
    for (const c of connections) c.disconnect();
    r?.disconnect();
    await redis?.close();
  });

  const append = async (key: string, count: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push((await r.xadd(key, '*', 'm', String(i)))!);
    return ids;
  };

  it('tells a trimmed position from one still in the stream', async () => {
    const ids = await append('s:check', 5);
    await r.xtrim('s:check', 'MINID', ids[3]!);
    const gone = await trimmedPositions(r, [
      ['s:check', ids[0]!],
      ['s:check', ids[3]!],
      ['s:check', ids[4]!],
      ['s:check', '0'], // reading from the start: nothing to miss
      ['s:missing', ids[0]!], // the stream itself is gone (expired, Redis restarted empty)
    ]);
    assert.deepEqual(gone, ['s:check', 's:missing']);
  });

  const startReader = (gaps: string[], read: Map<string, string[]>): StreamReader => {
    const control = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    connections.push(control);
    const reader = createStreamReader({
      nodeId: 'n1',
      onEntries: (key, entries) =>
        read.set(key, [...(read.get(key) ?? []), ...entries.map((e) => e.id)]),
      onError: () => undefined,
      onGap: (key) => gaps.push(key),
    });
    readers.push(reader);
    reader.start({ kind: 'single', connect: () => control.duplicate(), control });
    return reader;
  };

  it('reports a stream followed again from a position that was trimmed, not one that was kept', async () => {
    const ids = await append('s:resume', 6);
    const kept = await append('s:kept', 2);
    await r.xtrim('s:resume', 'MINID', ids[4]!);
    const gaps: string[] = [];
    const read = new Map<string, string[]>();
    const reader = startReader(gaps, read);
    reader.follow('s:resume', ids[1]!);
    reader.follow('s:kept', kept[0]!);
    await waitFor(() => read.get('s:resume')?.length === 2, 'the retained entries to be read');
    await waitFor(() => read.get('s:kept')?.length === 1, 'the kept stream to be read');
    await waitFor(() => gaps.includes('s:resume'), 'the trimmed position to be reported');
    assert.deepEqual(read.get('s:resume'), ids.slice(4));
    assert.ok(!gaps.includes('s:kept'), `gaps: ${gaps.join(', ')}`);
  });

  it('checks its position when this node stalled while the stream was trimmed', async () => {
    const gaps: string[] = [];
    const read = new Map<string, string[]>();
    startReader(gaps, read).follow('s:late', '0');
    await r.xadd('s:late', '*', 'm', 'first');
    await waitFor(() => read.get('s:late')?.length === 1, 'the first entry to be read');
    await sleep(50); // the reader is blocked in its next XREAD
    // This process stands still (a synchronous child) while three entries are appended,
    // the stream is trimmed to the last, and 1.2 s pass (the stall limit is 1 s). The
    // blocked read was answered with the first of the three, now gone: a gap.
    execFileSync('sh', [
      '-c',
      `for i in 1 2 3; do redis-cli -p ${redis.port} XADD s:late '*' m $i >/dev/null; done; ` +
        `redis-cli -p ${redis.port} XTRIM s:late MAXLEN 1 >/dev/null; sleep 1.2`,
    ]);
    await waitFor(() => gaps.includes('s:late'), 'the trimmed position to be reported');
    await waitFor(() => read.get('s:late')?.length === 3, 'the entries left to be read');
  });

  it('reports a stream followed from its start when this node stalled before its first read', async () => {
    const gaps: string[] = [];
    const read = new Map<string, string[]>();
    startReader(gaps, read).follow('s:fresh', '0');
    await sleep(50); // the reader is blocked in an XREAD of the new stream from its start
    execFileSync('sh', [
      '-c',
      `for i in 1 2 3; do redis-cli -p ${redis.port} XADD s:fresh '*' m $i >/dev/null; done; ` +
        `redis-cli -p ${redis.port} XTRIM s:fresh MAXLEN 1 >/dev/null; sleep 1.2`,
    ]);
    await waitFor(() => gaps.includes('s:fresh'), 'the missed start to be reported');
  });
});

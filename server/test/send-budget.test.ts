/**
 * The node-wide budget for unsent bytes (issue 17, item 5), on real sockets with
 * a LevelDB store: readers that stop reading are dropped, the one with the
 * largest backlog first, once the node holds more than maxTotalBufferedBytes for
 * all of them together, although each stays under its own maxBufferedBytes;
 * a reader that reads is never dropped, and the metrics say what happened.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import * as Y from 'yjs';
import type { WebSocket } from 'ws';
import { ERRORS } from '../src/errors.js';
import { rawClient, stockClient, type RawClient } from './helpers/clients.js';
import { errorCount, sample, scrape } from './helpers/metrics.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

const MIB = 1024 * 1024;
const PER_CONNECTION = 64 * MIB;
const BUDGET = 4 * MIB;
const UPDATE_BYTES = 64 * 1024;
/** 2,000 × 64 KiB = 125 MiB: far more than the kernel's socket buffers and the budget. */
const MAX_UPDATES = 2000;
const MAX_FLOOD_MS = 60_000;

const socketOf = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket;

describe('the node-wide send budget', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    node = await startNode({
      dataDir: dir.path,
      maxBufferedBytes: PER_CONNECTION,
      maxTotalBufferedBytes: BUDGET,
      maxMessagesPerSecond: 100_000,
      messageBurst: 100_000,
    });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  it('drops the slowest readers first once all backlogs together pass the budget', async (t) => {
    const doc = 'budget';
    const reader = await stockClient(node.wsUrl, doc);
    const writer = await rawClient(node.wsUrl, doc);
    const slowest: RawClient = await rawClient(node.wsUrl, doc);
    const slower: RawClient = await rawClient(node.wsUrl, doc);
    for (const slow of [slowest, slower]) slow.ws.on('error', () => undefined);
    t.after(() => {
      reader.destroy();
      writer.close();
      slowest.ws.terminate();
      slower.ws.terminate();
    });
    const dropsBefore = await errorCount(node.url, 'SLOW_CONSUMER');
    const budgetDrops = async (): Promise<number> =>
      sample(await scrape(node.url), 'stateweave_send_budget_drops_total');

    // The slowest stops reading first; the slower one a little later, so its
    // backlog is always the smaller one.
    socketOf(slowest.ws).pause();
    const source = new Y.Doc();
    const started = Date.now();
    let peakBuffered = 0;
    let i = 0;
    for (; i < MAX_UPDATES && Date.now() - started < MAX_FLOOD_MS; i++) {
      if (i === 20) socketOf(slower.ws).pause();
      const before = Y.encodeStateVector(source);
      // One key overwritten: the document stays small while every frame is big.
      source.getMap('big').set('value', `${i}:${'x'.repeat(UPDATE_BYTES)}`);
      const seq = writer.sendUpdate(Y.encodeStateAsUpdate(source, before));
      // One update per node turn (a turn's updates merge, and these overwrite one key).
      await waitFor(() => writer.savedSeq() >= seq, `the ack of update ${seq}`, 15_000, 1);
      if (i % 10 === 9) {
        const metrics = await scrape(node.url);
        peakBuffered = Math.max(peakBuffered, sample(metrics, 'stateweave_buffered_bytes'));
        if (sample(metrics, 'stateweave_send_budget_drops_total') >= 1) break;
      }
    }
    t.diagnostic(
      `first drop after ${i + 1} updates of ${UPDATE_BYTES / 1024} KiB; peak buffered at a check ${(peakBuffered / MIB).toFixed(1)} MiB (budget ${BUDGET / MIB} MiB, per connection ${PER_CONNECTION / MIB} MiB)`,
    );
    assert.equal(await budgetDrops(), 1, 'one reader dropped: the rest then fit');
    assert.equal(
      (await errorCount(node.url, 'SLOW_CONSUMER')) - dropsBefore,
      1,
      'the drop was the budget, not the per-connection limit',
    );
    // One check interval of sending may overshoot the budget, never by a whole connection's limit.
    assert.ok(peakBuffered <= BUDGET + 2 * MIB, `${peakBuffered} bytes buffered at a check`);

    // Reading again, the slowest learns it was dropped (4408, or 1006: the node
    // terminates, so the close frame behind the backlog may never arrive) ...
    socketOf(slowest.ws).resume();
    const closed = await slowest.closed(10_000);
    assert.ok(
      [ERRORS.SLOW_CONSUMER.close, 1006].includes(closed.code),
      `the slowest reader was closed (${JSON.stringify(closed)})`,
    );
    // ... and the slower one catches up: it was never dropped.
    socketOf(slower.ws).resume();
    const last = source.getMap('big').get('value');
    await waitFor(
      () => slower.doc.getMap('big').get('value') === last,
      'the slower reader to catch up',
      15_000,
    );
    assert.equal(slower.ws.readyState, slower.ws.OPEN);

    // The reader that reads is still connected and has the last value.
    await waitFor(
      () => reader.doc.getMap('big').get('value') === last,
      'the reading client to have the last value',
      15_000,
    );
    assert.ok(reader.provider.wsconnected, 'the reading client was never dropped');
  });
});

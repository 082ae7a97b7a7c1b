/**
 * Memory under a slow consumer, against a real node process (issue 3): a client
 * that stops reading is dropped once its backlog passes --max-buffered-bytes, the
 * node's resident memory (VmRSS from /proc) stays bounded while a writer floods
 * the document and stops growing after the drop, and everyone else keeps syncing.
 * Also: the node never negotiates permessage-deflate, so a compressed frame can
 * never inflate past the frame limit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { ERRORS } from '../src/errors.js';
import {
  rawClient,
  stockClient,
  textUpdate,
  type StockClient,
  type RawClient,
} from './helpers/clients.js';
import { prng } from './helpers/fuzz.js';
import { errorCount, sample, scrape } from './helpers/metrics.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

const MAX_BUFFERED_BYTES = 1024 * 1024;
/** ~130 MB in all: were it buffered for the slow client, RSS would pass MAX_RSS_GROWTH. */
const UPDATES = 4000;
const MIN_UPDATE_BYTES = 4 * 1024;
const MAX_UPDATE_BYTES = 64 * 1024;
const MB = 1024 * 1024;
/** Resident memory may grow this much over its baseline, at most. */
const MAX_RSS_GROWTH = 150 * MB;
/** After the drop, the later half of the flood may not peak this much above the earlier half. */
const MAX_GROWTH_AFTER_DROP = 40 * MB;

/** The node's resident set size in bytes, from /proc/<pid>/status. */
const rssOf = async (pid: number): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb) * 1024;
};

const mb = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`;

const socketOf = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket;

describe('a slow consumer against a node process', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: ChildNode;

  before(async () => {
    dir = await tempDir();
    node = await spawnNode(dir.path, [
      '--max-buffered-bytes',
      String(MAX_BUFFERED_BYTES),
      // The per-connection rate limit is not what this test is about: let the writer flood.
      '--max-messages-per-second',
      '100000',
      '--message-burst',
      '100000',
      '--log-level',
      'info',
    ]);
  });
  after(async () => {
    await stopChild(node);
    await dir.remove();
  });

  it('drops the client that does not read, keeps its memory bounded, and keeps everyone else in sync', async (t) => {
    const pid = node.child.pid!;
    const docName = 'flood';
    const watcher: StockClient = await stockClient(node.wsUrl, docName);
    const writer: RawClient = await rawClient(node.wsUrl, docName);
    const slow: RawClient = await rawClient(node.wsUrl, docName);
    slow.ws.on('error', () => undefined);
    // Also when an assertion fails: the watcher's reconnect loop would keep the test process alive.
    t.after(() => {
      watcher.destroy();
      writer.close();
      slow.ws.terminate();
    });
    await waitFor(
      async () => sample(await scrape(node.url), 'stateweave_connections') === 3,
      'three connections',
    );
    const slowErrorsBefore = await errorCount(node.url, 'SLOW_CONSUMER');

    // Memory, sampled every 50 ms while the flood runs.
    const samples: Array<{ at: number; rss: number }> = [];
    const baseline = await rssOf(pid);
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push({ at: Date.now(), rss: await rssOf(pid) });
        await sleep(50);
      }
    })();

    // The slow client stops reading: first its kernel buffers fill, then the node's.
    socketOf(slow.ws).pause();
    const random = prng(0x51_0c0);
    const source = new Y.Doc();
    const started = Date.now();
    let droppedAt: { update: number; at: number } | undefined;
    let sentBytes = 0;
    for (let i = 0; i < UPDATES; i++) {
      const size = MIN_UPDATE_BYTES + Math.floor(random() * (MAX_UPDATE_BYTES - MIN_UPDATE_BYTES));
      const before = Y.encodeStateVector(source);
      // Overwriting one key keeps the document small while every frame is big.
      source.getMap('big').set('value', `${i}:${String.fromCharCode(97 + (i % 26)).repeat(size)}`);
      const update = Y.encodeStateAsUpdate(source, before);
      sentBytes += update.byteLength;
      const seq = writer.sendUpdate(update);
      // Until the drop, one update per node turn: updates of one turn are merged, and
      // these overwrite one key, so a merged frame would carry only the last value.
      if (!droppedAt && i % 50 !== 49)
        await waitFor(
          () => writer.savedSeq() >= seq,
          `the writer to be acknowledged up to ${seq}`,
          15_000,
          1,
        );
      if (i % 50 === 49) {
        // Bounded in flight: wait until the node has stored what was sent.
        await waitFor(
          () => writer.savedSeq() >= seq,
          `the writer to be acknowledged up to ${seq}`,
          15_000,
          2,
        );
        if (!droppedAt && (await errorCount(node.url, 'SLOW_CONSUMER')) > slowErrorsBefore)
          droppedAt = { update: i, at: Date.now() };
      }
    }
    const floodMs = Date.now() - started;
    await waitFor(
      async () => (await errorCount(node.url, 'SLOW_CONSUMER')) > slowErrorsBefore,
      'the node to drop the slow consumer',
    );
    droppedAt ??= { update: UPDATES, at: Date.now() };
    await sleep(1000); // let the node settle
    sampling = false;
    await sampler;
    const end = await rssOf(pid);

    const peak = Math.max(baseline, ...samples.map((s) => s.rss));
    const afterDrop = samples.filter((s) => s.at >= droppedAt!.at);
    const half = Math.floor(afterDrop.length / 2);
    const earlier = Math.max(...afterDrop.slice(0, half).map((s) => s.rss));
    const later = Math.max(...afterDrop.slice(half).map((s) => s.rss));
    const report =
      `node RSS: baseline ${mb(baseline)}, peak ${mb(peak)} (+${mb(peak - baseline)}), end ${mb(end)}; ` +
      `after the drop: earlier half peak ${mb(earlier)}, later half peak ${mb(later)}; ` +
      `${UPDATES} updates, ${mb(sentBytes)} in ${floodMs} ms; slow client dropped by update ${droppedAt.update + 1}; ${samples.length} samples`;
    const step = Math.max(1, Math.floor(samples.length / 20));
    const series = samples
      .filter((_, k) => k % step === 0)
      .map((s) => `${((s.rss - baseline) / MB).toFixed(0)}${s.at >= droppedAt!.at ? '' : '°'}`);
    console.log(
      `${report}\nRSS growth over time in MB (° = before the drop was seen): ${series.join(' ')}`,
    );

    assert.equal(
      await errorCount(node.url, 'SLOW_CONSUMER'),
      slowErrorsBefore + 1,
      'exactly the slow client was dropped',
    );
    assert.ok(
      droppedAt.update < 500,
      `dropped early in the flood (by update ${droppedAt.update + 1})`,
    );
    assert.ok(peak - baseline < MAX_RSS_GROWTH, `RSS grew by ${mb(peak - baseline)}: ${report}`);
    assert.ok(afterDrop.length >= 4, `enough samples after the drop: ${report}`);
    assert.ok(
      later <= earlier + MAX_GROWTH_AFTER_DROP,
      `RSS kept growing after the drop: ${report}`,
    );

    // The slow client learns it was closed once it reads again (4408, or 1006: the
    // node terminates, so the close frame behind the backlog may never arrive).
    socketOf(slow.ws).resume();
    const closed = await slow.closed();
    assert.ok(
      [ERRORS.SLOW_CONSUMER.close, 1006].includes(closed.code),
      `close code ${closed.code}`,
    );

    // The writer and the watcher are fine: the last value arrived, edits flow both ways.
    const last = source.getMap('big').get('value');
    await waitFor(
      () => watcher.doc.getMap('big').get('value') === last,
      'the watcher to catch up',
      15_000,
    );
    const seq = writer.sendUpdate(textUpdate(new Y.Doc(), 'after'));
    await waitFor(() => writer.savedSeq() >= seq, 'the writer acknowledged after the flood');
    await waitFor(
      () => watcher.doc.getText('text').toString() === 'after',
      'the watcher to see the writer',
    );
    watcher.doc.getText('text').insert(0, 'w');
    await waitFor(
      () => writer.doc.getText('text').toString() === 'wafter',
      'the writer to see the watcher',
    );
    // And a newcomer syncs to the same state.
    const newcomer = await stockClient(node.wsUrl, docName);
    assert.equal(newcomer.doc.getMap('big').get('value'), last);
    assert.equal(newcomer.doc.getText('text').toString(), 'wafter');
    newcomer.destroy();
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
    assert.equal(node.child.exitCode, null);
    source.destroy();
  });

  it('does not negotiate permessage-deflate, and refuses a frame marked compressed', async () => {
    const ws = new WebSocket(`${node.wsUrl}/deflate`, { perMessageDeflate: true });
    ws.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
    });
    assert.equal(ws.extensions, '', 'no extension was negotiated');

    // A binary frame with RSV1 (the "compressed" bit) set, masked as a client must.
    const payload = Buffer.from([0, 2, 1, 0]);
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
    socketOf(ws).write(
      Buffer.concat([Buffer.from([0x80 | 0x40 | 0x02, 0x80 | payload.length]), mask, masked]),
    );
    const code = await closed;
    assert.equal(code, 1002, 'closed as a protocol error');

    // The node carries on.
    const client = await stockClient(node.wsUrl, 'deflate');
    client.doc.getText('text').insert(0, 'fine');
    await waitFor(
      async () => (await fetch(`${node.url}/v1/docs/deflate`)).status === 200,
      'the edit to be stored',
    );
    client.destroy();
    assert.equal(node.child.exitCode, null);
  });
});

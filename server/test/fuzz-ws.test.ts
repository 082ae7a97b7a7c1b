/**
 * A real node under random and mutated WebSocket frames from many sockets keeps
 * serving and holds exactly what it accepted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { stockClient, type StockClient } from './helpers/clients.js';
import { docView, fuzzSeed } from './helpers/fuzz.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';
import {
  type ConcurrentRun,
  NET_MAX_FRAME_BYTES,
  type SerialRun,
  clientView,
  concurrentTraffic,
  serialTraffic,
} from './fuzz/ws-traffic.js';
import { healthy } from './fuzz/http-requests.js';

describe('fuzz: hostile WebSocket traffic against a real node', () => {
  const SERIAL_DOC = 'fuzz/serial';
  const CONCURRENT_DOC = 'fuzz/concurrent';
  const seed = fuzzSeed(0x0e7f);
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: ChildNode;
  let serial: SerialRun;
  let concurrent: ConcurrentRun;

  before(async () => {
    dir = await tempDir();
    node = await spawnNode(dir.path, ['--max-frame-bytes', String(NET_MAX_FRAME_BYTES)]);
    serial = await serialTraffic(node.wsUrl, SERIAL_DOC, seed, 300, 12);
    concurrent = await concurrentTraffic(node.wsUrl, CONCURRENT_DOC, seed, 24);
    console.log(
      `websocket traffic (seed ${seed}): serial ${serial.frames} frames over ${serial.sockets} sockets in ${serial.ms} ms, ` +
        `${serial.accepted} accepted (${serial.acceptedUpdates} updates), closes ${JSON.stringify(serial.closes)}; ` +
        `concurrent ${concurrent.frames} frames on ${concurrent.sockets} sockets in ${concurrent.ms} ms, ` +
        `${concurrent.refusedSockets} refused, ${concurrent.ignoredFrames} frames after a refusal`,
    );
  });
  after(async () => {
    await stopChild(node);
    await dir.remove();
  });

  /** Two fresh stock clients sync with the node and see each other's edits. */
  const twoClientsAgree = async (docName: string): Promise<StockClient> => {
    const a = await stockClient(node.wsUrl, docName);
    const b = await stockClient(node.wsUrl, docName);
    try {
      assert.deepEqual(
        docView(b.doc),
        docView(a.doc),
        `${docName}: two fresh clients hold the same state`,
      );
      const mark = `${docName}:${Date.now()}`;
      a.doc.getMap('check-map').set('from-a', mark);
      await waitFor(
        () => b.doc.getMap('check-map').get('from-a') === mark,
        `${docName}: b to see a`,
      );
      b.doc.getArray<string>('check-array').push([mark]);
      await waitFor(
        () => a.doc.getArray<string>('check-array').toArray().includes(mark),
        `${docName}: a to see b`,
      );
    } finally {
      b.destroy();
    }
    return a;
  };

  /** The document as a fresh stock client receives it. */
  const served = async (docName: string) => {
    const client = await stockClient(node.wsUrl, docName);
    try {
      return docView(client.doc);
    } finally {
      client.destroy();
    }
  };

  it('holds exactly the valid updates sent before each socket’s first refused frame (many sockets at once)', async () => {
    assert.ok(
      concurrent.ignoredFrames > 0 && concurrent.refusedSockets > 0,
      'the traffic had refusals with frames behind them',
    );
    assert.deepEqual(
      await served(CONCURRENT_DOC),
      clientView(Y.encodeStateAsUpdate(concurrent.reference)),
    );
  });

  // With other seeds these two can hit the bugs reproduced at the end of this file.
  it('holds exactly the updates it accepted (frames sent one at a time)', async () => {
    assert.deepEqual(serial.divergent, [], 'the node accepted nothing a plain Y.Doc refuses');
    assert.equal(serial.firstDivergence, undefined);
    assert.deepEqual(await served(SERIAL_DOC), clientView(Y.encodeStateAsUpdate(serial.reference)));
  });

  it('refuses every bad frame with a close code from the table, never INTERNAL', () => {
    assert.deepEqual(serial.unexpected, []);
  });

  it('keeps serving: /healthz answers and fresh stock clients sync and see each other', async () => {
    await healthy(node);
    for (const docName of ['fuzz/fresh', CONCURRENT_DOC, SERIAL_DOC])
      (await twoClientsAgree(docName)).destroy();
    await healthy(node);
  });

  it('shuts down cleanly and, after a restart, serves exactly what it served before', async () => {
    const before = { concurrent: await served(CONCURRENT_DOC), serial: await served(SERIAL_DOC) };
    const exit = await stopChild(node);
    assert.deepEqual(
      exit,
      { code: 0, signal: null },
      `clean shutdown:\n${node
        .output()
        .split('\n')
        .filter((l) => /"level":(50|60)/.test(l))
        .join('\n')}`,
    );
    node = await spawnNode(dir.path, ['--max-frame-bytes', String(NET_MAX_FRAME_BYTES)]);
    assert.deepEqual(
      { concurrent: await served(CONCURRENT_DOC), serial: await served(SERIAL_DOC) },
      before,
    );
    (await twoClientsAgree(SERIAL_DOC)).destroy();
  });
});

/**
 * Many clients joining a large document at once (issue 18): every one is sent the
 * same cached whole-document frame (hub/state-cache.ts), so those bytes cost memory
 * once, not once per socket. Neither a joiner's own slow-consumer limit nor the
 * node-wide send budget may count them per socket: with a 16 MiB document, six
 * joiners that have not read it yet and limits of 2 MiB, the node used to see
 * 6 × ~12 MiB of backlog and drop them all. Here they stay, take an update written
 * meanwhile, and end up with the whole document. A reader that stops reading its
 * own frames is still dropped (slow-consumer.test.ts, send-budget.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import * as decoding from 'lib0/decoding';
import { encodeSyncStep1, MessageType } from '@stateweave/client/protocol';
import { rawClient } from './helpers/clients.js';
import { errorCount } from './helpers/metrics.js';
import { startNode, type TestNode } from './helpers/node.js';
import { waitFor, withTimeout } from './helpers/wait.js';

const MIB = 1024 * 1024;
const LIMIT = 2 * MIB;
/** 8 × 2 MiB: well past what the kernel holds for a socket that does not read (~4 MiB here). */
const PARTS = 8;
const JOINERS = 6;

const socketOf = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket;

interface Joiner {
  readonly ws: WebSocket;
  readonly doc: Y.Doc;
  readonly closed: Promise<number>;
}

/** A client that asks for the whole document and stops reading at once. */
const pausedJoiner = async (wsUrl: string, name: string): Promise<Joiner> => {
  const ws = new WebSocket(`${wsUrl}/${name}`);
  ws.binaryType = 'arraybuffer';
  ws.on('error', () => undefined);
  const doc = new Y.Doc();
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('message', (data: ArrayBuffer) => {
    const d = decoding.createDecoder(new Uint8Array(data));
    if (decoding.readVarUint(d) !== MessageType.Sync) return;
    if (decoding.readVarUint(d) === 0) return; // the node's step 1: nothing to send back
    Y.applyUpdate(doc, decoding.readVarUint8Array(d));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(encodeSyncStep1(Y.encodeStateVector(new Y.Doc())));
  socketOf(ws).pause();
  return { ws, doc, closed };
};

describe('joiners of a large document share its bytes', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({
      maxBufferedBytes: LIMIT,
      maxTotalBufferedBytes: LIMIT,
      maxMessagesPerSecond: 100_000,
      messageBurst: 100_000,
    });
  });
  after(() => node.close());

  it('are neither slow consumers nor over the send budget while the document flows', async (t) => {
    const name = 'large-join';
    const writer = await rawClient(node.wsUrl, name);
    const joiners: Joiner[] = [];
    t.after(() => {
      writer.close();
      for (const j of joiners) j.ws.terminate();
    });
    const source = new Y.Doc();
    for (let i = 0; i < PARTS; i++) {
      const before = Y.encodeStateVector(source);
      source.getMap('parts').set(`p${i}`, `${i}`.repeat(2 * MIB));
      const seq = writer.sendUpdate(Y.encodeStateAsUpdate(source, before));
      await waitFor(() => writer.savedSeq() >= seq, `part ${i} stored`, 30_000);
    }
    const dropsBefore = await errorCount(node.url, 'SLOW_CONSUMER');
    for (let i = 0; i < JOINERS; i++) joiners.push(await pausedJoiner(node.wsUrl, name));
    // Their step 2 is queued; a change now is written behind it to every joiner.
    const before = Y.encodeStateVector(source);
    source.getMap('parts').set('late', 'written while the joiners had not read');
    const seq = writer.sendUpdate(Y.encodeStateAsUpdate(source, before));
    await waitFor(() => writer.savedSeq() >= seq, 'the late change stored', 30_000);
    // Several send-budget checks (every 100 ms) pass while nobody reads.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(
      (await errorCount(node.url, 'SLOW_CONSUMER')) - dropsBefore,
      0,
      'no joiner was dropped',
    );
    for (const j of joiners) socketOf(j.ws).resume();
    const late = source.getMap('parts').get('late');
    for (const [i, j] of joiners.entries()) {
      await withTimeout(
        waitFor(() => j.doc.getMap('parts').get('late') === late, `joiner ${i}`, 60_000),
        65_000,
        `joiner ${i} to hold the document`,
      );
      assert.equal(j.doc.getMap('parts').size, PARTS + 1);
      assert.equal((j.doc.getMap('parts').get('p7') as string).length, 2 * MIB);
      assert.equal(j.ws.readyState, WebSocket.OPEN);
    }
  });
});

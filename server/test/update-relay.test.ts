/**
 * A room's updates to its client connections (issue 18): at once within the
 * room's budget of frames a second; past it, the first after a quiet tick at
 * once and the next tick's merged into one frame; a write that must not wait
 * takes them with it. The relay on its own, then on a real node with raw sockets,
 * counted as the turns in which an observer's client read update frames.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeClientMessage, encodeUpdate } from '@stateweave/client/protocol';
import * as Y from 'yjs';
import { createUpdateRelay, updateTickMs, type OutgoingUpdate } from '../src/hub/update-relay.js';
import type { ConnectionId } from '../src/connection-id.js';
import type { Origin } from '../src/origin.js';
import { rawClient, textUpdate, type RawClient } from './helpers/clients.js';
import { sample, scrape } from './helpers/metrics.js';
import { startNode, type TestNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

const client = (connId: number): Origin => ({ kind: 'client', connId: connId as ConnectionId });

/** Update n: key `n` set on map "m" by a document of its own. */
const update = (n: number, origin: Origin | undefined = client(1)): OutgoingUpdate => {
  const doc = new Y.Doc();
  doc.getMap('m').set(String(n), n);
  const bytes = Y.encodeStateAsUpdate(doc);
  return { update: bytes, frame: encodeUpdate(bytes), origin };
};

/** The keys a frame's update sets, in order. */
const keysOf = (frame: Uint8Array): number[] => {
  const message = decodeClientMessage(frame);
  assert.equal(message.type, 'update');
  const doc = new Y.Doc();
  Y.applyUpdate(doc, (message as { update: Uint8Array }).update);
  return [...doc.getMap('m').keys()].map(Number).sort((a, b) => a - b);
};

describe('update relay', () => {
  /**
   * A relay of a room with 50 client connections and a budget of 100 frames a
   * second: two updates go at once, then it ticks every 50 ms (the cap). Records
   * each fan-out: the keys of its frame and whom it skips.
   */
  const harness = (framesPerSecond = 100) => {
    const fanOuts: Array<{ keys: number[]; skips: Origin | undefined }> = [];
    const relay = createUpdateRelay({
      subscribers: () => 50,
      framesPerSecond,
      fanOut: (frame, origin) => fanOuts.push({ keys: keysOf(frame), skips: origin }),
    });
    return { relay, fanOuts, keys: () => fanOuts.map((f) => f.keys) };
  };

  it('sends at once within its budget, then the first after a quiet tick at once and the next tick’s merged', async () => {
    const { relay, fanOuts, keys } = harness();
    try {
      relay.send(update(1));
      relay.send(update(2));
      assert.deepEqual(keys(), [[1], [2]], 'within the budget: each at once');
      assert.deepEqual(fanOuts[0]!.skips, client(1), 'not sent back to its writer');
      relay.send(update(3));
      relay.send(update(4));
      assert.deepEqual(keys(), [[1], [2]], 'past it: they wait for the tick');
      await waitFor(() => fanOuts.length === 3, 'the tick to end', 2000);
      assert.deepEqual(fanOuts[2], { keys: [3, 4], skips: client(1) }, 'one writer: skipped');
      relay.send(update(5, client(2)));
      relay.send(update(6, client(3)));
      await waitFor(() => fanOuts.length === 4, 'the next tick to end', 2000);
      assert.deepEqual(fanOuts[3], { keys: [5, 6], skips: undefined }, 'two writers: to all');
      await sleep(150); // a tick with nothing in it ends the busy spell
      relay.send(update(7));
      assert.deepEqual(keys().at(-1), [7], 'after a quiet tick: at once again');
      relay.send(update(8));
      assert.deepEqual(keys().at(-1), [7], 'still past the budget of this second');
      await sleep(1100);
      relay.send(update(9));
      assert.deepEqual(keys().slice(-2), [[8], [9]], 'a new second: within the budget again');
    } finally {
      relay.close();
    }
  });

  it('sends an update that must not wait at once, with what waits', () => {
    const { relay, fanOuts } = harness(1);
    try {
      relay.send(update(1));
      relay.send(update(2));
      relay.send(update(3, { kind: 'function', name: 'f' }), true);
      assert.deepEqual(fanOuts, [
        { keys: [1], skips: client(1) },
        { keys: [2, 3], skips: undefined },
      ]);
    } finally {
      relay.close();
    }
  });

  it('drops what waits on close', async () => {
    const { relay, keys } = harness(1);
    relay.send(update(1));
    relay.send(update(2));
    relay.close();
    await sleep(100);
    assert.deepEqual(keys(), [[1]]);
  });
});

describe('the update tick of a room past its budget', () => {
  it('keeps each connection to its share of the budget, from 1 ms up to 50 ms', () => {
    assert.equal(updateTickMs(50, 10_000), 5);
    assert.equal(updateTickMs(100, 10_000), 10);
    assert.equal(updateTickMs(500, 10_000), 50);
    assert.equal(updateTickMs(5000, 10_000), 50);
    assert.equal(updateTickMs(2, 10_000), 1);
  });
});

/** Turns of the event loop in which `client` read at least one update frame (a merged frame counts once, as would frames of one write). */
const updateTurns = (client: RawClient): (() => number) => {
  let turns = 0;
  let inTurn = false;
  client.ws.on('message', (data: ArrayBuffer) => {
    let message;
    try {
      message = decodeClientMessage(new Uint8Array(data));
    } catch {
      return; // an extension message (saved, error)
    }
    if (message.type !== 'update' || inTurn) return;
    turns++;
    inTurn = true;
    setImmediate(() => (inTurn = false));
  });
  return () => turns;
};

const updatesReceived = (client: RawClient): number =>
  client.frames.filter((frame) => {
    try {
      return decodeClientMessage(frame).type === 'update';
    } catch {
      return false;
    }
  }).length;

describe('update frames on a node', () => {
  let node: TestNode;
  before(async () => {
    // 40 connections and a budget of 1,000 frames a second: 25 edits at once, then a 40 ms tick.
    node = await startNode({ updateFramesPerSecond: 1000 });
  });
  after(async () => {
    await node.close();
  });

  it('sends a busy large room’s edits in few frames, all of them, never back to their writer', async () => {
    const doc = 'updates/busy';
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 40; i++) clients.push(await rawClient(node.wsUrl, doc));
      const [writer, observer] = clients as [RawClient, RawClient];
      const turns = updateTurns(observer);
      const echoesBefore = updatesReceived(writer);
      const edits = 100;
      for (let i = 0; i < edits; i++) {
        writer.sendUpdate(textUpdate(writer.doc, `${i % 10}`));
        await sleep(2); // separate turns on the node: without the tick, separate writes
      }
      const text = writer.doc.getText('text').toString();
      await waitFor(
        () => observer.doc.getText('text').toString() === text,
        'the observer to have every edit',
      );
      assert.ok(
        turns() <= edits / 2,
        `${edits} edits reached the observer in ${turns()} reads (expected coalesced frames)`,
      );
      await waitFor(
        () => clients.every((c) => c.doc.getText('text').toString() === text),
        'every connection to have every edit',
      );
      assert.equal(updatesReceived(writer), echoesBefore, 'the writer got none of its own edits');
      const metrics = await scrape(node.url);
      assert.ok(
        sample(metrics, 'stateweave_updates_merged_total') > 0,
        'the merged updates are counted',
      );
      // Every frame the 39 others got is counted: at least the observer's reads times 39.
      assert.ok(sample(metrics, 'stateweave_updates_out_total') >= turns() * 39);
    } finally {
      for (const c of clients) c.close();
    }
  });
});

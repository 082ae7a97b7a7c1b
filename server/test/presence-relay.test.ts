/**
 * Presence leaves coalesced per tick (issue 18): the first change after a quiet
 * tick at once, the changes of the next tick together as one frame with each
 * client's latest state, and nobody is sent back what they said. The relay on
 * its own, then on a real node with raw sockets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeAwarenessUpdate,
  decodeClientMessage,
  encodeAwareness,
  encodeAwarenessEntries,
} from '@stateweave/client/protocol';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { createPresenceRelay, type FrameFor } from '../src/hub/presence-relay.js';
import type { ConnectionId } from '../src/connection-id.js';
import { encodePresenceFrame } from '../src/hub/presence-frame.js';
import { presenceTickMs } from '../src/hub/room.js';
import type { Origin } from '../src/origin.js';
import { rawClient, type RawClient } from './helpers/clients.js';
import { startNode, type TestNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

// Subscribers 1..3 are named by hand here (a node mints ids with nextConnectionId).
const client = (connId: number): Origin => ({ kind: 'client', connId: connId as ConnectionId });

describe('presence relay', () => {
  /** A relay whose frames are the JSON of their ids, fanned out to subscribers 1..3. */
  const harness = (tickMs: number) => {
    const received = new Map<number, number[][]>([
      [1, []],
      [2, []],
      [3, []],
    ]);
    const encode = (ids: readonly number[]) => new TextEncoder().encode(JSON.stringify(ids));
    const fanOut = (_frame: Uint8Array, frameFor: FrameFor): void => {
      for (const [connId, frames] of received) {
        const frame = frameFor((origin) => origin.kind === 'client' && origin.connId === connId);
        if (frame) frames.push(JSON.parse(new TextDecoder().decode(frame)) as number[]);
      }
    };
    return { relay: createPresenceRelay({ tickMs, encode, fanOut }), received };
  };

  it('sends the first change at once and the next tick’s changes as one frame', async () => {
    const { relay, received } = harness(40);
    try {
      relay.changed([101], client(1));
      assert.deepEqual(received.get(2), [[101]], 'the first change left synchronously');
      relay.changed([101], client(1));
      relay.changed([201], client(2));
      relay.changed([301], client(3));
      assert.deepEqual(received.get(2), [[101]], 'within the tick nothing more left');
      await waitFor(() => received.get(1)!.length === 1, 'the tick to end', 2000);
      assert.deepEqual(received.get(1), [[201, 301]], 'subscriber 1: the others, not its own');
      assert.deepEqual(received.get(2), [[101], [101, 301]]);
      assert.deepEqual(received.get(3), [[101], [101, 201]]);
      await sleep(100);
      relay.changed([201], undefined);
      assert.deepEqual(received.get(2)!.at(-1), [201], 'after a quiet tick: at once again');
    } finally {
      relay.close();
    }
  });

  it('sends a sender that alone changed in a tick nothing, and close drops what is pending', async () => {
    const { relay, received } = harness(30);
    relay.changed([101], client(1));
    relay.changed([102], client(1));
    relay.close();
    await sleep(80);
    assert.deepEqual(received.get(1), [], 'its own change is never sent back');
    assert.deepEqual(received.get(2), [[101]], 'the pending change was dropped at close');
  });
});

describe('the presence tick of a room', () => {
  it('keeps 50 ms up to 250 subscribers, then a frame budget of 5,000 a second, capped at 250 ms', () => {
    assert.deepEqual(
      [1, 250, 251, 500, 1000, 1250, 5000].map(presenceTickMs),
      [50, 50, 50.2, 100, 200, 250, 250],
    );
    // The budget: subscribers × frames a second per subscriber stays at 5,000 past 250.
    for (const n of [300, 700, 1200]) assert.equal(n * (1000 / presenceTickMs(n)), 5000);
  });

  it('asks the tick length at every tick, so a room that grew ticks slower', async () => {
    let tickMs = 20;
    const sent: number[] = [];
    const relay = createPresenceRelay({
      tickMs: () => tickMs,
      encode: () => new Uint8Array([1]),
      fanOut: () => {
        sent.push(Date.now());
        if (sent.length === 2) tickMs = 1000; // the room grew during the first tick
      },
    });
    try {
      relay.changed([1], client(1)); // at once; starts a 20 ms tick
      relay.changed([1], client(1)); // leaves at its end, and the next tick is 1,000 ms
      await waitFor(() => sent.length === 2, 'the first tick', 2000);
      relay.changed([1], client(1));
      await waitFor(() => sent.length === 3, 'the grown tick', 3000);
      assert.ok(sent[1]! - sent[0]! < 500, `the first tick took ${sent[1]! - sent[0]!} ms`);
      assert.ok(sent[2]! - sent[1]! >= 900, `the next change waited ${sent[2]! - sent[1]!} ms`);
    } finally {
      relay.close();
    }
  });
});

/** Awareness frames a raw client has received, as lists of [clientId, clock]. */
const presenceFrames = (c: RawClient): Array<Array<[number, number]>> =>
  c.frames.flatMap((frame) => {
    try {
      const message = decodeClientMessage(frame);
      if (message.type !== 'awareness') return [];
      return [
        decodeAwarenessUpdate(message.update).map((e): [number, number] => [e.clientId, e.clock]),
      ];
    } catch {
      return [];
    }
  });

const cursor = (clientId: number, clock: number) =>
  encodeAwareness(encodeAwarenessEntries([{ clientId, clock, state: { cursor: clock } }]));

describe('presence on a node', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node.close();
  });

  it('relays a burst of cursor moves as few frames with the last state, and never echoes', async () => {
    const [mover, other, watcher] = await Promise.all(
      ['mover', 'other', 'watcher'].map(() => rawClient(node.wsUrl, 'presence/burst')),
    );
    try {
      const moves = 30;
      for (let clock = 1; clock <= moves; clock++) mover!.send(cursor(mover!.doc.clientID, clock));
      other!.send(cursor(other!.doc.clientID, 1));
      const last = (frames: Array<Array<[number, number]>>, id: number) =>
        frames
          .flat()
          .filter(([clientId]) => clientId === id)
          .at(-1)?.[1];
      await waitFor(
        () =>
          last(presenceFrames(watcher!), mover!.doc.clientID) === moves &&
          last(presenceFrames(watcher!), other!.doc.clientID) === 1,
        'the watcher to see both clients’ last state',
      );
      const seen = presenceFrames(watcher!);
      assert.ok(
        seen.length <= 4,
        `${moves + 1} changes reached the watcher in ${seen.length} frames (expected coalesced)`,
      );
      await waitFor(
        () => last(presenceFrames(mover!), other!.doc.clientID) === 1,
        'the mover to see the other client',
      );
      assert.equal(
        last(presenceFrames(mover!), mover!.doc.clientID),
        undefined,
        'the mover was never sent its own state',
      );
    } finally {
      for (const c of [mover, other, watcher]) c?.close();
    }
  });
});

describe('presence frames from entries encoded once per tick', () => {
  it('writes what y-protocols writes, and encodes each state once', () => {
    const doc = new Y.Doc();
    const awareness = new awarenessProtocol.Awareness(doc);
    try {
      awareness.setLocalState(null);
      const entries = [
        { clientId: 5, clock: 3, state: { user: { name: 'Ada', color: '#30bced' } } },
        { clientId: 200, clock: 1, state: { cursor: { anchor: 17, head: 18 }, name: 'Grace ü' } },
        { clientId: 70_000, clock: 9, state: {} },
      ];
      awarenessProtocol.applyAwarenessUpdate(awareness, encodeAwarenessEntries(entries), 'test');
      // a state that left: null with its clock, as y-protocols keeps it
      awarenessProtocol.applyAwarenessUpdate(
        awareness,
        encodeAwarenessEntries([{ clientId: 200, clock: 2, state: null }]),
        'test',
      );
      const memo = new Map<number, Uint8Array>();
      for (const ids of [[5, 200, 70_000], [70_000, 5], [200], []]) {
        assert.deepEqual(
          encodePresenceFrame(awareness, ids, memo),
          encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(awareness, ids)),
          `ids ${ids.join(',')}`,
        );
      }
      assert.equal(memo.size, 3, 'one entry per client, reused by the later frames');
      const decoded = decodeClientMessage(encodePresenceFrame(awareness, [5], memo));
      assert.equal(decoded.type, 'awareness');
    } finally {
      awareness.destroy();
      doc.destroy();
    }
  });
});

/**
 * Presence bounds (issue 17, items 2 and 6) on real sockets: one connection
 * speaks for at most `maxPresenceIdsPerConnection` presence client ids, and a
 * presence state over `maxPresenceBytes` is never relayed. Measured as what an
 * observer in the same document receives, and as the node's own awareness.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeAwarenessUpdate,
  decodeClientMessage,
  decodeServerExtension,
  encodeAwareness,
  encodeAwarenessEntries,
} from '@stateweave/client/protocol';
import { ERRORS } from '../src/errors.js';
import { rawClient, stockClient, type RawClient } from './helpers/clients.js';
import { errorCount } from './helpers/metrics.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

const MAX_IDS = 4;
const INVENTED_IDS = 2000;
const MIB = 1024 * 1024;

/** Presence client ids (with a state) an observer has been sent so far, and the largest awareness frame. */
const observed = (client: RawClient): { ids: Set<number>; largestFrame: number } => {
  const ids = new Set<number>();
  let largestFrame = 0;
  for (const frame of client.frames) {
    let message;
    try {
      message = decodeClientMessage(frame);
    } catch {
      continue; // an extension message (saved, error): not presence
    }
    if (message.type !== 'awareness') continue;
    largestFrame = Math.max(largestFrame, frame.byteLength);
    for (const entry of decodeAwarenessUpdate(message.update))
      if (entry.state !== null) ids.add(entry.clientId);
  }
  return { ids, largestFrame };
};

const errorsSent = (client: RawClient): string[] =>
  client.frames.flatMap((frame) => {
    try {
      const ext = decodeServerExtension(frame);
      return ext?.type === 'error' ? [ext.code] : [];
    } catch {
      return [];
    }
  });

const inventedPresence = (first: number, count: number, state: unknown = { cursor: 1 }) =>
  encodeAwareness(
    encodeAwarenessEntries(
      Array.from({ length: count }, (_, i) => ({ clientId: first + i, clock: 1, state })),
    ),
  );

describe('presence bounds', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    node = await startNode({ dataDir: dir.path, maxPresenceIdsPerConnection: MAX_IDS });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  it(`relays at most ${MAX_IDS} of ${INVENTED_IDS} invented presence ids from one connection`, async (t) => {
    const doc = docName('presence-flood');
    const observer = await rawClient(node.wsUrl, doc);
    const attacker = await rawClient(node.wsUrl, doc);
    t.after(() => {
      observer.close();
      attacker.close();
    });
    const refusedBefore = await errorCount(node.url, 'PRESENCE_LIMIT');
    // In frames of 100 entries: each frame is one message for the rate limit.
    for (let sent = 0; sent < INVENTED_IDS; sent += 100)
      attacker.send(inventedPresence(1_000_000 + sent, 100));
    await waitFor(
      async () => (await errorCount(node.url, 'PRESENCE_LIMIT')) - refusedBefore >= 20,
      'every frame past the limit to be refused',
    );
    await sleep(200); // anything relayed would have arrived by now
    const { ids } = observed(observer);
    t.diagnostic(`presence ids relayed: ${ids.size} of ${INVENTED_IDS}`);
    assert.ok(ids.size <= MAX_IDS, `${ids.size} presence ids relayed`);
    assert.ok(ids.size > 0, 'the first few ids are relayed: the limit is not a ban');
    const room = node.server.hub.peek(doc);
    assert.ok(room && room.awareness.getStates().size <= MAX_IDS);
    // A client that said hello is told, and stays.
    assert.ok(errorsSent(attacker).includes('PRESENCE_LIMIT'));
    assert.equal(attacker.ws.readyState, attacker.ws.OPEN);
  });

  it('closes a client that did not say hello with PRESENCE_LIMIT, and frees its ids', async () => {
    const doc = docName('presence-stock-flood');
    const attacker = await rawClient(node.wsUrl, doc, { hello: false });
    attacker.send(inventedPresence(2_000_000, INVENTED_IDS));
    assert.equal((await attacker.closed()).code, ERRORS.PRESENCE_LIMIT.close);
    await waitFor(
      () => node.server.hub.peek(doc)?.awareness.getStates().size === 0,
      'the closed connection to take its presence with it',
    );
  });

  it('never relays a 7 MiB presence state', async (t) => {
    const doc = docName('presence-huge');
    const observer = await rawClient(node.wsUrl, doc);
    const stockAttacker = await rawClient(node.wsUrl, doc, { hello: false });
    const helloAttacker = await rawClient(node.wsUrl, doc);
    t.after(() => {
      observer.close();
      helloAttacker.close();
    });
    const huge = { name: 'x'.repeat(7 * MIB) };
    stockAttacker.send(inventedPresence(3_000_000, 1, huge));
    helloAttacker.send(inventedPresence(3_000_001, 1, huge));
    assert.equal((await stockAttacker.closed()).code, ERRORS.PRESENCE_TOO_LARGE.close);
    await waitFor(
      () => errorsSent(helloAttacker).includes('PRESENCE_TOO_LARGE'),
      'the hello client to be told',
    );
    await sleep(200);
    const { ids, largestFrame } = observed(observer);
    t.diagnostic(`largest presence frame relayed: ${largestFrame} bytes`);
    assert.equal(ids.size, 0, 'nothing of the huge states reached the observer');
    assert.ok(largestFrame < 64 * 1024, `a ${largestFrame}-byte presence frame was relayed`);
    assert.equal(node.server.hub.peek(doc)?.awareness.getStates().size, 0);
  });

  it('keeps stock y-websocket presence working (own state relayed, echoes not refused)', async (t) => {
    const doc = docName('presence-stock');
    const clients = [
      await stockClient(node.wsUrl, doc),
      await stockClient(node.wsUrl, doc),
      await stockClient(node.wsUrl, doc),
    ];
    t.after(() => clients.forEach((c) => c.destroy()));
    const refusedBefore =
      (await errorCount(node.url, 'PRESENCE_LIMIT')) +
      (await errorCount(node.url, 'PRESENCE_TOO_LARGE'));
    clients.forEach((c, i) => c.provider.awareness.setLocalStateField('user', `user-${i}`));
    await waitFor(
      () => clients.every((c) => c.provider.awareness.getStates().size === clients.length),
      'everyone to see everyone',
    );
    // Several rounds of updates, each echoed by every stock client.
    for (let round = 0; round < 5; round++) {
      clients.forEach((c, i) => c.provider.awareness.setLocalStateField('cursor', round * 10 + i));
      await sleep(50);
    }
    const refusedAfter =
      (await errorCount(node.url, 'PRESENCE_LIMIT')) +
      (await errorCount(node.url, 'PRESENCE_TOO_LARGE'));
    assert.equal(refusedAfter, refusedBefore, 'no stock presence refused');
    assert.ok(clients.every((c) => c.provider.wsconnected));
  });
});

/**
 * Client ids belong to connections (issue 17, item 4), on real sockets with a
 * LevelDB store: new content under a Yjs client id another live connection
 * introduced (by writing, or by speaking for it in presence) is refused with
 * CLIENT_ID_TAKEN and changes nothing, while stock y-websocket clients that
 * reconnect, or merge offline edits that carry other people's content, are
 * never refused.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { decodeServerExtension, encodeUpdate } from '@stateweave/client/protocol';
import { mintToken } from '../src/auth/tokens.js';
import { ERRORS } from '../src/errors.js';
import { rawClient, stockClient, textUpdate, type RawClient } from './helpers/clients.js';
import { errorCount } from './helpers/metrics.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

/** An update that appends `text` under client id `victim`, at the clocks the victim would use next. */
const forgedUpdate = (state: Uint8Array, victim: number, text: string): Uint8Array => {
  const forger = new Y.Doc();
  Y.applyUpdate(forger, state);
  forger.clientID = victim;
  return textUpdate(forger, text);
};

const errorCodes = (client: RawClient): string[] =>
  client.frames.flatMap((frame) => {
    try {
      const ext = decodeServerExtension(frame);
      return ext?.type === 'error' ? [ext.code] : [];
    } catch {
      return [];
    }
  });

describe('client ids belong to connections', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    node = await startNode({ dataDir: dir.path });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  const taken = () => errorCount(node.url, 'CLIENT_ID_TAKEN');

  it("refuses new content under a live writer's client id, changes nothing, and the victim's next edit lands", async (t) => {
    const doc = docName('hijack-writer');
    const victim = await rawClient(node.wsUrl, doc);
    const attacker = await rawClient(node.wsUrl, doc);
    const stockAttacker = await rawClient(node.wsUrl, doc, { hello: false });
    const observer = await stockClient(node.wsUrl, doc);
    t.after(() => {
      victim.close();
      attacker.close();
      observer.destroy();
    });
    const seq = victim.sendUpdate(textUpdate(victim.doc, 'mine '));
    await waitFor(() => victim.savedSeq() >= seq, 'the victim write to be saved');
    const room = node.server.hub.peek(doc)!;
    const before = Y.encodeStateAsUpdate(room.doc);
    const refusedBefore = await taken();

    const forged = forgedUpdate(before, victim.doc.clientID, 'forged ');
    attacker.send(encodeUpdate(forged));
    stockAttacker.send(encodeUpdate(forgedUpdate(before, victim.doc.clientID, 'also forged ')));
    await waitFor(() => errorCodes(attacker).includes('CLIENT_ID_TAKEN'), 'the attacker told');
    assert.equal((await stockAttacker.closed()).code, ERRORS.CLIENT_ID_TAKEN.close);
    assert.equal((await taken()) - refusedBefore, 2);
    assert.equal(attacker.ws.readyState, attacker.ws.OPEN, 'a hello client stays');
    assert.deepEqual(Y.encodeStateAsUpdate(room.doc), before, 'the document is unchanged');

    // The victim's own next edit, at those very clocks, reaches everyone.
    victim.sendUpdate(textUpdate(victim.doc, 'still mine'));
    await waitFor(
      () => observer.doc.getText('text').toString() === 'mine still mine',
      "the victim's next edit at the observer",
    );
  });

  it('protects a stock client that has only announced presence, not written yet', async (t) => {
    const doc = docName('hijack-presence');
    const victim = await stockClient(node.wsUrl, doc);
    const attacker = await rawClient(node.wsUrl, doc);
    t.after(() => {
      victim.destroy();
      attacker.close();
    });
    // y-protocols ignores a first state at clock 0, so presence counts from the first field set.
    victim.provider.awareness.setLocalStateField('user', 'victim');
    const room = node.server.hub.peek(doc)!;
    await waitFor(
      () => room.awareness.getStates().has(victim.doc.clientID),
      "the victim's presence at the node",
    );
    attacker.send(encodeUpdate(forgedUpdate(new Uint8Array([0, 0]), victim.doc.clientID, 'x')));
    await waitFor(() => errorCodes(attacker).includes('CLIENT_ID_TAKEN'), 'the attacker told');
    assert.equal(room.doc.getText('text').toString(), '');
    victim.doc.getText('text').insert(0, 'victim first');
    await waitFor(
      () => room.doc.getText('text').toString() === 'victim first',
      "the victim's edit at the node",
    );
  });

  it("refuses an HTTP write under a live connection's client id with 409", async (t) => {
    const doc = docName('hijack-http');
    const victim = await rawClient(node.wsUrl, doc);
    t.after(() => victim.close());
    const seq = victim.sendUpdate(textUpdate(victim.doc, 'mine'));
    await waitFor(() => victim.savedSeq() >= seq, 'the victim write to be saved');
    const res = await fetch(`${node.url}/v1/docs/${doc}/updates`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: forgedUpdate(Y.encodeStateAsUpdate(victim.doc), victim.doc.clientID, 'forged'),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'CLIENT_ID_TAKEN');
    assert.equal(node.server.hub.peek(doc)!.doc.getText('text').toString(), 'mine');
  });

  it('keeps stock y-websocket reconnects with offline edits working', async (t) => {
    const doc = docName('reconnect-offline');
    const a = await stockClient(node.wsUrl, doc);
    const b = await stockClient(node.wsUrl, doc);
    t.after(() => {
      a.destroy();
      b.destroy();
    });
    const refusedBefore = await taken();
    a.doc.getText('text').insert(0, 'a1 ');
    b.doc.getText('text').insert(0, 'b1 ');
    await waitFor(
      () => a.doc.getText('text').length === 6 && b.doc.getText('text').length === 6,
      'both online edits everywhere',
    );
    for (let round = 0; round < 3; round++) {
      a.provider.disconnect();
      a.doc.getText('text').insert(0, `a-offline-${round} `);
      b.doc.getText('text').insert(0, `b-online-${round} `);
      await sleep(50);
      a.provider.connect();
      await waitFor(
        () =>
          a.provider.synced &&
          a.doc.getText('text').toString() === b.doc.getText('text').toString() &&
          a.doc.getText('text').toString().includes(`a-offline-${round}`),
        `round ${round}: both replicas equal after the reconnect`,
      );
    }
    const room = node.server.hub.peek(doc)!;
    assert.equal(room.doc.getText('text').toString(), a.doc.getText('text').toString());
    assert.equal((await taken()) - refusedBefore, 0, 'no reconnect refused');
  });

  it("keeps offline merges that carry other people's edits working, and the absent author may return", async (t) => {
    const doc = docName('offline-merge');
    const a = await stockClient(node.wsUrl, doc);
    const b = await stockClient(node.wsUrl, doc);
    t.after(() => {
      a.destroy();
      b.destroy();
    });
    const refusedBefore = await taken();
    // As collaborative apps do: each client shows who it is. A connection that
    // speaks for its own presence id claims only that id by writing.
    a.provider.awareness.setLocalStateField('user', 'a');
    b.provider.awareness.setLocalStateField('user', 'b');
    const room = node.server.hub.peek(doc)!;
    await waitFor(() => room.awareness.getStates().size === 2, 'both presences at the node');
    b.doc.getText('text').insert(0, 'from b ');
    await waitFor(() => a.doc.getText('text').length === 7, "b's edit at a");
    // c edits offline, starting from b's state, and hands its whole state to a
    // (a shared file, a local channel): a forwards it to the node, carrying b's
    // edits (live, known) and c's (new, under c's id; c is not connected).
    const cDoc = new Y.Doc();
    Y.applyUpdate(cDoc, Y.encodeStateAsUpdate(b.doc));
    cDoc.getText('text').insert(0, 'from c ');
    Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(cDoc));
    await waitFor(() => b.doc.getText('text').toString().includes('from c'), "c's edit at b");
    // c edits more, then connects itself: its own id is not locked by a.
    cDoc.getText('text').insert(0, 'c again ');
    const c = await stockClient(node.wsUrl, doc, cDoc);
    t.after(() => c.destroy());
    await waitFor(
      () =>
        [a, b].every((x) => x.doc.getText('text').toString() === c.doc.getText('text').toString()),
      'all three equal',
    );
    assert.ok(c.doc.getText('text').toString().startsWith('c again '));
    assert.equal((await taken()) - refusedBefore, 0, 'no merge refused');
  });

  it("lets an author back in after another client re-sent the author's edits the node had lost", async (t) => {
    // As after a kill -9: the node lost x's last edits, and a client that had
    // received them (c, with no presence of its own) re-sends them in its sync
    // step 2 before x reconnects. x must not be locked out of its own id.
    const doc = docName('lost-and-resent');
    const xDoc = new Y.Doc();
    xDoc.getText('text').insert(0, 'x lost ');
    const carried = new Y.Doc();
    Y.applyUpdate(carried, Y.encodeStateAsUpdate(xDoc));
    const refusedBefore = await taken();
    const c = await stockClient(node.wsUrl, doc, carried);
    t.after(() => c.destroy());
    const room = node.server.hub.peek(doc)!;
    await waitFor(
      () => room.doc.getText('text').toString() === 'x lost ',
      "x's edits at the node, re-sent by c",
    );
    const x = await stockClient(node.wsUrl, doc, xDoc);
    t.after(() => x.destroy());
    x.provider.awareness.setLocalStateField('user', 'x');
    x.doc.getText('text').insert(7, 'x again');
    await waitFor(() => c.doc.getText('text').toString() === 'x lost x again', "x's new edit at c");
    assert.equal(x.provider.wsconnected, true, 'x was not closed');
    assert.equal((await taken()) - refusedBefore, 0, 'nothing refused');
  });

  it('frees a client id when its connection leaves', async () => {
    const doc = docName('released');
    const first = await rawClient(node.wsUrl, doc);
    const seq = first.sendUpdate(textUpdate(first.doc, 'one '));
    await waitFor(() => first.savedSeq() >= seq, 'saved');
    const state = Y.encodeStateAsUpdate(first.doc);
    const id = first.doc.clientID;
    first.close();
    await first.closed();
    const second = await rawClient(node.wsUrl, doc);
    try {
      // The same id from a new connection (a reload with the doc kept): accepted.
      const next = second.sendUpdate(forgedUpdate(state, id, 'two'));
      await waitFor(() => second.savedSeq() >= next, 'the write under the freed id saved');
      assert.equal(node.server.hub.peek(doc)!.doc.getText('text').toString(), 'one two');
      assert.deepEqual(errorCodes(second), []);
    } finally {
      second.close();
    }
  });
});

describe('client ids and token subjects', () => {
  const SECRET = 's'.repeat(32);
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    node = await startNode({ dataDir: dir.path, auth: { secret: SECRET } });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  const as = (subject: string) =>
    mintToken({ secret: SECRET, docs: ['*'], rights: ['read', 'write'], subject });

  it("lets one subject's connections share their ids (a reconnect while the old socket lingers), never another subject's", async (t) => {
    const doc = docName('subjects');
    const old = await rawClient(node.wsUrl, `${doc}?token=${await as('ada')}`);
    const reconnected = await rawClient(node.wsUrl, `${doc}?token=${await as('ada')}`);
    const stranger = await rawClient(node.wsUrl, `${doc}?token=${await as('bob')}`);
    t.after(() => {
      old.close();
      reconnected.close();
      stranger.close();
    });
    const first = old.sendUpdate(textUpdate(old.doc, 'before '));
    await waitFor(() => old.savedSeq() >= first, 'the first write saved');
    const room = node.server.hub.peek(doc)!;
    const state = Y.encodeStateAsUpdate(room.doc);
    // Read now: old.doc takes a new id when it sees content under its own (Yjs does that).
    const id = old.doc.clientID;
    // The same user's new socket goes on under the same client id: accepted.
    const next = reconnected.sendUpdate(forgedUpdate(state, id, 'after'));
    await waitFor(() => reconnected.savedSeq() >= next, 'the same subject saved');
    assert.equal(room.doc.getText('text').toString(), 'before after');
    assert.deepEqual(errorCodes(reconnected), []);
    // Another subject: refused, nothing changed.
    const before = Y.encodeStateAsUpdate(room.doc);
    stranger.send(encodeUpdate(forgedUpdate(before, id, 'forged')));
    await waitFor(() => errorCodes(stranger).includes('CLIENT_ID_TAKEN'), 'the stranger told');
    assert.deepEqual(Y.encodeStateAsUpdate(room.doc), before);
  });
});

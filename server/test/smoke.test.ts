import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { rawClient, stockClient, textUpdate } from './helpers/clients.js';
import { startNode, type TestNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

describe('a node with stock y-websocket clients', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(() => node.close());

  it('relays an edit from one stock client to another', async () => {
    const a = await stockClient(node.wsUrl, 'smoke');
    const b = await stockClient(node.wsUrl, 'smoke');
    a.doc.getText('t').insert(0, 'hello');
    await waitFor(() => b.doc.getText('t').toString() === 'hello', 'b to see the edit');
    a.destroy();
    b.destroy();
  });

  it('acknowledges a raw client update as saved', async () => {
    const c = await rawClient(node.wsUrl, 'smoke-ack');
    const seq = c.sendUpdate(textUpdate(new Y.Doc(), 'x'));
    await waitFor(() => c.savedSeq() >= seq, 'saved ack');
    assert.equal(c.savedSeq(), seq);
    c.close();
  });
});

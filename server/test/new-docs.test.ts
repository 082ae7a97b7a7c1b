/**
 * The per-subject limit on new documents (issue 17, item 6), on real sockets and
 * HTTP with a LevelDB store: one token subject may create at most
 * maxNewDocsPerSubject documents, and newDocsPerSubjectPerMinute a minute; the
 * write that would create one more is refused with DOC_CREATION_LIMITED and
 * changes nothing, while writes to existing documents, other subjects and clients
 * that only open a document go on.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { WebsocketProvider } from 'y-websocket';
import { decodeServerExtension } from '@stateweave/client/protocol';
import { mintToken } from '../src/auth/tokens.js';
import { ERRORS } from '../src/errors.js';
import { rawClient, stockClient, textUpdate, type RawClient } from './helpers/clients.js';
import { sample, scrape } from './helpers/metrics.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'new-docs-test-secret-that-is-long-enough';

const tokenOf = (subject: string) =>
  mintToken({ secret: SECRET, subject, docs: ['*'], rights: ['read', 'write'] });

const errorCodes = (client: RawClient): string[] =>
  client.frames.flatMap((frame) => {
    try {
      const ext = decodeServerExtension(frame);
      return ext?.type === 'error' ? [ext.code] : [];
    } catch {
      return [];
    }
  });

const patch = (node: TestNode, doc: string, token: string, body: unknown) =>
  fetch(`${node.url}/v1/docs/${doc}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });

const newDocs = async (node: TestNode, result: 'created' | 'refused') =>
  sample(await scrape(node.url), `stateweave_new_docs_total{result="${result}"}`);

describe('new documents per subject: a total', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    node = await startNode({
      dataDir: dir.path,
      auth: { secret: SECRET },
      maxNewDocsPerSubject: 3,
    });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  it('lets a subject create its documents over WebSocket and HTTP, then refuses the next one', async (t) => {
    const alice = await tokenOf('alice');
    const first = await rawClient(node.wsUrl, `a-1?token=${alice}`);
    const second = await rawClient(node.wsUrl, `a-2?token=${alice}`);
    t.after(() => {
      first.close();
      second.close();
    });
    for (const client of [first, second]) {
      const seq = client.sendUpdate(textUpdate(client.doc, 'hello'));
      await waitFor(() => client.savedSeq() >= seq, 'the creating write to be saved');
    }
    assert.equal((await patch(node, 'a-3', alice, { text: 'third' })).status, 200);
    // Writing again to a document it created is not a creation.
    const again = first.sendUpdate(textUpdate(first.doc, ' again'));
    await waitFor(() => first.savedSeq() >= again, 'a write to an existing document');
    assert.equal((await patch(node, 'a-3', alice, { text: 'third, edited' })).status, 200);
    assert.equal(await newDocs(node, 'created'), 3);

    // The fourth: a client that said hello is told and stays; nothing is applied.
    const fourth = await rawClient(node.wsUrl, `a-4?token=${alice}`);
    t.after(() => fourth.close());
    fourth.sendUpdate(textUpdate(fourth.doc, 'one too many'));
    await waitFor(() => errorCodes(fourth).includes('DOC_CREATION_LIMITED'), 'the refusal');
    assert.equal(fourth.ws.readyState, WebSocket.OPEN, 'a hello client stays');
    assert.equal(
      node.server.hub.peek(docName('a-4'))!.doc.store.clients.size,
      0,
      'a-4 stays empty',
    );

    // A stock y-websocket client: opening the document is fine, writing closes it with 4432.
    const stockDoc = new Y.Doc();
    const stock = new WebsocketProvider(node.wsUrl, 'a-5', stockDoc, {
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
      params: { token: alice },
      connect: true,
    });
    const closes: number[] = [];
    stock.on('connection-close', (event) => {
      if (event) closes.push(event.code);
    });
    t.after(() => {
      stock.destroy();
      stockDoc.destroy();
    });
    await waitFor(() => stock.synced, 'the stock client to sync an empty new document');
    assert.equal(closes.length, 0, 'opening a new document is not creating it');
    stockDoc.getText('text').insert(0, 'stock write');
    await waitFor(
      () => closes.includes(ERRORS.DOC_CREATION_LIMITED.close),
      'the stock client closed with 4432',
    );
    stock.disconnect();

    // HTTP: 429 with the code, for both write routes, and nothing stored.
    const refused = await patch(node, 'a-6', alice, { text: 'no' });
    assert.equal(refused.status, 429);
    const body = (await refused.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'DOC_CREATION_LIMITED');
    const doc = new Y.Doc();
    doc.getText('text').insert(0, 'binary');
    const posted = await fetch(`${node.url}/v1/docs/a-7/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream' },
      body: Y.encodeStateAsUpdate(doc),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(posted.status, 429);
    const read = await fetch(`${node.url}/v1/docs/a-6`, {
      headers: { authorization: `Bearer ${alice}` },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(read.status, 404, 'the refused document does not exist');
    assert.equal(await newDocs(node, 'refused'), 4);
    assert.equal(await newDocs(node, 'created'), 3);

    // Existing documents still take alice's writes; another subject still creates.
    assert.equal((await patch(node, 'a-1', alice, { other: 'field' })).status, 200);
    const bob = await tokenOf('bob');
    assert.equal((await patch(node, 'b-1', bob, { text: 'bob' })).status, 200);
    assert.equal(await newDocs(node, 'created'), 4);
  });

  it('does not count a document that already exists, whoever created it', async () => {
    const carol = await tokenOf('carol');
    // alice's documents exist; carol writing to them creates nothing.
    for (const name of ['a-1', 'a-2', 'a-3'])
      assert.equal((await patch(node, name, carol, { carol: name })).status, 200);
    const created = await newDocs(node, 'created');
    assert.equal((await patch(node, 'c-1', carol, { text: 'c' })).status, 200);
    assert.equal(await newDocs(node, 'created'), created + 1);
  });
});

describe('new documents per subject: a rate', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    node = await startNode({
      dataDir: dir.path,
      auth: { secret: SECRET },
      newDocsPerSubjectPerMinute: 2,
    });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  it('refuses creations past the rate at once and still serves the subject elsewhere', async (t) => {
    const dave = await tokenOf('dave');
    assert.equal((await patch(node, 'd-1', dave, { meta: { n: 1 } })).status, 200);
    assert.equal((await patch(node, 'd-2', dave, { meta: { n: 2 } })).status, 200);
    const third = await patch(node, 'd-3', dave, { meta: { n: 3 } });
    assert.equal(third.status, 429);
    assert.match(
      ((await third.json()) as { error: { message: string } }).error.message,
      /2 documents per minute/,
    );
    // A stock client that only reads a new document is served.
    const reader = await stockClient(node.wsUrl, `d-4?token=${dave}`);
    t.after(() => reader.destroy());
    assert.equal(reader.doc.getText('text').toString(), '');
    assert.equal((await patch(node, 'd-1', dave, { meta: { n: 10 } })).status, 200);
  });
});

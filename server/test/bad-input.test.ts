/**
 * Bad input on the WebSocket endpoint. For each kind of bad input the offending
 * socket is closed with the close code from the one error table, the error is
 * counted in /metrics, the document (in memory and in the store) is exactly what
 * it was, and the other clients of the same document keep syncing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import {
  encodeAwareness,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeUpdate,
} from '@stateweave/client/protocol';
import { ERRORS, type ErrorCode } from '../src/errors.js';
import { createMemoryStore } from '../src/storage/level-store.js';
import type { Store } from '../src/storage/store.js';
import {
  rawClient,
  stockClient,
  textUpdate,
  type Closed,
  type RawClient,
  type StockClient,
} from './helpers/clients.js';
import { errorCount, sample, scrape } from './helpers/metrics.js';
import { startNode, type TestNode } from './helpers/node.js';
import { waitFor, withTimeout } from './helpers/wait.js';
// `docName` names the document of each test below.
import { docName as typedName } from './helpers/doc-name.js';
import type { DocName } from '../src/doc-name.js';

const MAX_FRAME_BYTES = 8 * 1024;
const MAX_DOC_BYTES = 32 * 1024;
const MAX_CONNECTIONS = 3;

/** A real change (so a half-applied one would show), sent as a raw update frame. */
const realUpdate = (text = 'rejected input must not appear'): Uint8Array =>
  textUpdate(new Y.Doc(), text);

/** A plain socket that records how it closed (no handshake, no sync). */
const plainSocket = (url: string): { ws: WebSocket; closed: Promise<Closed> } => {
  const ws = new WebSocket(url);
  ws.on('error', () => undefined); // the close code is what the tests look at
  const closed = new Promise<Closed>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return { ws, closed };
};

describe('bad input on a WebSocket', () => {
  let node: TestNode;
  let store: Store;
  const clients: Array<StockClient | RawClient> = [];
  let docCounter = 0;

  before(async () => {
    store = await createMemoryStore();
    node = await startNode({
      store,
      maxFrameBytes: MAX_FRAME_BYTES,
      maxDocBytes: MAX_DOC_BYTES,
      maxConnectionsPerDoc: MAX_CONNECTIONS,
    });
  });
  after(async () => {
    for (const client of clients) {
      if ('provider' in client) client.destroy();
      else client.close();
    }
    await node.close();
  });

  const stock = async (docName: string): Promise<StockClient> => {
    const client = await stockClient(node.wsUrl, docName);
    clients.push(client);
    return client;
  };
  const raw = async (docName: string): Promise<RawClient> => {
    const client = await rawClient(node.wsUrl, docName);
    clients.push(client);
    return client;
  };

  /** The document as the node holds it, once every change is stored. */
  const stateOf = async (docName: DocName) => {
    const room = node.server.hub.peek(docName);
    assert.ok(room, `${docName} is loaded`);
    assert.equal(await room.flush(), true, 'every change is stored');
    const stored = new Y.Doc();
    for (const update of (await store.load(docName)).updates) Y.applyUpdate(stored, update);
    const state = {
      memory: Y.encodeStateAsUpdate(room.doc),
      stored: Y.encodeStateAsUpdate(stored),
      text: room.doc.getText('text').toString(),
      pending: room.doc.store.pendingStructs !== null || room.doc.store.pendingDs !== null,
      awareness: [...room.awareness.getStates()].sort(([x], [y]) => x - y),
    };
    stored.destroy();
    return state;
  };

  /** Two stock clients on a fresh document with some content, in sync with each other. */
  const setup = async (content = 'before') => {
    const docName = typedName(`bad/${++docCounter}`);
    const a = await stock(docName);
    const b = await stock(docName);
    a.doc.getText('text').insert(0, content);
    a.provider.awareness.setLocalState({ user: 'a' });
    b.provider.awareness.setLocalState({ user: 'b' });
    await waitFor(() => b.doc.getText('text').toString() === content, 'b to see a');
    await waitFor(
      () => node.server.hub.peek(docName)?.awareness.getStates().size === 2,
      'the node to see both present',
    );
    await waitFor(
      () => node.server.hub.peek(docName)?.doc.getText('text').toString() === content,
      'the node to have it',
    );
    return { docName, a, b };
  };

  /** After the rejection: a and b still sync both ways, and a newcomer sees the same. */
  const stillSyncing = async (docName: string, a: StockClient, b: StockClient) => {
    const expected = `${a.doc.getText('text').toString()}!`;
    a.doc.getText('text').insert(a.doc.getText('text').length, '!');
    await waitFor(
      () => b.doc.getText('text').toString() === expected,
      'b to see a after the rejection',
    );
    b.doc.getMap('map').set('from-b', 1);
    await waitFor(() => a.doc.getMap('map').get('from-b') === 1, 'a to see b after the rejection');
    const late = await stock(docName);
    assert.equal(late.doc.getText('text').toString(), expected);
    late.destroy();
  };

  /**
   * Opens a raw client on a fresh document, lets `misbehave` send bad input, and
   * checks the close code, the metric, the unchanged document and the others.
   */
  const expectRejection = async (
    code: ErrorCode,
    misbehave: (client: RawClient) => void,
    setupContent?: string,
  ) => {
    const { docName, a, b } = await setup(setupContent);
    const bad = await raw(docName);
    const errorsBefore = await errorCount(node.url, code);
    const before = await stateOf(docName);
    misbehave(bad);
    const closed = await withTimeout(
      bad.closed(),
      5000,
      `the node to close the socket with ${code}`,
    );
    assert.equal(
      closed.code,
      ERRORS[code].close,
      `close code for ${code} (reason ${JSON.stringify(closed.reason)})`,
    );
    assert.ok(closed.reason.startsWith(`${code}: `), `reason ${JSON.stringify(closed.reason)}`);
    await waitFor(
      () => node.server.hub.peek(docName)?.subscriberCount === 2,
      'the node to drop the socket',
    );
    assert.deepEqual(await stateOf(docName), before, 'the document is unchanged');
    assert.equal(
      await errorCount(node.url, code),
      errorsBefore + 1,
      `${code} counted once in /metrics`,
    );
    await stillSyncing(docName, a, b);
    a.destroy();
    b.destroy();
  };

  it('closes a socket that sends an unknown message type with INVALID_FRAME', async () => {
    await expectRejection('INVALID_FRAME', (c) => c.send(new Uint8Array([42, 0, 0])));
  });

  it('closes a socket that sends the reserved auth message with INVALID_FRAME', async () => {
    await expectRejection('INVALID_FRAME', (c) => c.send(new Uint8Array([2, 0, 0])));
  });

  it('closes a socket that sends a truncated frame with INVALID_FRAME', async () => {
    const frame = encodeUpdate(realUpdate());
    await expectRejection('INVALID_FRAME', (c) => c.send(frame.subarray(0, frame.length - 3)));
  });

  it('closes a socket that sends a frame with trailing bytes with INVALID_FRAME', async () => {
    const frame = encodeUpdate(realUpdate());
    await expectRejection('INVALID_FRAME', (c) => c.send(new Uint8Array([...frame, 0])));
  });

  it('closes a socket that sends a text frame with TEXT_FRAME', async () => {
    await expectRejection('TEXT_FRAME', (c) => c.send('{"type":"update"}'));
  });

  it('closes a socket that sends a text frame that is not even UTF-8 with TEXT_FRAME', async () => {
    await expectRejection('TEXT_FRAME', (c) =>
      c.ws.send(Buffer.from([0xff, 0xfe, 0x00]), { binary: false }),
    );
  });

  it('closes a socket whose update Yjs cannot decode with INVALID_UPDATE', async () => {
    await expectRejection('INVALID_UPDATE', (c) =>
      c.send(encodeUpdate(new TextEncoder().encode('this is no Yjs update'))),
    );
  });

  it('closes a socket whose sync step 2 Yjs cannot decode with INVALID_UPDATE', async () => {
    await expectRejection('INVALID_UPDATE', (c) =>
      c.send(encodeSyncStep2(new Uint8Array([0xff, 0xff, 0xff]))),
    );
  });

  it('closes a socket that sends a malformed awareness update with INVALID_FRAME', async () => {
    // One entry whose state is not JSON.
    const bad = new Uint8Array([1, 7, 1, 3, ...new TextEncoder().encode('{x}')]);
    await expectRejection('INVALID_FRAME', (c) => c.send(encodeAwareness(bad)));
  });

  it('closes a socket that sends a truncated awareness update with INVALID_FRAME, leaving presence as it was', async () => {
    // Claims two entries, carries one: nothing of it may be applied.
    const half = new Uint8Array([2, 7, 1, 2, ...new TextEncoder().encode('{}')]);
    await expectRejection('INVALID_FRAME', (c) => c.send(encodeAwareness(half)));
  });

  it('closes a socket that sends a malformed state vector in sync step 1 with INVALID_FRAME', async () => {
    // Says five entries follow; none do.
    await expectRejection('INVALID_FRAME', (c) => c.send(encodeSyncStep1(new Uint8Array([5]))));
  });

  it('closes a socket that sends a frame over maxFrameBytes with 1009 (FRAME_TOO_LARGE)', async () => {
    const { docName, a, b } = await setup();
    const bad = await raw(docName);
    bad.ws.on('error', () => undefined); // the node may reset while the big frame is still being written
    const errorsBefore = await errorCount(node.url, 'FRAME_TOO_LARGE');
    const before = await stateOf(docName);
    const update = realUpdate('x'.repeat(MAX_FRAME_BYTES + 100));
    assert.ok(encodeUpdate(update).length > MAX_FRAME_BYTES);
    bad.send(encodeUpdate(update));
    const closed = await withTimeout(bad.closed(), 5000, 'the node to close the socket');
    assert.equal(closed.code, ERRORS.FRAME_TOO_LARGE.close);
    await waitFor(
      () => node.server.hub.peek(docName)?.subscriberCount === 2,
      'the node to drop the socket',
    );
    assert.deepEqual(await stateOf(docName), before, 'the document is unchanged');
    assert.equal(await errorCount(node.url, 'FRAME_TOO_LARGE'), errorsBefore + 1);
    await stillSyncing(docName, a, b);
    a.destroy();
    b.destroy();
  });

  it('closes a socket whose update would grow the document past maxDocBytes with DOC_TOO_LARGE', async () => {
    // A document just under the limit; the next frame-sized update would pass it.
    const { docName, a, b } = await setup();
    for (let i = 0; i < 4; i++) {
      a.doc.getText('filler').insert(0, 'f'.repeat(7000));
      await waitFor(() => b.doc.getText('filler').length === 7000 * (i + 1), 'filler to arrive');
    }
    const room = node.server.hub.peek(docName)!;
    await room.flush();
    const big = realUpdate('y'.repeat(MAX_FRAME_BYTES - 200));
    assert.ok(
      room.storedBytes < MAX_DOC_BYTES && room.storedBytes + big.length > MAX_DOC_BYTES,
      `stored ${room.storedBytes} bytes`,
    );
    const bad = await raw(docName);
    const errorsBefore = await errorCount(node.url, 'DOC_TOO_LARGE');
    const before = await stateOf(docName);
    bad.send(encodeUpdate(big));
    const closed = await withTimeout(bad.closed(), 5000, 'the node to close the socket');
    assert.equal(closed.code, ERRORS.DOC_TOO_LARGE.close);
    assert.ok(closed.reason.startsWith('DOC_TOO_LARGE: '), closed.reason);
    await waitFor(() => room.subscriberCount === 2, 'the node to drop the socket');
    assert.deepEqual(await stateOf(docName), before, 'the document is unchanged');
    assert.equal(await errorCount(node.url, 'DOC_TOO_LARGE'), errorsBefore + 1);
    await stillSyncing(docName, a, b);
    a.destroy();
    b.destroy();
  });

  it('ignores frames that arrive after a refused one on the same socket', async () => {
    // The node has decided to close the socket; input still in flight must not
    // reach the document, and the refusal is counted once.
    const { docName, a, b } = await setup();
    const bad = await raw(docName);
    const errorsBefore = await errorCount(node.url, 'INVALID_FRAME');
    const before = await stateOf(docName);
    bad.send(new Uint8Array([42]));
    bad.send(encodeUpdate(realUpdate()));
    bad.send(new Uint8Array([43]));
    const closed = await withTimeout(bad.closed(), 5000, 'the node to close the socket');
    assert.equal(closed.code, ERRORS.INVALID_FRAME.close);
    await waitFor(
      () => node.server.hub.peek(docName)?.subscriberCount === 2,
      'the node to drop the socket',
    );
    assert.deepEqual(await stateOf(docName), before, 'the document is unchanged');
    assert.equal(await errorCount(node.url, 'INVALID_FRAME'), errorsBefore + 1);
    await stillSyncing(docName, a, b);
    a.destroy();
    b.destroy();
  });

  it('refuses an invalid document name in the URL with HTTP 400 before the handshake', async () => {
    const { docName, a, b } = await setup();
    const names = [
      'bad%20name',
      'a//b',
      'trailing/',
      'a%00b',
      'back%5Cslash',
      '%E0%A4%A',
      'x'.repeat(256),
      'caf%C3%A9',
    ];
    const openBefore = node.server.hub.openDocuments;
    for (const name of names) {
      const errorsBefore = await errorCount(node.url, 'INVALID_DOC_NAME');
      const ws = new WebSocket(`${node.wsUrl}/${name}`);
      const response = await withTimeout(
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          ws.once('open', () => reject(new Error(`upgrade accepted for ${JSON.stringify(name)}`)));
          ws.once('unexpected-response', (_req, res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          ws.once('error', () => undefined);
        }),
        5000,
        `the upgrade response for ${JSON.stringify(name)}`,
      );
      ws.terminate();
      assert.equal(
        response.status,
        ERRORS.INVALID_DOC_NAME.status,
        `status for ${JSON.stringify(name)}`,
      );
      const body = JSON.parse(response.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'INVALID_DOC_NAME');
      assert.equal(typeof body.error.message, 'string');
      assert.equal(
        await errorCount(node.url, 'INVALID_DOC_NAME'),
        errorsBefore + 1,
        `counted for ${JSON.stringify(name)}`,
      );
    }
    // No room for any of them (a room for '' cannot exist: only a checked name opens one).
    assert.equal(node.server.hub.openDocuments, openBefore, 'no room for an invalid name');
    await stillSyncing(docName, a, b);
    a.destroy();
    b.destroy();
  });

  it('refuses request targets that URL resolution would turn into another document', async () => {
    // Sent as-is (a WHATWG client would normalise them first): `//x/y` must not be
    // read as host x + document y, nor `/a/../b` as document b.
    for (const path of [
      '//x/y',
      '/a/../b',
      '/a/./b',
      '/a/%2e%2e/b',
      '/..',
      'http://127.0.0.1/doc',
    ]) {
      const status = await withTimeout(
        new Promise<number>((resolve, reject) => {
          const req = request({
            host: '127.0.0.1',
            port: node.port,
            path,
            headers: {
              connection: 'Upgrade',
              upgrade: 'websocket',
              'sec-websocket-version': '13',
              'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
            },
          });
          req.once('upgrade', (_res, socket) => {
            socket.destroy();
            resolve(101);
          });
          req.once('response', (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.once('error', reject);
          req.end();
        }),
        5000,
        `the upgrade response for ${path}`,
      );
      assert.equal(status, ERRORS.INVALID_DOC_NAME.status, `status for ${path}`);
    }
    assert.equal(node.server.hub.peek(typedName('y')), undefined);
    assert.equal(node.server.hub.peek(typedName('b')), undefined);
  });

  it('closes connections past maxConnectionsPerDoc with TOO_MANY_CONNECTIONS and admits again once one leaves', async () => {
    const { docName, a, b } = await setup();
    const c = await stock(docName);
    const room = node.server.hub.peek(docName)!;
    assert.equal(room.subscriberCount, MAX_CONNECTIONS);
    const errorsBefore = await errorCount(node.url, 'TOO_MANY_CONNECTIONS');
    const before = await stateOf(docName);
    const extra = plainSocket(`${node.wsUrl}/${docName}`);
    const closed = await withTimeout(extra.closed, 5000, 'the node to refuse the extra connection');
    assert.equal(closed.code, ERRORS.TOO_MANY_CONNECTIONS.close);
    assert.ok(closed.reason.startsWith('TOO_MANY_CONNECTIONS: '), closed.reason);
    assert.equal(room.subscriberCount, MAX_CONNECTIONS);
    assert.deepEqual(await stateOf(docName), before, 'the document is unchanged');
    assert.equal(await errorCount(node.url, 'TOO_MANY_CONNECTIONS'), errorsBefore + 1);
    // The limit is per document: another document still admits.
    const other = await rawClient(node.wsUrl, `${docName}-other`);
    other.close();
    // A place freed is a place available.
    c.destroy();
    await waitFor(() => room.subscriberCount === MAX_CONNECTIONS - 1, 'the node to see c leave');
    await stillSyncing(docName, a, b);
    a.destroy();
    b.destroy();
  });

  it('counts exactly the sockets still open in /metrics and still answers /healthz', async () => {
    // Every refused socket above was counted out again: no leaked connections.
    const open = clients.filter((c) =>
      'provider' in c ? c.provider.wsconnected : c.ws.readyState === WebSocket.OPEN,
    ).length;
    await waitFor(
      async () => sample(await scrape(node.url), 'stateweave_connections') === open,
      `the gauge to read ${open}`,
    );
    const health = await fetch(`${node.url}/healthz`);
    assert.equal(health.status, 200);
  });
});

describe('a slow consumer', () => {
  let node: TestNode;
  const MAX_BUFFERED_BYTES = 256 * 1024;

  before(async () => {
    node = await startNode({ maxBufferedBytes: MAX_BUFFERED_BYTES });
  });
  after(() => node.close());

  it('is disconnected once its backlog passes maxBufferedBytes, and everyone else carries on', async () => {
    const docName = typedName('slow');
    const watcher = await stockClient(node.wsUrl, docName);
    const writer = await rawClient(node.wsUrl, docName);
    const slow = await rawClient(node.wsUrl, docName);
    slow.ws.on('error', () => undefined);
    const room = node.server.hub.peek(docName)!;
    assert.equal(room.subscriberCount, 3);
    const errorsBefore = await errorCount(node.url, 'SLOW_CONSUMER');

    // The slow client stops reading; its kernel buffers fill, then the node's.
    (slow.ws as unknown as { _socket: Socket })._socket.pause();
    const source = new Y.Doc();
    const chunk = 'z'.repeat(256 * 1024);
    let sent = 0;
    // Bounded: ~100 MB at most, far more than any loopback socket buffers.
    for (let i = 0; i < 400 && room.subscriberCount === 3; i++) {
      const before = Y.encodeStateVector(source);
      // Overwriting one key keeps the document small while every frame is big.
      source.getMap('big').set('value', `${i}:${chunk}`);
      const seq = writer.sendUpdate(Y.encodeStateAsUpdate(source, before));
      sent++;
      if (i % 4 === 3)
        await waitFor(() => writer.savedSeq() >= seq, 'the writer to be acknowledged');
    }
    await waitFor(
      () => room.subscriberCount === 2,
      `the node to drop the slow consumer (after ${sent} updates)`,
    );
    assert.equal(await errorCount(node.url, 'SLOW_CONSUMER'), errorsBefore + 1);
    assert.ok(sent < 400, 'dropped before the loop ran out');

    // The client learns it was closed once it reads again. The node terminates
    // (a client that does not read cannot complete a closing handshake), so the
    // close frame behind the backlog may never arrive: 4408 or an abnormal 1006.
    (slow.ws as unknown as { _socket: Socket })._socket.resume();
    const closed = await withTimeout(slow.closed(), 10_000, 'the slow client to see the close');
    assert.ok(
      [ERRORS.SLOW_CONSUMER.close, 1006].includes(closed.code),
      `close code ${closed.code}`,
    );

    // The others are fine: the writer's last value reached the watcher, and new
    // edits still flow both ways.
    await waitFor(
      () => watcher.doc.getMap('big').get('value') === source.getMap('big').get('value'),
      'the watcher to catch up',
    );
    const seq = writer.sendUpdate(textUpdate(new Y.Doc(), 'after'));
    await waitFor(() => writer.savedSeq() >= seq, 'the writer acknowledged after the drop');
    await waitFor(
      () => watcher.doc.getText('text').toString() === 'after',
      'the watcher to see the writer',
    );
    watcher.doc.getText('text').insert(0, 'w');
    await waitFor(
      () => writer.doc.getText('text').toString() === 'wafter',
      'the writer to see the watcher',
    );
    assert.equal(sample(await scrape(node.url), 'stateweave_connections'), 2);
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
    watcher.destroy();
    writer.close();
  });
});

describe('a client that stops answering pings', () => {
  let node: TestNode;
  const HEARTBEAT_MS = 200;

  before(async () => {
    node = await startNode({ heartbeatMs: HEARTBEAT_MS });
  });
  after(() => node.close());

  it('is dropped with HEARTBEAT_TIMEOUT while clients that answer stay', async () => {
    const docName = typedName('heartbeat');
    const alive = await stockClient(node.wsUrl, docName);
    const other = await stockClient(node.wsUrl, docName);
    const silent = await rawClient(node.wsUrl, docName);
    silent.ws.on('error', () => undefined);
    const room = node.server.hub.peek(docName)!;
    const errorsBefore = await errorCount(node.url, 'HEARTBEAT_TIMEOUT');
    // A paused socket reads no pings, so it sends no pongs.
    (silent.ws as unknown as { _socket: Socket })._socket.pause();
    await waitFor(
      () => room.subscriberCount === 2,
      'the node to drop the silent client',
      20 * HEARTBEAT_MS,
    );
    assert.equal(await errorCount(node.url, 'HEARTBEAT_TIMEOUT'), errorsBefore + 1);
    // Several more heartbeats: the clients that answer are never dropped.
    await new Promise((resolve) => setTimeout(resolve, 5 * HEARTBEAT_MS));
    assert.equal(room.subscriberCount, 2);
    assert.equal(await errorCount(node.url, 'HEARTBEAT_TIMEOUT'), errorsBefore + 1);
    alive.doc.getText('text').insert(0, 'still here');
    await waitFor(
      () => other.doc.getText('text').toString() === 'still here',
      'the other client to see the edit',
    );
    (silent.ws as unknown as { _socket: Socket })._socket.resume();
    const closed = await withTimeout(silent.closed(), 5000, 'the silent client to see the close');
    assert.ok(
      [ERRORS.HEARTBEAT_TIMEOUT.close, 1006].includes(closed.code),
      `close code ${closed.code}`,
    );
    alive.destroy();
    other.destroy();
  });
});

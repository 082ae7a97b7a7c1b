/**
 * `client.invoke` / `client.query` over an open document socket: used whenever
 * the client has a synced handle (no HTTP request at all), HTTP otherwise, and
 * what happens to calls in flight when that socket closes: a query or a keyed
 * invocation is sent again, a keyless invocation fails with NETWORK and is never
 * sent twice. A real node where it can; a fake node (bare `ws` server) to hold an
 * answer back and drop the socket on demand.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { StateweaveClientError, type FetchLike } from '@stateweave/client';
import {
  decodeClientMessage,
  encodeInvokeOk,
  encodeSyncStep1,
  encodeSyncStep2,
  MessageType,
  type InvokeMessage,
} from '@stateweave/client/protocol';
import { startNode, type TestNode } from '../../server/dist/test/helpers/node.js';
import { FIXTURE_FUNCTIONS } from '../../server/dist/test/helpers/functions.js';
import { sdkClient, waitFor } from './helpers.js';

/** The real fetch, counting requests. */
const countingFetch = (): { fetch: FetchLike; count: () => number } => {
  let count = 0;
  return {
    fetch: (url, init) => {
      count++;
      return globalThis.fetch(url, init);
    },
    count: () => count,
  };
};

describe('function calls over the document socket (real node)', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ functionsDir: FIXTURE_FUNCTIONS });
  });
  after(() => node.close());

  it('goes over an open socket (no HTTP request), with the same results and errors', async () => {
    const http = countingFetch();
    const client = sdkClient({ url: node.wsUrl, fetch: http.fetch });
    try {
      const handle = client.open('lobby');
      await handle.synced;
      assert.deepEqual(await client.invoke('increment', { counter: 'sdk-ws' }), { n: 1 });
      assert.deepEqual(
        await client.invoke('increment', { counter: 'sdk-ws' }, { idempotencyKey: 'a' }),
        { n: 2 },
      );
      assert.deepEqual(
        await client.invoke('increment', { counter: 'sdk-ws' }, { idempotencyKey: 'a' }),
        { n: 2 },
      );
      assert.deepEqual(await client.query('read', { counter: 'sdk-ws' }), { n: 2 });
      await assert.rejects(client.invoke('nope', {}), (err: unknown) => {
        assert.ok(err instanceof StateweaveClientError);
        assert.equal(err.code, 'NOT_FOUND');
        assert.equal(err.status, 404);
        return true;
      });
      await assert.rejects(
        client.invoke('writeThenThrow', { counter: 'sdk-ws' }),
        (err: unknown) => {
          return (
            err instanceof StateweaveClientError &&
            err.code === 'FUNCTION_ERROR' &&
            err.status === 500
          );
        },
      );
      assert.equal(http.count(), 0, 'no HTTP request while a socket is open');
    } finally {
      await client.destroy();
    }
  });

  it('pipelines 1,000 calls on one hot document, each applied once', async () => {
    const http = countingFetch();
    const client = sdkClient({ url: node.wsUrl, fetch: http.fetch });
    try {
      await client.open('counters/sdk-hot').synced;
      const started = performance.now();
      const results = await Promise.all(
        Array.from(
          { length: 1000 },
          () => client.invoke('increment', { counter: 'sdk-hot' }) as Promise<{ n: number }>,
        ),
      );
      const ms = performance.now() - started;
      assert.deepEqual(
        results.map((r) => r.n).sort((a, b) => a - b),
        Array.from({ length: 1000 }, (_, i) => i + 1),
      );
      assert.equal(http.count(), 0);
      console.log(
        `# 1000 pipelined SDK invocations over one socket on one document: ${Math.round((1000 / ms) * 1000)}/s`,
      );
    } finally {
      await client.destroy();
    }
  });

  it('uses HTTP when no socket is open, and again once the last handle closed', async () => {
    const http = countingFetch();
    const client = sdkClient({ url: node.wsUrl, fetch: http.fetch });
    try {
      assert.deepEqual(await client.invoke('increment', { counter: 'sdk-http' }), { n: 1 });
      assert.equal(http.count(), 1);
      const handle = client.open('lobby');
      await handle.synced;
      assert.deepEqual(await client.invoke('increment', { counter: 'sdk-http' }), { n: 2 });
      assert.equal(http.count(), 1, 'the socket carried the second call');
      await handle.close();
      assert.deepEqual(await client.query('read', { counter: 'sdk-http' }), { n: 2 });
      assert.equal(http.count(), 2);
    } finally {
      await client.destroy();
    }
  });
});

describe('calls in flight when the socket closes (fake node)', () => {
  let wss: WebSocketServer;
  let url: string;
  let sockets: ServerSocket[];
  let invokes: InvokeMessage[];

  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    wss.on('connection', (socket: ServerSocket) => {
      sockets.push(socket);
      socket.on('message', (data: Buffer) => {
        if (data[0] !== MessageType.Invoke) return;
        const message = decodeClientMessage(new Uint8Array(data));
        if (message.type === 'invoke') invokes.push(message); // and never answered
      });
      // An empty document: the handle syncs.
      socket.send(encodeSyncStep1(Y.encodeStateVector(new Y.Doc())));
      socket.send(encodeSyncStep2(Y.encodeStateAsUpdate(new Y.Doc())));
    });
  });
  afterEach(() => {
    for (const client of wss.clients) client.terminate();
  });
  after(() => new Promise<void>((resolve) => wss.close(() => resolve())));

  /** A fetch that answers every call with `{"via":"http"}`, counting them. */
  const httpStub = () => {
    const calls: string[] = [];
    const fetch: FetchLike = (target) => {
      calls.push(target);
      return Promise.resolve({
        ok: true,
        status: 200,
        text: () => Promise.resolve('{"via":"http"}'),
      });
    };
    return { fetch, calls };
  };

  it('fails a keyless invocation with NETWORK (outcome unknown) and never sends it again', async () => {
    sockets = [];
    invokes = [];
    const http = httpStub();
    const client = sdkClient({ url, multiplex: false, fetch: http.fetch });
    try {
      const handle = client.open('doc');
      await handle.synced;
      const call = client.invoke('increment', { counter: 'x' });
      await waitFor(() => invokes.length === 1, 'the invocation to reach the node');
      sockets[0]!.terminate();
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof StateweaveClientError);
        assert.equal(err.code, 'NETWORK');
        assert.match(err.message, /unknown/);
        return true;
      });
      // Reconnected and synced again: still only the one frame, and no HTTP request.
      await waitFor(() => sockets.length === 2 && handle.isSynced, 'the handle to reconnect');
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(invokes.length, 1);
      assert.equal(http.calls.length, 0);
    } finally {
      await client.destroy();
    }
  });

  it('sends a query or a keyed invocation again when its socket closes', async () => {
    sockets = [];
    invokes = [];
    const http = httpStub();
    const client = sdkClient({ url, multiplex: false, fetch: http.fetch });
    try {
      await client.open('doc').synced;
      const keyed = client.invoke('increment', { counter: 'x' }, { idempotencyKey: 'k1' });
      const query = client.query('read', { counter: 'x' });
      await waitFor(() => invokes.length === 2, 'both calls to reach the node');
      assert.deepEqual(
        invokes.map((m) => [m.kind, m.name, m.idempotencyKey]),
        [
          ['invoke', 'increment', 'k1'],
          ['query', 'read', undefined],
        ],
      );
      sockets[0]!.terminate();
      assert.deepEqual(await keyed, { via: 'http' });
      assert.deepEqual(await query, { via: 'http' });
      assert.equal(http.calls.length, 2, 'both were sent again, over HTTP');
    } finally {
      await client.destroy();
    }
  });

  it('answers a call from its Result frame, matched by call id', async () => {
    sockets = [];
    invokes = [];
    const http = httpStub();
    const client = sdkClient({ url, multiplex: false, fetch: http.fetch });
    try {
      await client.open('doc').synced;
      const first = client.invoke('f', 1);
      const second = client.invoke('g', 2);
      await waitFor(() => invokes.length === 2, 'both calls to reach the node');
      // Answered out of order.
      sockets[0]!.send(encodeInvokeOk(invokes[1]!.callId, '"second"', 'v'));
      sockets[0]!.send(encodeInvokeOk(invokes[0]!.callId, '"first"', 'v'));
      assert.deepEqual(await Promise.all([first, second]), ['first', 'second']);
      assert.equal(http.calls.length, 0);
    } finally {
      await client.destroy();
    }
  });
});

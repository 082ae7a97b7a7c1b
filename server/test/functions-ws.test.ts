/**
 * Function calls over an open WebSocket (Invoke 104 → Result 105): the same
 * answers as over HTTP, errors as results (never a close), the connection's grant,
 * idempotency, the per-connection in-flight cap, pipelining past the message rate
 * limit, stock clients in the same room, and `owner` forwarding in a cluster.
 * Real nodes on 127.0.0.1, real sockets, LevelDB in a temp directory.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeInvokeResult,
  encodeInvoke,
  encodeToken,
  type InvokeKind,
  type InvokeResultMessage,
} from '@stateweave/client/protocol';
import { mintToken } from '../src/auth/tokens.js';
import { rawClient, stockClient, textUpdate, type RawClient } from './helpers/clients.js';
import { freePorts, PEER_SECRET, waitConnected } from './helpers/cluster.js';
import { FIXTURE_FUNCTIONS, invoke as invokeHttp } from './helpers/functions.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

interface Caller {
  readonly raw: RawClient;
  /** Every Result received, in arrival order. */
  readonly results: InvokeResultMessage[];
  /** Sends one Invoke and resolves with its Result. */
  call(
    name: string,
    input: unknown,
    options?: { key?: string; kind?: InvokeKind; rawInput?: string },
  ): Promise<InvokeResultMessage>;
  /** Sends one Invoke without waiting; returns its call id. */
  send(name: string, input: unknown, options?: { key?: string }): number;
  close(): void;
}

/** A raw client (hello, synced) on `doc` that calls functions over its socket. */
const caller = async (wsUrl: string, doc: string, token?: string): Promise<Caller> => {
  const raw = await rawClient(wsUrl, token === undefined ? doc : `${doc}?token=${token}`);
  const results: InvokeResultMessage[] = [];
  const waiting = new Map<number, (result: InvokeResultMessage) => void>();
  raw.ws.on('message', (data: ArrayBuffer) => {
    const result = decodeInvokeResult(new Uint8Array(data));
    if (!result) return;
    results.push(result);
    waiting.get(result.callId)?.(result);
    waiting.delete(result.callId);
  });
  let nextId = 1;
  const send: Caller['send'] = (name, input, options = {}) => {
    const callId = nextId++;
    raw.send(
      encodeInvoke({
        callId,
        kind: 'invoke',
        name,
        input: JSON.stringify(input),
        ...(options.key ? { idempotencyKey: options.key } : {}),
      }),
    );
    return callId;
  };
  return {
    raw,
    results,
    send,
    call(name, input, options = {}) {
      const callId = nextId++;
      const answered = new Promise<InvokeResultMessage>((resolve) => waiting.set(callId, resolve));
      raw.send(
        encodeInvoke({
          callId,
          kind: options.kind ?? 'invoke',
          name,
          input: options.rawInput ?? JSON.stringify(input),
          ...(options.key ? { idempotencyKey: options.key } : {}),
        }),
      );
      return answered;
    },
    close: () => raw.close(),
  };
};

const ok = (result: InvokeResultMessage): unknown => {
  assert.ok(result.ok, `expected a result, got ${JSON.stringify(result)}`);
  return JSON.parse(result.json) as unknown;
};

const failed = (result: InvokeResultMessage): { status: number; code: string } => {
  assert.ok(!result.ok, `expected an error, got ${JSON.stringify(result)}`);
  return { status: result.status, code: result.code };
};

describe('function calls over the WebSocket', () => {
  let node: TestNode;
  let data: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    data = await tempDir();
    node = await startNode({
      dataDir: data.path,
      functionsDir: FIXTURE_FUNCTIONS,
      // Low enough that 2,000 ordinary messages would be closed with 4420.
      maxMessagesPerSecond: 20,
      messageBurst: 50,
    });
  });
  after(async () => {
    await node.close();
    await data.remove();
  });

  it('answers results and errors with the HTTP status and code, and the socket stays open', async () => {
    const c = await caller(node.wsUrl, 'lobby');
    try {
      assert.deepEqual(ok(await c.call('increment', { counter: 'ws-basic' })), { n: 1 });
      assert.deepEqual(ok(await c.call('increment', { counter: 'ws-basic' })), { n: 2 });
      assert.deepEqual(ok(await c.call('read', { counter: 'ws-basic' }, { kind: 'query' })), {
        n: 2,
      });
      assert.deepEqual(failed(await c.call('noSuchFunction', {})), {
        status: 404,
        code: 'NOT_FOUND',
      });
      assert.deepEqual(failed(await c.call('increment', null)), {
        status: 400,
        code: 'INVALID_INPUT',
      });
      assert.deepEqual(failed(await c.call('increment', undefined, { rawInput: '{not json' })), {
        status: 400,
        code: 'BAD_REQUEST',
      });
      assert.deepEqual(failed(await c.call('writeThenThrow', { counter: 'ws-basic' })), {
        status: 500,
        code: 'FUNCTION_ERROR',
      });
      assert.deepEqual(
        failed(await c.call('increment', { counter: 'ws-basic' }, { key: 'k'.repeat(257) })),
        { status: 400, code: 'BAD_REQUEST' },
      );
      // Nothing of the throwing function was applied; the version that ran is named.
      const last = await c.call('read', { counter: 'ws-basic' }, { kind: 'query' });
      assert.deepEqual(ok(last), { n: 2 });
      assert.ok(last.ok && last.version.length > 0);
      // The socket still syncs.
      const seq = c.raw.sendUpdate(textUpdate(c.raw.doc, 'still here'));
      await waitFor(() => c.raw.savedSeq() >= seq, 'the update to be saved');
    } finally {
      c.close();
    }
  });

  it('replays the first result for an idempotency key and applies it once', async () => {
    const c = await caller(node.wsUrl, 'lobby');
    try {
      const first = ok(await c.call('increment', { counter: 'ws-idem' }, { key: 'once' }));
      const again = ok(await c.call('increment', { counter: 'ws-idem' }, { key: 'once' }));
      assert.deepEqual(first, { n: 1 });
      assert.deepEqual(again, first);
      // The same key over HTTP is the same record.
      const http = await invokeHttp(
        node.url,
        'increment',
        { counter: 'ws-idem' },
        { 'idempotency-key': 'once' },
      );
      assert.deepEqual(http.body, first);
      assert.equal(http.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(ok(await c.call('read', { counter: 'ws-idem' }, { kind: 'query' })), {
        n: 1,
      });
    } finally {
      c.close();
    }
  });

  it('runs 2,000 pipelined invocations on one document exactly once each, past the message rate limit', async () => {
    const c = await caller(node.wsUrl, 'counters/ws-hot');
    try {
      const total = 2000;
      const window = 500; // under the document's queue of 1000
      let sent = 0;
      const send = (): void => {
        while (sent < total && sent - c.results.length < window) {
          c.send('increment', { counter: 'ws-hot' });
          sent++;
        }
      };
      send();
      const started = Date.now();
      await waitFor(
        () => {
          send();
          return c.results.length === total;
        },
        'every result',
        60_000,
        1,
      );
      const ms = Date.now() - started;
      const errors = c.results.filter((r) => !r.ok);
      assert.deepEqual(errors, [], 'no call failed');
      const ns = c.results.map((r) => (ok(r) as { n: number }).n).sort((a, b) => a - b);
      assert.deepEqual(
        ns,
        Array.from({ length: total }, (_, i) => i + 1),
        'each count exactly once',
      );
      assert.deepEqual(
        new Set(c.results.map((r) => r.callId)).size,
        total,
        'one result per call id',
      );
      // The client holds the document too: every write reached it.
      await waitFor(() => c.raw.doc.getMap('c').get('n') === total, 'the socket to see n = 2000');
      assert.equal(c.raw.ws.readyState, c.raw.ws.OPEN, 'not closed by the rate limit');
      console.log(
        `# ${total} invocations over one socket on one document: ${Math.round((total / ms) * 1000)}/s`,
      );
    } finally {
      c.close();
    }
  });

  it('closes a socket that calls before hello (it could not read the answer)', async () => {
    const raw = await rawClient(node.wsUrl, 'lobby', { hello: false });
    raw.send(
      encodeInvoke({ callId: 1, kind: 'invoke', name: 'increment', input: '{"counter":"x"}' }),
    );
    const closed = await raw.closed();
    assert.equal(closed.code, 4400);
    assert.match(closed.reason, /before hello/);
  });

  it('does not disturb a stock y-websocket client in the same room', async () => {
    const logged: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void logged.push(args);
    const stock = await stockClient(node.wsUrl, 'counters/ws-shared');
    const c = await caller(node.wsUrl, 'counters/ws-shared');
    try {
      for (let i = 0; i < 20; i++) c.send('increment', { counter: 'ws-shared' });
      await waitFor(() => c.results.length === 20, 'the results');
      await waitFor(
        () => stock.doc.getMap('c').get('n') === 20,
        'the stock client to see every increment',
      );
      assert.equal(stock.provider.wsconnected, true);
      assert.deepEqual(logged, [], 'the stock client logged nothing (no message it does not know)');
      // It still edits and syncs.
      stock.doc.getText('text').insert(0, 'stock edit');
      await waitFor(
        () => c.raw.doc.getText('text').toString() === 'stock edit',
        'the stock edit to arrive',
      );
    } finally {
      console.error = original;
      c.close();
      stock.destroy();
    }
  });
});

describe('the in-flight cap per connection', () => {
  it('answers OVERLOADED at once past the cap and keeps the connection working', async () => {
    const node = await startNode({
      functionsDir: FIXTURE_FUNCTIONS,
      maxInvocationsInFlightPerConnection: 4,
    });
    const c = await caller(node.wsUrl, 'lobby');
    try {
      // `slow` holds its document for 30 ms per call: 6 at once, 4 fit.
      const ids = Array.from({ length: 6 }, () => c.send('slow', { counter: 'ws-cap' }));
      await waitFor(() => c.results.length === 6, 'six results');
      const [first, second] = c.results;
      assert.deepEqual(
        [first, second].map((r) => failed(r!)),
        [
          { status: 503, code: 'OVERLOADED' },
          { status: 503, code: 'OVERLOADED' },
        ],
      );
      assert.deepEqual(
        [first!.callId, second!.callId],
        ids.slice(4),
        'the two past the cap, answered first',
      );
      assert.equal(c.results.filter((r) => r.ok).length, 4);
      // Free again: calls and sync work on the same socket.
      assert.deepEqual(ok(await c.call('slow', { counter: 'ws-cap' })), { done: true });
      const seq = c.raw.sendUpdate(textUpdate(c.raw.doc, 'x'));
      await waitFor(() => c.raw.savedSeq() >= seq, 'the update to be saved');
      assert.equal(c.raw.ws.readyState, c.raw.ws.OPEN);
    } finally {
      c.close();
      await node.close();
    }
  });

  it('drops results due on a socket that closed, and the node carries on', async () => {
    const node = await startNode({ functionsDir: FIXTURE_FUNCTIONS });
    try {
      const c = await caller(node.wsUrl, 'lobby');
      for (let i = 0; i < 10; i++) c.send('slow', { counter: 'ws-drop' });
      c.raw.ws.terminate();
      await c.raw.closed();
      // Every call that arrived runs to completion; nothing is sent anywhere.
      await sleep(500);
      const d = await caller(node.wsUrl, 'lobby');
      assert.deepEqual(ok(await d.call('increment', { counter: 'ws-drop-after' })), { n: 1 });
      d.close();
    } finally {
      await node.close();
    }
  });
});

describe('rights over the WebSocket', () => {
  const secret = 'functions-ws-test-secret-that-is-long-enough-0123';
  let node: TestNode;
  before(async () => {
    node = await startNode({ auth: { secret }, functionsDir: FIXTURE_FUNCTIONS });
  });
  after(() => node.close());

  it('checks the connection grant against the function document: query needs read, invoke needs invoke', async () => {
    const reader = await mintToken({ secret, docs: ['lobby', 'counters/*'], rights: ['read'] });
    const c = await caller(node.wsUrl, 'lobby', reader);
    try {
      assert.deepEqual(failed(await c.call('increment', { counter: 'ws-auth' })), {
        status: 403,
        code: 'FORBIDDEN',
      });
      assert.deepEqual(ok(await c.call('read', { counter: 'ws-auth' }, { kind: 'query' })), {
        n: 0,
      });
      // A token for the socket's document only does not reach the function's.
      const lobbyOnly = await mintToken({ secret, docs: ['lobby'], rights: ['read', 'invoke'] });
      const d = await caller(node.wsUrl, 'lobby', lobbyOnly);
      assert.deepEqual(failed(await d.call('increment', { counter: 'ws-auth' })), {
        status: 403,
        code: 'FORBIDDEN',
      });
      d.close();
      // A token refreshed in-band is the grant from then on.
      c.raw.send(
        encodeToken(
          await mintToken({ secret, docs: ['lobby', 'counters/*'], rights: ['read', 'invoke'] }),
        ),
      );
      await waitFor(
        async () => (await c.call('increment', { counter: 'ws-auth' })).ok,
        'the refreshed token to allow invoke',
      );
      assert.equal(c.raw.ws.readyState, c.raw.ws.OPEN);
    } finally {
      c.close();
    }
  });
});

describe('owner functions over the WebSocket in a cluster', () => {
  const secret = 'functions-ws-cluster-secret-that-is-long-enough-01';
  let nodes: TestNode[];
  before(async () => {
    const ports = await freePorts(2);
    const ids = ['w1', 'w2'];
    nodes = await Promise.all(
      ports.map((port, i) =>
        startNode({
          port,
          nodeId: ids[i]!,
          peers: ports.filter((p) => p !== port).map((p) => `ws://127.0.0.1:${p}`),
          peerSecret: PEER_SECRET,
          replicationFactor: 1,
          auth: { secret },
          functionsDir: FIXTURE_FUNCTIONS,
        }),
      ),
    );
    await waitConnected(nodes);
  });
  after(() => Promise.all(nodes.map((n) => n.close())));

  it('forwards an owner invocation to the primary with the connection token', async () => {
    const [edge, primary] = nodes as [TestNode, TestNode];
    // A counter whose only home is the other node.
    let counter = 0;
    while (edge.server.cluster.primaryFor(docName(`counters/fw-${counter}`)) !== 'w2') counter++;
    const doc = `counters/fw-${counter}`;
    const token = await mintToken({ secret, docs: ['*'], rights: ['read', 'invoke'] });
    const c = await caller(edge.wsUrl, 'lobby', token);
    try {
      assert.deepEqual(ok(await c.call('increment', { counter: `fw-${counter}` }, { key: 'fw' })), {
        n: 1,
      });
      // It ran on the primary: the record is there, and so is the change.
      const res = await fetch(`${primary.url}/v1/docs/${doc}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.deepEqual(await res.json(), { c: { n: 1 } });
      const replay = await invokeHttp(
        primary.url,
        'increment',
        { counter: `fw-${counter}` },
        {
          authorization: `Bearer ${token}`,
          'idempotency-key': 'fw',
        },
      );
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    } finally {
      c.close();
    }
  });
});

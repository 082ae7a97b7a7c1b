/**
 * Function calls: the request the SDK forms (method, path, headers, body) and
 * how answers become results or typed errors. The node's side of functions does
 * not exist yet, so a tiny HTTP server on 127.0.0.1 plays it.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { WebSocket } from 'ws';
import { createClient, StateweaveClientError } from '@stateweave/client';
import { deadUrl } from './helpers.js';

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Reply = { status: number; body: string; contentType?: string };

describe('invoke and query over HTTP', () => {
  let server: Server;
  let base: string;
  let requests: Recorded[];
  let replies: Reply[];

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        const reply = replies.shift() ?? { status: 200, body: 'null' };
        res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/json' });
        res.end(reply.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    requests = [];
    replies = [];
  });

  type Functions = {
    trackVisit: { input: { page: string; visitor: string }; output: { unique: number } };
    lookup: { input: { key: string }; output: string | null };
  };

  it('invokes: POST /v1/functions/:name/invoke with the JSON input, bearer token and idempotency key', async () => {
    const client = createClient<Functions>({ url: `ws://${base}`, token: 'tok-123', WebSocket });
    replies.push({ status: 200, body: JSON.stringify({ unique: 7 }) });
    const result = await client.invoke(
      'trackVisit',
      { page: 'home', visitor: 'v1' },
      { idempotencyKey: 'visit-v1-home' },
    );
    assert.deepEqual(result, { unique: 7 });
    const unique: number = result.unique; // typed output
    assert.equal(unique, 7);

    assert.equal(requests.length, 1);
    const [req] = requests;
    assert.equal(req!.method, 'POST');
    assert.equal(req!.url, '/v1/functions/trackVisit/invoke');
    assert.equal(req!.headers['content-type'], 'application/json');
    assert.equal(req!.headers.authorization, 'Bearer tok-123');
    assert.equal(req!.headers['idempotency-key'], 'visit-v1-home');
    assert.deepEqual(JSON.parse(req!.body), { page: 'home', visitor: 'v1' });

    // @ts-expect-error: the input type is checked against the function's signature
    await client.invoke('trackVisit', { page: 1 }).catch(() => undefined);
    await client.destroy();
  });

  it('queries: the same endpoint, no idempotency key, no token when none is configured', async () => {
    const client = createClient<Functions>({ url: `ws://${base}`, WebSocket });
    replies.push({ status: 200, body: JSON.stringify('route-42') });
    const value: string | null = await client.query('lookup', { key: 'a/b' });
    assert.equal(value, 'route-42');
    const [req] = requests;
    assert.equal(req!.url, '/v1/functions/lookup/invoke');
    assert.equal(req!.headers['idempotency-key'], undefined);
    assert.equal(req!.headers.authorization, undefined);
    assert.deepEqual(JSON.parse(req!.body), { key: 'a/b' });
    await client.destroy();
  });

  it('percent-encodes the function name and sends null for an undefined input', async () => {
    const client = createClient({ url: `ws://${base}/`, WebSocket });
    await client.invoke('name with/slash', undefined);
    assert.equal(requests[0]!.url, '/v1/functions/name%20with%2Fslash/invoke');
    assert.equal(requests[0]!.body, 'null');
    await client.destroy();
  });

  it('turns a JSON error into a StateweaveClientError with code, message and status', async () => {
    const client = createClient({ url: `ws://${base}`, WebSocket });
    replies.push({
      status: 409,
      body: JSON.stringify({ error: { code: 'SOLD_OUT', message: 'no seats left' } }),
    });
    await assert.rejects(client.invoke('book', { seat: 1 }), (err: unknown) => {
      assert.ok(err instanceof StateweaveClientError);
      assert.equal(err.code, 'SOLD_OUT');
      assert.equal(err.message, 'no seats left');
      assert.equal(err.status, 409);
      return true;
    });
    replies.push({ status: 502, body: '<html>bad gateway</html>', contentType: 'text/html' });
    await assert.rejects(client.query('q', {}), (err: unknown) => {
      assert.ok(err instanceof StateweaveClientError);
      assert.equal(err.code, 'HTTP_ERROR');
      assert.equal(err.status, 502);
      return true;
    });
    replies.push({ status: 200, body: 'not json', contentType: 'text/plain' });
    await assert.rejects(
      client.invoke('f', {}),
      (err: unknown) => err instanceof StateweaveClientError && err.code === 'INVALID_RESPONSE',
    );
    await client.destroy();
  });

  it('retries once with a fresh token after a 401, when getToken is given', async () => {
    let issued = 0;
    const client = createClient({ url: `ws://${base}`, WebSocket, getToken: () => `t${++issued}` });
    replies.push({
      status: 401,
      body: JSON.stringify({ error: { code: 'TOKEN_EXPIRED', message: 'token expired' } }),
    });
    replies.push({ status: 200, body: '{"ok":true}' });
    assert.deepEqual(await client.invoke('f', {}, { idempotencyKey: 'k' }), { ok: true });
    assert.deepEqual(
      requests.map((r) => r.headers.authorization),
      ['Bearer t1', 'Bearer t2'],
    );
    assert.deepEqual(
      requests.map((r) => r.headers['idempotency-key']),
      ['k', 'k'],
    );

    // A second 401 is final.
    requests = [];
    replies.push({
      status: 401,
      body: JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'no' } }),
    });
    replies.push({
      status: 401,
      body: JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'still no' } }),
    });
    await assert.rejects(
      client.invoke('f', {}),
      (err: unknown) =>
        err instanceof StateweaveClientError && err.code === 'UNAUTHORIZED' && err.status === 401,
    );
    assert.equal(requests.length, 2);
    await client.destroy();
  });

  it('tries a query on the next node when one is unreachable, but sends an invocation only once', async () => {
    const unreachable = await deadUrl();
    const client = createClient({ urls: [unreachable, `ws://${base}`], WebSocket });
    replies.push({ status: 200, body: '1' });
    assert.equal(await client.query('q', {}), 1);
    assert.equal(requests.length, 1);
    await assert.rejects(
      client.invoke('f', {}),
      (err: unknown) => err instanceof StateweaveClientError && err.code === 'NETWORK',
    );
    assert.equal(requests.length, 1, 'the invocation was not retried elsewhere');
    await client.destroy();
  });
});

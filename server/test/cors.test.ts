/**
 * CORS (issue 16, item 5): a browser app on another origin may call the HTTP API
 * only when the node lists its origin (`--cors-origin`). Checked with real HTTP
 * requests carrying the headers a browser sends; the invoke route (which runs
 * before Express) answers the same way as the document routes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURE_FUNCTIONS } from './helpers/functions.js';
import { spawnNode, startNode, stopChild, tempDir, type TestNode } from './helpers/node.js';

const APP = 'https://app.example.com';
const OTHER = 'https://evil.example.net';

const preflight = (url: string, origin: string, method = 'POST') =>
  fetch(url, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization, content-type',
    },
    signal: AbortSignal.timeout(5000),
  });

const withOrigin = (url: string, origin: string, init: RequestInit = {}) =>
  fetch(url, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), origin },
    signal: AbortSignal.timeout(5000),
  });

describe('CORS', () => {
  let listed: TestNode;
  let any: TestNode;
  let none: TestNode;
  before(async () => {
    [listed, any, none] = await Promise.all([
      startNode({ corsOrigins: [APP], functionsDir: FIXTURE_FUNCTIONS }),
      startNode({ corsOrigins: ['*'] }),
      startNode({}),
    ]);
    const seeded = await fetch(`${listed.url}/v1/docs/shared/one`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ notes: { title: 'hello' } }),
    });
    assert.equal(seeded.status, 200, await seeded.text());
  });
  after(async () => {
    await Promise.all([listed, any, none].map((n) => n?.close()));
  });

  it('answers a listed origin’s preflight with the methods and headers the API uses', async () => {
    for (const path of ['/v1/docs/shared/one', '/v1/functions/increment/invoke']) {
      const res = await preflight(`${listed.url}${path}`, APP, 'PATCH');
      assert.equal(res.status, 204, path);
      assert.equal(res.headers.get('access-control-allow-origin'), APP);
      assert.match(res.headers.get('access-control-allow-methods') ?? '', /PATCH/);
      const allowed = res.headers.get('access-control-allow-headers') ?? '';
      for (const header of ['authorization', 'content-type', 'idempotency-key'])
        assert.ok(allowed.includes(header), `${header} in ${allowed}`);
      assert.equal(res.headers.get('vary'), 'Origin');
    }
  });

  it('refuses another origin’s preflight with 403 and a reason, and sends it no CORS header', async () => {
    const res = await preflight(`${listed.url}/v1/docs/shared/one`, OTHER);
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'FORBIDDEN');
    assert.match(body.error.message, /--cors-origin https:\/\/evil\.example\.net/);
    const read = await withOrigin(`${listed.url}/v1/docs/shared/one`, OTHER);
    assert.equal(read.status, 200, 'the request itself is answered; the browser withholds it');
    assert.equal(read.headers.get('access-control-allow-origin'), null);
  });

  it('marks responses for a listed origin on document routes, errors and function calls', async () => {
    const read = await withOrigin(`${listed.url}/v1/docs/shared/one`, APP);
    assert.equal(read.status, 200);
    assert.equal(read.headers.get('access-control-allow-origin'), APP);
    assert.deepEqual(await read.json(), { notes: { title: 'hello' } });
    const missing = await withOrigin(`${listed.url}/v1/docs/shared/none`, APP);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('access-control-allow-origin'), APP, 'errors readable too');
    const called = await withOrigin(`${listed.url}/v1/functions/increment/invoke`, APP, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { counter: 'cors' } }),
    });
    assert.equal(called.status, 200, await called.clone().text());
    assert.equal(called.headers.get('access-control-allow-origin'), APP);
  });

  it('with * allows any origin without echoing it; without the option sends nothing', async () => {
    const res = await preflight(`${any.url}/v1/docs/x`, OTHER);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const plain = await preflight(`${none.url}/v1/docs/x`, APP);
    assert.equal(plain.headers.get('access-control-allow-origin'), null);
    assert.notEqual(plain.status, 204, 'no preflight answer without --cors-origin');
  });

  it('takes the origins from --cors-origin and STATEWEAVE_CORS_ORIGIN', async () => {
    const dir = await tempDir();
    const fromFlag = await spawnNode(`${dir.path}/a`, ['--cors-origin', `${APP},${OTHER}`]);
    const fromEnv = await spawnNode(`${dir.path}/b`, [], 0, {
      ...process.env,
      STATEWEAVE_CORS_ORIGIN: APP,
    });
    try {
      for (const origin of [APP, OTHER])
        assert.equal((await preflight(`${fromFlag.url}/v1/docs/x`, origin)).status, 204, origin);
      assert.equal((await preflight(`${fromEnv.url}/v1/docs/x`, APP)).status, 204);
      assert.equal((await preflight(`${fromEnv.url}/v1/docs/x`, OTHER)).status, 403);
    } finally {
      await Promise.all([stopChild(fromFlag), stopChild(fromEnv)]);
      await dir.remove();
    }
  });
});

/**
 * The invoke route runs on Node's HTTP server directly (http/invoke-route.ts), so
 * what Express used to do for it is checked here: body limits (declared and
 * streamed), bad names and bodies, and that other methods still reach Express.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startNode, type TestNode } from './helpers/node.js';
import { errorCode, FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';
import { errorCount } from './helpers/metrics.js';

const LIMIT = 4096;

/** POSTs `chunks` with chunked transfer encoding (no Content-Length). */
const postChunked = (
  url: string,
  path: string,
  chunks: readonly string[],
): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const target = new URL(path, url);
    const req = request(
      target,
      { method: 'POST', headers: { 'transfer-encoding': 'chunked' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    // The node may answer and close before every chunk is written.
    req.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err),
    );
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });

describe('the invoke route', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ functionsDir: FIXTURE_FUNCTIONS, maxFrameBytes: LIMIT });
  });
  after(async () => {
    await node.close();
  });

  it('refuses a body over the limit by its Content-Length (413) and keeps serving', async () => {
    const before = await errorCount(node.url, 'BODY_TOO_LARGE');
    const big = await invoke(node.url, 'bump', { counter: 'limit', pad: 'x'.repeat(LIMIT) });
    assert.equal(big.status, 413);
    assert.equal(errorCode(big), 'BODY_TOO_LARGE');
    assert.equal(await errorCount(node.url, 'BODY_TOO_LARGE'), before + 1);
    assert.deepEqual(
      (await invoke(node.url, 'bump', { counter: 'limit' })).body,
      { n: 1 },
      'nothing of the refused call ran',
    );
  });

  it('refuses a streamed body once it passes the limit (413)', async () => {
    const chunk = 'x'.repeat(1024);
    const res = await postChunked(node.url, '/v1/functions/bump/invoke', [
      `{"counter":"limit","pad":"`,
      chunk,
      chunk,
      chunk,
      chunk,
      chunk,
      '"}',
    ]);
    assert.equal(res.status, 413);
    assert.equal(
      (JSON.parse(res.body) as { error: { code: string } }).error.code,
      'BODY_TOO_LARGE',
    );
  });

  it('answers a name that is not valid percent-encoding and a body that is not JSON with 400', async () => {
    const badName = await fetch(`${node.url}/v1/functions/%E0%A4%A/invoke`, {
      method: 'POST',
      body: '{}',
    });
    assert.equal(badName.status, 400);
    const notJson = await fetch(`${node.url}/v1/functions/bump/invoke`, {
      method: 'POST',
      body: '{"counter":',
    });
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { error: { code: string } }).error.code, 'BAD_REQUEST');
  });

  it('decodes the name and leaves other methods on that path to Express (404)', async () => {
    assert.equal(
      (
        await fetch(`${node.url}/v1/functions/b%75mp/invoke`, {
          method: 'POST',
          body: '{"counter":"decoded"}',
        })
      ).status,
      200,
    );
    const get = await fetch(`${node.url}/v1/functions/bump/invoke`);
    assert.equal(get.status, 404);
    assert.equal(((await get.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  });
});

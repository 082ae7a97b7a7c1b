/** The HTTP API answers random requests with JSON errors from the table, and keeps serving. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { fuzzSeed } from './helpers/fuzz.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { NET_MAX_FRAME_BYTES } from './fuzz/ws-traffic.js';
import {
  type HttpCase,
  type HttpRun,
  PROTOCOL_JUNK,
  healthy,
  httpTraffic,
  rawHttp,
} from './fuzz/http-requests.js';
import { REPRODUCTIONS, fromHex } from './fuzz/known-inputs.js';

describe('fuzz: hostile HTTP requests against a real node', () => {
  const seed = fuzzSeed(0x4771);
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: ChildNode;
  let run: HttpRun;
  const fixed: HttpCase[] = [
    {
      method: 'POST',
      target: '/v1/docs/fixed/updates',
      headers: [],
      body: { kind: 'random', bytes: fromHex(REPRODUCTIONS.zeroLengthDelete.update) },
    },
    {
      method: 'POST',
      target: '/v1/docs/fixed/updates',
      headers: [],
      body: { kind: 'gzip-bomb' },
    },
    { method: 'POST', target: '/v1/docs/fixed/updates', headers: [], body: { kind: 'oversize' } },
    { method: 'GET', target: '/v1/docs/a/../b', headers: [], body: { kind: 'empty' } },
    { method: 'GET', target: '/v1/docs/%2e%2e/etc/passwd', headers: [], body: { kind: 'empty' } },
    { method: 'GET', target: '/v1/docs/x%00y', headers: [], body: { kind: 'empty' } },
    {
      method: 'GET',
      target: `/v1/docs/${'n'.repeat(256)}`,
      headers: [],
      body: { kind: 'empty' },
    },
    {
      method: 'GET',
      target: `/v1/docs/${'n'.repeat(12_000)}`,
      headers: [],
      body: { kind: 'empty' },
    },
    {
      method: 'POST',
      target: '/v1/docs/%zz/updates',
      headers: [],
      body: { kind: 'update', pick: 0 },
    },
  ];

  before(async () => {
    dir = await tempDir();
    node = await spawnNode(dir.path, ['--max-frame-bytes', String(NET_MAX_FRAME_BYTES)]);
    run = await httpTraffic(node, seed, 500, fixed);
    console.log(
      `http traffic (seed ${seed}): ${run.requests} requests in ${run.ms} ms (slowest ${run.maxMs} ms), statuses ${JSON.stringify(run.statuses)}`,
    );
  });
  after(async () => {
    await stopChild(node);
    await dir.remove();
  });

  it('answers every request with a 2xx or a JSON error from the table, within the time limit, and stays up', async () => {
    assert.deepEqual(run.malformed, []);
    await healthy(node);
    // And it still does its job.
    const doc = new Y.Doc();
    doc.getText('text').insert(0, 'after the storm');
    const post = await fetch(`${node.url}/v1/docs/fuzz-http/updates`, {
      method: 'POST',
      body: Y.encodeStateAsUpdate(doc),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(post.status, 200);
    const get = await fetch(`${node.url}/v1/docs/fuzz-http`);
    assert.equal(get.status, 200);
    assert.deepEqual(((await get.json()) as { text?: unknown }).text, 'after the storm');
  });

  it('never answers 5xx', () => {
    assert.deepEqual(run.serverErrors, []);
  });

  it('survives requests that break HTTP itself (answered by Node’s parser, never 5xx)', async (t) => {
    const answers: string[] = [];
    for (const [what, request] of PROTOCOL_JUNK) {
      const { response, timedOut } = await rawHttp(node.port, request, { halfClose: true });
      const answer = timedOut
        ? 'no answer (timed out)'
        : response
          ? `${response.status} ${response.headers['content-type'] ?? '(no content-type)'}`
          : 'closed without an answer';
      answers.push(`${what}: ${answer}`);
      if (response) assert.ok(response.status < 500, `${what}: status ${response.status}`);
      await healthy(node);
    }
    t.diagnostic(answers.join('; '));
    console.log(`http protocol junk: ${answers.join('; ')}`);
  });
});

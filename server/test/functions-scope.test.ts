/**
 * Deploy scopes (functions/scope.ts) and the input nesting limit, on a node with
 * a token secret: a deploy belongs to the deployer's documents, a function's name
 * to the scope that deployed it; a deeply nested input fails alone (issue 22).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeInvokeResult,
  encodeInvoke,
  type InvokeResultMessage,
} from '@stateweave/client/protocol';
import { mintToken } from '../src/auth/tokens.js';
import { rawClient } from './helpers/clients.js';
import { errorCode, FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { DEV_GRANT } from '../src/auth/grant.js';
import { StateweaveError } from '../src/errors.js';

const secret = 'scope-test-secret-that-is-long-enough-0123456789';

/** A CommonJS bundle with one function on the document `input.doc`. */
const bundle = (name: string, extra = '', body = `return { v: ${JSON.stringify(name)} }`) => ({
  file: `${name}.js`,
  code: `const { defineFunction } = require('@stateweave/server');
module.exports = defineFunction({ name: ${JSON.stringify(name)}, doc: (i) => i.doc, ${extra}
  async handler(ctx, i) { ${body} } });`,
});

describe('deploy scopes', () => {
  let node: TestNode;
  let invoker: string;
  const admin = (docs: string[]) => mintToken({ secret, docs, rights: ['admin'] });
  const deploy = async (docs: string[], bundles: ReturnType<typeof bundle>[]) => {
    const res = await fetch(`${node.url}/v1/functions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${await admin(docs)}`,
      },
      body: JSON.stringify({ bundles }),
    });
    const body = (await res.json()) as {
      functions?: { name: string; scope: string[] }[];
      error?: { code: string; message: string };
    };
    return { status: res.status, body };
  };
  const call = (name: string, input: unknown) =>
    invoke(node.url, name, input, { authorization: `Bearer ${invoker}` });

  let data: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    data = await tempDir();
    node = await startNode({
      auth: { secret },
      functionsDir: FIXTURE_FUNCTIONS,
      dataDir: data.path,
    });
    invoker = await mintToken({ secret, docs: ['*'], rights: ['invoke', 'read'] });
  });
  after(async () => {
    await node.close();
    await data.remove();
  });

  it("records the deployer's patterns as the scope and runs only on documents inside it", async () => {
    const deployed = await deploy(['team-42/*'], [bundle('tenantFn')]);
    assert.equal(deployed.status, 200, JSON.stringify(deployed.body));
    assert.deepEqual(deployed.body.functions?.[0]?.scope, ['team-42/*']);
    assert.deepEqual((await call('tenantFn', { doc: 'team-42/a' })).body, { v: 'tenantFn' });
    // The caller may invoke everywhere; the function may not leave its scope.
    const outside = await call('tenantFn', { doc: 'team-43/a' });
    assert.equal(outside.status, 403);
    assert.equal(errorCode(outside), 'FORBIDDEN');
    assert.match(JSON.stringify(outside.body), /deployed for team-42\/\*/);
  });

  it('refuses ctx.read of a document outside the scope', async () => {
    const deployed = await deploy(
      ['team-42/*'],
      [bundle('tenantReader', '', 'const d = await ctx.read(i.other); return d.getMap("m").size')],
    );
    assert.equal(deployed.status, 200);
    const inside = await call('tenantReader', { doc: 'team-42/a', other: 'team-42/b' });
    assert.deepEqual(inside.body, 0);
    const outside = await call('tenantReader', { doc: 'team-42/a', other: 'team-43/b' });
    assert.equal(errorCode(outside), 'FORBIDDEN');
  });

  it('refuses a change trigger whose pattern leaves the scope', async () => {
    for (const on of ['team-43/*', '*', 'team-4*']) {
      const refused = await deploy(['team-42/*'], [bundle('tenantTrigger', `on: '${on}',`)]);
      assert.equal(refused.status, 403, on);
      assert.equal(refused.body.error?.code, 'DEPLOY_OUT_OF_SCOPE');
    }
    const inside = await deploy(['team-42/*'], [bundle('tenantTrigger', `on: 'team-42/feed/*',`)]);
    assert.equal(inside.status, 200);
  });

  it("refuses to replace another scope's function, and lets a covering scope do it", async () => {
    const other = await deploy(['team-43/*'], [bundle('tenantFn', '', 'return "team-43 took it"')]);
    assert.equal(other.status, 409);
    assert.equal(other.body.error?.code, 'FUNCTION_NAME_TAKEN');
    assert.deepEqual((await call('tenantFn', { doc: 'team-42/a' })).body, { v: 'tenantFn' });
    const fixture = await deploy(['team-42/*'], [bundle('increment')]);
    assert.equal(fixture.status, 409, 'a node-wide function needs admin on *');
    const owner = await deploy(['team-42/*'], [bundle('tenantFn', '', 'return 2')]);
    assert.equal(owner.status, 200);
    assert.deepEqual((await call('tenantFn', { doc: 'team-42/a' })).body, 2);
    const everything = await deploy(['*'], [bundle('tenantFn', '', 'return 3')]);
    assert.deepEqual(everything.body.functions?.[0]?.scope, ['*']);
    assert.deepEqual((await call('tenantFn', { doc: 'team-43/a' })).body, 3);
    // Node-wide now: team-42 cannot take it back.
    assert.equal((await deploy(['team-42/*'], [bundle('tenantFn')])).status, 409);
  });

  it('keeps scopes across a restart (stored with the deployment)', async () => {
    await node.close();
    node = await startNode({
      auth: { secret },
      functionsDir: FIXTURE_FUNCTIONS,
      dataDir: data.path,
    });
    const listed = (await (
      await fetch(`${node.url}/v1/functions`, { headers: { authorization: `Bearer ${invoker}` } })
    ).json()) as { functions: { name: string; scope: string[] }[] };
    const scopeOf = (name: string) => listed.functions.find((f) => f.name === name)?.scope;
    assert.deepEqual(scopeOf('tenantReader'), ['team-42/*']);
    assert.deepEqual(scopeOf('tenantFn'), ['*']);
    assert.deepEqual(scopeOf('increment'), ['*']);
    const outside = await call('tenantReader', { doc: 'team-43/a', other: 'team-42/b' });
    assert.equal(errorCode(outside), 'FORBIDDEN');
    assert.equal((await deploy(['team-43/*'], [bundle('tenantReader')])).status, 409);
  });
});

describe('input nesting limit', () => {
  let node: TestNode;
  let data: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    data = await tempDir();
    node = await startNode({
      functionsDir: FIXTURE_FUNCTIONS,
      dataDir: data.path,
      functionTimeoutMs: 300,
    });
  });
  after(async () => {
    await node.close();
    await data.remove();
  });

  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('fails a body nested 100,000 deep alone over HTTP, beside slow calls', async () => {
    const slow = Array.from({ length: 8 }, () => invoke(node.url, 'slow', { counter: 'deep' }));
    const deep = fetch(`${node.url}/v1/functions/slow/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: nested(100_000),
    });
    const more = Array.from({ length: 8 }, () => invoke(node.url, 'slow', { counter: 'deep' }));
    const bad = await deep;
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'INPUT_TOO_DEEP');
    for (const answer of await Promise.all([...slow, ...more])) assert.equal(answer.status, 200);
    // Nothing was left armed: calls after the bad one keep succeeding past the time limit.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await invoke(node.url, 'slow', { counter: 'deep' })).status, 200);
    // Nesting within the limit is fine: 64 levels of arrays as the input.
    const ok = await fetch(`${node.url}/v1/functions/increment/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"counter":"deep","pad":${nested(62)}}`,
    });
    assert.equal(ok.status, 200);
  });

  it('fails a deeply nested input alone over the WebSocket', async () => {
    const raw = await rawClient(node.wsUrl, 'counters/ws-deep');
    const answers = new Map<number, InvokeResultMessage>();
    raw.ws.on('message', (data: ArrayBuffer) => {
      const result = decodeInvokeResult(new Uint8Array(data));
      if (result) answers.set(result.callId, result);
    });
    const send = (callId: number, input: string) =>
      raw.send(encodeInvoke({ callId, kind: 'invoke', name: 'slow', input }));
    send(1, '{"counter":"ws-deep"}');
    send(2, nested(100_000));
    send(3, '{"counter":"ws-deep"}');
    const deadline = Date.now() + 10_000;
    while (answers.size < 3 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    raw.close();
    assert.equal(answers.get(1)?.ok, true);
    assert.equal(answers.get(3)?.ok, true);
    const bad = answers.get(2);
    assert.equal(bad?.ok, false);
    assert.equal(bad.ok === false ? bad.code : undefined, 'INPUT_TOO_DEEP');
  });

  it('fails a call that cannot be handed to the sandbox alone and leaves no timer armed', async () => {
    const runtime = node.server.functions;
    // Built by hand, not by functionCall: its JSON could not carry a function value.
    const call = (input: unknown) =>
      runtime.invoke({ name: 'slow', body: '', input, grant: DEV_GRANT });
    // In-process only: a function value passes the edge's JSON but not the copy to a worker.
    const [before, unsendable, beside] = await Promise.allSettled([
      call({ counter: 'clone' }),
      call({ counter: 'clone', f: () => 1 }),
      call({ counter: 'clone' }),
    ]);
    assert.equal(before.status, 'fulfilled');
    assert.equal(beside.status, 'fulfilled');
    assert.equal(unsendable.status, 'rejected');
    const reason: unknown = unsendable.status === 'rejected' ? unsendable.reason : undefined;
    assert.ok(reason instanceof StateweaveError && reason.code === 'BAD_REQUEST', String(reason));
    // Past the time limit and the pool's backstop, calls still succeed on every worker.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    for (let i = 0; i < 6; i++)
      assert.equal((await call({ counter: 'clone' })).json, '{"done":true}');
    assert.equal(runtime.respawns, 0);
  });
});

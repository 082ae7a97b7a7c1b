/** Rights on a node with a token secret: invoke needs `invoke` on the document, deploy needs `admin`. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken } from '../src/auth/tokens.js';
import { startNode, type TestNode } from './helpers/node.js';
import { errorCode, FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';

const secret = 'functions-test-secret-that-is-long-enough-0123456789';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('function rights', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ auth: { secret }, functionsDir: FIXTURE_FUNCTIONS });
  });
  after(async () => {
    await node.close();
  });

  it('refuses an invocation without a token (401) and without the invoke right (403)', async () => {
    const none = await invoke(node.url, 'increment', { counter: 'auth' });
    assert.equal(none.status, 401);
    const writer = await mintToken({ secret, docs: ['*'], rights: ['read', 'write'] });
    const noInvoke = await invoke(node.url, 'increment', { counter: 'auth' }, bearer(writer));
    assert.equal(noInvoke.status, 403);
    assert.equal(errorCode(noInvoke), 'FORBIDDEN');
  });

  it('checks the invoke right against the document the function works on', async () => {
    const elsewhere = await mintToken({ secret, docs: ['counters/other'], rights: ['invoke'] });
    assert.equal(
      (await invoke(node.url, 'increment', { counter: 'auth' }, bearer(elsewhere))).status,
      403,
    );
    const invoker = await mintToken({ secret, docs: ['counters/*'], rights: ['invoke'] });
    const ok = await invoke(node.url, 'increment', { counter: 'auth' }, bearer(invoker));
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { n: 1 });
  });

  it('needs read to read: an invoke-only token runs no query and no ctx.read', async () => {
    const invokeOnly = await mintToken({ secret, docs: ['*'], rights: ['invoke'] });
    const query = await invoke(node.url, 'read', { counter: 'auth' }, bearer(invokeOnly));
    assert.equal(query.status, 403, 'a query hands the document back');
    assert.equal(errorCode(query), 'FORBIDDEN');
    const admit = await invoke(
      node.url,
      'admit',
      { room: 'auth', user: 'ada' },
      bearer(invokeOnly),
    );
    assert.equal(admit.status, 403, 'ctx.read of acl/auth needs read on it');
    const reader = await mintToken({ secret, docs: ['*'], rights: ['read', 'invoke'] });
    assert.equal((await invoke(node.url, 'read', { counter: 'auth' }, bearer(reader))).status, 200);
    assert.equal(
      (await invoke(node.url, 'admit', { room: 'auth', user: 'ada' }, bearer(reader))).status,
      200,
    );
  });

  it('lets only admins deploy', async () => {
    const body = JSON.stringify({
      bundles: [
        {
          file: 'x.js',
          code: `module.exports = require('@stateweave/server').defineFunction({ name: 'x', doc: () => 'x', handler: () => 1 });`,
        },
      ],
    });
    const deploy = (token?: string) =>
      fetch(`${node.url}/v1/functions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? bearer(token) : {}) },
        body,
      });
    assert.equal((await deploy()).status, 401);
    assert.equal(
      (await deploy(await mintToken({ secret, docs: ['*'], rights: ['read', 'write', 'invoke'] })))
        .status,
      403,
    );
    const admin = await deploy(await mintToken({ secret, docs: ['*'], rights: ['admin'] }));
    assert.equal(admin.status, 200);
    const listed = (await admin.json()) as { functions: Array<{ name: string }> };
    assert.deepEqual(
      listed.functions.map((f) => f.name),
      ['x'],
    );
  });
});

/** `stateweave deploy DIR --url URL --token T` against a running node. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken } from '../src/auth/tokens.js';
import { startNode } from './helpers/node.js';
import { runCli } from './helpers/cli.js';
import { DEMO_FUNCTIONS, invoke } from './helpers/functions.js';

const secret = 'deploy-test-secret-that-is-long-enough-0123456789';

describe('stateweave deploy', () => {
  it('compiles a directory and deploys it to a running node with an admin token', async () => {
    const node = await startNode({ auth: { secret } });
    try {
      const admin = await mintToken({ secret, docs: ['*'], rights: ['admin', 'invoke'] });
      const run = (args: string[]) => runCli(['deploy', ...args]);
      const refused = await run([DEMO_FUNCTIONS, '--url', node.url]);
      assert.notEqual(refused.code, 0, 'no token: refused');
      const done = await run([DEMO_FUNCTIONS, '--url', node.url, '--token', admin]);
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, /^trackVisit@[0-9a-f]{16} \(mutation, local\)$/m);
      assert.match(done.stdout, /^bookSeat@[0-9a-f]{16} \(mutation, owner\)$/m);
      const called = await invoke(
        node.url,
        'trackVisit',
        { page: 'p', visitor: 'v' },
        { authorization: `Bearer ${admin}` },
      );
      assert.deepEqual(called.body, { unique: 1 });
    } finally {
      await node.close();
    }
  });

  it('exits 2 with the usage when DIR or --url is missing', async () => {
    const result = await runCli(['deploy']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Usage: stateweave deploy/);
  });
});

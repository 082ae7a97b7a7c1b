/** `stateweave deploy DIR --url URL --token T` against a running node. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mintToken } from '../src/auth/tokens.js';
import { MAIN, startNode } from './helpers/node.js';
import { DEMO_FUNCTIONS, invoke } from './helpers/functions.js';

const secret = 'deploy-test-secret-that-is-long-enough-0123456789';

describe('stateweave deploy', () => {
  it('compiles a directory and deploys it to a running node with an admin token', async () => {
    const node = await startNode({ auth: { secret } });
    try {
      const admin = await mintToken({ secret, docs: ['*'], rights: ['admin', 'invoke'] });
      // spawnSync would block this process's event loop, and with it the in-process node.
      const { spawn } = await import('node:child_process');
      const run = (args: string[]) =>
        new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [MAIN, 'deploy', ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
          child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          child.once('exit', (status) => resolve({ status, stdout, stderr }));
        });
      const refused = await run([DEMO_FUNCTIONS, '--url', node.url]);
      assert.notEqual(refused.status, 0, 'no token: refused');
      const done = await run([DEMO_FUNCTIONS, '--url', node.url, '--token', admin]);
      assert.equal(done.status, 0, done.stderr);
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

  it('exits 2 with the usage when DIR or --url is missing', () => {
    const result = spawnSync(process.execPath, [MAIN, 'deploy'], { encoding: 'utf8' });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /Usage: stateweave deploy/);
  });
});

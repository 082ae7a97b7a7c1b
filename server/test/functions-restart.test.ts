/** Idempotency across a crash: the invocation record is stored with the effect. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnNode, stopChild, tempDir } from './helpers/node.js';
import { FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';

describe('functions across a restart', () => {
  it('applies a retried idempotency key once, also after kill -9', async () => {
    const dir = await tempDir();
    try {
      const first = await spawnNode(dir.path, ['--functions', FIXTURE_FUNCTIONS]);
      const key = { 'idempotency-key': 'order-17' };
      let answered;
      try {
        answered = await invoke(first.url, 'increment', { counter: 'restart' }, key);
        assert.deepEqual(answered.body, { n: 1 });
      } finally {
        // No graceful shutdown: what was answered must already be on disk.
        await stopChild(first, 'SIGKILL');
      }
      const second = await spawnNode(dir.path, ['--functions', FIXTURE_FUNCTIONS]);
      try {
        const retried = await invoke(second.url, 'increment', { counter: 'restart' }, key);
        assert.deepEqual(retried.body, { n: 1 }, 'the first result, not a second application');
        assert.equal(retried.headers.get('idempotent-replayed'), 'true');
        assert.deepEqual(
          (await invoke(second.url, 'increment', { counter: 'restart' })).body,
          { n: 2 },
          'applied exactly once before',
        );
      } finally {
        await stopChild(second);
      }
    } finally {
      await dir.remove();
    }
  });
});

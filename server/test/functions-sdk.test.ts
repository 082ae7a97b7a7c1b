/** The SDK's typed calls against a node: `typeof` a definition gives the client its types. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createClient, StateweaveClientError } from '@stateweave/client';
import { defineFunction, type FunctionTypesOf } from '../src/index.js';
import { startNode } from './helpers/node.js';
import { FIXTURE_FUNCTIONS } from './helpers/functions.js';

// The same declaration as the fixture's `increment`, here only for its type.
const _increment = defineFunction({
  name: 'increment',
  doc: (input: { counter: string }) => `counters/${input.counter}`,
  handler: ({ doc }) => ({ n: (doc.getMap<number>('c').get('n') ?? 0) + 1 }),
});
const _read = defineFunction({
  name: 'read',
  kind: 'query',
  doc: (input: { counter: string }) => `counters/${input.counter}`,
  handler: ({ doc }) => ({ n: doc.getMap<number>('c').get('n') ?? 0 }),
});
type Fns = FunctionTypesOf<{ increment: typeof _increment; read: typeof _read }>;

describe('functions from the SDK', () => {
  it('invokes and queries with typed inputs and results, and maps errors to codes', async () => {
    const node = await startNode({ functionsDir: FIXTURE_FUNCTIONS });
    const client = createClient<Fns>({ url: node.wsUrl, WebSocket: WebSocket as never });
    try {
      const first = await client.invoke(
        'increment',
        { counter: 'sdk' },
        { idempotencyKey: 'sdk-1' },
      );
      const n: number = first.n; // typed: { n: number }
      assert.equal(n, 1);
      assert.deepEqual(
        await client.invoke('increment', { counter: 'sdk' }, { idempotencyKey: 'sdk-1' }),
        { n: 1 },
      );
      assert.deepEqual(await client.query('read', { counter: 'sdk' }), { n: 1 });
      await assert.rejects(
        client.invoke('increment', null as never),
        (err: unknown) => err instanceof StateweaveClientError && err.code === 'INVALID_INPUT',
      );
    } finally {
      await client.destroy();
      await node.close();
    }
  });
});

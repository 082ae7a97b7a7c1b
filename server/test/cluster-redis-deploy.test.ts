/**
 * Function deployments on the Redis backplane: a deploy on one node is stored
 * in Redis and every node serves it within moments; a node started later
 * serves it too; after Redis restarts without its data, the nodes write the
 * deployment back, so a node joining then still gets it. Real processes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compileDir } from '../src/functions/compile.js';
import { invoke } from './helpers/functions.js';
import { tempDir } from './helpers/node.js';
import { waitMembers, type RedisNodes, type TestRedis } from './helpers/redis.js';
import { startRedisFixture } from './helpers/redis-fixture.js';
import { waitFor } from './helpers/wait.js';

const GREET = `
import { defineFunction } from '@stateweave/server';
export const greet = defineFunction({
  name: 'greet',
  kind: 'query',
  doc: () => 'greetings',
  handler: () => ({ greeting: 'hello from redis' }),
});
`;

const listed = async (url: string): Promise<string[]> => {
  const res = await fetch(`${url}/v1/functions`);
  const { functions } = (await res.json()) as { functions: Array<{ name: string }> };
  return functions.map((f) => f.name);
};

describe('cluster on redis: function deployments', () => {
  let redis: TestRedis;
  let cluster: RedisNodes;
  let dir: { path: string; remove: () => Promise<void> };

  before(async () => {
    ({ redis, cluster } = await startRedisFixture(3));
    dir = await tempDir();
    await mkdir(dir.path, { recursive: true });
    await writeFile(join(dir.path, 'greet.js'), GREET);
  });

  after(async () => {
    await cluster?.close();
    await redis?.close();
    await dir?.remove();
  });

  it('a deploy on one node reaches every node, and a node started later', async () => {
    const res = await fetch(`${cluster.nodes[0]!.url}/v1/functions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bundles: await compileDir(dir.path) }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    for (const node of cluster.nodes.slice(1))
      await waitFor(
        async () => (await listed(node.url)).includes('greet'),
        `${node.id} to serve the deployment`,
        10_000,
        50,
      );
    const called = await invoke(cluster.nodes[2]!.url, 'greet', {});
    assert.equal(called.status, 200);
    assert.deepEqual(called.body, { greeting: 'hello from redis' });

    const late = await cluster.add();
    await waitFor(
      async () => (await listed(late.url)).includes('greet'),
      'n4, started later, to serve the deployment',
      10_000,
      50,
    );
  });

  it('writes the deployment back into a Redis that lost its data', async () => {
    await redis.restart({ keepData: false });
    await waitMembers(cluster.nodes, ['n1', 'n2', 'n3', 'n4'], 20_000);
    const late = await cluster.add();
    await waitFor(
      async () => (await listed(late.url)).includes('greet'),
      'n5, started after Redis lost its data, to serve the deployment',
      15_000,
      50,
    );
  });
});

/**
 * `--static` never serves what lies outside its folder (issue 17, item 6): a
 * symlink inside the folder that points out of it answers 404, whether it names
 * a file, a directory, or a directory's index.html; links within the folder and
 * plain files are served.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startNode, tempDir, type TestNode } from './helpers/node.js';

const SECRET = 'secret-outside-the-static-folder';

describe('static files', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    const site = join(dir.path, 'site');
    const outside = join(dir.path, 'outside');
    await mkdir(join(site, 'sub'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), SECRET);
    await writeFile(join(outside, 'index.html'), SECRET);
    await writeFile(join(site, 'index.html'), '<h1>home</h1>');
    await writeFile(join(site, 'ok.txt'), 'ok');
    await symlink(join(site, 'ok.txt'), join(site, 'alias.txt'));
    await symlink(join(outside, 'secret.txt'), join(site, 'leak.txt'));
    await symlink(outside, join(site, 'leakdir'));
    await symlink(join(outside, 'index.html'), join(site, 'sub', 'index.html'));
    node = await startNode({ dataDir: join(dir.path, 'data'), staticDir: site });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${node.url}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: await res.text() };
  };

  it('serves files and links that stay inside the folder', async () => {
    assert.deepEqual(await get('/ok.txt'), { status: 200, body: 'ok' });
    assert.deepEqual(await get('/alias.txt'), { status: 200, body: 'ok' });
    assert.equal((await get('/')).body, '<h1>home</h1>');
  });

  it('answers 404 for every link out of the folder and never sends what it points to', async () => {
    for (const path of [
      '/leak.txt',
      '/leakdir/secret.txt',
      '/leakdir/',
      '/sub/',
      '/sub/index.html',
      '/%2e%2e/outside/secret.txt',
      '/..%2foutside%2fsecret.txt',
    ]) {
      const { status, body } = await get(path);
      assert.ok(status === 404 || status === 400 || status === 403, `${path}: ${status}`);
      assert.ok(!body.includes(SECRET), `${path} leaked the file`);
    }
  });
});

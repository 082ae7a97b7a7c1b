/**
 * The newcomer's first minute: in a fresh clone, `npm install` and then
 * `npx stateweave --version` works without a separate build (the bin builds the
 * server on first use). The clone is of this checkout's last commit; packages
 * come from npm's cache, which the install of this checkout filled
 * (--prefer-offline), and install scripts are skipped: nothing here needs them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/node.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LIMIT_MS = 240_000;

const run = (cmd: string, args: string[], cwd: string) => {
  const result = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: LIMIT_MS });
  return {
    status: result.status,
    stdout: result.stdout ?? '',
    out: `${result.stdout ?? ''}${result.stderr ?? ''}`,
  };
};

describe('a fresh clone', { timeout: LIMIT_MS * 2 }, () => {
  let dir: { path: string; remove: () => Promise<void> };
  before(async () => {
    dir = await tempDir();
  });
  after(() => dir.remove());

  it('runs `npx stateweave --version` right after `npm install`', () => {
    const clone = join(dir.path, 'stateweave');
    const cloned = run('git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone], dir.path);
    assert.equal(cloned.status, 0, cloned.out);
    assert.equal(existsSync(join(clone, 'server/dist')), false, 'a clone has no build');
    const installed = run(
      'npm',
      ['ci', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'],
      clone,
    );
    assert.equal(installed.status, 0, installed.out);
    const version = run('npx', ['stateweave', '--version'], clone);
    assert.equal(version.status, 0, version.out);
    const expected = (
      JSON.parse(readFileSync(join(clone, 'server/package.json'), 'utf8')) as { version: string }
    ).version;
    assert.equal(version.stdout.trim(), expected, version.out);
    assert.match(version.out, /building the server once/);
  });
});

/**
 * Every mistake a user can make with the `stateweave` command is answered with
 * one plain line that names the cause and the fix: no stack trace (unless
 * --verbose), exit code 2 for a usage mistake and 1 for the rest.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runCli, type CliRun } from './helpers/cli.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';

type Run = CliRun;

const LIMIT_MS = 20_000;

const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> =>
  runCli(args, { env: { PATH: process.env.PATH, ...env }, limitMs: LIMIT_MS });

/** The plain line on stderr (the JSON log, which the node also writes, is for machines). */
const plain = (run: Run): string[] =>
  run.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('{'));

const assertSentence = (run: Run, code: number, sentence: RegExp): void => {
  const lines = plain(run);
  assert.equal(run.code, code, run.stderr);
  assert.match(lines[0] ?? '', sentence, run.stderr);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace without --verbose');
};

const SECRET = 's'.repeat(32);

describe('stateweave CLI: one sentence per mistake', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let node: ChildNode;
  before(async () => {
    dir = await tempDir();
    node = await spawnNode(join(dir.path, 'data'));
  });
  after(async () => {
    await stopChild(node);
    await dir.remove();
  });

  it('prints its version', async () => {
    const run = await cli(['--version']);
    assert.equal(run.code, 0);
    assert.match(run.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  it('token: refuses a secret the node would refuse, and lifetimes that are not positive', async () => {
    assertSentence(
      await cli(['token', '--docs', '*', '--rights', 'read', '--secret', 'short']),
      2,
      /^stateweave: the secret has 5 bytes; a node refuses secrets shorter than 32/,
    );
    for (const ttl of ['0', '1x', '-5'])
      assertSentence(
        await cli(['token', '--docs', '*', '--rights', 'read', '--secret', SECRET, `--ttl=${ttl}`]),
        2,
        /^stateweave: --ttl "-?\w+": expected a positive lifetime such as 3600, 30m, 1h or 7d$/,
      );
    const ok = await cli(['token', '--docs', '*', '--rights', 'read', '--ttl', '30m'], {
      STATEWEAVE_AUTH_SECRET: SECRET,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('deploy: a URL without a scheme, a node that is not there, a missing directory', async () => {
    const fns = join(dir.path, 'fns');
    await mkdir(fns);
    await writeFile(
      join(fns, 'hello.ts'),
      "import { defineFunction } from '@stateweave/server';\nexport default defineFunction({ name: 'hello', doc: () => 'hello', handler: () => 'hi' });\n",
    );
    assertSentence(
      await cli(['deploy', fns, '--url', `127.0.0.1:${node.port}`]),
      2,
      /^stateweave: --url must be the node's HTTP address with its scheme, e\.g\. http:\/\/localhost:1234/,
    );
    const free = await freePort();
    assertSentence(
      await cli(['deploy', fns, '--url', `http://127.0.0.1:${free}`]),
      1,
      new RegExp(
        `^stateweave: cannot reach http://127\\.0\\.0\\.1:${free}: connection refused\\. Is a node running there`,
      ),
    );
    assertSentence(
      await cli(['deploy', join(dir.path, 'nope'), '--url', node.url]),
      1,
      /nope: no such directory of function modules$/,
    );
    const deployed = await cli(['deploy', fns, '--url', node.url]);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stdout, /^hello@/);
  });

  it('deploy: the node refusing a token becomes a sentence with what to pass', async () => {
    const authed = await spawnNodeWithSecret(join(dir.path, 'auth'));
    try {
      const fns = join(dir.path, 'fns');
      assertSentence(
        await cli(['deploy', fns, '--url', authed.url]),
        1,
        /^stateweave: the node refused the deployment \(UNAUTHORIZED\): .*: pass an admin token with --token or STATEWEAVE_TOKEN/,
      );
    } finally {
      await stopChild(authed);
    }
  });

  it('serve: a port in use and a data directory in use name the flag to change', async () => {
    assertSentence(
      await cli([
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        String(node.port),
        '--data',
        join(dir.path, 'other'),
      ]),
      1,
      new RegExp(`^stateweave: port ${node.port} is already in use .*pass --port N`),
    );
    assertSentence(
      await cli(['serve', '--host', '127.0.0.1', '--port', '0', '--data', join(dir.path, 'data')]),
      1,
      /^stateweave: the data directory .*data is in use by another running node .*pass --data DIR/,
    );
  });

  it('serve: refuses --static and --functions directories that do not exist', async () => {
    for (const flag of ['--static', '--functions'])
      assertSentence(
        await cli(['serve', '--port', '0', '--data', join(dir.path, 'x'), flag, './no-such-dir']),
        2,
        new RegExp(`^stateweave: ${flag} ./no-such-dir: no such directory$`),
      );
  });

  it('prints the stack with --verbose', async () => {
    const run = await cli([
      'token',
      '--docs',
      '*',
      '--rights',
      'read',
      '--secret',
      'x',
      '--verbose',
    ]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /\n\s+at /);
  });
});

/** A port that was free a moment ago (bound, then released). */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

const spawnNodeWithSecret = async (data: string): Promise<ChildNode> => {
  const previous = process.env.STATEWEAVE_AUTH_SECRET;
  process.env.STATEWEAVE_AUTH_SECRET = SECRET;
  try {
    return await spawnNode(data);
  } finally {
    if (previous === undefined) delete process.env.STATEWEAVE_AUTH_SECRET;
    else process.env.STATEWEAVE_AUTH_SECRET = previous;
  }
};

/**
 * `--max-token-ttl` (issue 17, item 6): a token whose `exp` lies further out than
 * the node accepts is refused on the socket and over HTTP, and `stateweave token`
 * refuses to mint one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { mintToken } from '../src/auth/tokens.js';
import { parseServeConfig, toServerOptions, UsageError } from '../src/config.js';
import { ERRORS } from '../src/errors.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { runCli } from './helpers/cli.js';

const SECRET = 'x'.repeat(32);
const HOUR = 3600;

/** The close code of a socket the node accepted or refused, within 5 s; 1000 for one left open. */
const closeCodeOf = (url: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('error', () => undefined);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no outcome for ${url} within 5 s`));
    }, 5000);
    ws.once('open', () =>
      setTimeout(() => {
        if (ws.readyState === ws.OPEN) ws.close(1000);
      }, 200),
    );
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });

/** Runs `stateweave token` with `env` added; stdout and stderr as one text (bounded: 10 s). */
const tokenCli = async (
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> => {
  const run = await runCli(['token', ...args], {
    env: { ...process.env, ...env },
    limitMs: 10_000,
  });
  return { code: run.code, out: run.stdout + run.stderr };
};

describe('the longest token lifetime', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    node = await startNode({ dataDir: dir.path, auth: { secret: SECRET, maxTtlSeconds: HOUR } });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  const token = (ttl: string) =>
    mintToken({ secret: SECRET, docs: ['*'], rights: ['read', 'write'], ttl });

  it('accepts a token within the limit and refuses one beyond it, on the socket and over HTTP', async () => {
    const short = await token('30m');
    const long = await token('2h');
    assert.equal(await closeCodeOf(`${node.wsUrl}/ttl?token=${short}`), 1000);
    assert.equal(await closeCodeOf(`${node.wsUrl}/ttl?token=${long}`), ERRORS.UNAUTHORIZED.close);
    const get = (t: string) =>
      fetch(`${node.url}/v1/docs/ttl`, {
        headers: { authorization: `Bearer ${t}` },
        signal: AbortSignal.timeout(5000),
      });
    assert.equal((await get(short)).status, 404); // authorised; the document is empty
    const refused = await get(long);
    assert.equal(refused.status, 401);
    assert.match(
      ((await refused.json()) as { error: { message: string } }).error.message,
      /longer/,
    );
  });

  it('refuses to mint a token beyond the limit, in code and from the CLI', async () => {
    await assert.rejects(
      mintToken({ secret: SECRET, docs: ['*'], rights: ['read'], ttl: '2h', maxTtlSeconds: HOUR }),
      /longer than the maximum/,
    );
    const env = { STATEWEAVE_AUTH_SECRET: SECRET, STATEWEAVE_MAX_TOKEN_TTL: '1h' };
    const refused = await tokenCli(['--docs', '*', '--rights', 'read', '--ttl', '2h'], env);
    assert.equal(refused.code, 2, refused.out);
    assert.match(refused.out, /longer than STATEWEAVE_MAX_TOKEN_TTL/);
    const minted = await tokenCli(['--docs', '*', '--rights', 'read', '--ttl', '30m'], env);
    assert.equal(minted.code, 0, minted.out);
    assert.match(minted.out.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('reads --max-token-ttl as a lifetime and refuses anything else', () => {
    const options = toServerOptions(
      parseServeConfig(['--auth-secret', SECRET, '--max-token-ttl', '1h'], {}),
      () => '',
    );
    assert.equal(options.auth?.maxTtlSeconds, HOUR);
    for (const bad of ['1x', '-5', '0', ''])
      assert.throws(
        () => toServerOptions(parseServeConfig(['--max-token-ttl', bad], {}), () => ''),
        UsageError,
        bad,
      );
  });
});

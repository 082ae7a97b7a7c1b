/**
 * The README is tested: every block marked `<!-- readme-test: KIND -->` runs as
 * written, top to bottom, against a real node (a child process of the CLI), the
 * way a reader following the page would run it. A README change that breaks a
 * walkthrough fails here.
 *
 * Kinds: `node-script` (TypeScript, compiled by esbuild and run by Node; it must
 * exit by itself), `sh` (bash -euo pipefail; a `# {...}` comment after a command
 * is output it must print), `file` (written where its first-line comment says,
 * for the blocks after it). Only the address changes: `localhost:1234` becomes the
 * test node's. `npm start` in a block starts the node the way the start script
 * does after its build (`stateweave serve --static demo-app/dist --functions
 * demo-app/functions`), without rebuilding.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Under the repository, so `npx stateweave` and bare imports resolve as for a user. */
const WORK = join(ROOT, '.readme-test');
const BLOCK_LIMIT_MS = 30_000;

interface Block {
  readonly kind: string;
  readonly lang: string;
  readonly code: string;
  readonly line: number;
}

const readmeBlocks = (readme: string): Block[] => {
  const blocks: Block[] = [];
  const pattern = /<!-- readme-test: ([\w-]+) -->\n```(\w+)\n([\s\S]*?)\n```/g;
  for (const match of readme.matchAll(pattern)) {
    const line = readme.slice(0, match.index).split('\n').length;
    blocks.push({ kind: match[1]!, lang: match[2]!, code: match[3]!, line });
  }
  return blocks;
};

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const run = (command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> =>
  new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: WORK,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), BLOCK_LIMIT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });

/**
 * Bash run before a block: `npm start` starts a node in the background on a free
 * port and waits (at most 10 s) until it listens; its pid and port are left in
 * files for the test, which stops it.
 */
const SH_PREAMBLE = `
npm() {
  if [ "$1" != start ]; then command npm "$@"; return; fi
  node "$README_ROOT/server/bin/stateweave.js" serve --host 127.0.0.1 --port 0 --data "$WORK/start-data" \\
    --static "$README_ROOT/demo-app/dist" --functions "$README_ROOT/demo-app/functions" > "$WORK/start.log" 2>&1 &
  echo $! > "$WORK/start.pid"
  for _ in $(seq 100); do
    if grep -q '"listening"' "$WORK/start.log"; then return 0; fi
    sleep 0.1
  done
  echo "npm start: the node did not listen within 10 s" >&2; return 1
}
`;

/** `cmd   # {"a":1} — prose` → `{"a":1}`: the output the README promises. */
const promisedOutputs = (code: string): string[] =>
  code
    .split('\n')
    .map((line) => /#\s*(\{.*\})/.exec(line)?.[1])
    .filter((out): out is string => out !== undefined);

describe('README walkthroughs run as written', () => {
  let data: { path: string; remove: () => Promise<void> };
  let node: ChildNode;
  let blocks: Block[];

  before(async () => {
    blocks = readmeBlocks(await readFile(join(ROOT, 'README.md'), 'utf8'));
    data = await tempDir();
    node = await spawnNode(data.path);
    await rm(WORK, { recursive: true, force: true });
    await mkdir(WORK, { recursive: true });
  });

  after(async () => {
    const pid = await readFile(join(WORK, 'start.pid'), 'utf8').catch(() => undefined);
    if (pid !== undefined) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // already gone
      }
    }
    await stopChild(node);
    await data.remove();
    await rm(WORK, { recursive: true, force: true });
  });

  it('finds the walkthroughs (SDK, stock client, curl, security, functions)', () => {
    const kinds = blocks.map((b) => b.kind);
    assert.ok(kinds.filter((k) => k === 'node-script').length >= 2, kinds.join());
    assert.ok(kinds.filter((k) => k === 'sh').length >= 4, kinds.join());
    assert.ok(kinds.includes('file'), kinds.join());
  });

  it('runs every block in order', async () => {
    const address = `127.0.0.1:${node.port}`;
    for (const [i, block] of blocks.entries()) {
      const where = `README.md line ${block.line} (${block.kind})`;
      const code = block.code.replaceAll('localhost:1234', address);
      switch (block.kind) {
        case 'file': {
          const path = /^\/\/ (\S+)/.exec(code)?.[1];
          assert.ok(path !== undefined, `${where}: a file block starts with // path`);
          await mkdir(join(WORK, dirname(path)), { recursive: true });
          await writeFile(join(WORK, path), code);
          break;
        }
        case 'node-script': {
          const { code: js } = await transform(code, { loader: 'ts', format: 'esm' });
          const file = join(WORK, `block-${i}.mjs`);
          await writeFile(file, js);
          const result = await run(process.execPath, [file]);
          assert.equal(result.code, 0, `${where} failed or did not exit:\n${result.stderr}`);
          break;
        }
        case 'sh': {
          const result = await run('bash', ['-euo', 'pipefail', '-c', SH_PREAMBLE + code], {
            README_ROOT: ROOT,
            WORK,
          });
          assert.equal(result.code, 0, `${where} failed:\n${result.stdout}\n${result.stderr}`);
          for (const promised of promisedOutputs(code))
            assert.ok(
              result.stdout.includes(promised),
              `${where} promises ${promised}, printed:\n${result.stdout}`,
            );
          if (code.includes('npm start')) await checkSecuredNode(result.stdout, where);
          break;
        }
        default:
          assert.fail(`${where}: unknown readme-test kind ${block.kind}`);
      }
    }
  });
});

/**
 * The security walkthrough printed a token and started a node with the same
 * secret: the token must open what it names, and nothing must open without one.
 */
const checkSecuredNode = async (stdout: string, where: string): Promise<void> => {
  const token = stdout.split('\n').find((line) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(line));
  assert.ok(token !== undefined, `${where}: no token printed:\n${stdout}`);
  const log = await readFile(join(WORK, 'start.log'), 'utf8');
  const listening = log.split('\n').find((line) => line.includes('"listening"'));
  const port = (JSON.parse(listening ?? '{}') as { port?: number }).port;
  assert.ok(port !== undefined, `${where}: the node did not say where it listens:\n${log}`);
  const base = `http://127.0.0.1:${port}/v1/docs/team-42/notes`;
  const body = JSON.stringify({ body: 'from the walkthrough' });
  const headers = { 'content-type': 'application/json' };
  const anonymous = await fetch(base, { method: 'PATCH', headers, body });
  assert.equal(anonymous.status, 401, `${where}: the node took a write without a token`);
  const withToken = await fetch(base, {
    method: 'PATCH',
    headers: { ...headers, authorization: `Bearer ${token}` },
    body,
  });
  assert.equal(withToken.status, 200, `${where}: the minted token was refused`);
  const elsewhere = await fetch('http://127.0.0.1:' + port + '/v1/docs/team-7/notes', {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(elsewhere.status, 403, `${where}: the token reached outside team-42/*`);
};

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
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Under the repository, so `npx stateweave` and bare imports resolve as for a user. */
const WORK = join(ROOT, '.readme-test');
const BLOCK_LIMIT_MS = 30_000;
/** `npm run cluster` needs three consecutive free ports; spread by pid to avoid other runs. */
const CLUSTER_PORT = 30_000 + (process.pid % 3000) * 3;

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
 * Bash run before a block, standing in for the npm scripts a reader runs:
 * - `npm install` does nothing: this checkout is installed (CI ran `npm ci`);
 * - `npm start` starts the node as the start script does after its build (the
 *   test run built it), in the background on a free port, and waits until it
 *   listens (at most 15 s);
 * - `npm run cluster` starts the cluster script on the ports the test chose.
 * Pids and logs are left in files named by the block, for the test to check and stop.
 */
const SH_PREAMBLE = `
waitlog() {
  for _ in $(seq 150); do
    if [ "$(grep -c '"listening"' "$1")" -ge "$2" ]; then return 0; fi
    sleep 0.1
  done
  echo "the node(s) did not listen within 15 s: $(cat "$1")" >&2; return 1
}
npm() {
  case "$1" in
    install|ci) return 0 ;;
    start)
      shift; if [ "\${1:-}" = -- ]; then shift; fi
      node "$README_ROOT/server/bin/stateweave.js" serve --host 127.0.0.1 --port 0 \\
        --data "$WORK/start-$BLOCK-data" --static "$README_ROOT/demo-app/dist" \\
        --functions "$README_ROOT/demo-app/functions" "$@" > "$WORK/start-$BLOCK.log" 2>&1 &
      echo $! > "$WORK/start-$BLOCK.pid"
      waitlog "$WORK/start-$BLOCK.log" 1 ;;
    run)
      if [ "$2" != cluster ]; then command npm "$@"; return; fi
      STATEWEAVE_CLUSTER_PORT="$CLUSTER_PORT" STATEWEAVE_CLUSTER_DATA="$WORK/cluster-data" \\
        node "$README_ROOT/server/scripts/cluster.mjs" > "$WORK/cluster-$BLOCK.log" 2>&1 &
      echo $! > "$WORK/cluster-$BLOCK.pid"
      waitlog "$WORK/cluster-$BLOCK.log" 3 ;;
    *) command npm "$@" ;;
  esac
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
    // Every node a block started (npm start, npm run cluster), by the pid it left.
    for (const file of (await readdir(WORK).catch(() => [])).filter((f) => f.endsWith('.pid')))
      await stopPid(Number(await readFile(join(WORK, file), 'utf8')));
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
            BLOCK: String(i),
            CLUSTER_PORT: String(CLUSTER_PORT),
          });
          assert.equal(result.code, 0, `${where} failed:\n${result.stdout}\n${result.stderr}`);
          for (const promised of promisedOutputs(code))
            assert.ok(
              result.stdout.includes(promised),
              `${where} promises ${promised}, printed:\n${result.stdout}`,
            );
          if (code.includes('npm start')) {
            const port = listeningPorts(await readFile(join(WORK, `start-${i}.log`), 'utf8'))[0];
            assert.ok(port !== undefined, `${where}: the node did not say where it listens`);
            if (code.includes('STATEWEAVE_AUTH_SECRET'))
              await checkSecuredNode(result.stdout, port, where);
            else await checkDemoNode(port, where);
          }
          if (code.includes('npm run cluster')) await checkCluster(where);
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
const checkSecuredNode = async (stdout: string, port: number, where: string): Promise<void> => {
  const token = stdout.split('\n').find((line) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(line));
  assert.ok(token !== undefined, `${where}: no token printed:\n${stdout}`);
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

/** Ports from the "listening" lines of a log, in order. */
const listeningPorts = (log: string): number[] =>
  log
    .split('\n')
    .filter((line) => line.includes('"listening"'))
    .map((line) => (JSON.parse(line.slice(line.indexOf('{'))) as { port: number }).port);

/** `npm start`: the demo page and its functions are served. */
const checkDemoNode = async (port: number, where: string): Promise<void> => {
  const page = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(page.status, 200, `${where}: the demo page`);
  assert.match(await page.text(), /Stateweave demo/);
  const { functions } = (await (await fetch(`http://127.0.0.1:${port}/v1/functions`)).json()) as {
    functions: { name: string }[];
  };
  assert.ok(
    functions.some((f) => f.name === 'trackVisit'),
    `${where}: the demo functions`,
  );
};

/** `npm run cluster`: three nodes that link up, each serving the demo. */
const checkCluster = async (where: string): Promise<void> => {
  const ports = [CLUSTER_PORT, CLUSTER_PORT + 1, CLUSTER_PORT + 2];
  const deadline = Date.now() + 15_000;
  for (;;) {
    const linked = await Promise.all(
      ports.map(async (port) => {
        const status = (await (await fetch(`http://127.0.0.1:${port}/v1/cluster`)).json()) as {
          peers?: { state?: string }[];
        };
        return (status.peers ?? []).filter((p) => p.state === 'connected').length;
      }),
    );
    if (linked.every((n) => n === 2)) break;
    assert.ok(Date.now() < deadline, `${where}: peers linked ${linked.join(', ')} of 2 each`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  for (const port of ports) await checkDemoNode(port, where);
};

/** SIGTERM (a node flushes and exits), SIGKILL after 10 s; a process already gone is fine. */
const stopPid = async (pid: number): Promise<void> => {
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false; // ESRCH: gone
    }
  };
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive()) process.kill(pid, 'SIGKILL');
};

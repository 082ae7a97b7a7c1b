/**
 * Function workers as processes (`--function-isolation process`): a native crash
 * in a sandbox — here a SIGSEGV sent to the worker, as a segfault in isolated-vm
 * would raise — fails the call it was running with FUNCTION_CRASHED, the pool
 * starts a fresh worker, and the node goes on serving. With workers as threads
 * the same crash ends the node, which is why this mode exists. The workers get
 * no environment (the node's secrets are in its own).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { mintToken } from '../src/auth/tokens.js';
import { errorCode, invoke, type Called } from './helpers/functions.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

const AUTH_SECRET = 'isolation-suite-token-secret-0123456789abcdef';
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/hostile/', import.meta.url));

/** Processes whose parent is `pid` and whose command runs the function worker. */
const workersOf = async (pid: number): Promise<number[]> => {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Field 4 is the parent; the command name (field 2) may hold spaces, so count from its ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('functions/worker.js')) found.push(Number(entry));
    } catch {
      // gone between the listing and the read
    }
  }
  return found.sort((a, b) => a - b);
};

/** CPU time a process has used so far, in clock ticks (utime + stime, /proc/<pid>/stat). */
const cpuTicks = async (pid: number): Promise<number> => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of the whole line
};

describe('function workers as processes', () => {
  let node: ChildNode;
  let data: Awaited<ReturnType<typeof tempDir>>;
  let caller: string;
  let innocentCalls = 0;

  const call = (name: string, input: unknown = {}): Promise<Called> =>
    invoke(node.url, name, input, { authorization: `Bearer ${caller}` });

  const innocentIsFine = async (): Promise<void> => {
    const answer = await call('innocent', { id: 'beside' });
    innocentCalls++;
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, { n: innocentCalls, clean: true });
  };

  before(async () => {
    data = await tempDir();
    node = await spawnNode(
      data.path,
      ['--function-isolation', 'process', '--max-function-timeout-ms', '3000'],
      0,
      { ...process.env, STATEWEAVE_AUTH_SECRET: AUTH_SECRET },
    );
    const admin = await mintToken({ secret: AUTH_SECRET, docs: ['*'], rights: ['admin'] });
    caller = await mintToken({ secret: AUTH_SECRET, docs: ['*'], rights: ['invoke', 'read'] });
    const bundles = await Promise.all(
      ['innocent.js', 'hostile.js'].map(async (file) => ({
        file,
        code: await readFile(`${FIXTURES}${file}`, 'utf8'),
      })),
    );
    const res = await fetch(`${node.url}/v1/functions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ bundles }),
    });
    assert.equal(res.status, 200, await res.text());
    await innocentIsFine();
  });

  after(async () => {
    await stopChild(node);
    await data.remove();
  });

  it('runs the workers as child processes with no environment', async () => {
    const workers = await workersOf(node.child.pid!);
    assert.equal(workers.length, 2, 'the default two workers, each a process');
    for (const pid of workers) {
      const environ = await readFile(`/proc/${pid}/environ`, 'utf8');
      assert.ok(!environ.includes(AUTH_SECRET), 'the node secret is not in a worker');
      const names = environ
        .split('\0')
        .filter(Boolean)
        .map((kv) => kv.split('=')[0]);
      assert.deepEqual(
        names.filter((name) => !name!.startsWith('NODE_CHANNEL_')),
        [],
        `only the IPC channel's variables: ${names.join(', ')}`,
      );
    }
    const env = await call('readEnv');
    assert.equal((env.body as { process: string }).process, 'undefined');
  });

  it('fails the running call alone when its worker crashes, and serves the next ones', async () => {
    const before = await workersOf(node.child.pid!);
    const started = Date.now();
    const idle = await Promise.all(before.map(cpuTicks));
    const spinning = call('spin'); // loops until its 3 s limit
    // A worker that has burnt 100 ms of CPU since is running it (the other sits idle).
    await waitFor(
      async () => (await Promise.all(before.map(cpuTicks))).some((t, i) => t - idle[i]! >= 10),
      'a worker to run the spinning call',
    );
    for (const pid of before) process.kill(pid, 'SIGSEGV');
    const spin = await spinning;
    assert.equal(spin.status, 500, JSON.stringify(spin.body));
    assert.equal(errorCode(spin), 'FUNCTION_CRASHED');
    assert.ok(Date.now() - started < 2500, 'answered at the crash, not at the time limit');
    await innocentIsFine();
    const after = await waitFor(async () => {
      const now = await workersOf(node.child.pid!);
      return now.length === 2 ? now : undefined;
    }, 'two fresh workers');
    assert.equal(
      after.filter((pid) => before.includes(pid)).length,
      0,
      'both crashed workers were replaced',
    );
    assert.equal(node.child.exitCode, null, 'the node is still running');
    assert.match(node.output(), /function worker exited.*SIGSEGV|SIGSEGV.*function worker exited/);
  });
});

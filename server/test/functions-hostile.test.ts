/**
 * Hostile functions against a real node process whose token and peer secrets are
 * in its environment: every attempt to leave the sandbox is contained, no answer
 * and no log line carries a secret, and an innocent function deployed beside them
 * keeps working with clean prototypes throughout (issue 22); with function
 * workers as threads and as processes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { mintToken } from '../src/auth/tokens.js';
import { errorCode, invoke, type Called } from './helpers/functions.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';

const AUTH_SECRET = 'hostile-suite-token-secret-0123456789abcdef';
const PEER_SECRET = 'hostile-suite-peer-secret-fedcba9876543210';
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/hostile/', import.meta.url));

// Both kinds of worker (--function-isolation): a process worker runs the same host code over a pipe.
for (const [isolation, workers] of [
  ['thread', 'threads'],
  ['process', 'processes'],
] as const)
  describe(`hostile functions (workers as ${workers})`, () => {
    let node: ChildNode;
    let data: Awaited<ReturnType<typeof tempDir>>;
    let admin: string;
    let caller: string;
    /** Every answer body the suite received, to search for the secrets at the end. */
    const seen: string[] = [];
    let innocentCalls = 0;

    const call = async (name: string, input: unknown = {}): Promise<Called> => {
      const answer = await invoke(node.url, name, input, { authorization: `Bearer ${caller}` });
      seen.push(JSON.stringify(answer.body));
      return answer;
    };

    /** The innocent function still counts, and sees no trace of the others. */
    const innocentIsFine = async (): Promise<void> => {
      const answer = await call('innocent', { id: 'beside' });
      innocentCalls++;
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual(answer.body, { n: innocentCalls, clean: true });
    };

    const deploy = async (files: string[]): Promise<void> => {
      const bundles = await Promise.all(
        files.map(async (file) => ({ file, code: await readFile(`${FIXTURES}${file}`, 'utf8') })),
      );
      const res = await fetch(`${node.url}/v1/functions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ bundles }),
      });
      assert.equal(res.status, 200, await res.text());
    };

    before(async () => {
      data = await tempDir();
      node = await spawnNode(
        data.path,
        [
          '--max-function-timeout-ms',
          '1500',
          '--function-memory-mb',
          '32',
          '--function-isolation',
          isolation,
        ],
        0,
        {
          ...process.env,
          STATEWEAVE_AUTH_SECRET: AUTH_SECRET,
          STATEWEAVE_PEER_SECRET: PEER_SECRET,
          STATEWEAVE_LOG_LEVEL: 'info',
        },
      );
      admin = await mintToken({ secret: AUTH_SECRET, docs: ['*'], rights: ['admin'] });
      caller = await mintToken({ secret: AUTH_SECRET, docs: ['*'], rights: ['invoke', 'read'] });
      await deploy(['innocent.js', 'hostile.js', 'polluter.js']);
      await innocentIsFine();
    });

    after(async () => {
      await stopChild(node);
      await data.remove();
    });

    it('finds no process, environment or constructor route to the node', async () => {
      const answer = await call('readEnv');
      assert.equal(answer.status, 200);
      const body = answer.body as Record<string, { reached: boolean }> & { process: string };
      assert.equal(body.process, 'undefined');
      for (const key of ['env', 'viaGlobal', 'viaConstructor'] as const)
        assert.equal(body[key]?.reached, false, `${key}: ${JSON.stringify(body[key])}`);
      await innocentIsFine();
    });

    it('cannot read files, /proc/self/environ included, or spawn processes', async () => {
      for (const name of ['readFiles', 'spawnProcess']) {
        const answer = await call(name);
        assert.equal(answer.status, 200);
        for (const [key, probe] of Object.entries(
          answer.body as Record<string, { reached: boolean }>,
        ))
          assert.equal(probe.reached, false, `${name}.${key}: ${JSON.stringify(probe)}`);
      }
      await innocentIsFine();
    });

    it('has no network: no fetch, WebSocket, net module or dynamic import', async () => {
      const answer = await call('network');
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const body = answer.body as Record<string, unknown>;
      assert.equal(body.fetch, 'undefined');
      assert.equal(body.webSocket, 'undefined');
      assert.equal(body.xhr, 'undefined');
      assert.equal((body.net as { reached: boolean }).reached, false);
      assert.equal((body.imported as { reached: boolean }).reached, false);
      await innocentIsFine();
    });

    it('holds no message port, host callback or timer to forge messages or run later', async () => {
      const answer = await call('forge');
      assert.equal(answer.status, 200);
      const { handles, globals } = answer.body as { handles: string[]; globals: string[] };
      assert.deepEqual(handles.slice(0, 7), Array<string>(7).fill('undefined'));
      assert.deepEqual(globals, []);
      await innocentIsFine();
    });

    it('keeps prototype and global pollution inside the polluting function', async () => {
      assert.equal((await call('pollute')).status, 200);
      const own = await call('polluted');
      assert.deepEqual(own.body, { polluted: 'yes', shared: 'from pollute', includes: true });
      await innocentIsFine();
      await innocentIsFine();
    });

    it('ends an endless loop with TIMEOUT and an endless allocation with FUNCTION_CRASHED', async () => {
      const started = Date.now();
      const spin = await call('spin');
      assert.equal(spin.status, 504);
      assert.equal(errorCode(spin), 'TIMEOUT');
      assert.ok(Date.now() - started < 5000, 'the cap of 1500 ms applied');
      await innocentIsFine();
      const hog = await call('hog');
      assert.equal(hog.status, 500);
      assert.equal(errorCode(hog), 'FUNCTION_CRASHED');
      await innocentIsFine();
    });

    it('fails endless recursion and a result past the output limit alone', async () => {
      const recurse = await call('recurse');
      assert.equal(recurse.status, 500);
      assert.equal(errorCode(recurse), 'FUNCTION_ERROR');
      const huge = await call('huge');
      assert.equal(errorCode(huge), 'OUTPUT_TOO_LARGE', JSON.stringify(huge.body));
      await innocentIsFine();
    });

    it('does not let work go on after the handler returned, nor apply its writes', async () => {
      const lingering = await call('lingering');
      assert.equal(errorCode(lingering), 'TIMEOUT');
      // Only `lingering` writes to this document: nothing of it was stored.
      const doc = await fetch(`${node.url}/v1/docs/hostile/probe`, {
        headers: { authorization: `Bearer ${caller}` },
      });
      assert.equal(doc.status, 404, await doc.text());
      await innocentIsFine();
    });

    it('never shows the node secrets in an answer or in the log', async () => {
      await innocentIsFine();
      const everything = seen.join('\n') + node.output();
      assert.ok(seen.length >= 15, `answers checked: ${seen.length}`);
      assert.equal(everything.includes(AUTH_SECRET), false);
      assert.equal(everything.includes(PEER_SECRET), false);
    });
  });

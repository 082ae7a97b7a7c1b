/**
 * The data directory runs out of space: a node on a small tmpfs (mount -t
 * tmpfs; root only, otherwise the scenario says so and test/store-full.test.ts
 * covers the same path with injected ENOSPC) is filled up while SDK clients
 * write. Checked: the node counts STORE_FAILED and acknowledges nothing it
 * could not store, refuses HTTP writes with 503 STORE_FAILED, serves reads
 * (also of a document it must load from the full disk) and /healthz, resumes by
 * itself once space returns (every write then acknowledged), and after a
 * kill -9 every acknowledged write is there.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ChildNode } from '../test/helpers/node.js';
import { spawnNode, stopChild } from '../test/helpers/node.js';
import type { Form } from './form.js';
import {
  eventually,
  expect,
  newResult,
  sample,
  say,
  scrape,
  sleep,
  type ChaosResult,
} from './lib.js';
import { missingKeys, nodeReplica } from './replicas.js';
import { ACK_MAP, createWriterPool } from './writers.js';

const NAME = 'enospc';
const run = promisify(execFile);
const TMPFS_MB = 24;

const patch = (url: string, doc: string, body: unknown) =>
  fetch(`${url}/v1/docs/${doc}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });

export const diskFull = async (_form: Form): Promise<ChaosResult> => {
  const result = newResult(NAME);
  const mountPoint = await mkdtemp(join(tmpdir(), 'stateweave-chaos-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MB}m`, 'tmpfs', mountPoint]);
  } catch (err) {
    await rm(mountPoint, { recursive: true, force: true });
    result.notRun = `mount -t tmpfs refused (${(err as Error).message.split('\n')[0]}); test/store-full.test.ts injects ENOSPC instead`;
    return result;
  }
  const dataDir = join(mountPoint, 'data');
  const filler = join(mountPoint, 'filler');
  let node: ChildNode | undefined;
  const docs = ['chaos-full-0', 'chaos-full-1'];
  let pool: ReturnType<typeof createWriterPool> | undefined;
  try {
    const args = ['--idle-unload-ms', '300'];
    node = await spawnNode(dataDir, args);
    const url = node.url;
    expect(
      result,
      (await patch(url, 'chaos-full-read', { text: 'readable' })).status === 200,
      'the read document written',
    );
    pool = createWriterPool(
      Array.from({ length: 4 }, (_, i) => ({
        id: `f${i}`,
        doc: docs[i % docs.length]!,
        urls: [node!.wsUrl],
        padBytes: 2048,
      })),
    );
    await Promise.all(pool.writers.map((w) => w.handle.synced));
    pool.start(200);
    await sleep(500);
    // Leave about 1 MiB: the writers fill it within seconds.
    const fs = await statfs(mountPoint);
    const free = fs.bavail * fs.bsize;
    await writeFile(filler, Buffer.alloc(Math.max(0, free - 1024 * 1024))).catch(() => undefined);
    const failed = await eventually(
      async () => sample(await scrape(url), 'stateweave_errors_total{code="STORE_FAILED"}') > 0,
      20_000,
      100,
    );
    expect(result, failed, 'the node counted STORE_FAILED once the disk was full');
    const fullAt = performance.now();
    say(NAME, 'disk full');
    // Writes are refused with a clear code, reads keep working.
    let refusedStatus = 0;
    let refusedCode = '';
    await eventually(
      async () => {
        const res = await patch(url, docs[0]!, { meta: { at: Date.now() } });
        refusedStatus = res.status;
        refusedCode =
          ((await res.json().catch(() => ({}))) as { error?: { code?: string } }).error?.code ?? '';
        return res.status === 503;
      },
      10_000,
      200,
    );
    result.figures['HTTP write while full'] = `${refusedStatus} ${refusedCode}`;
    expect(
      result,
      refusedStatus === 503 && refusedCode === 'STORE_FAILED',
      `an HTTP write while full answered ${refusedStatus} ${refusedCode}, not 503 STORE_FAILED`,
    );
    const read = await fetch(`${url}/v1/docs/chaos-full-read`, {
      signal: AbortSignal.timeout(10_000),
    });
    const readBody = (await read.json().catch(() => ({}))) as { text?: string };
    expect(
      result,
      read.status === 200 && readBody.text === 'readable',
      `a read while full answered ${read.status}`,
    );
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(result, health.ok, '/healthz answers while full');
    const ackedWhileFull = pool.totals().acked;
    await sleep(1500);
    const { written: writtenFull, acked: ackedFull } = pool.totals();
    result.figures['writes while full (not acked)'] = writtenFull - ackedFull;
    result.figures['acked while full'] = ackedFull - ackedWhileFull;

    // Space returns: the node resumes by itself.
    await rm(filler, { force: true });
    const freedAt = performance.now();
    pool.stop();
    const recovered = await pool.allSaved(30_000);
    expect(result, recovered, 'every write acknowledged within 30 s after space returned');
    result.figures['full for ms'] = Math.round(freedAt - fullAt);
    result.figures['all acked ms after space returned'] = Math.round(performance.now() - freedAt);
    expect(
      result,
      (await patch(url, docs[0]!, { meta: { after: 'space' } })).status === 200,
      'an HTTP write after space returned',
    );
    const { written, acked } = pool.totals();
    result.figures['writes'] = written;
    result.figures['acked'] = acked;
    result.figures['STORE_FAILED counted'] = sample(
      await scrape(url),
      'stateweave_errors_total{code="STORE_FAILED"}',
    );

    // Nothing acknowledged is lost, across a kill -9 too.
    const ackedKeys = pool.ackedKeys();
    await stopChild(node, 'SIGKILL');
    node = await spawnNode(dataDir, args);
    let missing = 0;
    for (const doc of docs)
      missing += missingKeys(
        (await nodeReplica('restarted', node.url, doc)).state,
        ACK_MAP,
        ackedKeys.get(doc) ?? [],
      ).length;
    result.figures['acked writes missing after kill -9'] = missing;
    expect(result, missing === 0, `${missing} acknowledged writes missing after the restart`);
  } finally {
    await pool?.close();
    if (node) await stopChild(node, 'SIGKILL');
    await run('umount', [mountPoint]).catch((err: unknown) =>
      say(NAME, `umount failed: ${String(err)}`),
    );
    await rm(mountPoint, { recursive: true, force: true });
  }
  return result;
};

/**
 * A torn last write after a crash: a node is killed with -9 after its writes
 * were acknowledged, and a half-written record (a header that promises more
 * bytes than follow, as a write cut short leaves it) is appended to the newest
 * LevelDB log. Checked: the node starts, logs how many bytes of which log it
 * drops, and every acknowledged write is there.
 */
import { appendFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, type ChildNode } from '../test/helpers/node.js';
import { spawnNode, stopChild } from '../test/helpers/node.js';
import type { Form } from './form.js';
import { expect, newResult, sleep, type ChaosResult } from './lib.js';
import { missingKeys, nodeReplica } from './replicas.js';
import { ACK_MAP, createWriterPool } from './writers.js';

const NAME = 'torn';

/** A record header (FULL) that promises `length` payload bytes, followed by only `given`. */
const tornRecord = (length: number, given: number): Uint8Array => {
  const bytes = new Uint8Array(7 + given).fill(0xa5);
  bytes[4] = length & 0xff;
  bytes[5] = length >> 8;
  bytes[6] = 1;
  return bytes;
};

export const tornWrite = async (_form: Form): Promise<ChaosResult> => {
  const result = newResult(NAME);
  const dir = await tempDir();
  let node: ChildNode | undefined;
  const doc = 'chaos-torn';
  let writers: ReturnType<typeof createWriterPool> | undefined;
  try {
    node = await spawnNode(dir.path);
    const wsUrl = node.wsUrl;
    writers = createWriterPool([0, 1].map((i) => ({ id: `t${i}`, doc, urls: [wsUrl] })));
    await Promise.all(writers.writers.map((w) => w.handle.synced));
    writers.start(200);
    await sleep(1000);
    writers.stop();
    expect(result, await writers.allSaved(15_000), 'every write acknowledged before the crash');
    const acked = writers.ackedKeys().get(doc) ?? [];
    await writers.close();
    writers = undefined;
    await stopChild(node, 'SIGKILL');

    const log = (await readdir(dir.path))
      .filter((n) => /^\d+\.log$/.test(n))
      .sort((a, b) => parseInt(b, 10) - parseInt(a, 10))[0];
    expect(result, log !== undefined, 'a LevelDB log to tear');
    const torn = tornRecord(600, 150);
    if (log !== undefined) await appendFile(join(dir.path, log), torn);

    node = await spawnNode(dir.path);
    const said = node
      .output()
      .split('\n')
      .filter((line) => line.includes('store recovery'))
      .map((line) => JSON.parse(line) as { file?: string; droppedBytes?: number });
    result.figures['acked writes'] = acked.length;
    result.figures['torn bytes appended'] = torn.byteLength;
    result.figures['node says it drops'] =
      said[0] !== undefined ? `${said[0].droppedBytes} bytes of ${said[0].file}` : 'nothing';
    expect(
      result,
      said.length === 1 && said[0]!.droppedBytes === torn.byteLength && said[0]!.file === log,
      'the node logged the torn bytes it drops, with the file',
    );
    const missing = missingKeys(
      (await nodeReplica('restarted', node.url, doc)).state,
      ACK_MAP,
      acked,
    );
    result.figures['acked writes missing'] = missing.length;
    expect(
      result,
      missing.length === 0,
      `${missing.length} acknowledged writes missing after recovery`,
    );
    const health = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(result, health.ok, 'the recovered node answers /healthz');
  } finally {
    await writers?.close();
    if (node) await stopChild(node, 'SIGKILL');
    await dir.remove();
  }
  return result;
};

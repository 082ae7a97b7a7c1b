#!/usr/bin/env node
/**
 * `npm run bench:history` — what the history costs (docs/history.md, "Costs").
 *
 *   a  reading a past version of a 1 MiB document: `GET /v1/docs/:name?at=<id>`
 *      (binary and JSON) for versions spread over its history, median and p95 ms,
 *      and the rebuild alone (checkpoint + log entries into a Y.Doc)
 *   b  history size of an editing trace vs the bytes written: a seeded typing
 *      trace (single-character inserts at a moving cursor, some deletes) stored
 *      one update at a time; the history is every kept log entry, change-index
 *      line and checkpoint (keys and values), the snapshot is not counted
 *
 * A real node in this process with LevelDB in a temporary directory, writes
 * through the hub (the path every writer takes). Every loop is bounded.
 * Prints a table; writes results/history.json.
 *
 * Environment: BENCH_HISTORY_OPS [30000] trace length; BENCH_HISTORY_READS [40].
 */
import { mkdtemp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import * as Y from 'yjs';
import { validateDocName } from '../src/doc-name.js';
import { createServer } from '../src/server.js';
import { docAtSeq } from '../src/history/versions.js';
import { createLevelStore } from '../src/storage/level-store.js';
import { RESULTS_DIR } from './paths.js';

const BIG = validateDocName('big');

const HISTORY = process.env.BENCH_HISTORY_RETENTION === '0' ? 0 : undefined;
const OPS = Number(process.env.BENCH_HISTORY_OPS ?? 30_000);
const READS = Number(process.env.BENCH_HISTORY_READS ?? 40);
const ORIGIN = Object.freeze({ kind: 'http', sub: 'bench' } as const);

/** Seeded PRNG (mulberry32), so a run can be repeated. */
const rng = (seed: number) => (): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
const ms = (n: number): number => Math.round(n * 10) / 10;

const startNode = async (dataDir: string) => {
  const server = createServer({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    logger: pino({ level: 'silent' }),
    maxFrameBytes: 64 * 1024 * 1024,
    ...(HISTORY !== undefined ? { historyRetentionMs: HISTORY } : {}),
  });
  const { port } = await server.listen();
  return { server, url: `http://127.0.0.1:${port}` };
};

/** Sum of key and value bytes under each history prefix of the store. */
type HistoryPart = 'log' | 'index' | 'checkpoints' | 'snapshot';
const historyBytes = async (dir: string): Promise<Record<HistoryPart, number>> => {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  const sizes: Record<HistoryPart, number> = { log: 0, index: 0, checkpoints: 0, snapshot: 0 };
  const kinds: Record<string, HistoryPart> = {
    l: 'log',
    c: 'index',
    k: 'checkpoints',
    v: 'checkpoints',
    s: 'snapshot',
    p: 'snapshot',
  };
  for await (const [key, value] of db.iterator()) {
    const kind = kinds[key[0] ?? ''];
    if (kind) sizes[kind] += Buffer.byteLength(key) + value.byteLength;
  }
  await db.close();
  return sizes;
};

/** Bytes of the LevelDB files once LevelDB has compacted them (prefix-compressed keys, snappy). */
const diskBytes = async (dir: string): Promise<number> => {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  // classic-level has compactRange; abstract-level's types do not list it
  await (db as unknown as { compactRange(a: string, b: string): Promise<void> }).compactRange(
    '\0',
    '\xff',
  );
  await db.close();
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
};

/** a: versions of a 1 MiB document. */
const versionReads = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stateweave-bench-history-'));
  try {
    let node = await startNode(dir);
    const local = new Y.Doc();
    const text = local.getText('t');
    const random = rng(7);
    const seqs: number[] = [];
    // 2048 updates of 512 characters (1 MiB), with a deletion now and then.
    for (let i = 0; i < 2048; i++) {
      const before = Y.encodeStateVector(local);
      const chunk = Array.from({ length: 512 }, () =>
        String.fromCharCode(97 + Math.floor(random() * 26)),
      ).join('');
      text.insert(Math.floor(random() * (text.length + 1)), chunk);
      if (i % 16 === 15) text.delete(Math.floor(random() * (text.length - 64)), 64);
      await node.server.hub.applyUpdate(BIG, Y.encodeStateAsUpdate(local, before), ORIGIN);
      seqs.push(node.server.hub.peek(BIG)?.lastSeq ?? NaN);
    }
    const finalBytes = Y.encodeStateAsUpdate(local).byteLength;
    // Read from a restarted node: nothing is warm.
    await node.server.close();
    node = await startNode(dir);
    const pick = rng(11);
    const picks = Array.from(
      { length: READS },
      () => seqs[Math.floor(pick() * seqs.length)] ?? NaN,
    );
    const time = async (accept: string): Promise<number[]> => {
      const out: number[] = [];
      for (const seq of picks) {
        const started = performance.now();
        const res = await fetch(`${node.url}/v1/docs/big?at=${seq}`, { headers: { accept } });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`GET ?at=${seq}: ${res.status}`);
        out.push(performance.now() - started);
      }
      return out.sort((a, b) => a - b);
    };
    const binary = await time('application/octet-stream');
    const json = await time('application/json');
    await node.server.close();
    // The rebuild alone, on the store.
    const store = await createLevelStore(dir);
    const rebuild: number[] = [];
    for (const seq of picks) {
      const started = performance.now();
      const doc = await docAtSeq(store, BIG, seq, true);
      rebuild.push(performance.now() - started);
      doc.destroy();
    }
    rebuild.sort((a, b) => a - b);
    const checkpoints = (await store.checkpoints(BIG)).length;
    await store.close();
    return {
      docBytes: finalBytes,
      updates: seqs.length,
      checkpoints,
      binary: { median: ms(pct(binary, 0.5)), p95: ms(pct(binary, 0.95)) },
      json: { median: ms(pct(json, 0.5)), p95: ms(pct(json, 0.95)) },
      rebuild: { median: ms(pct(rebuild, 0.5)), p95: ms(pct(rebuild, 0.95)) },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

/** b: an editing trace, history bytes vs written bytes. */
const traceCost = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stateweave-bench-history-'));
  try {
    const node = await startNode(dir);
    const local = new Y.Doc();
    const text = local.getText('t');
    const random = rng(3);
    let cursor = 0;
    let written = 0;
    // What a client sends is the transaction's update event, not a diff against a state vector.
    let update: Uint8Array = new Uint8Array(0);
    local.on('update', (u: Uint8Array) => (update = u));
    for (let i = 0; i < OPS; i++) {
      const r = random();
      if (r < 0.05) cursor = Math.floor(random() * (text.length + 1)); // jump elsewhere
      if (r > 0.85 && cursor > 0) {
        text.delete(--cursor, 1);
      } else {
        text.insert(cursor++, String.fromCharCode(97 + Math.floor(random() * 26)));
      }
      written += update.byteLength;
      await node.server.hub.applyUpdate(validateDocName('trace'), update, ORIGIN);
    }
    await node.server.close();
    const sizes = await historyBytes(dir);
    const disk = await diskBytes(dir);
    const history = sizes.log + sizes.index + sizes.checkpoints;
    return {
      ops: OPS,
      writtenBytes: written,
      docBytes: Y.encodeStateAsUpdate(local).byteLength,
      ...sizes,
      historyBytes: history,
      ratio: Math.round((history / written) * 100) / 100,
      diskBytes: disk,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const a = process.env.BENCH_HISTORY_ROWS === 'b' ? undefined : await versionReads();
if (a) {
  console.log(
    `a  version read of a ${(a.docBytes / 1048576).toFixed(2)} MiB document (${a.updates} updates, ${a.checkpoints} checkpoints, ${READS} reads):`,
  );
  console.log(`   GET ?at= binary  median ${a.binary.median} ms  p95 ${a.binary.p95} ms`);
  console.log(`   GET ?at= JSON    median ${a.json.median} ms  p95 ${a.json.p95} ms`);
  console.log(`   rebuild only     median ${a.rebuild.median} ms  p95 ${a.rebuild.p95} ms`);
}
const b = await traceCost();
console.log(
  `b  editing trace of ${b.ops} keystrokes: written ${b.writtenBytes} B, history ${b.historyBytes} B (log ${b.log}, index ${b.index}, checkpoints ${b.checkpoints}) = ${b.ratio}× written; final document ${b.docBytes} B; LevelDB files ${b.diskBytes} B`,
);
await mkdir(RESULTS_DIR, { recursive: true });
await writeFile(join(RESULTS_DIR, 'history.json'), JSON.stringify({ a, b }, null, 2) + '\n');

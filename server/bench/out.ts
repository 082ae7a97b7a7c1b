#!/usr/bin/env node
/**
 * `npm run bench:out` — how changes leave a node (docs/history.md):
 *
 *   a  webhooks: N changes over D documents written through the hub, delivered
 *      to a local receiver that answers 204: time until every change arrived,
 *      events sent (debouncing merges a document's burst), and the lag from a
 *      change being stored to its event arriving (median, p95)
 *   b  backup: GET /v1/backup of that store into a new LevelDB directory
 *      (what `stateweave backup` does), MB/s, and a node started on the copy
 *      lists the same documents
 *
 * A real node in this process, LevelDB in a temporary directory; every loop is
 * bounded. Prints a table; writes results/out.json.
 *
 * Environment: BENCH_OUT_CHANGES [20000], BENCH_OUT_DOCS [200].
 */
import { createServer as createHttpServer } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import * as Y from 'yjs';
import { validateDocName } from '../src/doc-name.js';
import { createServer } from '../src/server.js';
import { decodeBackup } from '../src/storage/backup-format.js';
import { writeBackupDir } from '../src/storage/backup-dir.js';
import { RESULTS_DIR } from './paths.js';

const CHANGES = Number(process.env.BENCH_OUT_CHANGES ?? 20_000);
const DOCS = Number(process.env.BENCH_OUT_DOCS ?? 200);
const ORIGIN = Object.freeze({ kind: 'http', sub: 'bench' } as const);
const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

/** The part of a webhook event this bench reads. */
interface HookEvent {
  data: { changes: number; firstTime: string };
}

const receiver = async () => {
  const lags: number[] = [];
  let changes = 0;
  let events = 0;
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { data } = JSON.parse(Buffer.concat(chunks).toString()) as HookEvent;
      events++;
      changes += data.changes;
      lags.push(Date.now() - Date.parse(data.firstTime));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('receiver: no port');
  return {
    url: `http://127.0.0.1:${address.port}/hook`,
    stats: () => ({ lags, changes, events }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
};

const root = await mkdtemp(join(tmpdir(), 'stateweave-bench-out-'));
const hook = await receiver();
const node = createServer({
  host: '127.0.0.1',
  port: 0,
  dataDir: join(root, 'data'),
  logger: pino({ level: 'silent' }),
  webhooks: [hook.url],
  webhookSecret: 'bench-webhook-secret-0123456789',
  webhookDebounceMs: 100,
});
const { port } = await node.listen();
const url = `http://127.0.0.1:${port}`;

// a: webhooks
const writers = Array.from({ length: DOCS }, () => new Y.Doc());
const started = Date.now();
for (let i = 0; i < CHANGES; i++) {
  const d = writers[i % DOCS] ?? new Y.Doc();
  const before = Y.encodeStateVector(d);
  d.getText('t').insert(0, `change ${i}; `);
  await node.hub.applyUpdate(
    validateDocName(`bench/${i % DOCS}`),
    Y.encodeStateAsUpdate(d, before),
    ORIGIN,
  );
}
const written = Date.now();
for (let i = 0; i < 6000 && hook.stats().changes < CHANGES; i++)
  await new Promise((r) => setTimeout(r, 50));
const delivered = Date.now();
const { lags, changes, events } = hook.stats();
lags.sort((a, b) => a - b);

// b: backup
const t0 = Date.now();
const res = await fetch(`${url}/v1/backup`);
if (!res.body) throw new Error(`GET /v1/backup: ${res.status}, no body`);
const copy = await writeBackupDir(
  join(root, 'copy'),
  decodeBackup(res.body as unknown as AsyncIterable<Uint8Array>),
);
const backupMs = Date.now() - t0;
await node.close();
await hook.close();
const restored = createServer({
  host: '127.0.0.1',
  port: 0,
  dataDir: join(root, 'copy'),
  logger: pino({ level: 'silent' }),
});
const r = await restored.listen();
const listed = (await (
  await fetch(`http://127.0.0.1:${r.port}/v1/docs?prefix=bench/&limit=1000`)
).json()) as { docs: unknown[] };
await restored.close();
await rm(root, { recursive: true, force: true });

const result = {
  webhooks: {
    changes: CHANGES,
    documents: DOCS,
    writeMs: written - started,
    allDeliveredMs: delivered - started,
    delivered: changes,
    events,
    lagMedianMs: pct(lags, 0.5),
    lagP95Ms: pct(lags, 0.95),
  },
  backup: {
    entries: copy.entries,
    valueBytes: copy.bytes,
    ms: backupMs,
    entriesPerSecond: Math.round(copy.entries / (backupMs / 1000)),
    mbPerSecond: Math.round((copy.bytes / 1e6 / (backupMs / 1000)) * 10) / 10,
    restoredDocuments: listed.docs.length,
  },
};
console.table(result.webhooks);
console.table(result.backup);
await mkdir(RESULTS_DIR, { recursive: true });
await writeFile(join(RESULTS_DIR, 'out.json'), `${JSON.stringify(result, null, 2)}\n`);
if (changes < CHANGES) {
  console.error(`only ${changes} of ${CHANGES} changes were delivered`);
  process.exit(1);
}

/**
 * A soak of mixed traffic on one node: SDK writers with acks, stock clients
 * typing and updating their presence, function calls over HTTP (the demo's
 * trackVisit), and clients that join a document, sync and leave, every
 * second. 30 minutes in the full form, 20 s in the short one.
 *
 * The writers and typists move to four new documents every generation (3 min;
 * 8 s in the short form), as an application's documents come and go, and the
 * node unloads the idle ones. A Yjs document never shrinks in memory: every
 * overwritten map value stays as a deleted item (45,000 overwrites of 500 keys
 * hold about 9 MiB of heap), so four documents written for 30 minutes grow the
 * node by ~37 MiB with no leak at all. With generations, what the node holds
 * for live documents is bounded, and growth across generations is a leak: of
 * rooms, connections, workers, history or metrics.
 *
 * Sampled from /proc: the node's RSS and open file descriptors; from /metrics:
 * its heap in use and open documents. Checked, for every generation: every
 * write acknowledged, the node and its stock clients identical, no key older
 * than its acknowledged write. At the end: 0 errors (node metrics, failed
 * calls, joins), descriptors back to where they were; RSS flat (the last
 * quarter within 10% of the second quarter) in the full form only, since a
 * short run is dominated by warm-up.
 */
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import { tempDir, type ChildNode } from '../test/helpers/node.js';
import { spawnNode, stopChild } from '../test/helpers/node.js';
import type { Form } from './form.js';
import {
  eventually,
  expect,
  familyTotal,
  mib,
  newResult,
  openFds,
  percentile,
  rssBytes,
  sample,
  say,
  scrape,
  sleep,
  type ChaosResult,
} from './lib.js';
import { compareReplicas, nodeReplica } from './replicas.js';
import { createWriterPool, stockEditor, type StockEditor, type WriterPool } from './writers.js';

const NAME = 'soak';
const FUNCTIONS = fileURLToPath(new URL('../../../demo-app/functions', import.meta.url));
const HEAP = 'stateweave_process_nodejs_heap_size_used_bytes';

/** Four documents with their acknowledged writers and stock typists. */
interface Generation {
  readonly index: number;
  readonly docs: readonly string[];
  readonly pool: WriterPool;
  readonly editors: readonly StockEditor[];
}

const startGeneration = async (wsUrl: string, index: number): Promise<Generation> => {
  const docs = Array.from({ length: 4 }, (_, i) => `chaos-soak-g${index}-${i}`);
  const pool = createWriterPool(
    docs.map((doc, i) => ({ id: `g${index}s${i}`, doc, urls: [wsUrl], keySpace: 500 })),
  );
  const editors = docs.map((doc, i) => stockEditor(wsUrl, doc, `g${index}e${i}-`, 5));
  await Promise.all(pool.writers.map((w) => w.handle.synced));
  await eventually(() => editors.every((e) => e.provider.synced), 15_000);
  pool.start(100);
  return { index, docs, pool, editors };
};

/** What one finished generation left, checked against the node. */
interface GenerationCheck {
  readonly unacknowledged: boolean;
  readonly differing: string[];
  readonly staleKeys: number;
  readonly storedBytes: number;
  readonly written: number;
  readonly edits: number;
}

/** Stops a generation's load, then compares the node with its clients; closes them. */
const endGeneration = async (url: string, g: Generation): Promise<GenerationCheck> => {
  g.pool.stop();
  for (const e of g.editors) e.stop();
  const acked = await g.pool.allSaved(30_000);
  const differing: string[] = [];
  let staleKeys = 0;
  let storedBytes = 0;
  for (const doc of g.docs) {
    const editors = g.editors.filter((e) => e.provider.roomname === doc);
    const replicas = async () => [
      await nodeReplica('node', url, doc),
      ...editors.map((e) => ({ name: 'stock client', state: Y.encodeStateAsUpdate(e.doc) })),
    ];
    let last = await replicas();
    const same = await eventually(
      async () => compareReplicas((last = await replicas())).identical,
      10_000,
      200,
    );
    if (!same) differing.push(doc);
    staleKeys += g.pool.staleKeys(doc, last[0]!.state).length;
    storedBytes += last[0]!.state.byteLength;
  }
  const written = g.pool.totals().written;
  const edits = g.editors.reduce((n, e) => n + e.edits, 0);
  for (const e of g.editors) e.destroy();
  await g.pool.close();
  return { unacknowledged: !acked, differing, staleKeys, storedBytes, written, edits };
};

export const soak = async (form: Form): Promise<ChaosResult> => {
  const result = newResult(NAME);
  // STATEWEAVE_CHAOS_SOAK_MINUTES shortens or lengthens the full form's soak.
  const fullMinutes = Number(process.env.STATEWEAVE_CHAOS_SOAK_MINUTES ?? 30);
  const durationMs = form.full ? fullMinutes * 60_000 : 20_000;
  const generationMs = form.full ? 3 * 60_000 : 8000;
  const sampleEveryMs = form.full ? 10_000 : 1000;
  const dir = await tempDir();
  let node: ChildNode | undefined;
  let current: Generation | undefined;
  const transient = new Set<StockEditor>();
  const timers: NodeJS.Timeout[] = [];
  try {
    // The default idle unload (30 s) fits the full form's generations; the short
    // form's 8 s generations need a shorter one to unload anything.
    node = await spawnNode(dir.path, [
      '--functions',
      FUNCTIONS,
      ...(form.full ? [] : ['--idle-unload-ms', '2000']),
    ]);
    const { url, wsUrl } = node;
    const pid = node.child.pid!;
    current = await startGeneration(wsUrl, 0);
    // Presence: each typist moves its cursor twice a second, and keeps its text
    // under 2,000 characters (deleting from the start).
    timers.push(
      setInterval(() => {
        for (const e of current?.editors ?? []) {
          e.provider.awareness.setLocalStateField('cursor', Math.floor(Math.random() * 1000));
          const text = e.doc.getText('text');
          if (text.length > 2000) text.delete(0, text.length - 1000);
        }
      }, 500),
    );
    // Functions: ten calls a second.
    let calls = 0;
    let callsFailed = 0;
    timers.push(
      setInterval(() => {
        calls++;
        fetch(`${url}/v1/functions/trackVisit/invoke`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          // A bounded set of visitors, so the analytics documents stop growing.
          body: JSON.stringify({ page: `p${calls % 5}`, visitor: `v${calls % 200}` }),
          signal: AbortSignal.timeout(10_000),
        }).then(
          async (res) => {
            await res.arrayBuffer();
            if (!res.ok) callsFailed++;
          },
          () => callsFailed++,
        );
      }, 100),
    );
    // Joins and leaves: one client a second joins a live document, syncs, and leaves 2 s later.
    let joins = 0;
    let joinsUnsynced = 0;
    timers.push(
      setInterval(() => {
        if (current === undefined) return;
        joins++;
        const guest = stockEditor(wsUrl, current.docs[joins % current.docs.length]!, 'guest', 0);
        transient.add(guest);
        setTimeout(() => {
          if (!guest.provider.synced) joinsUnsynced++;
          guest.destroy();
          transient.delete(guest);
        }, 2000);
      }, 1000),
    );

    const checks: GenerationCheck[] = [];
    const samples: Array<{ rss: number; fds: number; heap: number; open: number }> = [];
    const started = Date.now();
    const end = started + durationMs;
    let nextGeneration = started + generationMs;
    while (Date.now() < end) {
      await sleep(Math.min(sampleEveryMs, Math.max(0, end - Date.now())));
      const metrics = await scrape(url);
      samples.push({
        rss: await rssBytes(pid),
        fds: await openFds(pid),
        heap: sample(metrics, HEAP),
        open: sample(metrics, 'stateweave_open_documents'),
      });
      if (Date.now() >= nextGeneration && Date.now() < end - generationMs / 2) {
        const finished = current;
        current = undefined;
        checks.push(await endGeneration(url, finished));
        current = await startGeneration(wsUrl, finished.index + 1);
        nextGeneration = Date.now() + generationMs;
      }
      const s = samples.at(-1)!;
      if (form.full && samples.length % 6 === 0)
        say(
          NAME,
          `${Math.round((Date.now() - started) / 60_000)} min, generation ${current?.index}: ` +
            `rss ${mib(s.rss)}, heap ${mib(s.heap)}, open documents ${s.open}, fds ${s.fds}`,
        );
    }
    for (const t of timers) clearInterval(t);
    const last = current!;
    current = undefined;
    checks.push(await endGeneration(url, last));
    // Let the transient clients leave and the node settle, then count descriptors again.
    await eventually(() => transient.size === 0, 5000);
    await sleep(1000);
    const fdsAfter = await openFds(pid);

    const q = Math.max(1, Math.floor(samples.length / 4));
    const median = (xs: number[]) => percentile(xs, 50);
    const quarter = (
      from: number,
      to: number | undefined,
      pick: (s: (typeof samples)[0]) => number,
    ) => median(samples.slice(from, to).map(pick));
    const rssSecond = quarter(q, 2 * q, (s) => s.rss);
    const rssLast = quarter(-q, undefined, (s) => s.rss);
    const heapSecond = quarter(q, 2 * q, (s) => s.heap);
    const heapLast = quarter(-q, undefined, (s) => s.heap);
    const fdsFirst = quarter(0, q, (s) => s.fds);
    const fdsLast = quarter(-q, undefined, (s) => s.fds);
    const metrics = await scrape(url);
    const nodeErrors = familyTotal(metrics, 'stateweave_errors_total');
    const written = checks.reduce((n, c) => n + c.written, 0);
    const staleKeys = checks.reduce((n, c) => n + c.staleKeys, 0);
    result.figures['minutes'] = Math.round(durationMs / 6000) / 10;
    result.figures['generations'] = checks.length;
    result.figures['writes'] = written;
    result.figures['stock edits'] = checks.reduce((n, c) => n + c.edits, 0);
    result.figures['function calls (failed)'] = `${calls} (${callsFailed})`;
    result.figures['joins (not synced in 2 s)'] = `${joins} (${joinsUnsynced})`;
    result.figures['node errors'] = nodeErrors;
    result.figures['RSS 2nd quarter → last quarter'] = `${mib(rssSecond)} → ${mib(rssLast)}`;
    result.figures['RSS max'] = mib(Math.max(...samples.map((s) => s.rss)));
    result.figures['heap in use 2nd quarter → last quarter'] =
      `${mib(heapSecond)} → ${mib(heapLast)}`;
    result.figures['open documents, max'] = Math.max(...samples.map((s) => s.open));
    result.figures['fds first quarter → last quarter → after'] =
      `${fdsFirst} → ${fdsLast} → ${fdsAfter}`;
    result.figures['a generation at its end (encoded)'] =
      `${(checks.at(-1)!.storedBytes / 1024).toFixed(0)} KiB`;
    expect(result, nodeErrors === 0, `${nodeErrors} errors counted by the node`);
    expect(result, callsFailed === 0, `${callsFailed} function calls failed`);
    expect(result, joinsUnsynced === 0, `${joinsUnsynced} joining clients did not sync within 2 s`);
    for (const c of checks) {
      expect(result, !c.unacknowledged, 'every write acknowledged');
      for (const doc of c.differing)
        expect(result, false, `${doc}: the node and its stock clients differ`);
    }
    expect(result, staleKeys === 0, `${staleKeys} keys older than their acknowledged write`);
    // Descriptors: what the load holds at most (4 writers, editors, guests, HTTP) comes back.
    expect(
      result,
      fdsAfter <= fdsFirst + 2,
      `open fds ${fdsFirst} at the start, ${fdsAfter} after the load`,
    );
    if (form.full)
      expect(
        result,
        rssLast <= rssSecond * 1.1,
        `RSS grew from ${mib(rssSecond)} to ${mib(rssLast)}`,
      );
  } finally {
    for (const t of timers) clearInterval(t);
    for (const g of transient) g.destroy();
    for (const e of current?.editors ?? []) e.destroy();
    await current?.pool.close();
    if (node) await stopChild(node, 'SIGKILL');
    await dir.remove();
  }
  return result;
};

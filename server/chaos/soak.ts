/**
 * A soak of mixed traffic on one node: SDK writers with acks, stock clients
 * typing and updating their presence, function calls over HTTP (the demo's
 * trackVisit), and clients that join a document, sync and leave, every
 * second. 30 minutes in the full form, 20 s in the short one. Sampled from
 * /proc: the node's RSS and open file descriptors. Checked: 0 errors (node
 * metrics, failed calls, unacknowledged writes), every replica identical,
 * descriptors back to where they were once the load stops; RSS flat (the last
 * quarter within 25% of the second quarter) in the full form only, since a
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
  say,
  scrape,
  sleep,
  type ChaosResult,
} from './lib.js';
import { compareReplicas, nodeReplica } from './replicas.js';
import { createWriterPool, stockEditor, type StockEditor } from './writers.js';

const NAME = 'soak';
const FUNCTIONS = fileURLToPath(new URL('../../../demo-app/functions', import.meta.url));

export const soak = async (form: Form): Promise<ChaosResult> => {
  const result = newResult(NAME);
  // STATEWEAVE_CHAOS_SOAK_MINUTES shortens or lengthens the full form's soak.
  const fullMinutes = Number(process.env.STATEWEAVE_CHAOS_SOAK_MINUTES ?? 30);
  const durationMs = form.full ? fullMinutes * 60_000 : 20_000;
  const sampleEveryMs = form.full ? 10_000 : 1000;
  const docs = Array.from({ length: 4 }, (_, i) => `chaos-soak-${i}`);
  const dir = await tempDir();
  let node: ChildNode | undefined;
  let pool: ReturnType<typeof createWriterPool> | undefined;
  const editors: StockEditor[] = [];
  const transient = new Set<StockEditor>();
  const timers: NodeJS.Timeout[] = [];
  try {
    node = await spawnNode(dir.path, ['--functions', FUNCTIONS]);
    const { url, wsUrl } = node;
    const pid = node.child.pid!;
    const writers = createWriterPool(
      Array.from({ length: 4 }, (_, i) => ({
        id: `s${i}`,
        doc: docs[i]!,
        urls: [wsUrl],
        keySpace: 500,
      })),
    );
    pool = writers;
    for (const [i, doc] of docs.entries()) editors.push(stockEditor(wsUrl, doc, `e${i}-`, 5));
    await Promise.all(writers.writers.map((w) => w.handle.synced));
    await eventually(() => editors.every((e) => e.provider.synced), 15_000);
    writers.start(100);
    // Presence: each editor moves its cursor twice a second; and keeps its text
    // under 2,000 characters (deleting from the start), so the documents stop growing.
    timers.push(
      setInterval(() => {
        for (const e of editors) {
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
    // Joins and leaves: one client a second joins a document, syncs, and leaves 2 s later.
    let joins = 0;
    let joinsUnsynced = 0;
    timers.push(
      setInterval(() => {
        joins++;
        const guest = stockEditor(wsUrl, docs[joins % docs.length]!, 'guest', 0);
        transient.add(guest);
        setTimeout(() => {
          if (!guest.provider.synced) joinsUnsynced++;
          guest.destroy();
          transient.delete(guest);
        }, 2000);
      }, 1000),
    );

    const samples: Array<{ rss: number; fds: number }> = [];
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      await sleep(Math.min(sampleEveryMs, Math.max(0, end - Date.now())));
      samples.push({ rss: await rssBytes(pid), fds: await openFds(pid) });
      if (form.full && samples.length % 6 === 0)
        say(
          NAME,
          `${Math.round((durationMs - (end - Date.now())) / 60_000)} min: rss ${mib(samples.at(-1)!.rss)}, fds ${samples.at(-1)!.fds}`,
        );
    }
    for (const t of timers) clearInterval(t);
    writers.stop();
    for (const e of editors) e.stop();
    // Let the transient clients leave and the node settle, then count descriptors again.
    await eventually(() => transient.size === 0, 5000);
    expect(result, await writers.allSaved(30_000), 'every write acknowledged');
    await sleep(1000);
    const fdsAfter = await openFds(pid);

    const q = Math.max(1, Math.floor(samples.length / 4));
    const median = (xs: number[]) => percentile(xs, 50);
    const rssSecond = median(samples.slice(q, 2 * q).map((s) => s.rss));
    const rssLast = median(samples.slice(-q).map((s) => s.rss));
    const fdsFirst = median(samples.slice(0, q).map((s) => s.fds));
    const fdsLast = median(samples.slice(-q).map((s) => s.fds));
    const metrics = await scrape(url);
    const nodeErrors = familyTotal(metrics, 'stateweave_errors_total');
    const { written, acked } = writers.totals();
    result.figures['minutes'] = Math.round(durationMs / 6000) / 10;
    result.figures['writes (acked)'] = `${written} (${acked})`;
    result.figures['stock edits'] = editors.reduce((n, e) => n + e.edits, 0);
    result.figures['function calls (failed)'] = `${calls} (${callsFailed})`;
    result.figures['joins (not synced in 2 s)'] = `${joins} (${joinsUnsynced})`;
    result.figures['node errors'] = nodeErrors;
    result.figures['RSS 2nd quarter → last quarter'] = `${mib(rssSecond)} → ${mib(rssLast)}`;
    result.figures['RSS max'] = mib(Math.max(...samples.map((s) => s.rss)));
    result.figures['fds first quarter → last quarter → after'] =
      `${fdsFirst} → ${fdsLast} → ${fdsAfter}`;
    expect(result, nodeErrors === 0, `${nodeErrors} errors counted by the node`);
    expect(result, callsFailed === 0, `${callsFailed} function calls failed`);
    expect(result, joinsUnsynced === 0, `${joinsUnsynced} joining clients did not sync within 2 s`);
    // Descriptors: what the load holds at most (4 writers, editors, guests, HTTP) comes back.
    expect(
      result,
      fdsAfter <= fdsFirst + 2,
      `open fds ${fdsFirst} at the start, ${fdsAfter} after the load`,
    );
    if (form.full)
      expect(
        result,
        rssLast <= rssSecond * 1.25,
        `RSS grew from ${mib(rssSecond)} to ${mib(rssLast)}`,
      );

    // Replicas: the node and each stock editor; every acknowledged write present.
    let missing = 0;
    let stored = 0;
    for (const doc of docs) {
      const replicas = [
        await nodeReplica('node', url, doc),
        ...editors
          .filter((e) => e.provider.roomname === doc)
          .map((e) => ({ name: 'stock client', state: Y.encodeStateAsUpdate(e.doc) })),
      ];
      const same = await eventually(
        async () => {
          replicas[0] = await nodeReplica('node', url, doc);
          for (let i = 1; i < replicas.length; i++) {
            const e = editors.filter((x) => x.provider.roomname === doc)[i - 1]!;
            replicas[i] = { name: 'stock client', state: Y.encodeStateAsUpdate(e.doc) };
          }
          return compareReplicas(replicas).identical;
        },
        10_000,
        200,
      );
      expect(result, same, `${doc}: the node and its stock clients differ`);
      missing += writers.staleKeys(doc, replicas[0]!.state).length;
      stored += replicas[0]!.state.byteLength;
    }
    result.figures['documents at the end (encoded)'] = `${(stored / 1024).toFixed(0)} KiB`;
    expect(result, missing === 0, `${missing} keys older than their acknowledged write`);
  } finally {
    for (const t of timers) clearInterval(t);
    for (const g of transient) g.destroy();
    for (const e of editors) e.destroy();
    await pool?.close();
    if (node) await stopChild(node, 'SIGKILL');
    await dir.remove();
  }
  return result;
};

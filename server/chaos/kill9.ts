/**
 * kill -9 under load: a node of a three-node cluster is killed and restarted
 * again and again while SDK clients write ~500 updates/s and record which were
 * acknowledged as saved, and stock y-websocket clients type along. Checked by
 * code: every write acknowledged by the killed node is in its store right after
 * each restart; at the end every acknowledged write is in every replica, and the
 * replicas (three nodes and a fresh client) are byte-identical.
 */
import * as Y from 'yjs';
import type { Form } from './form.js';
import { startChaosCluster } from './cluster.js';
import { eventually, expect, newResult, say, sleep, type ChaosResult } from './lib.js';
import { compareReplicas, missingKeys, nodeReplica, type Replica } from './replicas.js';
import { ACK_MAP, createWriterPool, stockEditor, type StockEditor } from './writers.js';

const NAME = 'kill9';

/** A stock client as the checker names it: where it connects, and whether it is connected and synced now. */
const stockName = (e: StockEditor): string =>
  `stock ${e.provider.url} (${e.provider.wsconnected ? 'connected' : 'disconnected'}${e.provider.synced ? ', synced' : ''}, client ${e.doc.clientID})`;

export const killNine = async (form: Form): Promise<ChaosResult> => {
  const result = newResult(NAME);
  const kills = form.full ? 20 : 3;
  const cycleMs = form.full ? 3000 : 1000;
  const rate = 500;
  const docs = Array.from({ length: 5 }, (_, i) => `chaos-kill-${i}`);
  const cluster = await startChaosCluster({ count: 3 });
  const [victim, n2, n3] = cluster.nodes;
  // Six writers only know the victim (they come back to it after each kill); four write elsewhere.
  const pool = createWriterPool(
    Array.from({ length: 10 }, (_, i) => ({
      id: `w${i}`,
      doc: docs[i % docs.length]!,
      urls: [i < 6 ? victim!.wsUrl : i % 2 === 0 ? n2!.wsUrl : n3!.wsUrl],
    })),
  );
  const onVictim = pool.writers.filter((_, i) => i < 6);
  const editors: StockEditor[] = docs.flatMap((doc, i) => [
    stockEditor(victim!.wsUrl, doc, `v${i}-`, 5),
    stockEditor(n2!.wsUrl, doc, `s${i}-`, 5),
  ]);
  try {
    const synced = await Promise.race([
      Promise.all(pool.writers.map((w) => w.handle.synced)).then(() => true),
      sleep(15_000).then(() => false),
    ]);
    expect(result, synced, 'every writer synced within 15 s');
    const started = performance.now();
    pool.start(rate);
    let lostAtRestart = 0;
    const restartMs: number[] = [];
    for (let k = 1; k <= kills; k++) {
      await sleep(cycleMs);
      // What the victim acknowledged before it dies must be in its own store after.
      const ackedByVictim = new Map<string, string[]>();
      for (const w of onVictim) {
        const keys = ackedByVictim.get(w.doc) ?? [];
        keys.push(...w.keys(w.acked));
        ackedByVictim.set(w.doc, keys);
      }
      await cluster.kill(0);
      const down = performance.now();
      const restarted = await cluster.restart(0);
      restartMs.push(performance.now() - down);
      for (const [doc, keys] of ackedByVictim) {
        const replica = await nodeReplica('victim', restarted.url, doc);
        lostAtRestart += missingKeys(replica.state, ACK_MAP, keys).length;
      }
      say(NAME, `kill ${k}/${kills}: restarted in ${Math.round(restartMs.at(-1)!)} ms`);
    }
    await sleep(cycleMs);
    pool.stop();
    for (const e of editors) e.stop();
    const elapsedS = (performance.now() - started) / 1000;
    const { written, acked } = pool.totals();
    result.figures['kills'] = kills;
    result.figures['updates written'] = written;
    result.figures['updates/s'] = Math.round(written / elapsedS);
    result.figures['acked before the end'] = acked;
    result.figures['stock edits'] = editors.reduce((n, e) => n + e.edits, 0);
    result.figures['restart ms (max)'] = Math.round(Math.max(...restartMs));
    result.figures['acked writes missing on the victim after a restart'] = lostAtRestart;
    expect(
      result,
      lostAtRestart === 0,
      `${lostAtRestart} acknowledged writes missing on the victim after a restart`,
    );

    expect(
      result,
      await pool.allSaved(30_000),
      'every write acknowledged within 30 s after the load',
    );
    // Stock clients have no acks: wait until each holds what the node holds.
    const nodes = cluster.nodes;
    let comparisons: ReturnType<typeof compareReplicas>[] = [];
    const converged = await eventually(
      async () => {
        comparisons = [];
        for (const doc of docs) {
          const replicas: Replica[] = await Promise.all(
            nodes.map((n) => nodeReplica(n.id, n.url, doc)),
          );
          for (const e of editors.filter((e) => e.provider.roomname === doc))
            replicas.push({ name: stockName(e), state: Y.encodeStateAsUpdate(e.doc) });
          comparisons.push(compareReplicas(replicas));
        }
        return comparisons.every((c) => c.identical);
      },
      30_000,
      250,
    );
    expect(
      result,
      converged,
      `replicas identical within 30 s (differing: ${comparisons.flatMap((c) => c.differing).join(', ')})`,
    );

    // A fresh client of each document, and every acknowledged key in every replica.
    const ackedKeys = pool.ackedKeys();
    let missing = 0;
    let rawIdentical = true;
    for (const doc of docs) {
      const fresh = stockEditor(n3!.wsUrl, doc, 'fresh', 0);
      const synced = await eventually(() => fresh.provider.synced, 10_000);
      expect(result, synced, `a fresh client of ${doc} synced`);
      const replicas: Replica[] = [
        ...(await Promise.all(nodes.map((n) => nodeReplica(n.id, n.url, doc)))),
        { name: 'fresh client', state: Y.encodeStateAsUpdate(fresh.doc) },
      ];
      fresh.destroy();
      const comparison = compareReplicas(replicas);
      rawIdentical &&= comparison.rawIdentical;
      expect(
        result,
        comparison.identical,
        `${doc}: replicas differ (${comparison.differing.join(', ')})`,
      );
      for (const r of replicas)
        missing += missingKeys(r.state, ACK_MAP, ackedKeys.get(doc) ?? []).length;
    }
    result.figures['acked writes missing at the end'] = missing;
    result.figures['raw bytes identical'] = String(rawIdentical);
    expect(result, missing === 0, `${missing} acknowledged writes missing from a replica`);
  } catch (err) {
    result.failures.push(`crashed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (result.failures.length > 0) say(NAME, `node logs kept in ${await cluster.saveLogs(NAME)}`);
    for (const e of editors) e.destroy();
    await pool.close();
    await cluster.close();
  }
  return result;
};

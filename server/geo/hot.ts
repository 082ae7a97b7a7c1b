/**
 * One hot document written at every edge (issue 20, item 4): for 1, 2 and 3
 * edges (regions), SDK writers at each edge write the same document at a fixed
 * offered rate; each edge accepts, stores and fans out locally and replicates
 * over the delayed paths. Figure: writes acknowledged (`saved`) per second, by
 * number of edges. Checked: after each step every acknowledged key is on every
 * node, and the three nodes' copies are identical (state vectors and canonical
 * bytes).
 */
import { ACK_MAP, createWriterPool } from '../chaos/writers.js';
import { compareReplicas, missingKeys, nodeReplica, type Replica } from '../chaos/replicas.js';
import { eventually, expect, newResult, sleep, type ChaosResult } from '../chaos/lib.js';
import { pick, type GeoForm } from './form.js';
import type { GeoCluster } from './geo-cluster.js';
import { REGIONS } from './regions.js';

/** Writers per edge: each connection may send 200 messages/s (`--max-messages-per-second`). */
const WRITERS_PER_EDGE = 8;

export const hotDocument = async (geo: GeoCluster, form: GeoForm): Promise<ChaosResult> => {
  const result = newResult(`${geo.backplane}: one hot document, every edge writes`);
  const writeMs = pick(form, 1_000, 10_000);
  const perEdgePerSecond = pick(form, 100, 1000);
  const rates: string[] = [];
  for (let edges = 1; edges <= REGIONS.length; edges++) {
    const doc = `geo-hot-${Date.now()}-${edges}`;
    const regions = REGIONS.slice(0, edges);
    const pool = createWriterPool(
      regions.flatMap((region) =>
        Array.from({ length: WRITERS_PER_EDGE }, (_, i) => ({
          id: `${region}-w${i}`,
          doc,
          urls: [geo.nodeIn(region, i).userWsUrl],
        })),
      ),
    );
    try {
      const connected = await eventually(
        () => pool.writers.every((w) => w.handle.isSynced),
        15_000,
      );
      expect(result, connected, `${edges} edge(s): the writers did not connect`);
      // Accepted rate: every write acknowledged, over the time from the first write to the last ack.
      const started = performance.now();
      pool.start(perEdgePerSecond * edges);
      await sleep(writeMs);
      pool.stop();
      const saved = await pool.allSaved(15_000);
      const seconds = (performance.now() - started) / 1000;
      const accepted = pool.totals().acked;
      expect(result, saved, `${edges} edge(s): writes still unacknowledged 15 s after the load`);
      const keys = [...(pool.ackedKeys().get(doc) ?? [])];
      let last: Replica[] = [];
      const converged = await eventually(
        async () => {
          last = await Promise.all(geo.nodes.map((n) => nodeReplica(n.id, n.url, doc)));
          return (
            compareReplicas(last).identical &&
            last.every((r) => missingKeys(r.state, ACK_MAP, keys).length === 0)
          );
        },
        pick(form, 20_000, 60_000),
        200,
      );
      const comparison = compareReplicas(last);
      expect(
        result,
        converged,
        `${edges} edge(s): node copies differ (${comparison.differing.join(', ')}) or lack acknowledged keys (${last
          .map((r) => `${r.name} ${missingKeys(r.state, ACK_MAP, keys).length}`)
          .join(', ')})`,
      );
      rates.push(
        `${edges}: ${Math.round(accepted / seconds)}/s (${accepted} in ${seconds.toFixed(1)} s; ${perEdgePerSecond * edges}/s offered)`,
      );
      result.figures[`${edges} edge(s): node copies`] =
        `${comparison.identical ? 'identical' : 'DIFFER'}, ${comparison.bytes} bytes, ${keys.length} acknowledged keys, raw bytes equal: ${comparison.rawIdentical}`;
    } finally {
      await pool.close();
    }
  }
  result.figures['accepted writes/s by edges'] = rates.join('; ');
  result.figures['writers'] =
    `${WRITERS_PER_EDGE} SDK clients per edge, ${writeMs / 1000} s per step`;
  return result;
};

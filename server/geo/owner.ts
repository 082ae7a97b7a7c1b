/**
 * `owner` call latency by region: a counter document whose primary (its first
 * home by rendezvous hash) is in eu, called from every region in turn through the
 * region's own node, which forwards to the primary (mesh: signed HTTP over the
 * delayed peer path; Redis: a request through Redis). Calls are sequential, so
 * the counter must come back 1, 2, 3 … (owner calls run one at a time).
 */
import { rank } from '../src/cluster/placement.js';
import { expect, newResult, percentile, type ChaosResult } from '../chaos/lib.js';
import { pick, type GeoForm } from './form.js';
import type { GeoCluster } from './geo-cluster.js';
import { farthestFrom, REGIONS, type Region } from './regions.js';

const PRIMARY_REGION: Region = 'eu';

/** A counter name whose document has its primary in `region` (bounded search). */
const counterHomedIn = (geo: GeoCluster, region: Region): string => {
  const ids = geo.nodes.map((n) => n.id);
  const stamp = Date.now();
  for (let i = 0; i < 1000; i++) {
    const name = `geo-${stamp}-${i}`;
    if (rank(`counters/${name}`, ids)[0] === geo.nodeIn(region).id) return name;
  }
  throw new Error(`no counter name with its primary in ${region} in 1000 tries`);
};

const call = async (
  url: string,
  counter: string,
): Promise<{ ms: number; n?: number; status: number }> => {
  const started = performance.now();
  const res = await fetch(`${url}/v1/functions/increment/invoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ counter }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json()) as { n?: number };
  const ms = performance.now() - started;
  return { ms, status: res.status, n: body.n };
};

export const ownerLatency = async (geo: GeoCluster, form: GeoForm): Promise<ChaosResult> => {
  const result = newResult(`${geo.backplane}: owner call`);
  const calls = pick(form, 5, 40);
  const counter = counterHomedIn(geo, PRIMARY_REGION);
  let expected = 0;
  // The first call takes the lease (Redis) or opens the document on the primary.
  const order: Region[] = [PRIMARY_REGION, ...REGIONS.filter((r) => r !== PRIMARY_REGION)];
  for (const region of order) {
    const url = geo.nodeIn(region).userHttpUrl;
    const times: number[] = [];
    for (let i = 0; i < calls; i++) {
      const answer = await call(url, counter);
      expected++;
      expect(result, answer.status === 200, `a call from ${region} answered ${answer.status}`);
      expect(
        result,
        answer.n === expected,
        `a call from ${region} returned n=${answer.n}, expected ${expected}`,
      );
      if (i === 0) result.figures[`first call from ${region} (ms)`] = Math.round(answer.ms);
      else times.push(answer.ms);
    }
    const role =
      region === PRIMARY_REGION
        ? 'primary region'
        : region === farthestFrom(PRIMARY_REGION)
          ? 'farthest'
          : 'other';
    result.figures[`from ${region} (${role}), p50/p99 ms`] =
      `${Math.round(percentile(times, 50))}/${Math.round(percentile(times, 99))}`;
  }
  result.figures['calls'] =
    `${expected} sequential (${calls} per region, primary in ${PRIMARY_REGION})`;
  return result;
};

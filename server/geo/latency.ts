/**
 * Edit → user latency across regions: the first user of each region writes a
 * key every `intervalMs`, and every other user notes when it sees each key.
 * Same-region figures are taken while the regions are far apart (the point: a
 * local edit does not wait for a remote region). Every edit must reach every user.
 */
import {
  eventually,
  expect,
  newResult,
  percentile,
  sleep,
  type ChaosResult,
} from '../chaos/lib.js';
import { pick, type GeoForm } from './form.js';
import type { GeoCluster } from './geo-cluster.js';
import { REGIONS } from './regions.js';
import { connectUsers, type User } from './users.js';

export const editLatency = async (geo: GeoCluster, form: GeoForm): Promise<ChaosResult> => {
  const result = newResult(`${geo.backplane}: edit → user`);
  const edits = pick(form, 20, 200);
  const intervalMs = 60;
  const users = await connectUsers(geo, `geo-latency-${Date.now()}`);
  try {
    const writers = users.filter((u) => u.name.endsWith('-a'));
    const sentAt = new Map<string, { writer: User; at: number }>();
    for (let i = 0; i < edits; i++) {
      for (const writer of writers) {
        const key = `${writer.name}:${i}`;
        sentAt.set(key, { writer, at: writer.write(key, i) });
        await sleep(intervalMs / writers.length);
      }
    }
    const everywhere = await eventually(
      () => users.every((u) => u.seenAt.size >= sentAt.size),
      pick(form, 15_000, 60_000),
    );
    for (const user of users) {
      const missing = [...sentAt.keys()].filter((k) => !user.seenAt.has(k)).length;
      expect(result, missing === 0, `${user.name} lacks ${missing} of ${sentAt.size} edits`);
    }
    expect(result, everywhere, 'not every edit reached every user in time');
    for (const from of REGIONS) {
      const cells: string[] = [];
      for (const to of REGIONS) {
        const samples: number[] = [];
        for (const [key, sent] of sentAt) {
          if (sent.writer.region !== from) continue;
          for (const user of users) {
            const seen = user.seenAt.get(key);
            if (user.region === to && user !== sent.writer && seen !== undefined)
              samples.push(seen - sent.at);
          }
        }
        cells.push(`${to} ${fmt(percentile(samples, 50))}/${fmt(percentile(samples, 99))}`);
      }
      result.figures[`from ${from}, to (p50/p99 ms)`] = cells.join(', ');
    }
    result.figures['edits'] = `${sentAt.size} (${edits} per region, one every ${intervalMs} ms)`;
  } finally {
    users.forEach((u) => u.destroy());
  }
  return result;
};

const fmt = (ms: number): string => (Number.isNaN(ms) ? '–' : ms.toFixed(ms < 10 ? 1 : 0));

/**
 * Time for a fresh client in each region to open a document written in eu: from
 * creating a stock y-websocket provider until it holds every key. The document's
 * homes are eu and us (rendezvous hash, R = 2), so ap's node has no copy and must
 * fetch it from a home across the ocean while the client waits.
 */
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { WebsocketProvider } from 'y-websocket';
import { rank } from '../src/cluster/placement.js';
import { missingKeys, nodeReplica } from '../chaos/replicas.js';
import { eventually, expect, newResult, percentile, type ChaosResult } from '../chaos/lib.js';
import { pick, type GeoForm } from './form.js';
import { REPLICATION_FACTOR, type GeoCluster } from './geo-cluster.js';
import { REGIONS, type Region } from './regions.js';
import { connectUser, EDITS } from './users.js';

const KEYS = 300;
const OPEN_TIMEOUT_MS = 15_000;

/** A document name whose homes are exactly eu and us (bounded search). */
const docHomedIn = (geo: GeoCluster, homes: readonly Region[], round: number): string => {
  const ids = geo.nodes.map((n) => n.id);
  const want = homes
    .map((r) => geo.nodeIn(r).id)
    .sort()
    .join(',');
  for (let i = 0; i < 1000; i++) {
    const name = `geo-open-${Date.now()}-${round}-${i}`;
    if (rank(name, ids).slice(0, REPLICATION_FACTOR).sort().join(',') === want) return name;
  }
  throw new Error(`no document homed in ${homes.join(' and ')} in 1000 tries`);
};

/** Opens `doc` with a fresh stock client at `wsUrl`; ms until it holds `keys` keys (undefined: timed out). */
const openFresh = async (wsUrl: string, doc: string, keys: number): Promise<number | undefined> => {
  const ydoc = new Y.Doc();
  const started = performance.now();
  const provider = new WebsocketProvider(wsUrl, doc, ydoc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  });
  const edits = ydoc.getMap(EDITS);
  let doneAt: number | undefined;
  edits.observe(() => {
    if (doneAt === undefined && edits.size >= keys) doneAt = performance.now();
  });
  try {
    const ok = await eventually(() => doneAt !== undefined, OPEN_TIMEOUT_MS, 5);
    return ok ? doneAt! - started : undefined;
  } finally {
    provider.destroy();
    ydoc.destroy();
  }
};

export const freshOpen = async (geo: GeoCluster, form: GeoForm): Promise<ChaosResult> => {
  const result = newResult(`${geo.backplane}: fresh client opens a document`);
  const rounds = pick(form, 1, 5);
  const times = new Map<Region, number[]>(REGIONS.map((r) => [r, []]));
  for (let round = 0; round < rounds; round++) {
    const doc = docHomedIn(geo, ['eu', 'us'], round);
    const writer = await connectUser(geo, 'eu', 'eu-writer', doc);
    const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
    try {
      writer.client.doc.transact(() => keys.forEach((k, i) => writer.edits.set(k, i)));
      const stored = await eventually(async () => {
        for (const region of ['eu', 'us'] as const) {
          const replica = await nodeReplica(region, geo.nodeIn(region).url, doc);
          if (missingKeys(replica.state, EDITS, keys).length > 0) return false;
        }
        return true;
      }, 15_000);
      expect(result, stored, `round ${round}: the homes did not store the document in time`);
    } finally {
      writer.destroy();
    }
    for (const region of REGIONS) {
      const ms = await openFresh(geo.nodeIn(region).userWsUrl, doc, KEYS);
      expect(result, ms !== undefined, `a fresh client in ${region} did not get the document`);
      if (ms !== undefined) times.get(region)!.push(ms);
    }
  }
  for (const [region, samples] of times) {
    const home = region === 'ap' ? 'not a home' : 'a home';
    result.figures[`${region} (${home}), median/max ms`] =
      `${Math.round(percentile(samples, 50))}/${Math.round(Math.max(...samples))}`;
  }
  result.figures['document'] = `${KEYS} keys written in eu; homes eu and us; ${rounds} round(s)`;
  return result;
};

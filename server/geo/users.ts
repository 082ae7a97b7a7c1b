/**
 * The users of a region: stock y-websocket clients connected to the region's
 * node through its 1 ms path. Each records when it first saw every key of the
 * document's `edits` map (performance.now(), one clock for the whole harness).
 */
import type * as Y from 'yjs';
import { stockClient, type StockClient } from '../test/helpers/clients.js';
import type { GeoCluster } from './geo-cluster.js';
import { REGIONS, type Region } from './regions.js';

export const EDITS = 'edits';

export interface User {
  readonly name: string;
  readonly region: Region;
  readonly client: StockClient;
  readonly edits: Y.Map<number>;
  /** When this user first saw each key (its own writes included, at the time of writing). */
  readonly seenAt: Map<string, number>;
  /** Sets `key` and returns when it did. */
  write(key: string, value: number): number;
  destroy(): void;
}

export const connectUser = async (
  geo: GeoCluster,
  region: Region,
  name: string,
  doc: string,
  /** Which of the region's nodes it connects to. @default 0 */
  nodeIndex = 0,
): Promise<User> => {
  const client = await stockClient(geo.nodeIn(region, nodeIndex).userWsUrl, doc);
  const edits = client.doc.getMap<number>(EDITS);
  const seenAt = new Map<string, number>();
  const note = (): void => {
    const now = performance.now();
    for (const key of edits.keys()) if (!seenAt.has(key)) seenAt.set(key, now);
  };
  edits.observe((event) => {
    const now = performance.now();
    for (const key of event.keysChanged) if (!seenAt.has(key)) seenAt.set(key, now);
  });
  note();
  return {
    name,
    region,
    client,
    edits,
    seenAt,
    write(key, value) {
      const at = performance.now();
      edits.set(key, value);
      return at;
    },
    destroy: () => client.destroy(),
  };
};

/** Two users in every region (`eu-a`, `eu-b`, …); with two nodes in a region, one on each. */
export const connectUsers = async (geo: GeoCluster, doc: string): Promise<User[]> => {
  const users: User[] = [];
  try {
    for (const region of REGIONS)
      for (const [i, suffix] of ['a', 'b'].entries())
        users.push(await connectUser(geo, region, `${region}-${suffix}`, doc, i));
  } catch (err) {
    users.forEach((u) => u.destroy());
    throw err;
  }
  return users;
};

/**
 * The users of a region: stock y-websocket clients connected to the region's
 * node through its 1 ms path. Each records when it first saw every key of the
 * document's `edits` map (performance.now(), one clock for the whole harness).
 */
import type * as Y from 'yjs';
import { stockClient, type StockClient } from '../test/helpers/clients.js';
import type { GeoCluster } from './geo-cluster.js';
import type { Region } from './regions.js';

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
): Promise<User> => {
  const client = await stockClient(geo.nodeIn(region).userWsUrl, doc);
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

/** Two users in every region (`eu-a`, `eu-b`, …). */
export const connectUsers = async (geo: GeoCluster, doc: string): Promise<User[]> => {
  const users: User[] = [];
  try {
    for (const node of geo.nodes)
      for (const suffix of ['a', 'b'])
        users.push(await connectUser(geo, node.region, `${node.region}-${suffix}`, doc));
  } catch (err) {
    users.forEach((u) => u.destroy());
    throw err;
  }
  return users;
};

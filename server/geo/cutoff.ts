/**
 * A region cut off: every path between ap and the other regions is cut (peer
 * links, its node's Redis connection) while two users in every region keep
 * writing. Checked by code: during the cut the users of each region see each
 * other's edits (they keep working) and ap sees none from elsewhere (the cut is
 * real); after healing, every user and every node converge — equal state vectors
 * and canonical bytes, every key everywhere — within a bound.
 */
import { compareReplicas, missingKeys, nodeReplica, type Replica } from '../chaos/replicas.js';
import { eventually, expect, newResult, sleep, type ChaosResult } from '../chaos/lib.js';
import * as Y from 'yjs';
import { pick, type GeoForm } from './form.js';
import type { GeoCluster } from './geo-cluster.js';
import type { Region } from './regions.js';
import { connectUsers, EDITS, type User } from './users.js';

const CUT_REGION: Region = 'ap';
const WRITE_EVERY_MS = 250;

export const regionCutOff = async (geo: GeoCluster, form: GeoForm): Promise<ChaosResult> => {
  const result = newResult(`${geo.backplane}: ${CUT_REGION} cut off`);
  const cutMs = pick(form, 3_000, 60_000);
  const doc = `geo-cut-${Date.now()}`;
  const users = await connectUsers(geo, doc);
  const written: string[] = [];
  try {
    // Everyone writes once and sees everything before the cut.
    for (const user of users) writeNext(user, written);
    expect(
      result,
      await eventually(() => users.every((u) => haveAll(u, written)), 15_000),
      'the users did not converge before the cut',
    );
    geo.cut(CUT_REGION);
    const cutAt = performance.now();
    const duringCut: string[] = [];
    const rounds = Math.floor(cutMs / WRITE_EVERY_MS);
    for (let i = 0; i < rounds; i++) {
      for (const user of users) duringCut.push(writeNext(user, written));
      await sleep(WRITE_EVERY_MS);
    }
    // Still cut: each region's users must have each other's edits.
    for (const region of new Set(users.map((u) => u.region))) {
      const local = users.filter((u) => u.region === region);
      const localKeys = duringCut.filter((k) => k.startsWith(`${region}-`));
      const served = await eventually(() => local.every((u) => haveAll(u, localKeys)), 10_000);
      expect(result, served, `${region}'s users did not see each other's edits during the cut`);
    }
    const foreign = duringCut.filter((k) => !k.startsWith(`${CUT_REGION}-`));
    const leaked = users
      .filter((u) => u.region === CUT_REGION)
      .map((u) => foreign.filter((k) => u.edits.has(k)).length);
    expect(
      result,
      leaked.every((n) => n === 0),
      `${CUT_REGION} saw edits from elsewhere during the cut (${leaked.join(', ')}): not cut`,
    );
    result.figures['cut (s)'] = Math.round((performance.now() - cutAt) / 100) / 10;
    result.figures['edits during the cut'] =
      `${duringCut.length} (every user, one each ${WRITE_EVERY_MS} ms)`;

    geo.heal(CUT_REGION);
    const healedAt = performance.now();
    const usersConverged = await eventually(
      () => users.every((u) => haveAll(u, written)),
      pick(form, 20_000, 60_000),
    );
    const usersAt = performance.now();
    expect(result, usersConverged, 'the users did not all get every edit after healing');
    let last: Replica[] = [];
    const replicasConverged = await eventually(
      async () => {
        last = await replicas(geo, users, doc);
        const compared = compareReplicas(last);
        return (
          compared.identical && last.every((r) => missingKeys(r.state, EDITS, written).length === 0)
        );
      },
      pick(form, 20_000, 60_000),
      200,
    );
    const comparison = compareReplicas(last);
    expect(
      result,
      replicasConverged,
      `replicas differ after healing: ${comparison.differing.join(', ')}; missing keys: ${last
        .map((r) => `${r.name} ${missingKeys(r.state, EDITS, written).length}`)
        .join(', ')}`,
    );
    result.figures['users have every edit, after healing (ms)'] = Math.round(usersAt - healedAt);
    result.figures['users and nodes identical, after healing (ms)'] = Math.round(
      performance.now() - healedAt,
    );
    result.figures['replicas compared'] =
      `${last.length} (${geo.nodes.length} nodes, ${users.length} users), ${comparison.bytes} bytes, raw bytes equal: ${comparison.rawIdentical}`;
  } finally {
    geo.heal(CUT_REGION);
    users.forEach((u) => u.destroy());
  }
  return result;
};

const counters = new WeakMap<User, number>();

/** Writes the user's next key (`eu-a:3`) and records it. */
const writeNext = (user: User, written: string[]): string => {
  const n = (counters.get(user) ?? 0) + 1;
  counters.set(user, n);
  const key = `${user.name}:${n}`;
  user.write(key, n);
  written.push(key);
  return key;
};

const haveAll = (user: User, keys: readonly string[]): boolean =>
  keys.every((k) => user.edits.has(k));

const replicas = async (
  geo: GeoCluster,
  users: readonly User[],
  doc: string,
): Promise<Replica[]> => [
  ...(await Promise.all(geo.nodes.map((n) => nodeReplica(n.id, n.url, doc)))),
  ...users.map((u) => ({ name: u.name, state: Y.encodeStateAsUpdate(u.client.doc) })),
];

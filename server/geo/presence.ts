/**
 * Replicas follow their users (`--placement presence`, issue 20 item 3): two
 * nodes per region, a counter document whose hashed first home is in eu and
 * whose homes are both outside ap. Three users in eu and two in ap (one on
 * each ap node); then three more users join in ap and ap is the majority.
 * Before and after, measured from ap: the `owner` call (sequential, through ap's
 * first node) and edit → the other ap user (on the other ap node), p50/p99.
 * Checked: every node places the document in eu first and in ap after; the
 * counter comes back 1, 2, 3 … across the move; every edit reaches every user.
 * Then writes alone: a second document homed away from ap, written by two ap
 * clients without presence (sensors), is placed in ap by every node.
 */
import { loadavg } from 'node:os';
import { rank } from '../src/cluster/placement.js';
import {
  eventually,
  expect,
  newResult,
  percentile,
  sleep,
  type ChaosResult,
} from '../chaos/lib.js';
import { pick, type GeoForm } from './form.js';
import { startGeoCluster, type BackplaneKind, type GeoCluster } from './geo-cluster.js';
import type { Region } from './regions.js';
import { connectUser, type User } from './users.js';

const regionOf = (geo: GeoCluster, id: string): Region =>
  geo.nodes.find((n) => n.id === id)!.region;

/** A name under `prefix` whose first home is in eu and whose homes are not in ap (bounded search). */
const nameFarFromAp = (geo: GeoCluster, prefix = 'counters/'): string => {
  const ids = geo.nodes.map((n) => n.id);
  const stamp = Date.now();
  for (let i = 0; i < 1000; i++) {
    const name = `geo-presence-${stamp}-${i}`;
    const homes = rank(`${prefix}${name}`, ids).slice(0, 2);
    if (regionOf(geo, homes[0]!) === 'eu' && homes.every((id) => regionOf(geo, id) !== 'ap'))
      return name;
  }
  throw new Error('no counter homed away from ap in 1000 tries');
};

/** Where a node places `doc` (GET /v1/cluster, directly: the harness is the observer). */
const placedOn = async (url: string, doc: string): Promise<string | undefined> => {
  const res = await fetch(`${url}/v1/cluster`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as {
    presence?: { documents: Array<{ doc: string; region: string }> };
  };
  return body.presence?.documents.find((d) => d.doc === doc)?.region;
};

const placedIn = (geo: GeoCluster, doc: string, region: Region, timeoutMs: number) =>
  eventually(
    async () => {
      for (const node of geo.nodes) if ((await placedOn(node.url, doc)) !== region) return false;
      return true;
    },
    timeoutMs,
    100,
  );

/**
 * A user with a name in its presence, as an editor shows it. (A bare stock
 * client's initial state has clock 0, which y-protocols never applies remotely:
 * it shows up only with its first renewal, 15 s later.)
 */
const present = async (
  geo: GeoCluster,
  region: Region,
  name: string,
  doc: string,
  nodeIndex: number,
): Promise<User> => {
  const user = await connectUser(geo, region, name, doc, nodeIndex);
  user.client.provider.awareness.setLocalStateField('user', { name });
  return user;
};

const fmt = (values: number[]): string =>
  `${Math.round(percentile(values, 50))}/${Math.round(percentile(values, 99))}`;

interface Phase {
  readonly owner: number[];
  readonly edit: number[];
}

export const presenceMoves = async (
  backplane: BackplaneKind,
  form: GeoForm,
): Promise<ChaosResult> => {
  const result = newResult(`${backplane}: presence placement`);
  const dwellMs = pick(form, 2000, 10_000);
  const calls = pick(form, 6, 30);
  const edits = pick(form, 10, 100);
  const geo = await startGeoCluster({ backplane, nodesPerRegion: 2, presenceDwellMs: dwellMs });
  const users: User[] = [];
  try {
    const counter = nameFarFromAp(geo);
    const doc = `counters/${counter}`;
    const hashed = rank(
      doc,
      geo.nodes.map((n) => n.id),
    );
    for (let i = 0; i < 3; i++) users.push(await present(geo, 'eu', `eu-${i}`, doc, i % 2));
    const apA = await present(geo, 'ap', 'ap-a', doc, 0);
    users.push(apA);
    const apB = await present(geo, 'ap', 'ap-b', doc, 1);
    users.push(apB);
    expect(
      result,
      await placedIn(geo, doc, 'eu', dwellMs + 30_000),
      'not every node placed the document in eu (3 users against 2)',
    );

    let expected = 0;
    const measure = async (phase: string): Promise<Phase> => {
      const owner: number[] = [];
      const url = geo.nodeIn('ap', 0).userHttpUrl;
      for (let i = 0; i < calls; i++) {
        const started = performance.now();
        const res = await fetch(`${url}/v1/functions/increment/invoke`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ counter }),
          signal: AbortSignal.timeout(20_000),
        });
        const body = (await res.json()) as { n?: number };
        const ms = performance.now() - started;
        expected++;
        expect(result, res.status === 200, `${phase}: a call answered ${res.status}`);
        expect(result, body.n === expected, `${phase}: n=${body.n}, expected ${expected}`);
        if (i > 0) owner.push(ms); // the first one may open a connection or take a lease
      }
      const sentAt = new Map<string, number>();
      for (let i = 0; i < edits; i++) {
        const key = `${phase}:${i}`;
        sentAt.set(key, apA.write(key, i));
        await sleep(60);
      }
      const seen = await eventually(
        () => [...sentAt.keys()].every((k) => apB.seenAt.has(k)),
        pick(form, 15_000, 60_000),
      );
      expect(result, seen, `${phase}: ap-b did not see every edit of ap-a`);
      const edit = [...sentAt]
        .filter(([key]) => apB.seenAt.has(key))
        .map(([key, at]) => apB.seenAt.get(key)! - at);
      return { owner, edit };
    };

    const before = await measure('before');
    const loadBefore = loadavg()[0]!.toFixed(1);
    const majorityAt = performance.now();
    for (let i = 0; i < 3; i++) users.push(await present(geo, 'ap', `ap-${i}`, doc, i % 2));
    const moved = await placedIn(geo, doc, 'ap', dwellMs + 30_000);
    expect(result, moved, 'not every node placed the document in ap (5 users against 3)');
    result.figures['moved to ap after (ms, dwell included)'] = Math.round(
      performance.now() - majorityAt,
    );
    const after = await measure('after');
    const loadAfter = loadavg()[0]!.toFixed(1);

    const keys = [...sentKeys(users)];
    const converged = await eventually(
      () => users.every((u) => keys.every((k) => u.edits.has(k))),
      pick(form, 15_000, 60_000),
    );
    expect(result, converged, 'not every user holds every edit');

    // Writes alone move a document: two sensors in ap, without presence, write every 200 ms.
    const sensorDoc = `sensors/${nameFarFromAp(geo, 'sensors/')}`;
    const sensors: User[] = [];
    for (let i = 0; i < 2; i++) {
      const sensor = await connectUser(geo, 'ap', `sensor-${i}`, sensorDoc, i);
      sensor.client.provider.awareness.setLocalState(null);
      sensors.push(sensor);
      users.push(sensor);
    }
    const writesFrom = performance.now();
    let reading = 0;
    const writing = setInterval(() => {
      for (const sensor of sensors) sensor.write(`r-${reading++}`, reading);
    }, 200);
    try {
      const placed = await placedIn(geo, sensorDoc, 'ap', dwellMs + 30_000);
      expect(result, placed, 'a document written only from ap (no presence) was not placed in ap');
      result.figures['written only from ap, no presence: placed in ap after (ms)'] = Math.round(
        performance.now() - writesFrom,
      );
    } finally {
      clearInterval(writing);
    }

    const apPrimary = hashed.find((id) => regionOf(geo, id) === 'ap')!;
    result.figures['users'] = 'eu 3, ap 2 (before); eu 3, ap 5 (after)';
    result.figures['first home, before → after'] = `${hashed[0]} → ${apPrimary}`;
    result.figures['owner call from ap, before / after, p50/p99 ms'] =
      `${fmt(before.owner)} / ${fmt(after.owner)}`;
    result.figures['edit → other ap user, before / after, p50/p99 ms'] =
      `${fmt(before.edit)} / ${fmt(after.edit)}`;
    result.figures['calls, edits per phase'] = `${calls}, ${edits} (one every 60 ms)`;
    result.figures['dwell (ms)'] = dwellMs;
    result.figures['load average (1 min), before / after'] = `${loadBefore} / ${loadAfter}`;
  } finally {
    users.forEach((u) => u.destroy());
    await geo.close();
  }
  return result;
};

/** Every key any user wrote or saw. */
const sentKeys = (users: readonly User[]): Set<string> =>
  new Set(users.flatMap((u) => [...u.seenAt.keys()]));

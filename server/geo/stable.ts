/**
 * `onStable` windows across regions: the test fixture `countWindow` (500 ms
 * windows; deployed here, so the other scenarios' fixture set stays as it is)
 * on a document whose homes are eu (its primary) and ap. One user per region
 * writes an event into the same window, first with every region linked, then
 * with ap cut off. Checked: linked, the window fires with every event; on the
 * mesh, while ap (a home) is cut off the window does not fire, and after the
 * heal it fires with all three events, once. On Redis the homes are the live
 * members: a cut longer than the heartbeat expiry makes us the second home and
 * the window fires without ap's event, so there it is reported, not checked
 * (every window still runs once).
 */
import { fileURLToPath } from 'node:url';
import type * as Y from 'yjs';
import { rank } from '../src/cluster/placement.js';
import { compileDir } from '../src/functions/compile.js';
import { windowStart } from '../src/functions/stable-window.js';
import { stockClient, type StockClient } from '../test/helpers/clients.js';
import { eventually, expect, newResult, sleep, type ChaosResult } from '../chaos/lib.js';
import { pick, type GeoForm } from './form.js';
import type { GeoCluster } from './geo-cluster.js';
import { REGIONS, type Region } from './regions.js';

const STABLE = fileURLToPath(new URL('../../test/fixtures/stable', import.meta.url));
const WINDOW_MS = 500;
const CUT_REGION: Region = 'ap';

interface Fired {
  readonly ids: string[];
}

const windowsOf = (doc: Y.Doc) => doc.getMap<Fired>('windows');

/** A document whose homes (replication factor 2) are eu first, then ap (bounded search). */
const docHomedIn = (geo: GeoCluster): string => {
  const ids = geo.nodes.map((n) => n.id);
  const want = [geo.nodeIn('eu').id, geo.nodeIn(CUT_REGION).id];
  const stamp = Date.now();
  for (let i = 0; i < 1000; i++) {
    const name = `events/geo-${stamp}-${i}`;
    const homes = rank(name, ids).slice(0, 2);
    if (homes[0] === want[0] && homes[1] === want[1]) return name;
  }
  throw new Error('no document with homes eu and ap in 1000 tries');
};

const deploy = async (geo: GeoCluster): Promise<boolean> => {
  const res = await fetch(`${geo.nodeIn('eu').url}/v1/functions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ bundles: await compileDir(STABLE) }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) return false;
  return eventually(async () => {
    for (const node of geo.nodes) {
      const listed = (await (await fetch(`${node.url}/v1/functions`)).json()) as {
        functions: Array<{ name: string }>;
      };
      if (!listed.functions.some((f) => f.name === 'countWindow')) return false;
    }
    return true;
  }, 20_000);
};

export const stableWindows = async (geo: GeoCluster, form: GeoForm): Promise<ChaosResult> => {
  const result = newResult(`${geo.backplane}: onStable windows, ${CUT_REGION} cut off`);
  expect(result, await deploy(geo), 'countWindow did not reach every node');
  const doc = docHomedIn(geo);
  const users = new Map<Region, StockClient>();
  try {
    for (const region of REGIONS)
      users.set(region, await stockClient(geo.nodeIn(region).userWsUrl, doc));
    const eu = users.get('eu')!;
    /** Every region writes one event in the current window; returns the window's start. */
    const writeRound = async (round: string): Promise<number> => {
      // Well inside a window, so the three writes fall into the same one.
      if (WINDOW_MS - (Date.now() % WINDOW_MS) < 150) await sleep(200);
      const at = Date.now();
      for (const [region, user] of users)
        user.doc.getArray('events').push([{ id: `${round}-${region}`, at }]);
      return windowStart(at, WINDOW_MS);
    };

    const linked = await writeRound('linked');
    const linkedFired = await eventually(
      () => REGIONS.every((r) => windowsOf(users.get(r)!.doc).has(String(linked))),
      15_000,
      10,
    );
    expect(result, linkedFired, 'the window did not fire while every region was linked');
    result.figures['linked: window end → output at every user (ms)'] =
      Date.now() - (linked + WINDOW_MS);
    expect(
      result,
      windowsOf(eu.doc).get(String(linked))?.ids.length === REGIONS.length,
      `the linked window missed an event: ${windowsOf(eu.doc).get(String(linked))?.ids.join(',')}`,
    );

    geo.cut(CUT_REGION);
    await sleep(500); // the links notice the cut
    const cut = await writeRound('cut');
    const key = String(cut);
    await sleep(cut + WINDOW_MS - Date.now() + 4 * WINDOW_MS);
    const firedDuringCut = windowsOf(eu.doc).has(key);
    result.figures['fired while ap was cut off'] = firedDuringCut ? 'yes' : 'no';
    if (geo.backplane === 'mesh')
      expect(result, !firedDuringCut, 'the window fired while a home (ap) was cut off');
    const healedAt = Date.now();
    geo.heal(CUT_REGION);
    const everyEvent = REGIONS.map((r) => `cut-${r}`).sort();
    const complete = (user: StockClient): boolean =>
      windowsOf(user.doc).has(key) &&
      (geo.backplane === 'redis' || windowsOf(user.doc).get(key)!.ids.join() === everyEvent.join());
    const healedFired = await eventually(
      () => REGIONS.every((r) => complete(users.get(r)!)),
      pick(form, 30_000, 60_000),
      10,
    );
    expect(result, healedFired, 'the window did not reach every user with every event');
    result.figures['heal → output at every user (ms)'] = Date.now() - healedAt;
    result.figures['events in the window'] = windowsOf(eu.doc).get(key)?.ids.join(' ') ?? '-';
    await sleep(4 * WINDOW_MS);
    const runs = eu.doc.getArray<number>('runs').toArray();
    expect(result, new Set(runs).size === runs.length, `a window ran twice: ${runs.join(',')}`);
    expect(result, runs.includes(cut), 'the cut window has no run');
  } finally {
    for (const user of users.values()) user.destroy();
  }
  return result;
};

/**
 * `onStable` windows while the primary moves, with separate node processes on
 * the mesh: four nodes in two regions under `--placement presence`, a stream
 * of events written in eu into a document whose two hashed homes are in eu.
 * Midway, three users with presence join in ap, so every node moves the
 * document's first home, and the primary that fires its windows, to ap. Every
 * window with an event fires, with exactly its events, and none runs twice:
 * the new primary resumes after the cursor the old one wrote into the document.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type * as Y from 'yjs';
import { rank } from '../src/cluster/placement.js';
import { windowStart } from '../src/functions/stable-window.js';
import { clusterArgs, freePorts, waitConnected } from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { sample, scrape } from './helpers/metrics.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

const STABLE = fileURLToPath(new URL('../../test/fixtures/stable', import.meta.url));
const WINDOW_MS = 500;
const REGION: Record<string, string> = { eu1: 'eu', eu2: 'eu', ap1: 'ap', ap2: 'ap' };
const IDS = Object.keys(REGION);

interface Fired {
  readonly start: number;
  readonly ids: string[];
}

interface Node {
  readonly id: string;
  readonly child: ChildNode;
  readonly url: string;
  readonly wsUrl: string;
}

const windowsOf = (doc: Y.Doc) => doc.getMap<Fired>('windows');
const runsOf = (doc: Y.Doc) => doc.getArray<number>('runs').toArray();

const regionOn = async (node: Node, doc: string): Promise<string | undefined> => {
  const res = await fetch(`${node.url}/v1/cluster`);
  const body = (await res.json()) as {
    presence?: { documents: Array<{ doc: string; region: string }> };
  };
  return body.presence?.documents.find((d) => d.doc === doc)?.region;
};

const everyNodeIn = async (nodes: readonly Node[], doc: string, region: string) => {
  for (const node of nodes) if ((await regionOn(node, doc)) !== region) return false;
  return true;
};

const firedOn = async (node: Node): Promise<number> =>
  sample(
    await scrape(node.url),
    'stateweave_stable_windows_total{function="countWindow",outcome="fired"}',
  );

describe('cluster: onStable windows across a primary move', () => {
  const nodes: Node[] = [];
  const dirs: Array<{ remove(): Promise<void> }> = [];
  const clients: StockClient[] = [];
  const byId = (id: string): Node => nodes.find((n) => n.id === id)!;

  before(async () => {
    const ports = await freePorts(IDS.length);
    for (const [i, id] of IDS.entries()) {
      const dir = await tempDir();
      dirs.push(dir);
      const peers = ports.filter((_, j) => j !== i).map((p) => `ws://127.0.0.1:${p}`);
      const child = await spawnNode(
        dir.path,
        [
          ...clusterArgs(id, peers),
          '--region',
          REGION[id]!,
          '--placement',
          'presence',
          '--presence-dwell-ms',
          '1500',
          '--replication-factor',
          '2',
          '--functions',
          STABLE,
        ],
        ports[i],
      );
      nodes.push({ id, child, url: child.url, wsUrl: child.wsUrl });
    }
    await waitConnected(nodes, 30_000);
  });

  after(async () => {
    clients.forEach((c) => c.destroy());
    for (const n of nodes) await stopChild(n.child, 'SIGKILL');
    await Promise.all(dirs.map((d) => d.remove()));
  });

  it('fires every window with events once, before, during and after the move', async () => {
    const stamp = Date.now();
    const name = Array.from({ length: 2000 }, (_, i) => `m-${stamp}-${i}`).find((d) =>
      rank(`events/${d}`, IDS)
        .slice(0, 2)
        .every((id) => REGION[id] === 'eu'),
    );
    assert.ok(name, 'a document homed in eu');
    const doc = `events/${name}`;
    const hashed = rank(doc, IDS);
    const euPrimary = byId(hashed[0]!);
    const apPrimary = byId(hashed.find((id) => REGION[id] === 'ap')!);
    const apOther = byId(hashed.find((id) => REGION[id] === 'ap' && id !== apPrimary.id)!);

    // The writer, without presence, on the eu node that is not a home: its writes place it in eu.
    const writer = await stockClient(byId(hashed[1]!).wsUrl, doc);
    writer.provider.awareness.setLocalState(null);
    clients.push(writer);
    const written: Array<{ id: string; at: number }> = [];
    const timer = setInterval(() => {
      const event = { id: `e${written.length}`, at: Date.now() };
      written.push(event);
      writer.doc.getArray('events').push([event]);
    }, 120);
    try {
      await waitFor(() => everyNodeIn(nodes, doc, 'eu'), 'every node to place it in eu', 30_000);
      await waitFor(
        async () => (await firedOn(euPrimary)) >= 3,
        'the eu primary to fire windows',
        30_000,
        100,
      );
      // Three users with presence in ap: the majority, so the homes and the primary move there.
      for (const node of [apPrimary, apOther, apOther]) {
        const user = await stockClient(node.wsUrl, doc);
        user.provider.awareness.setLocalStateField('user', `ap-${clients.length}`);
        clients.push(user);
      }
      await waitFor(() => everyNodeIn(nodes, doc, 'ap'), 'every node to place it in ap', 30_000);
      await waitFor(
        async () => (await firedOn(apPrimary)) >= 3,
        'the ap primary to fire windows',
        30_000,
        100,
      );
    } finally {
      clearInterval(timer);
    }

    const first = windowStart(written[0]!.at, WINDOW_MS);
    const last = windowStart(written.at(-1)!.at, WINDOW_MS);
    const expected = new Map<number, string[]>();
    for (const { id, at } of written) {
      const start = windowStart(at, WINDOW_MS);
      expected.set(start, [...(expected.get(start) ?? []), id].sort());
    }
    await waitFor(
      () => [...expected.keys()].every((start) => windowsOf(writer.doc).has(String(start))),
      'every window with events to fire',
      30_000,
    );
    // A few windows more, for a late second run to show.
    await sleep(4 * WINDOW_MS);
    for (const [start, ids] of expected)
      assert.deepEqual(windowsOf(writer.doc).get(String(start))!.ids, ids, `window ${start}`);
    const runs = runsOf(writer.doc);
    assert.equal(new Set(runs).size, runs.length, `each window ran once: ${runs.join(',')}`);
    for (let start = first; start <= last; start += WINDOW_MS)
      assert.ok(runs.includes(start), `window ${start} ran (runs: ${runs.join(',')})`);
    assert.ok((await firedOn(euPrimary)) >= 3 && (await firedOn(apPrimary)) >= 3);
  });
});

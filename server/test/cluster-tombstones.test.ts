/**
 * What a link-up costs in tombstones (cluster/tombstones.ts): two nodes as
 * child processes on real LevelDB, on the mesh and on a real redis-server, N documents deleted on one of them while
 * both are up, then the other restarted, twice. A link-up sends only the
 * tombstones the peer may have missed: none of the deletions it was told of
 * with a cursor, and after one exchange, none at all — where sending every
 * tombstone at every link-up would send N each time. That a node down during a
 * deletion learns it when it is back: cluster-delete.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { startCluster, waitConnected } from './helpers/cluster.js';
import { stopChild, type ChildNode } from './helpers/node.js';
import { startRedis, startRedisNodes, waitMembers } from './helpers/redis.js';
import { waitFor } from './helpers/wait.js';

const N = 300; // more than one request's worth (256)

const write = async (url: string, name: string): Promise<void> => {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, name);
  const res = await fetch(`${url}/v1/docs/${name}/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Y.encodeStateAsUpdate(doc),
  });
  assert.equal(res.status, 200, await res.text());
};

const remove = async (url: string, name: string): Promise<{ replicatedTo: string[] }> => {
  const res = await fetch(`${url}/v1/docs/${name}`, { method: 'DELETE' });
  const body = await res.text();
  assert.equal(res.status, 200, body);
  return JSON.parse(body) as { replicatedTo: string[] };
};

interface LogLine {
  readonly msg: string;
  readonly peer?: string;
  readonly from?: string;
  readonly sent?: number;
  readonly held?: number;
  readonly received?: number;
  readonly written?: number;
}

const lines = (output: string, msg: string): LogLine[] =>
  output
    .split('\n')
    .filter((l) => l.includes(msg))
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.msg === msg);

const UP_TO_DATE = 'tombstones brought up to date on peer';
const RECEIVED = 'tombstones received';
/** An exchange cut off (e.g. its link replaced by the preferred dialer's); `written` says how far it got. */
const CUT_OFF = [
  'tombstones not sent; trying again',
  'tombstones not sent; sent again at the next link-up',
];
const cutOff = (output: string): LogLine[] => CUT_OFF.flatMap((msg) => lines(output, msg));

interface Pair {
  readonly nodes: ReadonlyArray<{ readonly url: string; readonly node: ChildNode }>;
  restart(i: number): Promise<{ readonly url: string; readonly node: ChildNode }>;
  /** Waits until both nodes see each other. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Waits until `state` has not changed for a second and `ready` holds: a link-up's
 * exchanges, a replaced link's included, are over.
 */
const settled = async (state: () => string, ready: () => boolean = () => true): Promise<void> => {
  let last = state();
  let since = Date.now();
  await waitFor(
    () => {
      const now = state();
      if (now !== last) [last, since] = [now, Date.now()];
      return Date.now() - since >= 1000 && ready();
    },
    'the link-up exchanges to settle',
    30_000,
  );
};

const sum = (list: readonly LogLine[], field: 'sent' | 'received' | 'written'): number =>
  list.reduce((n, l) => n + (l[field] ?? 0), 0);

const scenario = (start: () => Promise<Pair>) => () => {
  let pair: Pair;
  before(async () => {
    pair = await start();
    await pair.settled();
  });
  after(async () => pair?.close());

  /**
   * Restarts n2 and waits until both sides finished a link-up exchange. Returns
   * what each side's exchanges since reported (a backplane may report a member
   * up more than once) and how many tombstones n1 received meanwhile.
   */
  const restartN2 = async () => {
    const n1 = pair.nodes[0]!.node;
    const exchangesBefore = lines(n1.output(), UP_TO_DATE).length;
    const receivedBefore = lines(n1.output(), RECEIVED).length;
    await stopChild(pair.nodes[1]!.node);
    const n2 = (await pair.restart(1)).node;
    await pair.settled();
    await waitFor(
      () =>
        lines(n1.output(), UP_TO_DATE).length > exchangesBefore &&
        lines(n2.output(), UP_TO_DATE).length > 0,
      'both nodes to finish their link-up exchange',
      60_000,
    );
    // On the mesh both nodes dial at a restart; when n2's link is up first, n1's (the
    // preferred dialer's) replaces it and the pair exchanges again over the new link. Count
    // once nothing has changed for a second, so a second exchange is counted whole.
    const snapshot = () => ({
      n1: lines(n1.output(), UP_TO_DATE).slice(exchangesBefore),
      n2: lines(n2.output(), UP_TO_DATE),
      n2CutOff: cutOff(n2.output()),
      receivedByN1: sum(lines(n1.output(), RECEIVED).slice(receivedBefore), 'received'),
    });
    const key = (s: ReturnType<typeof snapshot>) =>
      `${s.n1.length}/${s.n2.length}/${s.n2CutOff.length}/${s.receivedByN1}/${sum(s.n2, 'sent')}`;
    // n1 logs what it received before it answers; its output may arrive a little later.
    await settled(
      () => key(snapshot()),
      () => snapshot().receivedByN1 >= sum(snapshot().n2, 'sent'),
    );
    return snapshot();
  };

  it(`sends only what the peer may have missed, not all ${N} tombstones at every link-up`, async () => {
    const [n1, n2] = pair.nodes as [Pair['nodes'][0], Pair['nodes'][0]];
    const names = Array.from({ length: N }, (_, i) => `gone/${String(i).padStart(3, '0')}`);
    for (const name of names) await write(n1.url, name);
    for (const name of names) assert.deepEqual((await remove(n1.url, name)).replicatedTo, ['n2']);
    // One deletion on n2 as well, so each side holds tombstones of the other's making.
    await write(n2.url, 'gone/n2');
    assert.deepEqual((await remove(n2.url, 'gone/n2')).replicatedTo, ['n1']);

    const first = await restartN2();
    assert.ok(first.n1.every((l) => l.peer === 'n2' && l.held === N + 1));
    assert.equal(sum(first.n1, 'sent'), 0, 'n2 was told of every deletion of n1 with a cursor');
    // n2 does not know (after its restart) which of its tombstones came from n1: it may
    // send them back once; n1 already holds them and records how far n2's reached it.
    assert.ok(first.n2.every((l) => (l.sent ?? 0) <= N + 1));
    // n1 received what n2's finished exchanges sent, and at most what a cut-off one had
    // written besides (frames in flight on a replaced link are dropped): without a cut-off
    // exchange, exactly what n2 says it sent.
    assert.ok(first.receivedByN1 >= sum(first.n2, 'sent'), JSON.stringify(first));
    assert.ok(
      first.receivedByN1 <= sum(first.n2, 'sent') + sum(first.n2CutOff, 'written'),
      JSON.stringify(first),
    );

    const second = await restartN2();
    assert.ok([...second.n1, ...second.n2].every((l) => l.held === N + 1));
    assert.equal(sum(second.n1, 'sent'), 0, 'no new deletion: n1 sent nothing');
    assert.equal(sum(second.n2, 'sent'), 0, 'no new deletion: n2 sent nothing');
    assert.equal(second.receivedByN1, 0);
    assert.equal(lines(pair.nodes[1]!.node.output(), RECEIVED).length, 0);

    // A deletion while n2 is down still reaches it when it is back, alone.
    await write(n1.url, 'gone/late');
    await stopChild(pair.nodes[1]!.node);
    assert.deepEqual((await remove(n1.url, 'gone/late')).replicatedTo, []);
    const sentBefore = lines(n1.node.output(), UP_TO_DATE).length;
    const cutBefore = cutOff(n1.node.output()).length;
    const back = await pair.restart(1);
    await waitFor(
      () => sum(lines(back.node.output(), RECEIVED), 'received') === 1,
      'the late deletion to reach n2',
      60_000,
    );
    await waitFor(
      () => lines(n1.node.output(), UP_TO_DATE).length > sentBefore,
      "n1's link-up exchange",
      30_000,
    );
    const exchanges = () => lines(n1.node.output(), UP_TO_DATE).slice(sentBefore);
    const cut = () => cutOff(n1.node.output()).slice(cutBefore);
    await settled(() => `${exchanges().length}/${cut().length}`);
    // Each exchange sent only the one it missed; a link replaced mid-exchange may have
    // carried it in the exchange it cut off, and the next one then finds nothing due.
    assert.ok(
      exchanges().every((l) => (l.sent ?? 0) <= 1),
      `only the one it missed: ${JSON.stringify(exchanges())}`,
    );
    const sent = sum(exchanges(), 'sent');
    assert.ok(
      sent === 1 || (sent === 0 && sum(cut(), 'written') >= 1),
      `the one it missed was sent once: ${JSON.stringify([...exchanges(), ...cut()])}`,
    );
    const res = await fetch(`${back.url}/v1/docs/gone/late`);
    assert.equal(res.status, 404);
  });
};

describe('tombstones at link-up on the WebSocket mesh', { timeout: 240_000 }, () => {
  scenario(async () => {
    const mesh = await startCluster(2);
    return {
      nodes: mesh.nodes,
      restart: (i) => mesh.restart(i),
      settled: () => waitConnected(mesh.nodes),
      close: () => mesh.close(),
    };
  })();
});

describe('tombstones at link-up on a Redis backplane', { timeout: 240_000 }, () => {
  scenario(async () => {
    const redis = await startRedis();
    const nodes = await startRedisNodes(2, redis.url);
    return {
      nodes: nodes.nodes,
      restart: (i) => nodes.restart(i),
      settled: () => waitMembers(nodes.nodes, ['n1', 'n2']),
      close: async () => {
        await nodes.close();
        await redis.close();
      },
    };
  })();
});

/**
 * What a link-up costs in tombstones (cluster/tombstones.ts): two mesh nodes as
 * child processes on real LevelDB, N documents deleted on one of them while
 * both are up, then the other restarted, twice. A link-up sends only the
 * tombstones the peer may have missed: none of the deletions it was told of
 * with a cursor, and after one exchange, none at all — where sending every
 * tombstone at every link-up would send N each time. That a node down during a
 * deletion learns it when it is back: cluster-delete.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { startCluster, waitConnected, type TestCluster } from './helpers/cluster.js';
import { stopChild } from './helpers/node.js';
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
}

const lines = (output: string, msg: string): LogLine[] =>
  output
    .split('\n')
    .filter((l) => l.includes(msg))
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.msg === msg);

const UP_TO_DATE = 'tombstones brought up to date on peer';
const RECEIVED = 'tombstones received';

describe('tombstones at link-up', { timeout: 240_000 }, () => {
  let mesh: TestCluster;
  before(async () => {
    mesh = await startCluster(2);
    await waitConnected(mesh.nodes);
  });
  after(async () => mesh?.close());

  /** Restarts n2 and waits until both sides finished their link-up exchange. */
  const restartN2 = async (): Promise<{ n1: LogLine; n2: LogLine; receivedByN1: number }> => {
    const n1 = mesh.nodes[0]!;
    const exchangesBefore = lines(n1.node.output(), UP_TO_DATE).length;
    const receivedBefore = lines(n1.node.output(), RECEIVED).length;
    await stopChild(mesh.nodes[1]!.node);
    const n2 = await mesh.restart(1);
    await waitConnected(mesh.nodes);
    await waitFor(
      () =>
        lines(n1.node.output(), UP_TO_DATE).length > exchangesBefore &&
        lines(n2.node.output(), UP_TO_DATE).length > 0,
      'both nodes to finish their link-up exchange',
      60_000,
    );
    const received = lines(n1.node.output(), RECEIVED).slice(receivedBefore);
    return {
      n1: lines(n1.node.output(), UP_TO_DATE).at(-1)!,
      n2: lines(n2.node.output(), UP_TO_DATE).at(-1)!,
      receivedByN1: received.reduce((sum, l) => sum + (l.received ?? 0), 0),
    };
  };

  it(`sends only what the peer may have missed, not all ${N} tombstones at every link-up`, async () => {
    const [n1, n2] = mesh.nodes as [TestCluster['nodes'][0], TestCluster['nodes'][0]];
    const names = Array.from({ length: N }, (_, i) => `gone/${String(i).padStart(3, '0')}`);
    for (const name of names) await write(n1.url, name);
    for (const name of names) assert.deepEqual((await remove(n1.url, name)).replicatedTo, ['n2']);
    // One deletion on n2 as well, so each side holds tombstones of the other's making.
    await write(n2.url, 'gone/n2');
    assert.deepEqual((await remove(n2.url, 'gone/n2')).replicatedTo, ['n1']);

    const first = await restartN2();
    assert.equal(first.n1.peer, 'n2');
    assert.equal(first.n1.held, N + 1);
    assert.equal(first.n1.sent, 0, 'n2 was told of every deletion of n1 with a cursor');
    // n2 does not know (after its restart) which of its tombstones came from n1: it may
    // send them back once; n1 already holds them and records how far n2's reached it.
    assert.equal(first.n2.peer, 'n1');
    assert.ok(first.n2.sent! <= N + 1);
    assert.equal(first.receivedByN1, first.n2.sent);

    const second = await restartN2();
    assert.equal(second.n1.held, N + 1);
    assert.equal(second.n2.held, N + 1);
    assert.equal(second.n1.sent, 0, 'no new deletion: nothing sent');
    assert.equal(second.n2.sent, 0, 'no new deletion: nothing sent');
    assert.equal(second.receivedByN1, 0);
    assert.equal(lines(mesh.nodes[1]!.node.output(), RECEIVED).length, 0);

    // A deletion while n2 is down still reaches it when it is back.
    await write(n1.url, 'gone/late');
    await stopChild(mesh.nodes[1]!.node);
    assert.deepEqual((await remove(n1.url, 'gone/late')).replicatedTo, []);
    const back = await mesh.restart(1);
    await waitFor(
      () =>
        lines(n1.node.output(), UP_TO_DATE).at(-1)?.held === N + 2 &&
        lines(back.node.output(), RECEIVED).some((l) => l.received === 1),
      'the late deletion to reach n2',
      60_000,
    );
    assert.equal(lines(n1.node.output(), UP_TO_DATE).at(-1)!.sent, 1, 'only the one it missed');
    const res = await fetch(`${back.url}/v1/docs/gone/late`);
    assert.equal(res.status, 404);
  });
});

/**
 * `owner` functions in a cluster: an invocation sent to any node runs on the
 * document's primary, so a check-then-act invariant holds cluster-wide, and an
 * idempotency key holds across nodes. Separate node processes, 127.0.0.1 only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import { startCluster, waitConnected, type TestCluster } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

const FUNCTIONS = fileURLToPath(new URL('../../../demo-app/functions', import.meta.url));

const invoke = async (
  url: string,
  name: string,
  input: unknown,
  headers: Record<string, string> = {},
) => {
  const res = await fetch(`${url}/v1/functions/${name}/invoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    replayed: res.headers.get('idempotent-replayed') === 'true',
  };
};

const docOn = async (url: string, name: string): Promise<Y.Doc | undefined> => {
  const res = await fetch(`${url}/v1/docs/${name}`, {
    headers: { accept: 'application/octet-stream' },
  });
  if (res.status !== 200) return undefined;
  const doc = new Y.Doc();
  Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()));
  return doc;
};

describe('owner functions in a cluster', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster(3, ['--functions', FUNCTIONS]);
    await waitConnected(cluster.nodes);
  });
  after(() => cluster?.close());

  it('never oversells when bookings for one show arrive at every node at once', async () => {
    const capacity = 10;
    const bookings = cluster.nodes.flatMap((node, n) =>
      Array.from({ length: 15 }, (_, i) =>
        invoke(node.url, 'bookSeat', { show: 'premiere', customer: `n${n}-c${i}`, capacity }),
      ),
    );
    const results = await Promise.all(bookings);
    assert.ok(
      results.every((r) => r.status === 200),
      JSON.stringify(results.filter((r) => r.status !== 200)),
    );
    const seats = results
      .filter((r) => r.body.ok === true)
      .map((r) => r.body.seat as number)
      .sort((a, b) => a - b);
    assert.deepEqual(
      seats,
      Array.from({ length: capacity }, (_, i) => i + 1),
      'exactly seats 1..capacity, each once',
    );
    // Every replica converges on exactly `capacity` bookings.
    await waitFor(
      async () => {
        for (const node of cluster.nodes) {
          const doc = await docOn(node.url, 'shows/premiere');
          if (doc?.getMap('bookings').size !== capacity) return false;
        }
        return true;
      },
      'every node to hold exactly the sold seats',
      10_000,
      50,
    );
  });

  it('returns the first result for an idempotency key retried at another node, applied once', async () => {
    const key = { 'idempotency-key': 'retry-across-nodes' };
    const first = await invoke(
      cluster.nodes[0]!.url,
      'bookSeat',
      { show: 'matinee', customer: 'ada', capacity: 5 },
      key,
    );
    assert.equal(first.status, 200);
    const again = await invoke(
      cluster.nodes[2]!.url,
      'bookSeat',
      { show: 'matinee', customer: 'ada', capacity: 5 },
      key,
    );
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.replayed, true);
    const other = await invoke(cluster.nodes[1]!.url, 'bookSeat', {
      show: 'matinee',
      customer: 'bob',
      capacity: 5,
    });
    assert.equal(other.body.seat, 2);
  });

  it('gives the forwarding header of older versions no power: the call still runs on the primary', async () => {
    // Earlier versions forwarded owner calls over HTTP with this header; now they
    // travel on the peer link, and a client sending it is routed like any other.
    const capacity = 4;
    const forged = { 'x-stateweave-forwarded': 'v2.n1.n2.0.nonce.forged' };
    const results = await Promise.all(
      cluster.nodes.flatMap((node, n) =>
        Array.from({ length: 4 }, (_, i) =>
          invoke(
            node.url,
            'bookSeat',
            { show: 'forged', customer: `n${n}-c${i}`, capacity },
            forged,
          ),
        ),
      ),
    );
    assert.ok(
      results.every((r) => r.status === 200),
      JSON.stringify(results.filter((r) => r.status !== 200)),
    );
    const seats = results
      .filter((r) => r.body.ok === true)
      .map((r) => r.body.seat as number)
      .sort((a, b) => a - b);
    assert.deepEqual(seats, [1, 2, 3, 4], 'one primary sold each seat once');
  });
});

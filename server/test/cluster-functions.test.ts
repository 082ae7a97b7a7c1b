/**
 * `owner` functions in a cluster: an invocation sent to any node runs on the
 * document's primary, so a check-then-act invariant holds cluster-wide, and an
 * idempotency key holds across nodes. Separate node processes, 127.0.0.1 only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import * as Y from 'yjs';
import { createForwarder } from '../src/cluster/forward.js';
import { PEER_SECRET, startCluster, waitConnected, type TestCluster } from './helpers/cluster.js';
import { sleep, waitFor } from './helpers/wait.js';

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

  it('refuses a forged forwarding header instead of running the function off the primary', async () => {
    const res = await fetch(`${cluster.nodes[1]!.url}/v1/functions/bookSeat/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-stateweave-forwarded': 'n1.forged' },
      body: JSON.stringify({ show: 'forged', customer: 'eve' }),
    });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
  });

  it('runs a captured forwarded call once: a replay, or a delivery to another node, is refused', async () => {
    // What n1 sends when it forwards an owner call to n2, captured off the wire.
    let captured: { headers: IncomingHttpHeaders; body: string } | undefined;
    const wire = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        captured = { headers: req.headers, body };
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => wire.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = wire.address() as { port: number };
      const forwarder = createForwarder({
        nodeId: 'n1',
        secret: PEER_SECRET,
        httpUrlOf: () => `http://127.0.0.1:${port}`,
      });
      const input = { show: 'replayed', customer: 'mallory', capacity: 5 };
      await forwarder.forward('n2', {
        name: 'bookSeat',
        body: JSON.stringify(input),
        idempotencyKey: 'captured-key',
      });
      assert.ok(captured, 'the forwarded call was captured');
      const headers = {
        'content-type': 'application/json',
        'idempotency-key': 'captured-key',
        'x-stateweave-forwarded': String(captured.headers['x-stateweave-forwarded']),
      };
      const deliver = (url: string) =>
        fetch(`${url}/v1/functions/bookSeat/invoke`, {
          method: 'POST',
          headers,
          body: captured!.body,
        });
      const [n1, n2, n3] = cluster.nodes as [
        (typeof cluster.nodes)[0],
        (typeof cluster.nodes)[0],
        (typeof cluster.nodes)[0],
      ];
      const genuine = await deliver(n2.url);
      assert.equal(genuine.status, 200, await genuine.clone().text());
      assert.equal(((await genuine.json()) as { seat?: number }).seat, 1);
      for (const [node, why] of [
        [n2, 'a replay to the node it was signed for'],
        [n3, 'a delivery to another node'],
        [n1, 'a delivery back to its sender'],
      ] as const) {
        const res = await deliver(node.url);
        assert.equal(res.status, 401, why);
        assert.equal(
          ((await res.json()) as { error: { code: string } }).error.code,
          'UNAUTHORIZED',
        );
      }
      // The booking ran once, whatever was replayed where.
      await waitFor(
        async () => (await docOn(n2.url, 'shows/replayed'))?.getMap('bookings').size === 1,
        'the one booking to be stored',
      );
      await sleep(300);
      for (const node of cluster.nodes)
        assert.ok(((await docOn(node.url, 'shows/replayed'))?.getMap('bookings').size ?? 0) <= 1);
    } finally {
      await new Promise<void>((resolve) => wire.close(() => resolve()));
    }
  });
});

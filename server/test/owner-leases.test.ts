/**
 * Request/response over a backplane and owner leases with fencing, on the
 * in-memory medium (fast, no Redis; the medium's clock is moved to expire a
 * lease): what cluster-redis-owner.test.ts proves with processes, here at the
 * level of the logic.
 */
import { docName } from './helpers/doc-name.js';
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import type { Backplane } from '../src/cluster/backplane.js';
import { createBackplaneRpc, type BackplaneRpc } from '../src/cluster/backplane-rpc.js';
import {
  createMemoryBackplaneMedium,
  type MemoryBackplaneMedium,
} from '../src/cluster/memory-backplane.js';
import { rank } from '../src/cluster/placement.js';
import {
  decodeRpcFrame,
  encodeRpcFrame,
  isRpcFrame,
  type RpcFrame,
  type RpcReply,
  type RpcRequest,
} from '../src/cluster/rpc-codec.js';
import { StateweaveError } from '../src/errors.js';
import { createMemoryStore } from '../src/storage/level-store.js';
import { delegateStore } from './helpers/store-wrapper.js';
import { sample } from './helpers/metrics.js';
import { silentLogger, startNode, type TestNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';
import { validateNodeId as nid } from '../src/node-id.js';

const FUNCTIONS = fileURLToPath(new URL('../../test/fixtures/owner', import.meta.url));

const isCode = (code: string) => (err: unknown) =>
  err instanceof StateweaveError && err.code === code;

describe('rpc frames', () => {
  it('round-trip every kind, and are told apart from replicator frames', () => {
    const frames: RpcFrame[] = [
      {
        kind: 'request',
        id: 1,
        request: { type: 'invoke', name: 'book', body: '{"a":1}', idempotencyKey: 'k' },
      },
      {
        kind: 'request',
        id: 2,
        request: { type: 'invoke', name: 'book', body: '', authorization: 'Bearer t' },
      },
      {
        kind: 'request',
        id: 3,
        request: { type: 'diff', doc: 'd', stateVector: Uint8Array.of(0) },
      },
      {
        kind: 'reply',
        id: 300,
        reply: { type: 'invoked', json: '{}', replayed: true, version: 'v' },
      },
      { kind: 'reply', id: 4, reply: { type: 'diff', update: Uint8Array.of(0, 0) } },
      { kind: 'error', id: 5, code: 'FENCED', message: 'lease moved on' },
      { kind: 'request', id: 6, request: { type: 'deployment-meta' } },
      { kind: 'request', id: 7, request: { type: 'deployment-code' } },
      { kind: 'request', id: 8, request: { type: 'deployment-push', json: '{"deployment":{}}' } },
      { kind: 'reply', id: 8, reply: { type: 'deployment', json: '{"adopted":true}' } },
      { kind: 'request', id: 9, request: { type: 'state-vector', doc: 'docs/a' } },
      { kind: 'reply', id: 9, reply: { type: 'state-vector', stateVector: Uint8Array.of(1, 2) } },
      {
        kind: 'request',
        id: 10,
        request: { type: 'apply', doc: 'docs/a', update: Uint8Array.of(0, 0) },
      },
      { kind: 'reply', id: 10, reply: { type: 'done' } },
      { kind: 'request', id: 11, request: { type: 'catch-up-cursor' } },
      { kind: 'reply', id: 11, reply: { type: 'cursor', cursor: undefined } },
      {
        kind: 'reply',
        id: 12,
        reply: { type: 'cursor', cursor: { epoch: 'e.m', seq: 2 ** 40, at: 1_795_000_000_000 } },
      },
      {
        kind: 'request',
        id: 13,
        request: { type: 'catch-up-done', cursor: { epoch: 'e.m', seq: 7, at: 1 } },
      },
      {
        kind: 'request',
        id: 14,
        request: {
          type: 'tombstones',
          tombstones: [
            {
              doc: docName('docs/a'),
              stateVector: Uint8Array.of(1, 5, 3),
              deletedAt: 1_795_000_000_000,
              by: 'user:ana',
            },
          ],
        },
      },
    ];
    for (const frame of frames) {
      const bytes = encodeRpcFrame(frame);
      assert.ok(isRpcFrame(bytes));
      assert.deepEqual(decodeRpcFrame(bytes), frame);
    }
    assert.ok(!isRpcFrame(Uint8Array.of(1, 0)), 'a replicator frame (kind 1) is not rpc');
    assert.ok(!isRpcFrame(Uint8Array.of(110, 0)), 'nor is a peer-link frame (110, 111)');
    assert.ok(!isRpcFrame(Uint8Array.of(111, 0)));
    // Request types 1–9 are taken (9: tombstones); 99 is no request.
    assert.throws(() => decodeRpcFrame(Uint8Array.of(8, 1, 99)), /unknown request type/);
    assert.throws(() => decodeRpcFrame(Uint8Array.of(9)), /malformed/);
  });
});

describe('request/response over the in-memory backplane', () => {
  let medium: MemoryBackplaneMedium;
  let backplanes: Backplane[] = [];
  let rpcs: BackplaneRpc[] = [];

  /** Nodes a and b; b serves with `serve`. */
  const start = async (
    serve: (request: RpcRequest) => Promise<RpcReply>,
  ): Promise<[BackplaneRpc, Backplane, Backplane]> => {
    medium = createMemoryBackplaneMedium();
    backplanes = ['a', 'b'].map((id) => medium.join(id));
    rpcs = backplanes.map((backplane) =>
      createBackplaneRpc({
        backplane,
        serve: async (_from, request) => serve(request),
        logger: silentLogger(),
      }),
    );
    for (const [i, backplane] of backplanes.entries())
      await backplane.start({
        memberUp: () => undefined,
        memberDown: (id) => rpcs[i]!.onMemberDown(id),
        direct: (from, frame) => rpcs[i]!.onFrame(from, frame),
        docMessage: () => undefined,
        recordChanged: () => undefined,
        resync: () => undefined,
      });
    return [rpcs[0]!, backplanes[0]!, backplanes[1]!];
  };

  afterEach(async () => {
    for (const rpc of rpcs) rpc.close();
    for (const b of backplanes) await b.close();
  });

  it('answers a request from the named node, and carries its error code back', async () => {
    const [rpc] = await start(async (request) => {
      if (request.type === 'diff') return { type: 'diff', update: Uint8Array.of(7, 0) };
      throw new StateweaveError('FORBIDDEN', 'not yours');
    });
    const reply = await rpc.request(nid('b'), {
      type: 'diff',
      doc: 'd',
      stateVector: Uint8Array.of(0),
    });
    assert.deepEqual(reply, { type: 'diff', update: Uint8Array.of(7, 0) });
    await assert.rejects(
      rpc.request(nid('b'), { type: 'invoke', name: 'f', body: '' }),
      (err) => isCode('FORBIDDEN')(err) && (err as Error).message === 'not yours',
    );
    assert.equal(rpc.pending, 0);
  });

  it('fails with PRIMARY_UNREACHABLE for a node that is not live, leaves, or does not answer', async () => {
    const [rpc, , b] = await start(() => new Promise<never>(() => undefined));
    await assert.rejects(
      rpc.request(nid('z'), { type: 'invoke', name: 'f', body: '' }),
      (err) =>
        isCode('PRIMARY_UNREACHABLE')(err) && /not a live member/.test((err as Error).message),
    );
    await assert.rejects(
      rpc.request(nid('b'), { type: 'invoke', name: 'f', body: '' }, 100),
      (err) => isCode('PRIMARY_UNREACHABLE')(err) && /within 100 ms/.test((err as Error).message),
    );
    const waiting = rpc.request(nid('b'), { type: 'invoke', name: 'f', body: '' });
    await waitFor(() => rpc.pending === 1, 'the request to be waiting');
    await b.close();
    await assert.rejects(
      waiting,
      (err) =>
        isCode('PRIMARY_UNREACHABLE')(err) && /left the cluster/.test((err as Error).message),
    );
    assert.equal(rpc.pending, 0);
  });
});

describe('owner leases on the in-memory backplane', () => {
  let medium: MemoryBackplaneMedium;
  let skewMs = 0;
  const nodes: TestNode[] = [];
  const ids = ['n1', 'n2'];

  before(async () => {
    medium = createMemoryBackplaneMedium({ now: () => Date.now() + skewMs });
    for (const id of ids)
      nodes.push(
        await startNode({ nodeId: id, backplane: medium.join(id), functionsDir: FUNCTIONS }),
      );
    await waitFor(
      () => nodes.every((n) => n.server.cluster.status().members.length === 2),
      'both nodes to see each other',
    );
  });

  after(async () => {
    for (const n of nodes) await n.close();
  });

  const invoke = async (node: TestNode, input: unknown, key: string) => {
    const res = await fetch(`${node.url}/v1/functions/book/invoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(input),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { ok: boolean; seat?: number };
  };

  it('runs every owner call on the primary, under one lease', async () => {
    const show = 'unit';
    const primary = rank(docName(`shows/${show}`), ids)[0]!;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        invoke(nodes[i % 2]!, { show, customer: `c${i}`, capacity: 10 }, `unit-${i}`),
      ),
    );
    const seats = results.flatMap((r) => (r.ok ? [r.seat!] : [])).sort((a, b) => a - b);
    assert.deepEqual(
      seats,
      Array.from({ length: 10 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      nodes.map((n) => n.server.cluster.status().owner?.leasesHeld),
      ids.map((id) => (id === primary ? 1 : 0)),
    );
    const other = nodes.find((n) => n.server.cluster.nodeId !== primary)!;
    const metrics = await other.server.metrics.registry.metrics();
    assert.equal(sample(metrics, 'stateweave_owner_calls_forwarded_total{outcome="ok"}'), 10);
  });

  it('refuses the write of a holder whose lease lapsed; the next holder has caught up', async () => {
    const doc = docName('shows/fenced');
    type Gate = NonNullable<TestNode['server']['cluster']['owners']['gate']>;
    const [a, b] = nodes.map((n) => n.server.cluster.owners.gate) as [Gate, Gate];
    const writer = new Y.Doc();
    const change = (key: string): Uint8Array => {
      const before = Y.encodeStateVector(writer);
      writer.getMap('m').set(key, key);
      return Y.encodeStateAsUpdate(writer, before);
    };
    const record = (key: string) => ({ key, value: new TextEncoder().encode(key) });

    const first = await a.hold(doc);
    await a.commit(doc, first, change('a1'), [record('r1')]);
    await assert.rejects(
      b.hold(doc),
      isCode('PRIMARY_UNREACHABLE'),
      'n1 holds it: n2 waits, then gives up',
    );

    skewMs += 60_000; // n1's lease lapses (it cannot renew: its renewals are refused now)
    const second = await b.hold(doc);
    assert.ok(second > first, 'a new holder gets a larger token');
    const room = await nodes[1]!.server.hub.open(doc);
    try {
      assert.equal(room.room.doc.getMap('m').get('a1'), 'a1', "n2 caught up n1's write first");
    } finally {
      room.release();
    }

    await assert.rejects(a.commit(doc, first, change('a2'), [record('r2')]), isCode('FENCED'));
    assert.equal(await b.record(doc, 'r2'), undefined, 'the stale record was not written');
    assert.deepEqual(await b.record(doc, 'r1'), new TextEncoder().encode('r1'));
    const metrics = await nodes[0]!.server.metrics.registry.metrics();
    assert.equal(sample(metrics, 'stateweave_owner_fenced_writes_total'), 1);
    await b.commit(doc, second, change('b1'), []);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await nodes[1]!.server.hub.open(doc);
    try {
      const seen = after.room.doc.getMap('m');
      assert.ok(!seen.has('a2'), 'the stale write reached nobody');
    } finally {
      after.release();
    }
  });
});

describe('owner leases: a fenced write this node could not store', () => {
  const nodes: TestNode[] = [];
  /** The document whose next write with records fails (a function's gated write; not the catch-up cursors' or deployments' records). */
  let failNextGatedWrite: string | undefined;

  before(async () => {
    const medium = createMemoryBackplaneMedium();
    const inner = await createMemoryStore();
    const store = delegateStore(inner, {
      append: (doc, update, records) => {
        if (doc === failNextGatedWrite && records && records.length > 0) {
          failNextGatedWrite = undefined;
          return Promise.reject(new Error('disk full'));
        }
        return inner.append(doc, update, records);
      },
    });
    nodes.push(
      await startNode({
        nodeId: 'n1',
        store,
        backplane: medium.join('n1'),
        functionsDir: FUNCTIONS,
      }),
    );
    nodes.push(
      await startNode({ nodeId: 'n2', backplane: medium.join('n2'), functionsDir: FUNCTIONS }),
    );
    await waitFor(
      () => nodes.every((n) => n.server.cluster.status().members.length === 2),
      'both nodes to see each other',
    );
  });

  after(async () => {
    for (const n of nodes) await n.close();
  });

  it('catches up on its own write before the next call runs', async () => {
    let i = 0;
    while (rank(docName(`shows/disk-${i}`), ['n1', 'n2'])[0] !== 'n1') i++;
    const show = `disk-${i}`;
    const call = (customer: string, key: string) =>
      fetch(`${nodes[0]!.url}/v1/functions/book/invoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ show, customer, capacity: 5 }),
      });
    failNextGatedWrite = `shows/${show}`;
    const failed = await call('x', 'disk-x');
    assert.notEqual(failed.status, 200, 'the local write failed');
    assert.equal(failNextGatedWrite, undefined);
    const next = await call('y', 'disk-y');
    assert.equal(next.status, 200, await next.clone().text());
    assert.deepEqual(
      await next.json(),
      { ok: true, seat: 2 },
      "x's seat, written cluster-wide, counts",
    );
    const retry = await call('x', 'disk-x');
    assert.equal(retry.status, 200);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(await retry.json(), { ok: true, seat: 1 });
  });
});

/**
 * Convergence with the stock y-websocket client: random concurrent edits from
 * 2 and 10 WebsocketProviders (Node, ws) on one document end with every client
 * and the node holding the same state. Property test over fixed seeds; a
 * failure names its seed, and STATEWEAVE_TEST_SEED=<seed> replays just that one.
 *
 * Also presence: awareness reaches the others and disappears for everyone when
 * its client leaves, by a clean close, an abrupt terminate, or a silent peer.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as Y from 'yjs';
import type { WebSocket } from 'ws';
import { Awareness, encodeAwarenessUpdate } from 'y-protocols/awareness';
import { encodeAwareness } from '@stateweave/client/protocol';
import { rawClient, stockClient, type StockClient } from './helpers/clients.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

// Each stock provider adds a process 'exit' listener; ten of them are expected here.
process.setMaxListeners(64);

const seedFromEnv = (raw: string | undefined): number[] | undefined => {
  if (raw === undefined || raw === '') return undefined;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed))
    throw new Error(`STATEWEAVE_TEST_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return [seed];
};
const SEEDS = seedFromEnv(process.env.STATEWEAVE_TEST_SEED) ?? [0x5eed, 20_240_601, 77];

// ---------------------------------------------------------------- the model

type Op =
  | { readonly kind: 'insert'; readonly at: number; readonly text: string }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'set'; readonly key: string; readonly value: number | string | boolean | null }
  | { readonly kind: 'push'; readonly value: number };

/** One transaction (one update message) and how the client yields after it. */
interface Step {
  readonly ops: readonly Op[];
  readonly pause: 'none' | 'immediate' | 'timer';
}

interface ClientScript {
  /** Edit while disconnected, then reconnect (offline edits must merge too). */
  readonly offline: boolean;
  readonly steps: readonly Step[];
}

const charArb = fc.constantFrom('a', 'b', 'c', 'x', ' ', '\n', 'é', '日');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.string({ unit: charArb, minLength: 1, maxLength: 6 }),
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({
    kind: fc.constant('set' as const),
    // Few keys, so concurrent sets of one key (last-writer-wins by client id) are common.
    key: fc.constantFrom('a', 'b', 'c', 'd'),
    value: fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.boolean(), fc.constant(null)),
  }),
  fc.record({ kind: fc.constant('push' as const), value: fc.integer() }),
);
const stepArb: fc.Arbitrary<Step> = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 3 }),
  pause: fc.constantFrom('none' as const, 'immediate' as const, 'timer' as const),
});
const scriptArb: fc.Arbitrary<ClientScript> = fc.record({
  offline: fc.integer({ min: 0, max: 3 }).map((n) => n === 0), // ~25% of clients edit offline
  steps: fc.array(stepArb, { minLength: 1, maxLength: 12 }),
});

const applyOp = (doc: Y.Doc, op: Op): void => {
  const text = doc.getText('text');
  switch (op.kind) {
    case 'insert':
      text.insert(op.at % (text.length + 1), op.text);
      return;
    case 'delete': {
      if (text.length === 0) return;
      const at = op.at % text.length;
      text.delete(at, Math.min(op.length, text.length - at));
      return;
    }
    case 'set':
      doc.getMap('map').set(op.key, op.value);
      return;
    case 'push':
      doc.getArray('array').push([op.value]);
      return;
  }
};

const pause = (kind: Step['pause']): Promise<void> =>
  kind === 'none'
    ? Promise.resolve()
    : kind === 'immediate'
      ? new Promise((r) => setImmediate(r))
      : sleep(1);

const runScript = async (client: StockClient, script: ClientScript): Promise<void> => {
  if (script.offline) client.provider.disconnect();
  for (const step of script.steps) {
    client.doc.transact(() => {
      for (const op of step.ops) applyOp(client.doc, op);
    });
    await pause(step.pause);
  }
  if (script.offline) client.provider.connect();
};

// ---------------------------------------------------------------- comparing

/** Everything that must match: visible content and the CRDT state (state vector + delete set). */
const fingerprint = (doc: Y.Doc): string => {
  const sv = [...Y.decodeStateVector(Y.encodeStateVector(doc))].sort(([a], [b]) => a - b);
  const snapshot = Y.encodeSnapshot(Y.snapshot(doc));
  return JSON.stringify({
    text: doc.getText('text').toString(),
    // Key order of a Y.Map depends on arrival order; the content does not.
    map: Object.entries(doc.getMap('map').toJSON()).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    ),
    array: doc.getArray('array').toJSON(),
    sv,
    snapshot: Buffer.from(snapshot).toString('base64'),
  });
};

/** The node's copy of the document, read over HTTP as a binary update. */
const fetchServerDoc = async (node: TestNode, name: string): Promise<Y.Doc> => {
  const res = await fetch(`${node.url}/v1/docs/${encodeURIComponent(name)}`, {
    headers: { accept: 'application/octet-stream' },
  });
  const doc = new Y.Doc();
  if (res.status === 404) return doc; // nothing was ever written: the empty document
  assert.equal(res.status, 200, `GET /v1/docs/${name}: ${res.status} ${await res.clone().text()}`);
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()));
  return doc;
};

const describeDivergence = (
  clients: readonly StockClient[],
  serverPrint: string | undefined,
): string =>
  [
    `node:   ${serverPrint ?? '(not loaded)'}`,
    ...clients.map(
      (c, i) =>
        `client ${i} (id ${c.doc.clientID}, synced ${c.provider.synced}): ${fingerprint(c.doc)}`,
    ),
  ].join('\n');

// ---------------------------------------------------------------- the property

let runCounter = 0;
/** Document name → the state its clients converged on, to check against a restarted node. */
const convergedStates = new Map<string, string>();

const convergesProperty = (getNode: () => TestNode, clientCount: number) =>
  fc.asyncProperty(
    fc.array(scriptArb, { minLength: clientCount, maxLength: clientCount }),
    async (scripts) => {
      const node = getNode();
      const name = docName(`converge-${clientCount}-${++runCounter}`);
      const clients = await Promise.all(scripts.map(() => stockClient(node.wsUrl, name)));
      try {
        // All clients edit at once; their frames interleave on the wire and in the node.
        await Promise.all(clients.map((client, i) => runScript(client, scripts[i]!)));
        let last = '';
        try {
          await waitFor(
            () => {
              const room = node.server.hub.peek(name);
              const expected = room ? fingerprint(room.doc) : undefined;
              last = describeDivergence(clients, expected);
              return (
                expected !== undefined &&
                clients.every((c) => c.provider.synced && fingerprint(c.doc) === expected)
              );
            },
            `${clientCount} clients and the node to converge on ${name}`,
            10_000,
            20,
          );
        } catch (err) {
          throw new Error(`${(err as Error).message}\n${last}`);
        }
        // The HTTP read (what a fresh reader gets) is the same state too.
        const fromHttp = await fetchServerDoc(node, name);
        assert.equal(
          fingerprint(fromHttp),
          fingerprint(clients[0]!.doc),
          'GET /v1/docs binary state differs from the clients',
        );
        fromHttp.destroy();
        convergedStates.set(name, fingerprint(clients[0]!.doc));
      } finally {
        for (const c of clients) c.destroy();
      }
    },
  );

const assertForSeeds = async (
  property: fc.IAsyncProperty<[ClientScript[]]>,
  numRuns: number,
): Promise<void> => {
  for (const seed of SEEDS) {
    try {
      // endOnFailure: shrinking would replay many real-network runs; the seed and
      // the printed counterexample are enough to replay the failure.
      await fc.assert(property, { seed, numRuns, endOnFailure: true, includeErrorInReport: true });
    } catch (err) {
      throw new Error(
        `convergence property failed for seed ${seed}; replay with ` +
          `STATEWEAVE_TEST_SEED=${seed} node --test dist/test/convergence.test.js\n${(err as Error).message}`,
        { cause: err },
      );
    }
  }
};

describe('stock y-websocket clients converge (LevelDB-backed node)', () => {
  let node: TestNode;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    dir = await tempDir();
    node = await startNode({ dataDir: dir.path });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  it(`two clients converge after random concurrent edits (seeds ${SEEDS.join(', ')})`, async () => {
    await assertForSeeds(
      convergesProperty(() => node, 2),
      25,
    );
  });

  it(`ten clients converge after random concurrent edits (seeds ${SEEDS.join(', ')})`, async () => {
    await assertForSeeds(
      convergesProperty(() => node, 10),
      8,
    );
  });

  it('a client that joins afterwards gets the same converged state', async () => {
    const name = docName('converge-late-joiner');
    const a = await stockClient(node.wsUrl, name);
    const b = await stockClient(node.wsUrl, name);
    a.doc.getText('text').insert(0, 'hello ');
    b.doc.getMap('map').set('k', 1);
    b.doc.getArray('array').push([1, 2]);
    await waitFor(() => fingerprint(a.doc) === fingerprint(b.doc), 'a and b to converge');
    const late = await stockClient(node.wsUrl, name);
    await waitFor(
      () => fingerprint(late.doc) === fingerprint(a.doc),
      'the late joiner to converge',
    );
    for (const c of [a, b, late]) c.destroy();
  });

  it('a node restarted on the same LevelDB serves every converged document unchanged', async () => {
    assert.ok(convergedStates.size > 0);
    await node.close(); // flushes every document
    node = await startNode({ dataDir: dir.path });
    for (const [name, expected] of convergedStates) {
      const doc = await fetchServerDoc(node, name);
      assert.equal(fingerprint(doc), expected, `${name} after restart`);
      doc.destroy();
    }
  });
});

// ---------------------------------------------------------------- presence

const presentIds = (client: StockClient): number[] => [
  ...client.provider.awareness.getStates().keys(),
];

describe('awareness through the node', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ heartbeatMs: 200 });
  });
  after(() => node.close());

  const setUp = (name: string, count: number): Promise<StockClient[]> =>
    Promise.all(Array.from({ length: count }, () => stockClient(node.wsUrl, name)));

  it('shows a client state to the others, to late joiners, and removes it on a clean close', async () => {
    const [a, b, c] = await setUp('presence-clean', 3);
    assert.ok(a && b && c);
    const aId = a.doc.clientID;
    a.provider.awareness.setLocalStateField('user', { name: 'ada', cursor: 3 });
    for (const other of [b, c]) {
      await waitFor(
        () =>
          JSON.stringify(other.provider.awareness.getStates().get(aId)) ===
          JSON.stringify({ user: { name: 'ada', cursor: 3 } }),
        `client ${other.doc.clientID} to see a's presence`,
      );
    }
    const late = await stockClient(node.wsUrl, 'presence-clean');
    await waitFor(
      () => late.provider.awareness.getStates().has(aId),
      "a late joiner to see a's presence",
    );

    a.destroy(); // provider.destroy(): clean close
    for (const other of [b, c, late]) {
      await waitFor(
        () => !presentIds(other).includes(aId),
        `a's presence to disappear at ${other.doc.clientID}`,
      );
    }
    // The node forgot it too: a new joiner does not see a ghost.
    const fresh = await stockClient(node.wsUrl, 'presence-clean');
    await sleep(50);
    assert.ok(!presentIds(fresh).includes(aId), 'a fresh client sees the departed client');
    for (const x of [b, c, late, fresh]) x.destroy();
  });

  it('removes the presence of a client whose socket is terminated abruptly', async () => {
    const [a, b, c] = await setUp('presence-terminate', 3);
    assert.ok(a && b && c);
    const bId = b.doc.clientID;
    b.provider.awareness.setLocalState({ user: 'bob' });
    await waitFor(
      () => a.provider.awareness.getStates().has(bId) && c.provider.awareness.getStates().has(bId),
      "b's presence to arrive",
    );
    // No awareness goodbye, no close frame: the TCP connection just goes away.
    // shouldConnect=false keeps the provider from reconnecting (and re-announcing).
    b.provider.shouldConnect = false;
    (b.provider.ws as unknown as WebSocket).terminate();
    for (const other of [a, c]) {
      await waitFor(
        () => !presentIds(other).includes(bId),
        `b's presence to disappear at ${other.doc.clientID}`,
      );
    }
    assert.equal(
      node.server.hub.peek(docName('presence-terminate'))?.awareness.getStates().has(bId),
      false,
    );
    for (const x of [a, b, c]) x.destroy();
  });

  it('removes the presence of a client that stops answering pings (heartbeat)', async () => {
    const [a] = await setUp('presence-silent', 1);
    assert.ok(a);
    // A raw client announces itself, then stops reading: no pongs, no close.
    const silent = await rawClient(node.wsUrl, 'presence-silent', { hello: false });
    const silentDoc = new Y.Doc();
    const aw = new Awareness(silentDoc);
    aw.setLocalState({ user: 'silent' });
    silent.send(encodeAwareness(encodeAwarenessUpdate(aw, [silentDoc.clientID])));
    await waitFor(
      () => a.provider.awareness.getStates().has(silentDoc.clientID),
      "the silent client's presence to arrive",
    );
    silent.ws.pause();
    const started = Date.now();
    await waitFor(
      () => !presentIds(a).includes(silentDoc.clientID),
      "the silent client's presence to disappear",
      3000,
    );
    // One interval to ping, one more to notice the missing pong.
    assert.ok(
      Date.now() - started < 1500,
      `heartbeat took ${Date.now() - started} ms with heartbeatMs 200`,
    );
    silent.ws.terminate();
    aw.destroy();
    a.destroy();
  });
});

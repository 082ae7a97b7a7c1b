/**
 * Durability across real process restarts (the `stateweave serve` CLI in a child
 * process, LevelDB in a temp dir):
 *
 * - SIGTERM: clients see 1001, the process exits 0, a new node on the same data
 *   dir serves everything; nothing a client sent before it saw the close is lost.
 * - SIGKILL: every update the node acknowledged as saved is there after restart,
 *   whether the kill comes right after the last ack or in the middle of a stream.
 * - A restarted node serves exactly the state it served before (content, state
 *   vector, delete set), also across compaction.
 * - `--fsync` persists the same way.
 *
 * Measured figures (shutdown time, ack latency) are printed as test diagnostics.
 */
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import * as Y from 'yjs';
import { rawClient, stockClient, type RawClient, type StockClient } from './helpers/clients.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

// ---------------------------------------------------------------- bookkeeping

const children: ChildNode[] = [];
const dirs: Array<{ remove: () => Promise<void> }> = [];

const start = async (dataDir: string, args: string[] = [], port = 0): Promise<ChildNode> => {
  const node = await spawnNode(dataDir, args, port);
  children.push(node);
  return node;
};

/** This file floods on purpose to test durability, not the per-connection rate limit. */
const FLOOD = ['--max-messages-per-second', '1000000', '--message-burst', '1000000'];

const newDir = async (): Promise<string> => {
  const dir = await tempDir();
  dirs.push(dir);
  return dir.path;
};

after(async () => {
  // Only the children this file started, by handle.
  for (const node of children) await stopChild(node, 'SIGKILL');
  for (const dir of dirs) await dir.remove();
});

const isRunning = (node: ChildNode): boolean =>
  node.child.exitCode === null && node.child.signalCode === null;

/** SIGKILL a node we started and wait until the process is gone. */
const crash = async (node: ChildNode): Promise<void> => {
  if (isRunning(node)) node.child.kill('SIGKILL');
  const { signal } = await node.exited;
  assert.equal(signal, 'SIGKILL');
};

/**
 * A raw client whose socket may be reset when the node is killed: record the
 * error (ECONNRESET is what a kill -9 looks like) instead of crashing the test.
 */
const openRaw = async (
  node: ChildNode,
  name: string,
): Promise<RawClient & { readonly errors: Error[] }> => {
  const client = await rawClient(node.wsUrl, name);
  const errors: Error[] = [];
  client.ws.on('error', (err) => errors.push(err));
  return Object.assign(client, { errors });
};

/** An update that sets `key` in the map `m` of `author`. */
const mapUpdate = (author: Y.Doc, key: string, value: number): Uint8Array => {
  const before = Y.encodeStateVector(author);
  author.getMap('m').set(key, value);
  return Y.encodeStateAsUpdate(author, before);
};

/** The node's state as a binary update (GET /v1/docs/NAME, octet-stream), and as a Y.Doc. */
const fetchState = async (
  node: ChildNode,
  name: string,
): Promise<{ bytes: Uint8Array; doc: Y.Doc }> => {
  const res = await fetch(`${node.url}/v1/docs/${encodeURIComponent(name)}`, {
    headers: { accept: 'application/octet-stream' },
  });
  assert.equal(res.status, 200, `GET ${name}: ${res.status} ${await res.clone().text()}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const doc = new Y.Doc();
  Y.applyUpdate(doc, bytes);
  return { bytes, doc };
};

const fetchJson = async (node: ChildNode, name: string): Promise<unknown> => {
  const res = await fetch(`${node.url}/v1/docs/${encodeURIComponent(name)}`, {
    headers: { accept: 'application/json' },
  });
  assert.equal(res.status, 200, `GET ${name} as JSON: ${res.status}`);
  return res.json();
};

/** Content plus CRDT identity: state vector and delete set (a Yjs snapshot). */
const fingerprint = (
  doc: Y.Doc,
): { json: unknown; sv: Array<[number, number]>; snapshot: string } => ({
  json: {
    text: doc.getText('text').toString(),
    m: Object.entries(doc.getMap('m').toJSON()).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    array: doc.getArray('array').toJSON(),
  },
  sv: [...Y.decodeStateVector(Y.encodeStateVector(doc))].sort(([a], [b]) => a - b),
  snapshot: Buffer.from(Y.encodeSnapshot(Y.snapshot(doc))).toString('base64'),
});

/** Pulls the `ms` of the node's "stopped" log line. */
const stoppedMs = (node: ChildNode): number | undefined => {
  for (const line of node.output().split('\n')) {
    if (!line.includes('"stopped"')) continue;
    return (JSON.parse(line) as { ms?: number }).ms;
  }
  return undefined;
};

/** A port that was free a moment ago (to restart a node where a stock client reconnects). */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** Resolves in the message handler that delivers the ack covering `seq` (no polling delay). */
const untilAck = (client: RawClient, seq: number, timeoutMs = 5000): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.ws.off('message', check);
      reject(
        new Error(`no ack for seq ${seq} within ${timeoutMs} ms (saved ${client.savedSeq()})`),
      );
    }, timeoutMs);
    const check = (): void => {
      if (client.savedSeq() < seq) return;
      clearTimeout(timer);
      client.ws.off('message', check);
      resolve();
    };
    client.ws.on('message', check);
    check();
  });

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const summary = (values: number[]): string =>
  `n=${values.length} p50=${percentile(values, 50).toFixed(2)}ms p95=${percentile(values, 95).toFixed(2)}ms p99=${percentile(values, 99).toFixed(2)}ms max=${Math.max(...values).toFixed(2)}ms`;

/**
 * Sends `count` map updates as fast as the socket takes them and records, for
 * each, the time from send until an ack covers its seq. `onAck` runs inside the
 * message handler, so a test can kill the node the instant an ack arrives.
 */
const burst = (
  client: RawClient,
  author: Y.Doc,
  keyPrefix: string,
  count: number,
  onAck?: (saved: number) => void,
): {
  seqs: Map<string, number>;
  lastSeq: number;
  latencies: number[];
  lastAckAfterMs: () => number | undefined;
} => {
  const seqs = new Map<string, number>();
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let covered = client.savedSeq();
  let lastSeq = 0;
  let sentAllAt = 0;
  let lastAckAt = 0;
  client.ws.on('message', () => {
    // Registered after rawClient's own listener, so savedSeq() is already updated.
    const saved = client.savedSeq();
    const now = performance.now();
    for (let seq = covered + 1; seq <= saved; seq++) {
      const t = sentAt.get(seq);
      if (t !== undefined) latencies.push(now - t);
    }
    covered = Math.max(covered, saved);
    if (lastAckAt === 0 && sentAllAt > 0 && saved >= lastSeq) lastAckAt = now;
    onAck?.(saved);
  });
  for (let i = 0; i < count; i++) {
    const key = `${keyPrefix}${i}`;
    const update = mapUpdate(author, key, i);
    sentAt.set((lastSeq = client.sendUpdate(update)), performance.now());
    seqs.set(key, lastSeq);
  }
  sentAllAt = performance.now();
  // Per-update latencies include the time this loop kept our event loop busy;
  // lastAckAfterMs is the node's share: from the last send to the ack covering it.
  return {
    seqs,
    lastSeq,
    latencies,
    lastAckAfterMs: () => (lastAckAt > 0 ? lastAckAt - sentAllAt : undefined),
  };
};

/**
 * Every key whose seq ≤ `acked` (the last acknowledged seq, or the last one sent
 * where nothing may be lost) must be in `doc` with its value. Returns how many
 * later, unacknowledged ones were stored anyway (allowed, not promised).
 */
const assertAckedPresent = (
  doc: Y.Doc,
  seqs: Map<string, number>,
  acked: number,
  context: string,
): number => {
  const map = doc.getMap<number>('m');
  const missing: string[] = [];
  let extra = 0;
  for (const [key, seq] of seqs) {
    const present = map.get(key) === Number(key.slice(key.lastIndexOf('-') + 1));
    if (seq <= acked && !present) missing.push(`${key}(seq ${seq})`);
    if (seq > acked && present) extra++;
  }
  assert.deepEqual(
    missing,
    [],
    `${context}: ${missing.length} updates lost that had to be stored (through seq ${acked})`,
  );
  return extra;
};

// ---------------------------------------------------------------- (a) SIGTERM

describe('graceful shutdown (SIGTERM) and restart on the same data dir', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: exits 0, closes clients with 1001, and a new node serves everything`, async (t: TestContext) => {
      const dir = await newDir();
      const node = await start(dir);
      const writer = await stockClient(node.wsUrl, 'graceful');
      const closeCodes: Array<number | undefined> = [];
      writer.provider.on('connection-close', (event) => closeCodes.push(event?.code));
      writer.doc.getText('text').insert(0, 'written before SIGTERM');
      writer.doc.getMap('m').set('k', 42);
      writer.doc.getArray('array').push(['a', 'b']);
      const expected = fingerprint(writer.doc);
      // The node has applied it (a stock client gets no acks; the HTTP read tells us).
      await waitFor(
        async () =>
          JSON.stringify(fingerprint((await fetchState(node, 'graceful')).doc)) ===
          JSON.stringify(expected),
        'the node to hold the edits',
      );

      const started = performance.now();
      node.child.kill(signal);
      const exit = await node.exited;
      const shutdownMs = performance.now() - started;
      assert.deepEqual(exit, { code: 0, signal: null }, `node output:\n${node.output()}`);
      await waitFor(() => closeCodes.length > 0, 'the stock client to see the close');
      assert.equal(closeCodes[0], 1001, `close codes seen: ${closeCodes.join(', ')}`);
      writer.destroy();
      t.diagnostic(
        `${signal} → exit: ${shutdownMs.toFixed(1)} ms (node's own "stopped" log: ${stoppedMs(node)} ms)`,
      );

      const restarted = await start(dir);
      const fresh = await stockClient(restarted.wsUrl, 'graceful');
      assert.deepEqual(fingerprint(fresh.doc), expected);
      fresh.destroy();
      assert.deepEqual(await stopChild(restarted), { code: 0, signal: null });
    });
  }

  it('a client that never answers the close does not hold shutdown past --shutdown-timeout-ms', async (t: TestContext) => {
    const dir = await newDir();
    const node = await start(dir, ['--shutdown-timeout-ms', '500']);
    const stuck = await openRaw(node, 'graceful-stuck');
    const author = new Y.Doc();
    const { seqs, lastSeq } = burst(stuck, author, 'st-', 50);
    await untilAck(stuck, lastSeq);
    stuck.ws.pause(); // reads nothing more: never sees the close frame, never replies
    const started = performance.now();
    node.child.kill('SIGTERM');
    const exit = await node.exited;
    const shutdownMs = performance.now() - started;
    assert.deepEqual(exit, { code: 0, signal: null }, `node output:\n${node.output()}`);
    assert.ok(
      shutdownMs >= 450 && shutdownMs < 3000,
      `shutdown took ${shutdownMs.toFixed(0)} ms with --shutdown-timeout-ms 500`,
    );
    t.diagnostic(
      `SIGTERM with a client that never closes → exit: ${shutdownMs.toFixed(1)} ms (timeout 500 ms)`,
    );
    stuck.ws.terminate();

    const restarted = await start(dir);
    assertAckedPresent(
      (await fetchState(restarted, 'graceful-stuck')).doc,
      seqs,
      lastSeq,
      'after a forced shutdown',
    );
    assert.deepEqual(await stopChild(restarted), { code: 0, signal: null });
  });

  it('loses nothing a client sent before it saw the 1001 close', async (t: TestContext) => {
    const dir = await newDir();
    const node = await start(dir);
    const client = await openRaw(node, 'graceful-inflight');
    const author = new Y.Doc();
    // The client streams updates, SIGTERM lands mid-stream, and the client keeps
    // streaming until the node's close frame reaches it. Every frame it wrote while
    // still open precedes its close reply on the wire, so the node receives all of
    // them while its socket is closing and must apply and flush them before exiting.
    const seqs = new Map<string, number>();
    let started = 0;
    let sentAfterSignal = 0;
    for (let i = 0; i < 50_000 && client.ws.readyState === client.ws.OPEN; i++) {
      const key = `g-${i}`;
      seqs.set(key, client.sendUpdate(mapUpdate(author, key, i)));
      if (started > 0) sentAfterSignal++;
      if (i === 300) {
        started = performance.now();
        node.child.kill('SIGTERM');
      }
      if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
    }
    const closed = await client.closed();
    const exit = await node.exited;
    const shutdownMs = performance.now() - started;
    const lastSeq = [...seqs.values()].at(-1) ?? 0;
    assert.equal(closed.code, 1001, `close reason: ${closed.reason}`);
    assert.deepEqual(exit, { code: 0, signal: null }, `node output:\n${node.output()}`);
    assert.ok(
      sentAfterSignal > 0,
      'no update was sent after SIGTERM; the test did not test frames in flight',
    );
    t.diagnostic(
      `SIGTERM while a client streams → exit: ${shutdownMs.toFixed(1)} ms; ${sentAfterSignal} updates sent after the signal, ` +
        `acked before close: ${client.savedSeq()}/${lastSeq}`,
    );

    const restarted = await start(dir);
    const { doc } = await fetchState(restarted, 'graceful-inflight');
    assertAckedPresent(doc, seqs, lastSeq, 'after SIGTERM with updates in flight');
    assert.deepEqual(await stopChild(restarted), { code: 0, signal: null });
  });

  it('a stock client that stays open merges its offline edits into the node restarted on the same port', async () => {
    const dir = await newDir();
    const port = await freePort();
    const node = await start(dir, [], port);
    const client: StockClient = await stockClient(node.wsUrl, 'graceful-offline');
    client.doc.getText('text').insert(0, 'before.');
    await waitFor(
      async () =>
        (await fetchState(node, 'graceful-offline')).doc.getText('text').toString() === 'before.',
      'first edit on the node',
    );
    assert.deepEqual(await stopChild(node), { code: 0, signal: null });
    await waitFor(() => !client.provider.wsconnected, 'the provider to notice the node is gone');
    client.doc.getText('text').insert(7, ' offline.'); // made while no node runs

    const restarted = await start(dir, [], port);
    await waitFor(() => client.provider.synced, 'the provider to reconnect and sync', 5000);
    const other = await stockClient(restarted.wsUrl, 'graceful-offline');
    await waitFor(
      () => other.doc.getText('text').toString() === 'before. offline.',
      'a second client to see both edits',
    );
    client.destroy();
    other.destroy();
    assert.deepEqual(await stopChild(restarted), { code: 0, signal: null });
  });
});

// ---------------------------------------------------------------- (b) SIGKILL

describe('crash (SIGKILL): every acknowledged update survives', () => {
  it('kills right after the ack of the last of 200 rapid updates, three rounds', async (t: TestContext) => {
    const dir = await newDir();
    const all = new Map<string, number>(); // key → seq, per round (seqs restart with each connection)
    const acked: Array<{ seqs: Map<string, number>; acked: number }> = [];
    const latencies: number[] = [];
    const lastAcks: number[] = [];
    let node = await start(dir);
    for (let round = 0; round < 3; round++) {
      const client = await openRaw(node, 'crash-after-ack');
      const author = new Y.Doc();
      const current = node;
      let killedAt = 0;
      const result = burst(client, author, `r${round}-`, 200, (saved) => {
        if (killedAt === 0 && saved >= result.lastSeq) {
          killedAt = saved;
          current.child.kill('SIGKILL'); // not a millisecond of grace after the ack
        }
      });
      await untilAck(client, result.lastSeq, 10_000);
      await crash(current);
      await client.closed();
      assert.equal(killedAt, result.lastSeq, 'killed after the final ack');
      latencies.push(...result.latencies);
      lastAcks.push(result.lastAckAfterMs() ?? NaN);
      acked.push({ seqs: result.seqs, acked: client.savedSeq() });
      for (const [k, v] of result.seqs) all.set(k, v);

      node = await start(dir);
      const { doc } = await fetchState(node, 'crash-after-ack');
      for (const [i, r] of acked.entries())
        assertAckedPresent(doc, r.seqs, r.acked, `round ${round}, batch ${i}`);
      assert.equal(doc.getMap('m').size, all.size);
    }
    t.diagnostic(
      `ack latency, 200-update bursts (default mode), per update from its send: ${summary(latencies)}`,
    );
    t.diagnostic(
      `ack latency, 200-update bursts (default mode), last send → final ack: ${lastAcks.map((ms) => ms.toFixed(2)).join(', ')} ms`,
    );
    assert.deepEqual(await stopChild(node), { code: 0, signal: null });
  });

  it('kills while updates are still being sent; everything up to the last ack survives, five rounds', async (t: TestContext) => {
    const dir = await newDir();
    const rounds: Array<{ seqs: Map<string, number>; acked: number }> = [];
    let node = await start(dir, FLOOD);
    for (let round = 0; round < 5; round++) {
      const client = await openRaw(node, 'crash-mid-stream');
      const author = new Y.Doc();
      const current = node;
      const seqs = new Map<string, number>();
      let sent = 0;
      // Bursts of 20 per event-loop turn; kill once some hundreds are acked (more
      // each round, so the node's write batches are larger when the kill lands).
      const killAfterAck = 150 + round * 300;
      client.ws.on('message', () => {
        if (client.savedSeq() >= killAfterAck && isRunning(current)) current.child.kill('SIGKILL');
      });
      for (let i = 0; i < 20_000 && client.ws.readyState === client.ws.OPEN; i++) {
        const key = `s${round}-${i}`;
        seqs.set(key, client.sendUpdate(mapUpdate(author, key, i)));
        sent++;
        if (i % 20 === 19) await new Promise((resolve) => setImmediate(resolve));
      }
      await crash(current);
      await client.closed();
      const ackedSeq = client.savedSeq();
      const lastSent = [...seqs.values()].at(-1) ?? 0;
      assert.ok(ackedSeq >= killAfterAck, `acked ${ackedSeq}, expected ≥ ${killAfterAck}`);
      assert.ok(
        lastSent > ackedSeq,
        `the kill came after every update was acked (sent ${lastSent}, acked ${ackedSeq}); the test did not test a mid-stream kill`,
      );
      rounds.push({ seqs, acked: ackedSeq });

      node = await start(dir, FLOOD);
      const { doc } = await fetchState(node, 'crash-mid-stream');
      let survivedUnacked = 0;
      for (const [i, r] of rounds.entries())
        survivedUnacked = assertAckedPresent(doc, r.seqs, r.acked, `round ${round}, batch ${i}`);
      t.diagnostic(
        `round ${round}: sent ${sent} updates (seq ≤ ${lastSent}), acked through ${ackedSeq}, unacked but stored anyway: ${survivedUnacked}`,
      );
    }
    assert.deepEqual(await stopChild(node), { code: 0, signal: null });
  });
});

describe('crash (SIGKILL) after idle unloads and compactions', () => {
  it('keeps every acked update when the document was unloaded, compacted and reloaded between writes', async () => {
    const dir = await newDir();
    // debug logging, to see that the unloads really happened.
    const node = await start(dir, [
      '--idle-unload-ms',
      '20',
      '--compact-after-updates',
      '5',
      '--log-level',
      'debug',
    ]);
    const rounds: Array<{ seqs: Map<string, number>; acked: number }> = [];
    let last: RawClient | undefined;
    for (let round = 0; round < 5; round++) {
      const client = await openRaw(node, 'crash-unload');
      const { seqs, lastSeq } = burst(client, new Y.Doc(), `u${round}-`, 30);
      await untilAck(client, lastSeq);
      rounds.push({ seqs, acked: lastSeq });
      if (round < 4) {
        client.close();
        await client.closed();
        await sleep(150); // idle-unload-ms 20: flushed, compacted and unloaded by now
      } else last = client;
    }
    const unloads = node
      .output()
      .split('\n')
      .filter((l) => l.includes('"document unloaded"')).length;
    assert.ok(
      unloads >= 4,
      `expected the document to be unloaded between rounds, saw ${unloads} unloads`,
    );
    await crash(node);
    await last?.closed();
    const restarted = await start(dir);
    const { doc } = await fetchState(restarted, 'crash-unload');
    for (const [i, r] of rounds.entries()) assertAckedPresent(doc, r.seqs, r.acked, `batch ${i}`);
    assert.equal(doc.getMap('m').size, 150);
    assert.deepEqual(await stopChild(restarted), { code: 0, signal: null });
  });
});

// ---------------------------------------------------------------- (c) same state

describe('a restarted node serves exactly the same state', () => {
  const edit = async (clients: StockClient[], raw: RawClient, rounds: number): Promise<void> => {
    for (let r = 0; r < rounds; r++) {
      for (const [i, c] of clients.entries()) {
        const text = c.doc.getText('text');
        c.doc.transact(() => {
          text.insert((r * 7 + i * 3) % (text.length + 1), `<${i}:${r}>`);
          if (text.length > 6 && r % 3 === 0) text.delete((r * 5) % (text.length - 3), 3); // deletes → a delete set
          c.doc.getMap('m').set(`c${i}`, r);
          if (r % 4 === 0) c.doc.getArray('array').push([r]);
        });
      }
      raw.sendUpdate(mapUpdate(raw.doc, `raw-${r}`, r));
      await sleep(1);
    }
  };

  const converged = async (
    node: ChildNode,
    name: string,
    clients: StockClient[],
    raw: RawClient,
  ): Promise<void> => {
    await waitFor(async () => {
      const served = JSON.stringify(fingerprint((await fetchState(node, name)).doc));
      return (
        clients.every((c) => JSON.stringify(fingerprint(c.doc)) === served) &&
        JSON.stringify(fingerprint(raw.doc)) === served
      );
    }, `clients and node to converge on ${name}`);
  };

  for (const stop of ['SIGTERM', 'SIGKILL'] as const) {
    it(`after ${stop}, across compaction: same bytes, JSON, state vector and delete set`, async () => {
      const dir = await newDir();
      const name = `same-state-${stop}`;
      // Compact often, so the restart reads a snapshot plus a log tail.
      const node = await start(dir, ['--compact-after-updates', '7']);
      const clients = await Promise.all([
        stockClient(node.wsUrl, name),
        stockClient(node.wsUrl, name),
      ]);
      const raw = await openRaw(node, name);
      await edit(clients, raw, 30);
      await converged(node, name, clients, raw);
      // Raw's updates and everything the node applied before them are stored once
      // this ack arrives; the stock clients' edits are in the node (converged above)
      // but unacknowledged, so SIGKILL waits for one more acked write that is
      // ordered behind all of them in the document's save chain.
      const marker = raw.sendUpdate(mapUpdate(raw.doc, 'marker', 1));
      await untilAck(raw, marker);
      const before = await fetchState(node, name);
      const beforeJson = await fetchJson(node, name);

      for (const c of clients) c.provider.disconnect(); // no reconnect into the restarted node
      if (stop === 'SIGTERM') assert.deepEqual(await stopChild(node), { code: 0, signal: null });
      else await crash(node);
      const restarted = await start(dir, ['--compact-after-updates', '7']);
      const afterRestart = await fetchState(restarted, name);
      assert.deepEqual(fingerprint(afterRestart.doc), fingerprint(before.doc));
      assert.deepEqual(await fetchJson(restarted, name), beforeJson);
      assert.deepEqual(
        Buffer.from(afterRestart.bytes),
        Buffer.from(before.bytes),
        'the binary state differs byte for byte',
      );
      for (const c of clients) c.destroy();
      assert.deepEqual(await stopChild(restarted), { code: 0, signal: null });
    });
  }
});

// ---------------------------------------------------------------- (d) fsync

describe('--fsync mode', () => {
  it('announces fsync, acks, and keeps every acked update across kill -9', async (t: TestContext) => {
    const dir = await newDir();
    const node = await start(dir, ['--fsync']);
    const listening = node
      .output()
      .split('\n')
      .find((l) => l.includes('"listening"'));
    assert.equal(
      (JSON.parse(listening ?? '{}') as { fsync?: boolean }).fsync,
      true,
      'the node did not start in fsync mode',
    );

    // Sequential round trips: the latency of one update on an idle node.
    const client = await openRaw(node, 'fsync');
    const author = new Y.Doc();
    const sequential: number[] = [];
    const seqs = new Map<string, number>();
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const key = `f-${i}`;
      const seq = client.sendUpdate(mapUpdate(author, key, i));
      seqs.set(key, seq);
      await untilAck(client, seq);
      sequential.push(performance.now() - t0);
    }
    const rest = burst(client, author, 'fb-', 200, (saved) => {
      if (saved >= rest.lastSeq && isRunning(node)) node.child.kill('SIGKILL');
    });
    for (const [k, v] of rest.seqs) seqs.set(k, v);
    await untilAck(client, rest.lastSeq, 10_000);
    await crash(node);
    await client.closed();
    assert.equal(client.savedSeq(), rest.lastSeq);
    t.diagnostic(`ack latency --fsync, sequential: ${summary(sequential)}`);
    t.diagnostic(
      `ack latency --fsync, 200-update burst, per update from its send: ${summary(rest.latencies)}`,
    );
    t.diagnostic(
      `ack latency --fsync, 200-update burst, last send → final ack: ${rest.lastAckAfterMs()?.toFixed(2)} ms`,
    );

    const restarted = await start(dir, ['--fsync']);
    const { doc } = await fetchState(restarted, 'fsync');
    assertAckedPresent(doc, seqs, client.savedSeq(), 'after kill -9 in fsync mode');
    assert.equal(doc.getMap('m').size, 250);
    assert.deepEqual(await stopChild(restarted), { code: 0, signal: null });
  });

  it('is also switched on by STATEWEAVE_FSYNC=true', async () => {
    const dir = await newDir();
    const saved = process.env.STATEWEAVE_FSYNC;
    process.env.STATEWEAVE_FSYNC = 'true'; // the child inherits our environment
    let node: ChildNode;
    try {
      node = await start(dir);
    } finally {
      if (saved === undefined) delete process.env.STATEWEAVE_FSYNC;
      else process.env.STATEWEAVE_FSYNC = saved;
    }
    const listening = node
      .output()
      .split('\n')
      .find((l) => l.includes('"listening"'));
    assert.equal((JSON.parse(listening ?? '{}') as { fsync?: boolean }).fsync, true);
    const client = await openRaw(node, 'fsync-env');
    const { seqs, lastSeq } = burst(client, new Y.Doc(), 'e-', 20);
    await untilAck(client, lastSeq);
    await crash(node);
    const restarted = await start(dir);
    assertAckedPresent(
      (await fetchState(restarted, 'fsync-env')).doc,
      seqs,
      lastSeq,
      'after kill -9 (fsync from env)',
    );
    assert.deepEqual(await stopChild(restarted), { code: 0, signal: null });
  });

  it('sequential ack latency without fsync, for comparison', async (t: TestContext) => {
    const dir = await newDir();
    const node = await start(dir);
    const client = await openRaw(node, 'no-fsync');
    const author = new Y.Doc();
    const sequential: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const seq = client.sendUpdate(mapUpdate(author, `n-${i}`, i));
      await untilAck(client, seq);
      sequential.push(performance.now() - t0);
    }
    t.diagnostic(`ack latency default mode, sequential: ${summary(sequential)}`);
    client.close();
    assert.deepEqual(await stopChild(node), { code: 0, signal: null });
  });
});

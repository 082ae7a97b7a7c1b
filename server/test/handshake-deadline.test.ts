/**
 * The handshake deadline (issue 17, item 3) on real sockets: a TCP connection
 * that sends nothing, a head sent a line at a time and a body sent a byte at a
 * time are all closed once `handshakeTimeoutMs` has passed; a WebSocket that
 * completed its upgrade, and a client that sends its request promptly, are not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { errorCount } from './helpers/metrics.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';
import { closeAll, tryUpgrade } from './helpers/upgrade.js';
import { sleep } from './helpers/wait.js';

const DEADLINE_MS = 600;
/** Node checks head and body deadlines every DEADLINE_MS / 4; the rest is scheduling slack. */
const LATEST_CLOSE_MS = DEADLINE_MS * 2 + 1000;
const IDLE_SOCKETS = 20;

/** Opens a TCP connection, runs `feed` on it, and resolves with how long the node kept it open. */
const heldFor = (port: number, feed: (socket: Socket) => () => void): Promise<number> =>
  new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined); // the node's reset is the expected outcome
    socket.resume();
    let stop = (): void => undefined;
    socket.once('connect', () => (stop = feed(socket)));
    const limit = setTimeout(() => {
      stop();
      socket.destroy();
      reject(new Error(`the node kept the connection open for over ${LATEST_CLOSE_MS * 3} ms`));
    }, LATEST_CLOSE_MS * 3);
    socket.once('close', () => {
      clearTimeout(limit);
      stop();
      resolve(Date.now() - started);
    });
  });

/** Writes `chunk()` every `everyMs` until stopped (bounded: at most 200 writes). */
const dribble =
  (first: string, chunk: () => string, everyMs = 50) =>
  (socket: Socket): (() => void) => {
    socket.write(first);
    let writes = 0;
    const timer = setInterval(() => {
      if (++writes > 200 || socket.destroyed) return clearInterval(timer);
      socket.write(chunk());
    }, everyMs);
    return () => clearInterval(timer);
  };

describe('the handshake deadline', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let node: TestNode;
  before(async () => {
    dir = await tempDir();
    node = await startNode({ dataDir: dir.path, handshakeTimeoutMs: DEADLINE_MS });
  });
  after(async () => {
    await node.close();
    await dir.remove();
  });

  it(`closes ${IDLE_SOCKETS} TCP connections that never send a byte`, async (t) => {
    const before = await errorCount(node.url, 'HANDSHAKE_TIMEOUT');
    const held = await Promise.all(
      Array.from({ length: IDLE_SOCKETS }, () => heldFor(node.port, () => () => undefined)),
    );
    for (const ms of held) {
      assert.ok(ms >= DEADLINE_MS - 50, `closed early, after ${ms} ms`);
      assert.ok(ms <= LATEST_CLOSE_MS, `closed after ${ms} ms`);
    }
    assert.equal((await errorCount(node.url, 'HANDSHAKE_TIMEOUT')) - before, IDLE_SOCKETS);
    t.diagnostic(`idle connections closed after ${Math.min(...held)}-${Math.max(...held)} ms`);
  });

  it('closes a request head sent one header line at a time', async () => {
    const ms = await heldFor(
      node.port,
      dribble('GET /healthz HTTP/1.1\r\nHost: x\r\n', () => 'X-Slow: 1\r\n'),
    );
    assert.ok(ms <= LATEST_CLOSE_MS, `closed after ${ms} ms`);
  });

  it('closes an upgrade head sent one header line at a time', async () => {
    const ms = await heldFor(
      node.port,
      dribble(
        'GET /slow-doc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n',
        () => 'X-Slow: 1\r\n',
      ),
    );
    assert.ok(ms <= LATEST_CLOSE_MS, `closed after ${ms} ms`);
  });

  it('closes a request body sent one byte at a time', async () => {
    const ms = await heldFor(
      node.port,
      dribble(
        'POST /v1/docs/slow/updates HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n',
        () => 'a',
      ),
    );
    assert.ok(ms <= LATEST_CLOSE_MS, `closed after ${ms} ms`);
  });

  it('leaves an upgraded WebSocket and prompt HTTP requests alone', async () => {
    const result = await tryUpgrade(`${node.wsUrl}/settled`);
    assert.equal(result.open, true);
    if (!result.open) return;
    await sleep(DEADLINE_MS * 2 + 500);
    assert.equal(result.ws.readyState, result.ws.OPEN, 'the WebSocket outlived the deadline');
    const res = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await closeAll([result.ws]);
  });
});

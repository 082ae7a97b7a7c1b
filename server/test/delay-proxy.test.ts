/**
 * The geo harness's delaying TCP proxy (server/geo/delay-proxy.ts): it adds at
 * least the delay asked for, each way, and not much more; it keeps bytes in
 * order; it models the connect handshake; a cut drops connections and refuses
 * new ones until healed. Lower bounds are exact (a timer never fires early by
 * more than its millisecond rounding); upper bounds allow this process's own
 * event-loop stalls, measured during each round trip, plus a little.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, Socket, type Server } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startDelayProxy, type DelayProxy } from '../geo/delay-proxy.js';
import { withTimeout } from './helpers/wait.js';

const DELAY_MS = 30;
/** Timers round to whole milliseconds, and performance.now() is finer than that. */
const ROUNDING_MS = 2;
/** What the proxy may add on top besides this process's own event-loop lag (measured). */
const SLACK_MS = 40;

/** Runs `body` and returns the longest event-loop stall seen meanwhile, in ms. */
const withLag = async <T>(body: () => Promise<T>): Promise<{ value: T; lagMs: number }> => {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  try {
    const value = await body();
    return { value, lagMs: histogram.max / 1e6 };
  } finally {
    histogram.disable();
  }
};

const startEcho = async (): Promise<{ server: Server; port: number }> => {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
};

const connect = async (port: number): Promise<Socket> => {
  const socket = new Socket();
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, '127.0.0.1', resolve);
  });
  return socket;
};

/** Sends `bytes` and resolves with the ms until as many bytes came back. */
const roundTrip = (socket: Socket, bytes: Buffer): Promise<{ ms: number; echoed: Buffer }> =>
  withTimeout(
    new Promise((resolve) => {
      const parts: Buffer[] = [];
      let got = 0;
      const started = performance.now();
      const onData = (chunk: Buffer): void => {
        parts.push(chunk);
        got += chunk.byteLength;
        if (got < bytes.byteLength) return;
        socket.off('data', onData);
        resolve({ ms: performance.now() - started, echoed: Buffer.concat(parts) });
      };
      socket.on('data', onData);
      socket.write(bytes);
    }),
    10_000,
    'the echo through the proxy',
  );

describe('delay proxy', () => {
  let echo: { server: Server; port: number };
  let proxy: DelayProxy;
  before(async () => {
    echo = await startEcho();
    proxy = await startDelayProxy({ targetPort: echo.port, delayMs: DELAY_MS });
  });
  after(async () => {
    await proxy.close();
    await new Promise<void>((resolve) => echo.server.close(() => resolve()));
  });

  it('adds the one-way delay asked for to each direction, within bounds', async () => {
    const socket = await connect(proxy.port);
    try {
      await roundTrip(socket, Buffer.from('warm')); // past the handshake floor
      const direct = await connect(echo.port);
      const directMs = (await roundTrip(direct, Buffer.from('direct'))).ms;
      direct.destroy();
      for (let i = 0; i < 10; i++) {
        const { value, lagMs } = await withLag(() => roundTrip(socket, Buffer.from(`p${i}`)));
        const { ms } = value;
        assert.ok(ms >= 2 * DELAY_MS - ROUNDING_MS, `round trip ${ms} ms < 2 × ${DELAY_MS} ms`);
        assert.ok(
          ms <= 2 * DELAY_MS + directMs + lagMs + SLACK_MS,
          `round trip ${ms} ms ≫ 2 × ${DELAY_MS} ms (event-loop lag ${lagMs} ms)`,
        );
      }
    } finally {
      socket.destroy();
    }
  });

  it('holds data sent at once after connecting for the handshake (three one-way delays)', async () => {
    const socket = new Socket();
    const started = performance.now();
    const first = new Promise<number>((resolve) =>
      socket.once('data', () => resolve(performance.now() - started)),
    );
    try {
      const { value: ms, lagMs } = await withLag(() => {
        socket.connect(proxy.port, '127.0.0.1', () => socket.write('hello'));
        return withTimeout(first, 10_000, 'the first echo');
      });
      assert.ok(ms >= 4 * DELAY_MS - ROUNDING_MS, `first answer after ${ms} ms < 4 × ${DELAY_MS}`);
      assert.ok(
        ms <= 4 * DELAY_MS + lagMs + SLACK_MS,
        `first answer after ${ms} ms (event-loop lag ${lagMs} ms)`,
      );
    } finally {
      socket.destroy();
    }
  });

  it('keeps a large transfer whole and in order', async () => {
    const socket = await connect(proxy.port);
    try {
      const payload = randomBytes(3 * 1024 * 1024);
      const { echoed } = await roundTrip(socket, payload);
      assert.ok(echoed.equals(payload), 'the echoed bytes differ from what was sent');
      assert.ok(proxy.bytes() >= 2 * payload.byteLength);
    } finally {
      socket.destroy();
    }
  });

  it('passes a half-close on after the data sent before it', async () => {
    const socket = await connect(proxy.port);
    const payload = Buffer.from('last words');
    const parts: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    socket.end(payload);
    await withTimeout(ended, 10_000, 'the echo server to end its side');
    assert.ok(Buffer.concat(parts).equals(payload));
    socket.destroy();
  });

  it('drops connections when cut, refuses new ones, and lets them in once healed', async () => {
    const socket = await connect(proxy.port);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    proxy.cut();
    await withTimeout(closed, 10_000, 'the cut to close the connection');
    const refused = new Socket();
    refused.on('error', () => undefined);
    const refusedClosed = new Promise<void>((resolve) => refused.once('close', () => resolve()));
    refused.connect(proxy.port, '127.0.0.1', () => refused.write('anyone?'));
    await withTimeout(refusedClosed, 10_000, 'a connection during the cut to close');
    proxy.heal();
    const again = await connect(proxy.port);
    try {
      const { echoed } = await roundTrip(again, Buffer.from('back'));
      assert.equal(echoed.toString(), 'back');
    } finally {
      again.destroy();
    }
  });
});

#!/usr/bin/env node
/**
 * `node server/dist/bench/transport-floor.js`: what an idle WebSocket costs a
 * server that does nothing with it — the floor under issue 18's "memory per idle
 * connection". A bare `ws` server (Node's `net.Socket` underneath, as in our node
 * and the reference) runs as its own process; this process opens
 * BENCH_FLOOR_CONNS (10,000) idle connections to it over 4 loopback source
 * addresses and reads the server's RSS and JS heap (after a full collection)
 * before and after. Per connection = the growth ÷ connections.
 *
 * BENCH_FLOOR_UWS=<module> measures a uWebSockets.js build as well, imported by
 * that name (not a dependency of this repository: the official package installs
 * from GitHub only, e.g. `npm install --no-save uws-pack`, a third-party repackaging).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';

interface Memory {
  readonly rss: number;
  readonly heap: number;
}

const env = process.env;
const CONNS = Number(env.BENCH_FLOOR_CONNS ?? 10_000);
const TIMEOUT_MS = 120_000;

/** The server side, in the child: listen, print the port, answer "mem" with its memory. */
const serve = async (kind: string): Promise<void> => {
  const gc = (globalThis as { gc?: () => void }).gc;
  let port: number;
  if (kind === 'ws') {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await once(wss, 'listening');
    port = (wss.address() as { port: number }).port;
  } else {
    interface Uws {
      App(): {
        ws(path: string, behavior: Record<string, unknown>): unknown;
        listen(host: string, port: number, cb: (token: unknown) => void): unknown;
      };
      us_socket_local_port(token: unknown): number;
    }
    const uws = (await import(kind)) as Uws;
    const app = uws.App();
    app.ws('/*', { idleTimeout: 0 });
    port = await new Promise<number>((resolve) =>
      app.listen('127.0.0.1', 0, (token) => resolve(uws.us_socket_local_port(token))),
    );
  }
  process.stdout.write(`${port}\n`);
  process.stdin.on('data', () => {
    gc?.();
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ rss: m.rss, heap: m.heapUsed })}\n`);
  });
};

type Server = ChildProcessByStdio<Writable, Readable, null>;

const lines = (child: Server): (() => Promise<string>) => {
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let i;
    while ((i = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      waiting.shift()?.(line);
    }
  });
  return () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not answer')), TIMEOUT_MS);
      waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
};

/** One server kind: its memory per idle connection, in KB. */
const measure = async (kind: string): Promise<Memory> => {
  const child = spawn(
    process.execPath,
    ['--expose-gc', fileURLToPath(import.meta.url), '--serve', kind],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const next = lines(child);
  const sockets: WebSocket[] = [];
  try {
    const port = Number(await next());
    const memory = async (): Promise<Memory> => {
      child.stdin.write('mem\n');
      return JSON.parse(await next()) as Memory;
    };
    const before = await memory();
    const deadline = Date.now() + TIMEOUT_MS;
    for (let i = 0; i < CONNS; i++) {
      sockets.push(
        new WebSocket(`ws://127.0.0.1:${port}/floor`, {
          localAddress: `127.0.${1 + (i % 4)}.1`,
          perMessageDeflate: false,
        }),
      );
      if (i % 500 === 499) await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all(
      sockets
        .filter((ws) => ws.readyState !== WebSocket.OPEN)
        .map((ws) =>
          Promise.race([
            once(ws, 'open'),
            new Promise((_, reject) =>
              setTimeout(() => reject(new Error('connect timed out')), deadline - Date.now()),
            ),
          ]),
        ),
    );
    await new Promise((r) => setTimeout(r, 2000));
    const after = await memory();
    return {
      rss: (after.rss - before.rss) / 1024 / CONNS,
      heap: (after.heap - before.heap) / 1024 / CONNS,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    child.kill();
  }
};

if (process.argv[2] === '--serve') await serve(process.argv[3] ?? 'ws');
else {
  const kinds = ['ws', ...(env.BENCH_FLOOR_UWS ? [env.BENCH_FLOOR_UWS] : [])];
  for (const kind of kinds) {
    const m = await measure(kind);
    process.stdout.write(
      `${kind === 'ws' ? 'bare ws server' : `uWebSockets.js (${kind})`}: ${CONNS.toLocaleString('en')} idle connections, ${m.rss.toFixed(2)} KB of RSS and ${m.heap.toFixed(2)} KB of JS heap per connection\n`,
    );
  }
  process.exit(0);
}

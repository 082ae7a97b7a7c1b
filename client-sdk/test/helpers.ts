/** Shared by the SDK's integration tests: an SDK client for Node, seeded randomness, waiting. */
import { createServer } from 'node:net';
import { WebSocket } from 'ws';
import * as prng from 'lib0/prng';
import {
  createClient,
  type ClientOptions,
  type DocHandle,
  type StateweaveClient,
} from '@stateweave/client';
import { waitFor } from '../../server/dist/test/helpers/wait.js';

export { sleep, waitFor } from '../../server/dist/test/helpers/wait.js';

/** An SDK client in Node (ws as WebSocket) with fast reconnects, unless overridden. */
export const sdkClient = (options: ClientOptions): StateweaveClient =>
  createClient({
    WebSocket,
    backoff: { baseMs: 50, maxMs: 400 },
    connectTimeoutMs: 2000,
    ...options,
  });

/** A seeded PRNG (lib0's), so a failing run can be replayed. */
export const seededRandom = (seed: number): (() => number) => {
  const generator = prng.create(seed);
  return () => prng.real53(generator);
};

export const textOf = (handle: { doc: DocHandle['doc'] }, name = 'text'): string =>
  handle.doc.getText(name).toString();

/** Waits until the handle is synced and has nothing pending. */
export const settled = (handle: DocHandle, what: string, timeoutMs = 5000) =>
  waitFor(
    () => handle.isSynced && handle.pending === 0,
    `${what} to be synced with nothing pending`,
    timeoutMs,
  );

/** A ws:// URL on 127.0.0.1 where nothing listens (a port bound, then released). */
export const deadUrl = async (): Promise<string> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `ws://127.0.0.1:${port}`;
};

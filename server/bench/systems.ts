#!/usr/bin/env node
/**
 * One benchmarked system in its own process: `node systems.js <kind> <port>`.
 * Prints `READY <port>` on stdout once it accepts connections.
 *
 *   ours-memory  Stateweave node, in-memory store (createServer + createMemoryStore)
 *   relay        raw WebSocket relay: every frame to the other sockets of the same
 *                URL path; no Yjs, no storage (the ceiling)
 *   reference    @y/websocket-server, its current release from ref-current/ (setupWSConnection on a ws server, as its bin)
 *   hocuspocus   @hocuspocus/server, no extensions (in-memory)
 *
 * Our node with LevelDB is started through the CLI (`main.js serve`) by launcher.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadHocuspocus, loadWebsocketServerUtils } from './peers.js';

/** What system-process.ts asks over the IPC channel (it imports these types only). */
export type SystemRequest = 'memory' | { snapshot: string };
/** The answer to 'memory': `process.memoryUsage()` after a full collection. */
export type MemoryAnswer = NodeJS.MemoryUsage;

const [kind, portArg] = process.argv.slice(2);
const port = Number(portArg);
const host = '127.0.0.1';
const ready = (p: number): void => {
  process.stdout.write(`READY ${p}\n`);
};
const portOf = (address: AddressInfo | string | null): number =>
  typeof address === 'object' && address !== null ? address.port : port;

if (kind === 'ours-memory') {
  const { createServer, createMemoryStore } = await import('../src/index.js');
  const { createLogger } = await import('../src/log.js');
  const server = createServer({
    store: await createMemoryStore(),
    port,
    host,
    // as launcher.ts passes to the CLI: limits the peers do not have are not what is measured
    maxConnectionsPerIp: 1_000_000,
    maxMessagesPerSecond: 100_000,
    messageBurst: 100_000,
    maxDocsPerSocket: 100_000,
    // A connect storm of thousands (idle.ts) on a loaded machine waits in the upgrade
    // queue longer than the 10 s handshake deadline; the peers have no such deadline.
    handshakeTimeoutMs: 120_000,
    logger: createLogger('warn'),
  });
  const address = await server.listen();
  ready(address.port);
} else if (kind === 'relay') {
  const rooms = new Map<string, Set<WebSocket>>();
  const wss = new WebSocketServer({ host, port, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    const name = req.url ?? '/';
    let room = rooms.get(name);
    if (!room) rooms.set(name, (room = new Set()));
    const peers = room;
    peers.add(ws);
    ws.on('message', (data, isBinary) => {
      for (const other of peers)
        if (other !== ws && other.readyState === 1) other.send(data, { binary: isBinary });
    });
    ws.on('close', () => {
      peers.delete(ws);
      if (peers.size === 0) rooms.delete(name);
    });
    ws.on('error', () => undefined); // a client that vanished: its close follows
  });
  wss.on('listening', () => ready(portOf(wss.address())));
} else if (kind === 'reference') {
  const { setupWSConnection } = await loadWebsocketServerUtils();
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', setupWSConnection);
  const server = http.createServer((_req, res) => res.end('okay'));
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)),
  );
  server.listen(port, host, () => ready(portOf(server.address())));
} else if (kind === 'hocuspocus') {
  const { Server } = await loadHocuspocus();
  const server = new Server({ port, address: host, quiet: true });
  await server.listen();
  ready(server.address?.port ?? port);
} else {
  console.error(`unknown system ${kind}`);
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
// idle.ts asks for the heap after a full collection (started with --expose-gc and an IPC
// channel), or for a heap snapshot (`{ snapshot: path }`, BENCH_IDLE_SNAPSHOT).
process.on('message', async (m: SystemRequest) => {
  if (typeof m === 'object' && typeof m.snapshot === 'string') {
    const { writeHeapSnapshot } = await import('node:v8');
    process.send?.({ snapshot: writeHeapSnapshot(m.snapshot) });
    return;
  }
  if (m !== 'memory') return;
  globalThis.gc?.();
  const memory: MemoryAnswer = process.memoryUsage();
  process.send?.({ memory });
});

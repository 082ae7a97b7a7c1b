/**
 * What the connection does with close codes, tokens, node errors and the
 * browser's online/offline signal. A fake node (a bare `ws` server on
 * 127.0.0.1) plays the parts a real node does not play yet (tokens) or cannot
 * be made to play on demand (4403, a garbage frame); a real node is used where
 * it can.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import * as Y from 'yjs';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { StateweaveClientError, type NetworkMonitor } from '@stateweave/client';
import {
  encodeError,
  encodeSyncStep1,
  encodeSyncStep2,
  MessageType,
} from '@stateweave/client/protocol';
import { startNode } from '../../server/dist/test/helpers/node.js';
import { sdkClient, settled, sleep, textOf, waitFor } from './helpers.js';

interface FakeConnection {
  readonly socket: ServerSocket;
  readonly token: string | null;
  readonly frames: Uint8Array[];
}

/** Completes a handshake from the node's side: an empty document. */
const syncEmpty = (socket: ServerSocket): void => {
  socket.send(encodeSyncStep1(Y.encodeStateVector(new Y.Doc())));
  socket.send(encodeSyncStep2(Y.encodeStateAsUpdate(new Y.Doc())));
};

/** An unsigned JWT-shaped token: the SDK reads `exp`, the node (not here) verifies. */
const jwt = (sub: string, expInMs: number): string => {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none' })}.${part({ sub, exp: (Date.now() + expInMs) / 1000 })}.sig`;
};

describe('the connection state machine', () => {
  let wss: WebSocketServer;
  let url: string;
  let connections: FakeConnection[];
  let onConnection: (conn: FakeConnection) => void;

  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    wss.on('connection', (socket: ServerSocket, req: IncomingMessage) => {
      const conn: FakeConnection = {
        socket,
        token: new URL(req.url ?? '/', 'http://x').searchParams.get('token'),
        frames: [],
      };
      socket.on('message', (data: Buffer) => conn.frames.push(new Uint8Array(data)));
      connections.push(conn);
      onConnection(conn);
    });
  });
  afterEach(() => {
    for (const client of wss.clients) client.terminate();
  });
  after(() => new Promise<void>((resolve) => wss.close(() => resolve())));

  const reset = (handler: (conn: FakeConnection) => void): void => {
    connections = [];
    onConnection = handler;
  };

  it('sends hello first, then sync step 1, and puts the document name in the path and the token in ?token=', async () => {
    let path = '';
    reset(({ socket }) => syncEmpty(socket));
    wss.once(
      'connection',
      (_s: ServerSocket, req: IncomingMessage) =>
        (path = new URL(req.url ?? '/', 'http://x').pathname),
    );
    const client = sdkClient({ url, multiplex: false, token: 'secret token' });
    const handle = client.open('team-42/notes');
    await handle.synced;
    assert.equal(path, '/team-42/notes');
    assert.equal(connections[0]!.token, 'secret token');
    await waitFor(() => connections[0]!.frames.length >= 3, 'the handshake frames');
    const types = connections[0]!.frames.map((f) => f[0]);
    assert.equal(types[0], MessageType.Hello);
    assert.deepEqual(
      [types[1], connections[0]!.frames[1]![1]],
      [MessageType.Sync, 0],
      'then sync step 1',
    );
    await client.destroy();
  });

  it('gets a fresh token and reconnects after 4419 (token expired)', async () => {
    reset((conn) => {
      if (conn.token === 't1') conn.socket.close(4419, 'TOKEN_EXPIRED: token expired');
      else syncEmpty(conn.socket);
    });
    let issued = 0;
    const client = sdkClient({ url, multiplex: false, getToken: () => `t${++issued}` });
    const handle = client.open('tokens');
    const errors: string[] = [];
    handle.on('error', (e) => errors.push(e.code));
    await handle.synced;
    assert.deepEqual(
      connections.map((c) => c.token),
      ['t1', 't2'],
    );
    assert.deepEqual(errors, ['TOKEN_EXPIRED']);
    await client.destroy();
  });

  it('stops on 4401 when there is no getToken to replace a fixed token', async () => {
    reset((conn) => conn.socket.close(4401, 'UNAUTHORIZED: invalid token (ERR_JWS_INVALID)'));
    const client = sdkClient({ url, multiplex: false, token: 'bad' });
    const handle = client.open('fixed-token');
    await assert.rejects(
      handle.synced,
      (err: unknown) =>
        err instanceof StateweaveClientError &&
        err.code === 'UNAUTHORIZED' &&
        err.closeCode === 4401,
    );
    await sleep(300);
    assert.equal(connections.length, 1, 'no retry with the same refused token');
    assert.equal(handle.status, 'disconnected');
    await client.destroy();
  });

  it('surfaces 4403 as a FORBIDDEN error and does not retry until reconnect()', async () => {
    reset((conn) => conn.socket.close(4403, 'FORBIDDEN: token lacks the "read" right'));
    const client = sdkClient({ url, multiplex: false, getToken: () => 'tok' });
    const handle = client.open('forbidden');
    const errors: StateweaveClientError[] = [];
    handle.on('error', (e) => errors.push(e));
    await assert.rejects(
      handle.synced,
      (err: unknown) => err instanceof StateweaveClientError && err.code === 'FORBIDDEN',
    );
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.message, 'token lacks the "read" right');
    assert.equal(errors[0]!.closeCode, 4403);
    assert.equal(handle.lastError, errors[0]);
    await sleep(300);
    assert.equal(connections.length, 1, 'no tight loop on a refusal');
    assert.equal(handle.status, 'disconnected');

    onConnection = ({ socket }) => syncEmpty(socket); // access was granted meanwhile
    handle.reconnect();
    await waitFor(() => handle.isSynced, 'the handle to sync after reconnect()');
    assert.equal(connections.length, 2);
    await client.destroy();
  });

  it('refreshes a JWT before it expires by reconnecting with the new token', async () => {
    reset(({ socket }) => syncEmpty(socket));
    const tokens: string[] = [];
    const client = sdkClient({
      multiplex: false,
      url,
      getToken: () => {
        const token = jwt(`t${tokens.length + 1}`, 1200); // refreshed at half its lifetime
        tokens.push(token);
        return token;
      },
    });
    const handle = client.open('refresh');
    await handle.synced;
    await waitFor(
      () => connections.length >= 2 && handle.isSynced,
      'a second connection with the new token',
      3000,
    );
    assert.deepEqual(
      connections.slice(0, 2).map((c) => c.token),
      tokens.slice(0, 2),
    );
    assert.equal(
      connections[0]!.socket.readyState,
      connections[0]!.socket.CLOSED,
      'the old socket was closed',
    );
    await client.destroy();
  });

  it('with refreshInBand, hands the new token to the open socket instead', async () => {
    reset(({ socket }) => syncEmpty(socket));
    const tokens: string[] = [];
    const client = sdkClient({
      multiplex: false,
      url,
      refreshInBand: true,
      getToken: () => {
        const token = jwt(`t${tokens.length + 1}`, 1200);
        tokens.push(token);
        return token;
      },
    });
    const handle = client.open('refresh-in-band');
    await handle.synced;
    const tokenFrame = () => connections[0]!.frames.find((f) => f[0] === MessageType.Token);
    await waitFor(tokenFrame, 'a token message', 3000);
    const frame = tokenFrame()!;
    assert.equal(
      new TextDecoder().decode(frame.subarray(2)),
      tokens[1],
      'type 103, varString token',
    );
    assert.equal(connections.length, 1, 'no reconnect');
    await client.destroy();
  });

  it('reports a node error message without dropping the connection', async () => {
    reset(({ socket }) => {
      syncEmpty(socket);
      socket.send(encodeError('FORBIDDEN', 'read-only token: update ignored'));
    });
    const client = sdkClient({ url, multiplex: false });
    const handle = client.open('node-error');
    const error = await new Promise<StateweaveClientError>((resolve) =>
      handle.on('error', resolve),
    );
    assert.equal(error.code, 'FORBIDDEN');
    assert.equal(error.message, 'read-only token: update ignored');
    await handle.synced;
    assert.equal(handle.status, 'connected');
    assert.equal(connections.length, 1);
    await client.destroy();
  });

  it('drops a connection that sends a malformed frame, and reconnects', async () => {
    reset((conn) => {
      if (connections.length === 1)
        conn.socket.send(new Uint8Array([MessageType.Sync, 1, 50, 1])); // length 50, 1 byte
      else syncEmpty(conn.socket);
    });
    const client = sdkClient({ url, multiplex: false });
    const handle = client.open('bad-frame');
    const errors: string[] = [];
    handle.on('error', (e) => errors.push(e.code));
    await handle.synced;
    assert.deepEqual(errors, ['INVALID_FRAME']);
    assert.equal(connections.length, 2);
    await client.destroy();
  });

  it('reconnects promptly after 1001 (node going away)', async () => {
    reset((conn) => {
      syncEmpty(conn.socket);
      if (connections.length === 1)
        setTimeout(() => conn.socket.close(1001, 'SHUTTING_DOWN: the node is shutting down'), 50);
    });
    // A long backoff: a prompt reconnect is well under baseMs, a backoff one is at least baseMs/2.
    const client = sdkClient({
      url,
      multiplex: false,
      backoff: { baseMs: 2000, maxMs: 8000, random: () => 0.05 },
    });
    const handle = client.open('going-away');
    await handle.synced;
    const droppedAt = performance.now();
    await waitFor(
      () => connections.length === 2 && handle.isSynced,
      'the handle to reconnect',
      3000,
    );
    assert.ok(performance.now() - droppedAt < 1000, 'reconnected within a fraction of baseMs');
    await client.destroy();
  });
});

describe('the browser going offline', () => {
  it('shows offline, drops the socket, and resyncs with the edits made meanwhile when back online', async () => {
    const node = await startNode();
    let online = true;
    const listeners = new Set<(online: boolean) => void>();
    const network: NetworkMonitor = {
      isOnline: () => online,
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const setOnline = (value: boolean) => {
      online = value;
      for (const listener of listeners) listener(value);
    };
    const client = sdkClient({ url: node.wsUrl, network });
    const handle = client.open('offline-status');
    await handle.synced;

    setOnline(false);
    assert.equal(handle.status, 'offline');
    assert.equal(handle.isSynced, false);
    handle.doc.getText('text').insert(0, 'offline edit');
    assert.equal(handle.pending, 1);
    await sleep(200);
    assert.equal(handle.status, 'offline', 'no connection attempts while offline');

    setOnline(true);
    await settled(handle, 'the handle after going online');
    assert.equal(handle.status, 'connected');
    const stored = (await (await fetch(`${node.url}/v1/docs/offline-status`)).json()) as {
      text: string;
    };
    assert.equal(stored.text, textOf(handle));
    await client.destroy();
    await node.close();

    // A client created while offline waits for the network.
    online = false;
    const later = sdkClient({ url: node.wsUrl, network });
    assert.equal(later.open('x').status, 'offline');
    await later.destroy();
  });
});

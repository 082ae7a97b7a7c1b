/**
 * The WebSocket endpoint: `ws://HOST:PORT/<docName>` (one document, y-websocket)
 * and `ws://HOST:PORT/` (many documents, the Hocuspocus framing). Upgrades arrive
 * from the shared HTTP server (noServer), the document name is validated before
 * the handshake, and a single heartbeat timer pings every socket.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { validateDocName, type DocName } from '../doc-name.js';
import { requireRight } from '../auth/access.js';
import type { Grant } from '../auth/grant.js';
import { closeReason, StateweaveError, toStateweaveError } from '../errors.js';
import { createAdmission } from './admission.js';
import { createSendBudget } from './send-budget.js';
import type { ClientAddressOf } from './client-address.js';
import { refuseUpgrade } from '../refuse-upgrade.js';
import { acceptConnection, type ClientSocket, type ConnectionOptions } from './connection.js';
import { acceptMuxConnection, MuxConnection, type MuxOptions } from './mux-connection.js';
import { DEFAULT_MAX_DOCS_PER_SOCKET } from '@stateweave/client/multiplex';

export interface WsEndpointOptions extends ConnectionOptions {
  /** Largest accepted frame; bigger ones close the socket with 1009. */
  readonly maxFrameBytes: number;
  /** Ping interval; a socket that missed the previous pong is dropped. */
  readonly heartbeatMs: number;
  /** Open sockets one client address may hold. */
  readonly maxConnectionsPerIp: number;
  /** Open sockets the whole node holds; past it upgrades are answered 503 NODE_FULL. */
  readonly maxConnections: number;
  /** Unsent bytes across all connections before the slowest readers are dropped. */
  readonly maxTotalBufferedBytes: number;
  /** The client address of an upgrade (the socket's peer unless a trusted proxy says otherwise). */
  readonly clientAddressOf: ClientAddressOf;
  /** Documents one multiplexed socket (`ws://HOST/`) may have open. @default 256 */
  readonly maxDocsPerSocket?: number;
}

/** Connection-level Ping to Hocuspocus 4 providers, whose idle timer reconnects after 30 s of silence. */
const APP_PING_MS = 10_000;

export interface WsEndpoint {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  readonly connectionCount: number;
  /** Closes every socket with 1001 (going away) and waits until they are gone. */
  close(timeoutMs: number): Promise<void>;
}

/**
 * The document name of an upgrade request: the request target's path without its
 * leading '/', percent-decoded. Read as sent, not through `new URL(url, base)`:
 * that would take `//x/y` as host x + path /y and resolve `/a/../b` to /b, so one
 * document could be reached under several spellings (and `..` never refused).
 */
export const docNameFromUrl = (url: string | undefined): DocName => {
  const target = url ?? '';
  const end = target.search(/[?#]/);
  const path = end === -1 ? target : target.slice(0, end);
  if (!path.startsWith('/'))
    throw new StateweaveError('INVALID_DOC_NAME', 'the request target must be a path');
  let name: string;
  try {
    name = decodeURIComponent(path.slice(1));
  } catch {
    throw new StateweaveError('INVALID_DOC_NAME', 'document name is not valid percent-encoding');
  }
  return validateDocName(name);
};

/** True for the root path (`/`, `/?token=…`): the multiplexed endpoint. */
export const isRootPath = (url: string | undefined): boolean => {
  const target = url ?? '';
  const end = target.search(/[?#]/);
  return (end === -1 ? target : target.slice(0, end)) === '/';
};

/** The `token` query parameter (stock y-websocket clients pass it via `params`). */
export const tokenFromUrl = (url: string | undefined): string | undefined => {
  const query = url?.split('#')[0]?.split('?')[1];
  return query === undefined ? undefined : (new URLSearchParams(query).get('token') ?? undefined);
};

export const createWsEndpoint = (options: WsEndpointOptions): WsEndpoint => {
  // Text frames are refused whole (TEXT_FRAME, 4415); validating their UTF-8 first
  // would instead close with ws's own 1007, a code outside the error table.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes,
    perMessageDeflate: false,
    skipUTF8Validation: true,
    // We track our sockets ourselves; ws's own tracking adds a Set entry and a close listener per socket.
    clientTracking: false,
  });
  const connections = new Set<ClientSocket>();
  const admission = createAdmission(options);
  let closing = false;

  // One set of options for every connection, so none keeps a copy (idle memory is per connection).
  const connectionOptions: MuxOptions = {
    ...options,
    maxDocsPerSocket: options.maxDocsPerSocket ?? DEFAULT_MAX_DOCS_PER_SOCKET,
    onClose: (connection) => {
      admission.release(connection.remote);
      connections.delete(connection);
    },
  };

  const heartbeat = setInterval(() => {
    for (const conn of connections) {
      if (conn instanceof MuxConnection) conn.heartbeat();
      if (!conn.alive) {
        conn.fail(new StateweaveError('HEARTBEAT_TIMEOUT'));
        continue;
      }
      conn.alive = false;
      conn.socket.ping();
    }
  }, options.heartbeatMs);
  heartbeat.unref();
  const appPing = setInterval(() => {
    for (const conn of connections) if (conn instanceof MuxConnection) conn.keepAlive();
  }, APP_PING_MS);
  appPing.unref();
  const budget = createSendBudget({
    maxTotalBufferedBytes: options.maxTotalBufferedBytes,
    connections: () => connections,
    metrics: options.metrics,
  });

  /** The root path: no document yet, so nothing to authorize before the handshake (each Auth is). */
  const upgradeMultiplexed = (
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    remote: string,
    token: string | undefined,
  ): void => {
    const unclaimed = (): void => admission.release(remote);
    socket.once('close', unclaimed);
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.removeListener('close', unclaimed);
      if (closing) {
        ws.once('close', () => admission.release(remote));
        ws.close(1001, 'SHUTTING_DOWN: the node is shutting down');
        return;
      }
      connections.add(acceptMuxConnection(ws, remote, connectionOptions, token));
    });
  };

  return {
    handleUpgrade(req, socket, head) {
      if (closing) return refuseUpgrade(socket, new StateweaveError('SHUTTING_DOWN'));
      const multiplexed = isRootPath(req.url);
      let target: DocName | undefined; // undefined: the multiplexed endpoint
      try {
        if (!multiplexed) target = docNameFromUrl(req.url);
      } catch (err) {
        options.logger.warn(
          { url: req.url?.slice(0, 300), code: toStateweaveError(err).code },
          'upgrade refused',
        );
        options.metrics.errors.inc({ code: toStateweaveError(err).code });
        return refuseUpgrade(socket, toStateweaveError(err));
      }
      const remote = options.clientAddressOf(req);
      const refusal = admission.admit(remote);
      if (refusal) {
        options.metrics.errors.inc({ code: refusal.code });
        options.logger.warn({ remote, code: refusal.code }, 'upgrade refused');
        return refuseUpgrade(socket, refusal);
      }
      // Authenticate before the handshake: nothing the client sends is read until
      // then (pre-auth bytes are bounded by the HTTP header limit). A refusal still
      // completes the handshake and closes with the code, because browsers cannot
      // see the HTTP status of a failed upgrade.
      const token = tokenFromUrl(req.url);
      if (target === undefined) return upgradeMultiplexed(req, socket, head, remote, token);
      const docName = target;
      const authorize = async (): Promise<Grant> => {
        const grant = await options.policy.authenticate(token);
        requireRight(grant, 'read', docName);
        return grant;
      };
      const complete = (grant: Grant | undefined, refused: StateweaveError | undefined): void => {
        if (socket.destroyed || closing) {
          admission.release(remote);
          if (!socket.destroyed) refuseUpgrade(socket, new StateweaveError('SHUTTING_DOWN'));
          return;
        }
        // ws answers a malformed handshake itself (400) and never calls back: the
        // address is freed when that socket closes. Removed at once otherwise.
        const unclaimed = (): void => admission.release(remote);
        socket.once('close', unclaimed);
        wss.handleUpgrade(req, socket, head, (ws) => {
          socket.removeListener('close', unclaimed);
          if (!grant || refused) {
            ws.once('close', () => admission.release(remote));
            const err = refused ?? new StateweaveError('UNAUTHORIZED');
            options.metrics.errors.inc({ code: err.code });
            options.logger.warn(
              { remote, doc: docName, code: err.code, reason: err.message },
              'connection refused',
            );
            ws.close(err.closeCode, closeReason(err));
            return;
          }
          // No closure here outlives the upgrade: one would keep the request and its
          // head buffer alive as long as the socket (idle memory). The connection
          // releases its address through connectionOptions.onClose.
          connections.add(acceptConnection(ws, docName, remote, grant, connectionOptions, token));
        });
      };
      authorize().then(
        (grant) => complete(grant, undefined),
        (err: unknown) => complete(undefined, toStateweaveError(err)),
      );
    },

    get connectionCount() {
      return connections.size;
    },

    async close(timeoutMs) {
      closing = true;
      clearInterval(heartbeat);
      clearInterval(appPing);
      budget.stop();
      const open = [...connections].map((conn) => conn.socket);
      const gone = open.map(
        (ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())),
      );
      for (const ws of open) ws.close(1001, 'SHUTTING_DOWN: the node is shutting down');
      const timer = setTimeout(() => {
        for (const ws of open) ws.terminate();
      }, timeoutMs);
      await Promise.all(gone);
      clearTimeout(timer);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
};

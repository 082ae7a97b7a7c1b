/**
 * The WebSocket endpoint: `ws://HOST:PORT/<docName>`. Upgrades arrive from the
 * shared HTTP server (noServer), the document name is validated before the
 * handshake, and a single heartbeat timer pings every socket.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { validateDocName } from '../doc-name.js';
import { requireRight } from '../auth/access.js';
import type { Grant } from '../auth/grant.js';
import { closeReason, StateweaveError, toStateweaveError } from '../errors.js';
import { createIpConnections } from '../limits/ip-connections.js';
import { refuseUpgrade } from '../refuse-upgrade.js';
import { acceptConnection, type Connection, type ConnectionOptions } from './connection.js';

export interface WsEndpointOptions extends ConnectionOptions {
  /** Largest accepted frame; bigger ones close the socket with 1009. */
  readonly maxFrameBytes: number;
  /** Ping interval; a socket that missed the previous pong is dropped. */
  readonly heartbeatMs: number;
  /** Open sockets one remote address may hold. */
  readonly maxConnectionsPerIp: number;
}

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
export const docNameFromUrl = (url: string | undefined): string => {
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
  const connections = new Set<Connection>();
  const perIp = createIpConnections(options.maxConnectionsPerIp);
  let closing = false;

  // One set of options for every connection, so none keeps a copy (idle memory is per connection).
  const connectionOptions: ConnectionOptions = {
    ...options,
    onClose: (connection) => {
      perIp.release(connection.remote);
      connections.delete(connection);
    },
  };

  const heartbeat = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        conn.fail(new StateweaveError('HEARTBEAT_TIMEOUT'));
        continue;
      }
      conn.alive = false;
      conn.socket.ping();
    }
  }, options.heartbeatMs);
  heartbeat.unref();

  return {
    handleUpgrade(req, socket, head) {
      if (closing) return refuseUpgrade(socket, new StateweaveError('SHUTTING_DOWN'));
      let docName: string;
      try {
        docName = docNameFromUrl(req.url);
      } catch (err) {
        options.logger.warn(
          { url: req.url?.slice(0, 300), code: toStateweaveError(err).code },
          'upgrade refused',
        );
        options.metrics.errors.inc({ code: toStateweaveError(err).code });
        return refuseUpgrade(socket, toStateweaveError(err));
      }
      const remote = req.socket.remoteAddress ?? 'unknown';
      if (!perIp.acquire(remote)) {
        const err = new StateweaveError(
          'TOO_MANY_CONNECTIONS',
          `more than ${options.maxConnectionsPerIp} connections from ${remote}`,
        );
        options.metrics.errors.inc({ code: err.code });
        options.logger.warn({ remote, code: err.code }, 'upgrade refused');
        return refuseUpgrade(socket, err);
      }
      // Authenticate before the handshake: nothing the client sends is read until
      // then (pre-auth bytes are bounded by the HTTP header limit). A refusal still
      // completes the handshake and closes with the code, because browsers cannot
      // see the HTTP status of a failed upgrade.
      const token = tokenFromUrl(req.url);
      const authorize = async (): Promise<Grant> => {
        const grant = await options.policy.authenticate(token);
        requireRight(grant, 'read', docName);
        return grant;
      };
      const complete = (grant: Grant | undefined, refused: StateweaveError | undefined): void => {
        if (socket.destroyed || closing) {
          perIp.release(remote);
          if (!socket.destroyed) refuseUpgrade(socket, new StateweaveError('SHUTTING_DOWN'));
          return;
        }
        // ws answers a malformed handshake itself (400) and never calls back: the
        // address is freed when that socket closes. Removed at once otherwise.
        const unclaimed = (): void => perIp.release(remote);
        socket.once('close', unclaimed);
        wss.handleUpgrade(req, socket, head, (ws) => {
          socket.removeListener('close', unclaimed);
          if (!grant || refused) {
            ws.once('close', () => perIp.release(remote));
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

/**
 * The client's one WebSocket to a node, carrying every open document: the
 * Hocuspocus framing on the node's root path (multiplex.ts, PROTOCOL.md). The
 * socket itself is a `Connection` (connection.ts: backoff, failover, offline,
 * token refresh); each document attached here gets a `Connection`-shaped link,
 * so a document handle does not know whether it shares a socket.
 *
 * Per document: on every socket open an Auth with the current token, then the
 * handle's own handshake (hello, sync step 1, awareness) pipelined behind it. The
 * node answers Authenticated, or refuses the document alone (PermissionDenied, or
 * Close later): a token refusal fetches a fresh token and authenticates again, a
 * terminal one stops that document until `reconnect()`, anything else retries it
 * with backoff. Closing a link sends Close (the node unsubscribes); the socket
 * closes with the last document and opens again with the next.
 */
import type { Backoff } from './backoff.js';
import {
  createConnection,
  type Connection,
  type ConnectionCallbacks,
  type ConnectionOptions,
  type ConnectionStatus,
} from './connection.js';
import { codeAction, errorFromReason, StateweaveClientError } from './errors.js';
import {
  decodeAuth,
  decodeCloseReason,
  decodeMuxFrame,
  encodeAuthToken,
  encodeDocPrefix,
  encodeLeaveDoc,
  messageTypeOf,
  MuxType,
  PONG_FRAME,
  prefixFrame,
} from './multiplex.js';
import { encodeToken } from './protocol.js';

/** Sent after the token in every Auth (Hocuspocus providers send their version there). */
export const CLIENT_VERSION = 'stateweave-client/1';

export type MuxSocketOptions = Omit<ConnectionOptions, 'path'>;

export interface MuxSocket {
  /** Adds a document to the socket (opening the socket if it is the first). */
  attach(name: string, on: ConnectionCallbacks): Connection;
  /** Documents attached now. */
  readonly size: number;
}

/**
 * - `waiting`: not on the node (socket down, or a retry is due);
 * - `auth`: Auth sent, the handshake behind it; `open`: Authenticated;
 * - `stopped`: refused for good (terminal) until `reconnect()`.
 */
type DocState = 'waiting' | 'auth' | 'open' | 'stopped';

interface Doc {
  readonly name: string;
  readonly prefix: Uint8Array;
  readonly on: ConnectionCallbacks;
  state: DocState;
  status: ConnectionStatus;
  /** Bumped whenever an authentication in progress must be abandoned. */
  generation: number;
  attempt: number;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
}

export const createMuxSocket = (options: MuxSocketOptions): MuxSocket => {
  const { tokens, backoff } = options;
  const docs = new Map<string, Doc>();
  let connection: Connection | undefined;
  let socketOpen = false;
  let socketStatus: ConnectionStatus = 'disconnected';

  const setStatus = (doc: Doc, next: ConnectionStatus): void => {
    if (doc.status === next) return;
    doc.status = next;
    doc.on.status(next);
  };

  /** The document's status given the socket's: connected only once the node accepted it. */
  const docStatusFor = (doc: Doc): ConnectionStatus =>
    doc.state === 'stopped'
      ? 'disconnected'
      : socketStatus === 'connected' && doc.state !== 'open'
        ? 'connecting'
        : socketStatus;

  const sendRaw = (doc: Doc, body: Uint8Array): boolean =>
    connection !== undefined && socketOpen && connection.send(prefixFrame(doc.prefix, body));

  const clearRetry = (doc: Doc): void => {
    if (doc.retryTimer !== undefined) clearTimeout(doc.retryTimer);
    doc.retryTimer = undefined;
  };

  const authenticate = async (doc: Doc): Promise<void> => {
    clearRetry(doc);
    if (!socketOpen || doc.state === 'stopped') return;
    const generation = ++doc.generation;
    doc.state = 'waiting';
    let token: string | undefined;
    try {
      token = await tokens.get();
    } catch (err) {
      if (generation !== doc.generation) return;
      doc.on.error(
        err instanceof StateweaveClientError
          ? err
          : new StateweaveClientError('TOKEN_FAILED', String(err), { cause: err }),
        false,
      );
      return retry(doc, backoff);
    }
    if (generation !== doc.generation || !socketOpen || !docs.has(doc.name)) return;
    if (!sendRaw(doc, encodeAuthToken(token ?? '', CLIENT_VERSION))) return;
    doc.state = 'auth';
    doc.on.open();
  };

  const retry = (doc: Doc, delays: Backoff, prompt = false): void => {
    clearRetry(doc);
    doc.state = 'waiting';
    setStatus(doc, docStatusFor(doc));
    const delayMs = prompt && doc.attempt === 0 ? delays.promptMs() : delays.delayMs(doc.attempt);
    doc.attempt++;
    doc.retryTimer = setTimeout(() => {
      doc.retryTimer = undefined;
      void authenticate(doc);
    }, delayMs);
  };

  /** The node refused or ended this document (`CODE: message`); the socket stays. */
  const refused = (doc: Doc, reason: string): void => {
    const wasOn = doc.state === 'auth' || doc.state === 'open';
    doc.generation++;
    doc.state = 'waiting';
    if (wasOn) doc.on.close();
    const error = errorFromReason(reason);
    switch (codeAction(error.code)) {
      case 'terminal':
        return stop(doc, error);
      case 'token':
        if (!tokens.canRefresh) return stop(doc, error);
        tokens.invalidate();
        doc.on.error(error, false);
        return retry(doc, backoff, true);
      case 'failover':
      case 'retry':
        doc.on.error(error, false);
        return retry(doc, backoff);
    }
  };

  const stop = (doc: Doc, error: StateweaveClientError): void => {
    clearRetry(doc);
    doc.state = 'stopped';
    setStatus(doc, 'disconnected');
    doc.on.error(error, true);
  };

  const onDocFrame = (doc: Doc, body: Uint8Array): void => {
    const type = messageTypeOf(body);
    if (type === MuxType.Auth) {
      const auth = decodeAuth(body);
      if (auth.type === 'permission-denied') return refused(doc, auth.reason);
      if (auth.type === 'authenticated' && doc.state === 'auth') {
        doc.state = 'open';
        setStatus(doc, docStatusFor(doc));
      }
      return;
    }
    if (type === MuxType.Close) return refused(doc, decodeCloseReason(body));
    if (type === MuxType.SyncStatus || type === MuxType.Stateless) return; // for stock providers
    if (doc.state === 'auth' || doc.state === 'open') doc.on.message(body);
  };

  const callbacks: ConnectionCallbacks = {
    open() {
      socketOpen = true;
      for (const doc of docs.values()) {
        doc.attempt = 0;
        void authenticate(doc);
      }
    },
    message(frame) {
      const parsed = decodeMuxFrame(frame);
      if (parsed.type === 'ping') {
        connection?.send(PONG_FRAME);
        return;
      }
      if (parsed.type === 'pong') return;
      const doc = docs.get(parsed.docName);
      if (doc) onDocFrame(doc, parsed.body);
    },
    close() {
      socketOpen = false;
      for (const doc of docs.values()) {
        doc.generation++;
        clearRetry(doc);
        const wasOn = doc.state === 'auth' || doc.state === 'open';
        if (doc.state !== 'stopped') doc.state = 'waiting';
        if (wasOn) doc.on.close();
      }
    },
    status(status) {
      socketStatus = status;
      for (const doc of docs.values()) setStatus(doc, docStatusFor(doc));
    },
    error(error, terminal) {
      for (const doc of docs.values()) {
        if (doc.state === 'stopped') continue;
        if (terminal) stop(doc, error);
        else doc.on.error(error, false);
      }
    },
    refreshed(token) {
      for (const doc of docs.values())
        if (doc.state === 'auth' || doc.state === 'open') sendRaw(doc, encodeToken(token));
    },
  };

  /** A frame the SDK cannot decode: the whole socket is dropped and reconnects. */
  const message = (frame: Uint8Array): void => {
    try {
      callbacks.message(frame);
    } catch (err) {
      connection?.fail(
        new StateweaveClientError(
          'INVALID_FRAME',
          `bad frame from the node: ${(err as Error).message}`,
          { cause: err },
        ),
      );
    }
  };

  /** Identifies the current socket: a closing one's late callbacks are ignored. */
  let current: object | undefined;

  const ensureConnection = (): Connection => {
    if (connection) return connection;
    const mine = {};
    current = mine;
    const guard =
      <A extends unknown[]>(fn: (...args: A) => void) =>
      (...args: A): void => {
        if (current === mine) fn(...args);
      };
    connection = createConnection(
      // The token travels in each document's Auth, not in the URL (where proxies log it).
      { ...options, path: '', tokenInUrl: false },
      {
        open: guard(callbacks.open),
        message: guard(message),
        close: guard(callbacks.close),
        status: guard(callbacks.status),
        error: guard(callbacks.error),
        refreshed: guard(callbacks.refreshed!),
      },
    );
    return connection;
  };

  return {
    get size() {
      return docs.size;
    },

    attach(name, on) {
      const doc: Doc = {
        name,
        prefix: encodeDocPrefix(name),
        on,
        state: 'waiting',
        status: 'disconnected',
        generation: 0,
        attempt: 0,
        retryTimer: undefined,
      };
      docs.set(name, doc);
      const socket = ensureConnection();
      setStatus(doc, docStatusFor(doc));
      if (socketOpen) void authenticate(doc);
      let closed = false;

      const link: Connection = {
        get status() {
          return doc.status;
        },
        get url() {
          return doc.state === 'open' ? socket.url : undefined;
        },
        send(body) {
          return (doc.state === 'auth' || doc.state === 'open') && sendRaw(doc, body);
        },
        healthy() {
          doc.attempt = 0;
          socket.healthy();
        },
        fail(error) {
          socket.fail(error);
        },
        reconnect() {
          if (closed) return;
          if (!socketOpen) return socket.reconnect();
          if (doc.state === 'auth' || doc.state === 'open') {
            sendRaw(doc, encodeLeaveDoc());
            doc.on.close();
          }
          doc.state = 'waiting';
          doc.attempt = 0;
          setStatus(doc, docStatusFor(doc));
          void authenticate(doc);
        },
        async close() {
          if (closed) return;
          closed = true;
          doc.generation++;
          clearRetry(doc);
          if (doc.state === 'auth' || doc.state === 'open') sendRaw(doc, encodeLeaveDoc());
          doc.state = 'stopped';
          if (docs.get(name) === doc) docs.delete(name);
          setStatus(doc, 'disconnected');
          if (docs.size > 0 || connection !== socket) return;
          // The last document: the socket goes too, and the next open starts a new one.
          connection = undefined;
          current = undefined;
          socketOpen = false;
          socketStatus = 'disconnected';
          await socket.close();
        },
      };
      return link;
    },
  };
};

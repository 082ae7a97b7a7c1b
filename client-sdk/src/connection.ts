/**
 * A socket to a node (one document's, or the client's multiplexed one: see
 * mux-socket.ts), and what happens when it goes away: a state
 * machine that reconnects with backoff and jitter, fails over to the next node
 * URL, refreshes the token on 4401/4419, stops on terminal refusals (4403, …),
 * and waits while the browser says it is offline. It knows nothing about Yjs:
 * the document handle gets `open`, `message` and `close` callbacks.
 *
 *   connecting ──node's first frame──▶ connected ──socket gone──▶ disconnected ──timer──▶ connecting
 *        ▲                                              │ terminal: stays (until reconnect())
 *        └──────────── online ◀── offline ◀── browser offline (from any state)
 */
import { assertNever } from './assert-never.js';
import type { Backoff } from './backoff.js';
import {
  closeAction,
  closeCodeForUpgradeStatus,
  CloseCode,
  errorFromClose,
  StateweaveClientError,
} from './errors.js';
import type { NetworkMonitor } from './network.js';
import { encodeToken } from './protocol.js';
import type { TokenSource } from './token-source.js';
import { socketUrl } from './urls.js';
import {
  frameBytes,
  upgradeStatus,
  WS_OPEN,
  type WebSocketConstructor,
  type WebSocketLike,
} from './websocket.js';

export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected' | 'offline';

/** Which of the client's node URLs new connections use; shared by all documents of a client. */
export interface UrlCursor {
  readonly urls: readonly string[];
  index: number;
}

/** Moves the cursor past `index`, unless another connection already did. */
const advanceFrom = (cursor: UrlCursor, index: number): void => {
  if (cursor.index === index) cursor.index = (index + 1) % cursor.urls.length;
};

export interface ConnectionOptions {
  readonly cursor: UrlCursor;
  /** The path under a node URL (already percent-encoded): a document's, or '' for the multiplexed root. */
  readonly path: string;
  readonly tokens: TokenSource;
  readonly WebSocket: WebSocketConstructor;
  readonly backoff: Backoff;
  readonly network: NetworkMonitor;
  readonly connectTimeoutMs: number;
  readonly refreshInBand: boolean;
  /** Put the token in the URL as `?token=` (a document socket); a multiplexed socket sends it per document instead. @default true */
  readonly tokenInUrl?: boolean;
}

export interface ConnectionCallbacks {
  /** The socket is open; send the handshake. */
  open(): void;
  message(frame: Uint8Array): void;
  /** An open socket is gone (called once per `open`). */
  close(): void;
  status(status: ConnectionStatus): void;
  /** `terminal`: the connection stopped and will not retry on its own. */
  error(error: StateweaveClientError, terminal: boolean): void;
  /**
   * With `refreshInBand`: hand a refreshed token to the node. Without it the
   * connection sends the single-document `token` message itself.
   */
  refreshed?(token: string): void;
}

export interface Connection {
  readonly status: ConnectionStatus;
  /** The node URL of the open socket. */
  readonly url: string | undefined;
  /** Sends on the open socket; false (nothing sent) when there is none. */
  send(frame: Uint8Array): boolean;
  /** The session works (synced): the next failure starts the backoff from the beginning. */
  healthy(): void;
  /** Drops the socket for a client-side reason and reconnects with backoff. */
  fail(error: StateweaveClientError): void;
  /** Connects now: after a terminal error, or to skip a backoff delay. */
  reconnect(): void;
  /** Closes for good; resolves once the socket is closed (at most ~2 s). */
  close(): Promise<void>;
}

const noop = (): void => undefined;
const CLOSE_WAIT_MS = 2000;

/**
 * Detaches our handlers and closes the socket. `ws` emits 'error' when a socket
 * that is still connecting is closed, and throws if nobody listens: keep a no-op.
 */
const drop = (ws: WebSocketLike, reason: string): Promise<void> =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, CLOSE_WAIT_MS);
    ws.onopen = null;
    ws.onmessage = null;
    ws.onerror = noop;
    ws.onclose = () => {
      clearTimeout(timer);
      resolve();
    };
    // 1000 and a reason under 123 bytes: close() does not throw, in any state.
    ws.close(CloseCode.Normal, reason);
  });

export const createConnection = (
  options: ConnectionOptions,
  on: ConnectionCallbacks,
): Connection => {
  const { cursor, tokens, backoff, network } = options;
  let status: ConnectionStatus = 'disconnected';
  let socket: WebSocketLike | undefined;
  let socketIndex = 0;
  let opened = false;
  let httpStatus: number | undefined;
  let attempt = 0;
  let generation = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let connectTimer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let closed = false;
  const closing = new Set<Promise<void>>();
  const track = (done: Promise<void>): void => {
    closing.add(done);
    void done.then(() => closing.delete(done));
  };

  const setStatus = (next: ConnectionStatus): void => {
    if (status === next) return;
    status = next;
    on.status(next);
  };

  const clearTimers = (): void => {
    if (retryTimer !== undefined) clearTimeout(retryTimer);
    if (connectTimer !== undefined) clearTimeout(connectTimer);
    retryTimer = connectTimer = undefined;
  };

  /** Forgets the current socket (closing it) and tells the handle if it was open. */
  const release = (reason: string): void => {
    const ws = socket;
    const wasOpen = opened;
    socket = undefined;
    opened = false;
    if (connectTimer !== undefined) clearTimeout(connectTimer);
    connectTimer = undefined;
    if (ws) track(drop(ws, reason));
    if (wasOpen) on.close();
  };

  const schedule = (delayMs: number): void => {
    attempt++;
    setStatus('disconnected');
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, delayMs);
  };

  /** Backoff delay for the next attempt; `prompt` asks for a short one after a healthy session. */
  const nextDelay = (prompt: boolean): number =>
    prompt && attempt === 0 ? backoff.promptMs() : backoff.delayMs(attempt);

  const stop = (error: StateweaveClientError): void => {
    stopped = true;
    clearTimers();
    setStatus('disconnected');
    on.error(error, true);
  };

  const onSocketGone = (closeCode: number, reason: string, wasOpen: boolean): void => {
    socket = undefined;
    opened = false;
    if (connectTimer !== undefined) clearTimeout(connectTimer);
    connectTimer = undefined;
    if (wasOpen) on.close();
    if (closed || stopped) return setStatus('disconnected');
    const statusCode =
      !wasOpen && httpStatus !== undefined ? closeCodeForUpgradeStatus(httpStatus) : undefined;
    const code = statusCode ?? closeCode;
    const action = closeAction(code);
    const error = errorFromClose(code, reason);
    switch (action) {
      case 'terminal':
        return stop(error);
      case 'token':
        if (!tokens.canRefresh) return stop(error);
        tokens.invalidate();
        on.error(error, false);
        return schedule(nextDelay(true));
      case 'failover':
        advanceFrom(cursor, socketIndex);
        return schedule(nextDelay(true));
      case 'retry':
        if (code >= 4000 || code === 1011) on.error(error, false);
        // Never reached the node: try the next one. Lost an open socket: same node first.
        if (!wasOpen) advanceFrom(cursor, socketIndex);
        return schedule(nextDelay(false));
      default:
        return assertNever(action, 'close action');
    }
  };

  const connect = async (): Promise<void> => {
    if (closed || stopped) return;
    clearTimers();
    if (!network.isOnline()) return setStatus('offline');
    setStatus('connecting');
    const gen = ++generation;
    const index = cursor.index % cursor.urls.length;
    let token: string | undefined;
    try {
      token = await tokens.get();
    } catch (err) {
      if (gen !== generation || closed || stopped) return;
      const error =
        err instanceof StateweaveClientError
          ? err
          : new StateweaveClientError('TOKEN_FAILED', String(err), { cause: err });
      on.error(error, false);
      return schedule(nextDelay(false));
    }
    if (gen !== generation || closed || stopped) return;
    let ws: WebSocketLike;
    try {
      ws = new options.WebSocket(
        socketUrl(
          cursor.urls[index]!,
          options.path,
          options.tokenInUrl === false ? undefined : token,
        ),
      );
    } catch (err) {
      // A URL the runtime refuses outright (e.g. ws:// from an https page): not going to improve.
      return stop(
        new StateweaveClientError(
          'INVALID_OPTIONS',
          `cannot open a WebSocket: ${(err as Error).message}`,
          { cause: err },
        ),
      );
    }
    socket = ws;
    socketIndex = index;
    opened = false;
    httpStatus = undefined;
    ws.binaryType = 'arraybuffer';
    connectTimer = setTimeout(() => {
      if (socket !== ws || opened) return;
      socket = undefined;
      track(drop(ws, 'connect timeout'));
      onSocketGone(1006, '', false);
    }, options.connectTimeoutMs);
    ws.onopen = () => {
      if (socket !== ws) return;
      opened = true;
      if (connectTimer !== undefined) clearTimeout(connectTimer);
      connectTimer = undefined;
      cursor.index = index;
      on.open();
    };
    ws.onmessage = (event) => {
      if (socket !== ws || !opened) return;
      // Connected means the node accepted us: it refuses a token after the handshake
      // (browsers cannot read an upgrade's status), so an open socket alone is not enough.
      if (status !== 'connected') setStatus('connected');
      const frame = frameBytes(event.data);
      if (frame) on.message(frame);
      else
        connection.fail(new StateweaveClientError('INVALID_FRAME', 'the node sent a text frame'));
    };
    ws.onerror = (event) => {
      if (socket === ws) httpStatus = upgradeStatus(event) ?? httpStatus;
    };
    ws.onclose = (event) => {
      if (socket === ws) onSocketGone(event.code, String(event.reason), opened);
    };
  };

  const unsubscribeNetwork = network.subscribe((online) => {
    if (closed) return;
    if (!online) {
      clearTimers();
      generation++;
      release('offline');
      setStatus('offline');
    } else if (status === 'offline') {
      attempt = 0;
      schedule(nextDelay(true));
    }
  });

  const unsubscribeTokens = tokens.subscribe((token) => {
    if (closed || !socket || !opened) return; // the next connection uses the new token anyway
    if (options.refreshInBand) {
      if (on.refreshed) on.refreshed(token);
      else socket.send(encodeToken(token));
      return;
    }
    release('token refresh');
    void connect();
  });

  const connection: Connection = {
    get status() {
      return status;
    },
    get url() {
      return socket && opened ? cursor.urls[socketIndex] : undefined;
    },
    send(frame) {
      if (!socket || !opened || socket.readyState !== WS_OPEN) return false;
      socket.send(frame);
      return true;
    },
    healthy() {
      attempt = 0;
    },
    fail(error) {
      if (closed || stopped || !socket) return;
      release(error.code);
      on.error(error, false);
      schedule(nextDelay(false));
    },
    reconnect() {
      if (closed) return;
      stopped = false;
      attempt = 0;
      generation++;
      release('reconnect');
      void connect();
    },
    async close() {
      if (closed) return;
      closed = true;
      generation++;
      clearTimers();
      unsubscribeNetwork();
      unsubscribeTokens();
      release('closed');
      setStatus('disconnected');
      await Promise.all([...closing]);
    },
  };

  void connect();
  return connection;
};

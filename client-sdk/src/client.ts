/**
 * `createClient`: the SDK's entry point. A client holds the node URLs, the token,
 * and the open documents; each `open(name)` gets its own handle, and every handle
 * rides the client's one WebSocket to the node (the node's root path, many
 * documents per socket: mux-socket.ts), or with `multiplex: false` a socket of
 * its own. Function calls ride on any synced handle, else go over HTTP.
 */
import type * as Y from 'yjs';
import { createBackoff, type BackoffOptions } from './backoff.js';
import { createConnection, type UrlCursor } from './connection.js';
import { createDocHandle, type DocHandle, type InternalDocHandle } from './doc-handle.js';
import { docPath, validateDocName } from './doc-name.js';
import { StateweaveClientError } from './errors.js';
import {
  createFunctionCaller,
  type FetchLike,
  type FunctionTypes,
  type InvokeOptions,
  type CallOptions,
  type UntypedFunctions,
} from './functions.js';
import { createHistoryClient, type DocumentHistory } from './history.js';
import { createAdminClient, type DocumentAdmin } from './admin.js';
import { browserNetwork, type NetworkMonitor } from './network.js';
import { indexeddbPersistence, type PersistenceFactory } from './persistence.js';
import type { SocketCaller } from './socket-calls.js';
import { createMuxSocket, type MuxSocket } from './mux-socket.js';
import { createTokenSource } from './token-source.js';
import { httpBaseFor, normalizeNodeUrl } from './urls.js';
import type { WebSocketConstructor } from './websocket.js';

export interface ClientOptions {
  /** The node, e.g. `wss://sync.example.com`. Give `url` or `urls`. */
  readonly url?: string;
  /** Several independent nodes, in failover order: when one is unreachable or going away, the next is used. */
  readonly urls?: readonly string[];
  /** A fixed token (sent as `?token=` on sockets and `Authorization: Bearer` on calls). */
  readonly token?: string;
  /**
   * Returns a fresh token. Called before connecting, again before a JWT's `exp`
   * (see `tokenRefreshMarginMs`), and whenever the node refuses the token (4401/4419).
   */
  readonly getToken?: () => string | Promise<string>;
  /** Fetch the next token this long before the current one expires (at most half its lifetime). @default 60000 */
  readonly tokenRefreshMarginMs?: number;
  /**
   * Hand a refreshed token to open sockets in-band (message `token`) instead of
   * reconnecting them. Needs a node that supports it. @default false
   */
  readonly refreshInBand?: boolean;
  /** The WebSocket class. @default globalThis.WebSocket (pass `WebSocket` from `ws` in Node) */
  readonly WebSocket?: WebSocketConstructor;
  /** Reconnect delays: exponential backoff with jitter. @default { baseMs: 500, maxMs: 30000, jitter: 0.5 } */
  readonly backoff?: BackoffOptions;
  /** Give up on a socket that has not opened after this long, and try again (next URL). @default 10000 */
  readonly connectTimeoutMs?: number;
  /**
   * Keep a local copy of every open document: `'indexeddb'` (browsers; loads
   * `y-indexeddb` lazily) or your own factory. @default none
   */
  readonly persistence?: 'indexeddb' | PersistenceFactory;
  /** Where `online`/`offline` comes from. @default the browser's navigator.onLine and window events (always online in Node) */
  readonly network?: NetworkMonitor;
  /** HTTP bases for function calls, in the same order as `urls`. @default each node URL with ws→http, wss→https */
  readonly httpUrls?: readonly string[];
  /** The fetch used for function calls. @default globalThis.fetch */
  readonly fetch?: FetchLike;
  /**
   * One WebSocket for all documents (the node's root path, Hocuspocus framing).
   * `false`: one socket per document at `ws://HOST/<doc>`, for nodes older than
   * the multiplexed endpoint. @default true
   */
  readonly multiplex?: boolean;
}

export interface OpenOptions {
  /** Sync this existing doc instead of a new one. Its current content counts as pending until stored. */
  readonly doc?: Y.Doc;
}

export interface StateweaveClient<F extends FunctionTypes<F> = UntypedFunctions> {
  /**
   * Opens a document and starts syncing it. Opening a name that is already open
   * returns the same handle; once its `close()` has been called, a new one.
   */
  open(name: string, options?: OpenOptions): DocHandle;
  /** Invokes a function; resolves with its JSON result. */
  invoke<K extends keyof F & string>(
    fn: K,
    input: F[K]['input'],
    options?: InvokeOptions,
  ): Promise<F[K]['output']>;
  /** Calls a read-only (query) function; tried on each node in turn if one is unreachable. */
  query<K extends keyof F & string>(
    fn: K,
    input: F[K]['input'],
    options?: CallOptions,
  ): Promise<F[K]['output']>;
  /** Versions, `at`, restore, diff and the change feed of documents, over HTTP. */
  readonly history: DocumentHistory;
  /** List, delete, export and import documents, over HTTP. */
  readonly admin: DocumentAdmin;
  /** The open handles. */
  readonly documents: ReadonlyMap<string, DocHandle>;
  /** Closes every handle and stops token refreshes; resolves once the sockets are closed. */
  destroy(): Promise<void>;
}

const invalid = (message: string): StateweaveClientError =>
  new StateweaveClientError('INVALID_OPTIONS', message);

const resolveWebSocket = (given: WebSocketConstructor | undefined): WebSocketConstructor => {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!global)
    throw invalid(
      'no WebSocket implementation: pass `WebSocket` (e.g. from the `ws` package) in Node',
    );
  return global;
};

const resolveFetch = (given: FetchLike | undefined): FetchLike => {
  if (given) return given;
  const global = (globalThis as { fetch?: FetchLike }).fetch;
  if (!global) {
    return () => Promise.reject(invalid('no fetch implementation: pass `fetch` to createClient'));
  }
  return (url, init) => global(url, init);
};

export const createClient = <F extends FunctionTypes<F> = UntypedFunctions>(
  options: ClientOptions,
): StateweaveClient<F> => {
  const given = options.urls ?? (options.url !== undefined ? [options.url] : []);
  if (given.length === 0) throw invalid('give `url` or `urls`');
  const urls = given.map(normalizeNodeUrl);
  const httpBases = (options.httpUrls ?? urls.map(httpBaseFor)).map((u) => u.replace(/\/+$/, ''));
  if (httpBases.length !== urls.length)
    throw invalid('`httpUrls` must have one entry per node URL');
  const WebSocket = resolveWebSocket(options.WebSocket);
  const backoff = createBackoff(options.backoff);
  const tokens = createTokenSource({
    token: options.token,
    getToken: options.getToken,
    refreshMarginMs: options.tokenRefreshMarginMs ?? 60_000,
  });
  const persistence =
    options.persistence === 'indexeddb' ? indexeddbPersistence : options.persistence;
  const network = options.network ?? browserNetwork();
  const cursor: UrlCursor = { urls, index: 0 };
  const handles = new Map<string, InternalDocHandle>();
  /** A synced socket for function calls: one to the node HTTP would use if there is one, else any. */
  const socketForCalls = (): SocketCaller | undefined => {
    const preferred = urls[cursor.index % urls.length];
    let any: SocketCaller | undefined;
    for (const handle of handles.values()) {
      if (!handle.isSynced) continue;
      if (handle.url === preferred) return handle.calls;
      any ??= handle.calls;
    }
    return any;
  };
  const fetch = resolveFetch(options.fetch);
  const functions = createFunctionCaller({
    httpBases,
    preferred: () => cursor.index,
    tokens,
    fetch,
    socket: socketForCalls,
  });
  const http = { base: () => httpBases[cursor.index % httpBases.length]!, tokens, fetch };
  const history = createHistoryClient(http);
  const admin = createAdminClient(http);
  let destroyed = false;
  const socketOptions = {
    cursor,
    tokens,
    WebSocket,
    backoff,
    network,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    refreshInBand: options.refreshInBand ?? false,
  };
  const multiplex = options.multiplex ?? true;
  let shared: MuxSocket | undefined;

  const alive = (): void => {
    if (destroyed) throw new StateweaveClientError('DESTROYED', 'the client was destroyed');
  };

  return {
    open(name, openOptions = {}) {
      alive();
      validateDocName(name);
      const existing = handles.get(name);
      // A handle that is closing is on its way out: a new open gets a new one.
      if (existing && !existing.closed) {
        if (openOptions.doc && openOptions.doc !== existing.doc) {
          throw new StateweaveClientError(
            'INVALID_OPTIONS',
            `${name} is already open with another Y.Doc`,
          );
        }
        return existing;
      }
      const handle = createDocHandle({
        name,
        doc: openOptions.doc,
        persistence,
        connect: multiplex
          ? (on) => (shared ??= createMuxSocket(socketOptions)).attach(name, on)
          : (on) => createConnection({ ...socketOptions, path: docPath(name) }, on),
        onClose: () => {
          if (handles.get(name) === handle) handles.delete(name);
        },
      });
      handles.set(name, handle);
      return handle;
    },

    async invoke(fn, input, invokeOptions = {}) {
      alive();
      return (await functions.call('invoke', fn, input, invokeOptions)) as F[typeof fn]['output'];
    },

    async query(fn, input, callOptions = {}) {
      alive();
      return (await functions.call('query', fn, input, callOptions)) as F[typeof fn]['output'];
    },

    history,

    admin,

    documents: handles,

    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await Promise.all([...handles.values()].map((handle) => handle.close()));
      tokens.destroy();
    },
  };
};

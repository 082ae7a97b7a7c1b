/**
 * A document handle: the `Y.Doc` and `Awareness` of one open document, kept in
 * sync with a node over one connection (its own socket, connection.ts, or a link
 * on the client's shared socket, mux-socket.ts), and what the user sees of it —
 * `status`, `synced`, `pending` and events.
 *
 * The handshake on every (re)connection is: hello (asks for `saved` acks), our
 * sync step 1, our awareness state. The node answers with its step 1, to which
 * our step 2 carries everything it lacks (every local edit it has not stored,
 * including edits made offline), and its step 2, after which we are synced.
 * From then on each local update is sent at once. Updates applied by this
 * handle carry the handle itself as the transaction origin; every other origin
 * is a local change.
 *
 * Once synced, the socket also carries the client's function calls
 * (socket-calls.ts): `calls` is offered to the client only while `isSynced`.
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { assertNever } from './assert-never.js';
import type { Connection, ConnectionCallbacks, ConnectionStatus } from './connection.js';
import { createEmitter } from './emitter.js';
import { StateweaveClientError } from './errors.js';
import { decodeNodeMessage, type NodeMessage } from './node-messages.js';
import type { Persistence, PersistenceFactory } from './persistence.js';
import {
  decodeInvokeResult,
  encodeAwareness,
  encodeHello,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeUpdate,
} from './protocol.js';
import { applyRemote, isAwarenessUpdate, isYjsUpdate } from './remote-apply.js';
import { createSavedTracker } from './saved-tracker.js';
import { createSocketCalls, type SocketCaller } from './socket-calls.js';

/** Function calls one socket has on the wire at once; more wait in the SDK (the node's cap is 1024). */
export const MAX_CALLS_IN_FLIGHT_PER_SOCKET = 512;

export type Awareness = awarenessProtocol.Awareness;

export interface DocHandleEvents {
  /** The connection status changed. */
  status: (status: ConnectionStatus) => void;
  /** A (re)connection finished its handshake: the doc holds everything the node had. */
  synced: () => void;
  /** The number of unacknowledged local updates changed. */
  pending: (pending: number) => void;
  /** Every local update is durably stored on the node (`pending` reached 0). */
  saved: () => void;
  /**
   * Something went wrong: a refusal by the node, a token problem, a bad frame.
   * After a terminal one (FORBIDDEN, DOC_TOO_LARGE, …) the handle stops
   * reconnecting until `reconnect()`.
   */
  error: (error: StateweaveClientError) => void;
}

export interface DocHandle {
  /** The document name. */
  readonly name: string;
  readonly doc: Y.Doc;
  readonly awareness: Awareness;
  /**
   * Resolves when the first handshake completes; rejects if the handle is
   * closed, or stops on a terminal error, before that.
   */
  readonly synced: Promise<void>;
  /** true while connected and synced. */
  readonly isSynced: boolean;
  readonly status: ConnectionStatus;
  /** Local updates the node has not yet acknowledged as durably stored. */
  readonly pending: number;
  /** The node URL of the open connection. */
  readonly url: string | undefined;
  /** The latest error reported through the `error` event. */
  readonly lastError: StateweaveClientError | undefined;
  readonly closed: boolean;
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof DocHandleEvents>(event: K, listener: DocHandleEvents[K]): () => void;
  off<K extends keyof DocHandleEvents>(event: K, listener: DocHandleEvents[K]): void;
  /** Resolves when `pending` is 0 (now or later); rejects if the handle closes first. */
  whenSaved(): Promise<void>;
  /** Connects now: after a terminal error, or to skip a backoff delay. */
  reconnect(): void;
  /**
   * Announces our departure (null awareness state), closes the connection and
   * detaches from the doc, which stays usable but no longer syncs. Does not wait
   * for `pending` to reach 0: `await handle.whenSaved()` first for that.
   */
  close(): Promise<void>;
}

/** The handle as the client sees it: also a carrier for function calls. */
export interface InternalDocHandle extends DocHandle {
  /** Function calls over this handle's socket; offer it only while `isSynced`. */
  readonly calls: SocketCaller;
}

export interface DocHandleOptions {
  readonly name: string;
  readonly doc?: Y.Doc | undefined;
  /** Connects the handle: its own socket (connection.ts) or a link on the client's shared one (mux-socket.ts). */
  readonly connect: (on: ConnectionCallbacks) => Connection;
  readonly persistence?: PersistenceFactory | undefined;
  /** Called once the handle is closed (the client forgets it). */
  readonly onClose: () => void;
}

const noop = (): void => undefined;

export const createDocHandle = (options: DocHandleOptions): InternalDocHandle => {
  const { name } = options;
  const doc = options.doc ?? new Y.Doc();
  const awareness = new awarenessProtocol.Awareness(doc);
  const events = createEmitter<DocHandleEvents>();
  const tracker = createSavedTracker();
  let handshaken = false;
  let isSynced = false;
  let everSynced = false;
  let closed: Promise<void> | undefined;
  let lastError: StateweaveClientError | undefined;
  let persistence: Persistence | undefined;
  const closeWaiters = new Set<() => void>();

  let resolveSynced: () => void = noop;
  let rejectSynced: (error: StateweaveClientError) => void = noop;
  const synced = new Promise<void>((resolve, reject) => {
    resolveSynced = resolve;
    rejectSynced = reject;
  });
  synced.catch(noop); // a rejection nobody awaits is not an unhandled one

  const reportError = (error: StateweaveClientError): void => {
    lastError = error;
    events.emit('error', error);
  };

  /** Runs a tracker change and emits `pending` / `saved` if the count moved. */
  const trackPending = (change: () => void): void => {
    const before = tracker.pending;
    change();
    const after = tracker.pending;
    if (after === before) return;
    events.emit('pending', after);
    if (after === 0) events.emit('saved');
  };

  // A doc that already has content: its state is a local change not yet saved.
  if (doc.store.clients.size > 0) tracker.local();

  const send = (frame: Uint8Array): boolean => connection.send(frame);
  const calls = createSocketCalls({
    send,
    url: () => connection.url,
    maxInFlight: MAX_CALLS_IN_FLIGHT_PER_SOCKET,
  });

  const handleMessage = (message: NodeMessage): void => {
    switch (message.type) {
      case 'sync-step-1':
        // Covers every local update so far (see saved-tracker.ts).
        if (send(encodeSyncStep2(Y.encodeStateAsUpdate(doc, message.stateVector)))) {
          tracker.sent();
          handshaken = true;
        }
        return;
      case 'sync-step-2':
        applyRemote(
          () => Y.applyUpdate(doc, message.update, handle),
          () => isYjsUpdate(message.update),
        );
        if (!isSynced) {
          isSynced = true;
          everSynced = true;
          connection.healthy();
          resolveSynced();
          events.emit('synced');
        }
        return;
      case 'update':
        applyRemote(
          () => Y.applyUpdate(doc, message.update, handle),
          () => isYjsUpdate(message.update),
        );
        return;
      case 'awareness':
        applyRemote(
          () => awarenessProtocol.applyAwarenessUpdate(awareness, message.update, handle),
          () => isAwarenessUpdate(message.update),
        );
        return;
      case 'saved':
        trackPending(() => tracker.ack(message.seq));
        return;
      case 'error':
        reportError(new StateweaveClientError(message.code, message.message));
        return;
      case 'unknown':
        return; // a newer node's extension: ignore
      default:
        return assertNever(message, 'node message');
    }
  };

  const connection: Connection = options.connect({
    open() {
      tracker.reset();
      handshaken = false;
      send(encodeHello());
      send(encodeSyncStep1(Y.encodeStateVector(doc)));
      if (awareness.getLocalState() !== null) {
        send(encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])));
      }
    },
    message(frame) {
      try {
        const result = decodeInvokeResult(frame);
        if (result) return calls.receive(result);
        handleMessage(decodeNodeMessage(frame));
      } catch (err) {
        connection.fail(
          new StateweaveClientError(
            'INVALID_FRAME',
            `bad frame from the node: ${(err as Error).message}`,
            { cause: err },
          ),
        );
      }
    },
    close() {
      handshaken = false;
      isSynced = false;
      calls.drop();
      // As y-websocket: whoever we saw through this node is gone with it.
      const others = [...awareness.getStates().keys()].filter((id) => id !== doc.clientID);
      if (others.length > 0) awarenessProtocol.removeAwarenessStates(awareness, others, handle);
    },
    status(status) {
      events.emit('status', status);
    },
    error(error, terminal) {
      reportError(error);
      if (terminal && !everSynced) rejectSynced(error);
    },
  });

  const onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === handle) return;
    trackPending(() => {
      tracker.local();
      // Before our step 2 the update waits: the step 2 will carry it.
      if (handshaken && send(encodeUpdate(update))) tracker.sent();
    });
  };

  const onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    if (origin === handle) return;
    send(
      encodeAwareness(
        awarenessProtocol.encodeAwarenessUpdate(awareness, [...added, ...updated, ...removed]),
      ),
    );
  };

  const onDocDestroy = (): void => void handle.close();

  const handle: InternalDocHandle = {
    name,
    doc,
    awareness,
    synced,
    calls,
    get isSynced() {
      return isSynced;
    },
    get status() {
      return connection.status;
    },
    get pending() {
      return tracker.pending;
    },
    get url() {
      return connection.url;
    },
    get lastError() {
      return lastError;
    },
    get closed() {
      return closed !== undefined;
    },
    on: (event, listener) => events.on(event, listener),
    off: (event, listener) => events.off(event, listener),
    whenSaved() {
      if (tracker.pending === 0) return Promise.resolve();
      if (closed) return Promise.reject(new StateweaveClientError('CLOSED', `${name} is closed`));
      return new Promise<void>((resolve, reject) => {
        const done = (): void => {
          offSaved();
          closeWaiters.delete(onClosed);
        };
        const offSaved = events.on('saved', () => {
          done();
          resolve();
        });
        const onClosed = (): void => {
          done();
          reject(
            new StateweaveClientError(
              'CLOSED',
              `${name} was closed with ${tracker.pending} unsaved updates`,
            ),
          );
        };
        closeWaiters.add(onClosed);
      });
    },
    reconnect() {
      connection.reconnect();
    },
    close() {
      closed ??= (async () => {
        // Tell the others we left while the socket is still open.
        awarenessProtocol.removeAwarenessStates(awareness, [doc.clientID], 'close');
        doc.off('update', onDocUpdate);
        doc.off('destroy', onDocDestroy);
        awareness.off('update', onAwarenessUpdate);
        await connection.close();
        awareness.destroy();
        for (const notify of [...closeWaiters]) notify();
        if (!everSynced)
          rejectSynced(new StateweaveClientError('CLOSED', `${name} was closed before it synced`));
        events.clear();
        options.onClose();
        await persistence?.destroy();
      })();
      return closed;
    },
  };

  doc.on('update', onDocUpdate);
  doc.on('destroy', onDocDestroy);
  awareness.on('update', onAwarenessUpdate);

  if (options.persistence) {
    Promise.resolve()
      .then(() => options.persistence!(name, doc))
      .then(
        (attached) => {
          if (closed) void attached.destroy();
          else persistence = attached;
        },
        (err: unknown) =>
          reportError(
            new StateweaveClientError(
              'PERSISTENCE_FAILED',
              `local persistence failed: ${(err as Error).message}`,
              { cause: err },
            ),
          ),
      );
  }

  return handle;
};

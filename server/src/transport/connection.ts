/**
 * One client WebSocket on one document: decodes frames, hands them to the room,
 * and writes the room's frames back. Frames that arrive while the document is
 * still loading are held (bounded) and processed in order once it is ready, so a
 * client is never synced against a half-loaded document.
 */
import * as Y from 'yjs';
import type { WebSocket } from 'ws';
import {
  decodeClientMessage,
  encodeError,
  encodeSaved,
  encodeSyncStep1,
  encodeSyncStep2,
  MessageType,
  ProtocolError,
  type ClientMessage,
} from '@stateweave/client/protocol';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import type { Grant } from '../auth/grant.js';
import { closeReason, StateweaveError, toStateweaveError } from '../errors.js';
import { createTokenBucket } from '../limits/token-bucket.js';
import type { Hub, RoomLease } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Origin } from '../origin.js';
import type { Forwarder } from '../cluster/forward.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import { createInvokeChannel, DEFAULT_MAX_INVOCATIONS_IN_FLIGHT, type InvokeChannel } from './invoke-channel.js';

export interface ConnectionOptions {
  readonly hub: Hub;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Close a client whose unsent backlog passes this many bytes. */
  readonly maxBufferedBytes: number;
  /** Frames held while the document loads; more closes the socket. */
  readonly maxPendingFrames: number;
  /** Verifies tokens sent in-band (the `token` message). */
  readonly policy: AccessPolicy;
  /** Sustained messages per second per connection (token bucket refill). */
  readonly maxMessagesPerSecond: number;
  /** Messages a connection may send at once above the sustained rate. */
  readonly messageBurst: number;
  /** Runs function calls sent over the socket (Invoke); without it they are answered NOT_FOUND. */
  readonly functions?: () => FunctionRuntime;
  /** In a cluster: forwards `owner` invocations to the document's primary. */
  readonly forwarder?: Forwarder;
  /** Function calls in flight per connection before OVERLOADED. @default 1024 */
  readonly maxInvocationsInFlight?: number;
}

export interface Connection {
  readonly id: number;
  readonly docName: string;
  /** Set by the heartbeat: false after a ping until the pong arrives. */
  alive: boolean;
  fail(err: StateweaveError): void;
}

let nextConnId = 1;

/**
 * Rate-limit costs: every frame pays FRAME_COST, every message that makes the
 * node work (sync, own presence) pays the rest of one token. Echoed presence
 * from stock clients then costs 1/20 of a message.
 */
const FRAME_COST = 0.05;
const MESSAGE_COST = 1 - FRAME_COST;

/** Longest delay setTimeout accepts; a later expiry is re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Per-turn write batching: the first frame a socket gets in a turn of the event
 * loop corks it, and one shared setImmediate uncorks every corked socket, so all
 * frames a socket gets while the node works through one batch of input leave in
 * one write (one syscall, fewer TCP segments for the client to read) instead of
 * one each. Frames stay separate WebSocket messages, in order: only the writes
 * are batched. (ws has no public cork; `_socket` is its net.Socket.)
 */
interface Corkable {
  readonly writableCorked: number;
  cork(): void;
  uncork(): void;
}
let corked: Corkable[] = [];
const uncorkAll = (): void => {
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
};
const socketOf = (ws: WebSocket): Corkable | undefined => (ws as unknown as { _socket?: Corkable })._socket;
const corkUntilNextTurn = (socket: Corkable): void => {
  if (corked.length === 0) setImmediate(uncorkAll);
  corked.push(socket);
  socket.cork();
};

const hasRight = (grant: Grant, right: 'write', docName: string): boolean => {
  try {
    requireRight(grant, right, docName);
    return true;
  } catch {
    return false; // FORBIDDEN or TOKEN_EXPIRED: either way, no write
  }
};

export const acceptConnection = (
  ws: WebSocket,
  docName: string,
  remote: string,
  initialGrant: Grant,
  options: ConnectionOptions,
  initialToken?: string,
): Connection => {
  const { hub, metrics } = options;
  const id = nextConnId++;
  const origin: Origin = Object.freeze({ kind: 'client', connId: id });
  // A child logger costs memory per connection: made only when this connection logs.
  let child: Logger | undefined;
  const logger = (): Logger => (child ??= options.logger.child({ conn: id, doc: docName }));
  let lease: RoomLease | undefined;
  let pending: Uint8Array[] | undefined = [];
  // Set once the node has refused the socket (fail) or it has closed: from then
  // on nothing is read or sent, so input still in flight behind a refused frame
  // never reaches the document, and a refusal is counted once.
  let closed = false;
  // "Saved" acknowledgements (extension; only after the client said hello).
  let acksEnabled = false;
  let receivedSeq = 0;
  let savedSeq = 0;
  let ackedSeq = 0;
  let ackScheduled = false;
  // Access: the grant can be replaced in-band (token refresh) and expires.
  let grant = initialGrant;
  let canWrite = hasRight(grant, 'write', docName);
  let expiryTimer: NodeJS.Timeout | undefined;
  const bucket = createTokenBucket(options.maxMessagesPerSecond, options.messageBurst);
  let token = initialToken;

  metrics.connections.inc();
  options.logger.info({ conn: id, doc: docName, remote, subject: initialGrant.subject }, 'connection open');

  // The backlog as it stood before this turn's frames, which are corked and leave
  // together at the turn's end: a client is slow when the earlier ones did not.
  let backlogBeforeTurn = 0;
  const send = (frame: Uint8Array): void => {
    if (closed || ws.readyState !== ws.OPEN) return;
    const socket = socketOf(ws);
    if (!socket || socket.writableCorked === 0) {
      backlogBeforeTurn = ws.bufferedAmount;
      if (socket) corkUntilNextTurn(socket);
    }
    if (backlogBeforeTurn > options.maxBufferedBytes) {
      connection.fail(new StateweaveError('SLOW_CONSUMER', `more than ${options.maxBufferedBytes} bytes unsent`));
      return;
    }
    metrics.bytesOut.inc(frame.byteLength);
    ws.send(frame);
  };

  const sendAck = (): void => {
    ackScheduled = false;
    if (savedSeq > ackedSeq) {
      ackedSeq = savedSeq;
      send(encodeSaved(ackedSeq));
    }
  };

  const onSaved = (seq: number): void => {
    // Saves resolve in order; many resolving in one batch share one ack frame.
    savedSeq = Math.max(savedSeq, seq);
    if (acksEnabled && !ackScheduled) {
      ackScheduled = true;
      setImmediate(sendAck);
    }
  };

  /** Rate limit: false (and the socket is closed) once the bucket is empty. */
  const charge = (cost: number): boolean => {
    if (bucket.take(cost)) return true;
    connection.fail(new StateweaveError('RATE_LIMITED', `more than ${options.maxMessagesPerSecond} messages/s`));
    return false;
  };

  const armExpiry = (): void => {
    clearTimeout(expiryTimer);
    expiryTimer = undefined;
    if (grant.expiresAt === undefined) return;
    const delay = grant.expiresAt - Date.now();
    if (delay <= 0) return connection.fail(new StateweaveError('TOKEN_EXPIRED', 'the token expired during the session'));
    expiryTimer = setTimeout(armExpiry, Math.min(delay, MAX_TIMER_MS));
    expiryTimer.unref();
  };

  const refreshToken = async (token: string): Promise<void> => {
    try {
      const next = await options.policy.authenticate(token);
      requireRight(next, 'read', docName);
      grant = next;
      canWrite = hasRight(grant, 'write', docName);
      logger().debug({ subject: grant.subject, canWrite }, 'token refreshed');
      armExpiry();
    } catch (err) {
      connection.fail(toStateweaveError(err));
    }
  };

  /**
   * A write this grant does not allow. A client that speaks the extension is told
   * with an `error` message and stays connected (its message still takes its seq,
   * acknowledged in order); a stock client is closed with FORBIDDEN, since it
   * would not understand anything else.
   */
  const refuseWrite = (lease: RoomLease, seq: number): void => {
    const err = new StateweaveError('FORBIDDEN', 'this token is read-only: document writes are refused');
    if (!acksEnabled) return connection.fail(err);
    metrics.errors.inc({ code: err.code });
    logger().warn({ code: err.code, seq }, 'write refused');
    send(encodeError(err.code, err.message));
    void lease.room.covered().then(() => onSaved(seq));
  };

  // Function calls over this socket; bounded by their own in-flight cap, not the bucket.
  // Made at the first call: most connections never call, and idle memory is per connection.
  let invokeChannel: InvokeChannel | undefined;
  const invokes = (): InvokeChannel =>
    (invokeChannel ??= createInvokeChannel({
      functions: options.functions,
      forwarder: options.forwarder,
      maxInFlight: options.maxInvocationsInFlight ?? DEFAULT_MAX_INVOCATIONS_IN_FLIGHT,
      grant: () => grant,
      token: () => token,
      send: (frame) => send(frame),
      logger: logger(),
      metrics,
    }));

  const handle = (lease: RoomLease, message: ClientMessage): void => {
    const { room } = lease;
    switch (message.type) {
      case 'sync-step-1': {
        let diff: Uint8Array;
        try {
          diff = Y.encodeStateAsUpdate(room.doc, message.stateVector);
        } catch (err) {
          throw new StateweaveError('INVALID_FRAME', 'malformed state vector', { cause: err });
        }
        send(encodeSyncStep2(diff));
        return;
      }
      case 'sync-step-2':
      case 'update': {
        const seq = ++receivedSeq;
        // A read-only client's sync step 2 usually carries nothing new: accept that.
        if (!canWrite && !room.containsUpdate(message.update)) return refuseWrite(lease, seq);
        room.applyUpdate(message.update, origin).then(
          () => onSaved(seq),
          (err: unknown) => connection.fail(toStateweaveError(err)),
        );
        return;
      }
      case 'awareness':
        // Stock clients echo everyone's presence back; an echo costs only the frame.
        if (room.applyAwareness(message.update, origin) > 0) charge(MESSAGE_COST);
        return;
      case 'query-awareness': {
        const states = room.encodeAwarenessStates();
        if (states) send(states);
        return;
      }
      case 'hello':
        acksEnabled = true;
        if (savedSeq > ackedSeq) onSaved(savedSeq);
        return;
      case 'token':
        void refreshToken(message.token).then(() => {
          if (!closed) token = message.token; // accepted: a refused token closes the connection
        });
        return;
      case 'invoke':
        // Results are extension messages: only a client that said hello may call.
        if (!acksEnabled) throw new StateweaveError('INVALID_FRAME', 'invoke before hello');
        invokes().handle(message);
        return;
    }
  };

  const process = (frame: Uint8Array): void => {
    if (!lease || closed) return;
    try {
      const message = decodeClientMessage(frame);
      if (message.type !== 'awareness' && message.type !== 'invoke' && !charge(MESSAGE_COST)) return;
      handle(lease, message);
    } catch (err) {
      connection.fail(
        err instanceof ProtocolError ? new StateweaveError('INVALID_FRAME', err.message) : toStateweaveError(err),
      );
    }
  };

  const connection: Connection = {
    id,
    docName,
    alive: true,
    fail(err) {
      if (closed) return;
      closed = true;
      metrics.errors.inc({ code: err.code });
      const level = err.code === 'INTERNAL' ? 'error' : 'warn';
      logger()[level]({ code: err.code, err: err.cause ?? undefined, reason: err.message }, 'closing connection');
      ws.close(err.closeCode, closeReason(err));
      // A peer that does not read will not complete the closing handshake either.
      if (err.code === 'SLOW_CONSUMER' || err.code === 'HEARTBEAT_TIMEOUT') ws.terminate();
    },
  };

  ws.on('message', (data, isBinary) => {
    if (closed) return;
    const frame = data instanceof Buffer ? data : Buffer.concat(data as Buffer[]);
    // An Invoke frame is bounded by the in-flight cap instead (invoke-channel.ts).
    if (!(isBinary && frame[0] === MessageType.Invoke) && !charge(FRAME_COST)) return;
    if (!isBinary) return connection.fail(new StateweaveError('TEXT_FRAME'));
    metrics.bytesIn.inc(frame.byteLength);
    if (pending) {
      if (pending.length >= options.maxPendingFrames) {
        return connection.fail(new StateweaveError('INVALID_FRAME', 'too many frames before the document loaded'));
      }
      pending.push(frame);
    } else process(frame);
  });
  ws.on('pong', () => {
    connection.alive = true;
  });
  ws.on('error', (err: Error & { code?: string }) => {
    // ws reports protocol violations here and then closes the socket itself
    // (e.g. WS_ERR_UNSUPPORTED_MESSAGE_LENGTH → 1009 for frames over maxFrameBytes).
    if (closed) return; // already refused and counted
    closed = true;
    const code = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'FRAME_TOO_LARGE' : 'INVALID_FRAME';
    metrics.errors.inc({ code });
    logger().warn({ code, wsCode: err.code, reason: err.message }, 'socket error');
  });
  ws.on('close', (code, reason) => {
    closed = true;
    pending = undefined;
    clearTimeout(expiryTimer);
    metrics.connections.dec();
    if (lease) {
      lease.room.unsubscribe(id);
      lease.release();
    }
    options.logger.info({ conn: id, doc: docName, code, reason: reason.toString() }, 'connection closed');
  });

  armExpiry();
  hub.open(docName).then(
    (opened) => {
      if (closed) return opened.release();
      try {
        opened.room.subscribe({ connId: id, send, close: (err) => connection.fail(err) });
      } catch (err) {
        opened.release();
        return connection.fail(toStateweaveError(err));
      }
      lease = opened;
      // As the reference server: our state vector first, then who is present.
      send(encodeSyncStep1(Y.encodeStateVector(opened.room.doc)));
      const states = opened.room.encodeAwarenessStates();
      if (states) send(states);
      const held = pending ?? [];
      pending = undefined;
      for (const frame of held) process(frame);
    },
    (err: unknown) => connection.fail(toStateweaveError(err)),
  );

  return connection;
};

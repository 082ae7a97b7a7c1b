/**
 * One client WebSocket on one document: decodes frames, hands them to the room,
 * and writes the room's frames back. Frames that arrive while the document is
 * still loading are held (bounded) and processed in order once it is ready, so a
 * client is never synced against a half-loaded document.
 *
 * Idle memory is per connection (thousands of sockets sit idle), so a
 * connection is one object: its state in fields, its behaviour on the class's
 * prototype, the socket's four listeners shared by every socket, and the
 * connection itself is the room's subscriber. Anything only some connections
 * need (a child logger, the function-call channel, frames held during a load)
 * is made at first use. (Past 400 lines because the class is one concern; the
 * function-call channel and token deadlines already live in their own files.)
 */
import * as Y from 'yjs';
import type { RawData, WebSocket } from 'ws';
import {
  decodeClientMessage,
  encodeError,
  encodeSaved,
  encodeSyncStep1,
  MessageType,
  ProtocolError,
  type ClientMessage,
} from '@stateweave/client/protocol';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import type { Grant } from '../auth/grant.js';
import { atEndOfTurn } from '../end-of-turn.js';
import { closeReason, StateweaveError, toStateweaveError } from '../errors.js';
import { createTokenBucket, type TokenBucket } from '../limits/token-bucket.js';
import type { Hub, RoomLease } from '../hub/hub.js';
import type { Subscriber } from '../hub/room.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Origin } from '../origin.js';
import type { Forwarder } from '../cluster/forward.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import { createExpiryQueue, type Expiring } from './expiry-queue.js';
import {
  createInvokeChannel,
  DEFAULT_MAX_INVOCATIONS_IN_FLIGHT,
  type InvokeChannel,
} from './invoke-channel.js';

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
  /** Told once, after the socket has closed (the endpoint's bookkeeping). One function for every connection. */
  readonly onClose?: (connection: Connection) => void;
}

export interface Connection {
  readonly id: number;
  readonly docName: string;
  readonly socket: WebSocket;
  /** The client's address, as the endpoint counted it against its per-IP limit. */
  readonly remote: string;
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

/** Grant subjects that name no one in particular (auth/grant.ts, tokens.ts, access.ts). */
const SHARED_SUBJECTS: ReadonlySet<string> = new Set(['dev', 'anonymous', 'token']);

const readOnly = (): StateweaveError =>
  new StateweaveError('FORBIDDEN', 'this token is read-only: document writes are refused');
const MESSAGE_COST = 1 - FRAME_COST;

/**
 * Per-turn write batching: the first frame a socket gets in a turn of the event
 * loop corks it, and one end-of-turn job uncorks every corked socket (after the
 * rooms' fan-out of the turn, which is queued there too: end-of-turn.ts), so all
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
const socketOf = (ws: WebSocket): Corkable | undefined =>
  (ws as unknown as { _socket?: Corkable })._socket;
const corkUntilNextTurn = (socket: Corkable): void => {
  if (corked.length === 0) atEndOfTurn(uncorkAll);
  corked.push(socket);
  socket.cork();
};

/** Every socket's listeners are the four functions at the end of this file; they find their connection here. */
const bySocket = new WeakMap<WebSocket, ClientConnection>();

/** Token expiry of every connection, on one timer (expiry-queue.ts). */
const expiries = createExpiryQueue<ClientConnection>((connection) => connection.expired());

const hasRight = (grant: Grant, right: 'write', docName: string): boolean => {
  try {
    requireRight(grant, right, docName);
    return true;
  } catch {
    return false; // FORBIDDEN or TOKEN_EXPIRED: either way, no write
  }
};

class ClientConnection implements Connection, Subscriber, Expiring {
  readonly id = nextConnId++;
  /** Set by the heartbeat: false after a ping until the pong arrives. */
  alive = true;
  /** The origin of this client's changes (the room sends them to everyone else). */
  readonly origin: Origin;
  // A child logger costs memory per connection: made only when this connection logs.
  private child: Logger | undefined = undefined;
  private lease: RoomLease | undefined = undefined;
  /** Frames that arrived before the document loaded (made at the first one). */
  private pending: Uint8Array[] | undefined = undefined;
  // Set once the node has refused the socket (fail) or it has closed: from then
  // on nothing is read or sent, so input still in flight behind a refused frame
  // never reaches the document, and a refusal is counted once.
  private closed = false;
  // "Saved" acknowledgements (extension; only after the client said hello).
  private acksEnabled = false;
  private receivedSeq = 0;
  private savedSeq = 0;
  private ackedSeq = 0;
  private ackScheduled = false;
  // Access: the grant can be replaced in-band (token refresh) and expires.
  private canWrite: boolean;
  /** Position in `expiries` (-1: no deadline queued). */
  expiryIndex = -1;
  private readonly bucket: TokenBucket;
  // The backlog as it stood before this turn's frames, which are corked and leave
  // together at the turn's end: a client is slow when the earlier ones did not.
  private backlogBeforeTurn = 0;
  // Function calls over this socket; bounded by their own in-flight cap, not the bucket.
  // Made at the first call: most connections never call.
  private invokeChannel: InvokeChannel | undefined = undefined;

  constructor(
    readonly socket: WebSocket,
    readonly docName: string,
    readonly remote: string,
    private grant: Grant,
    private readonly options: ConnectionOptions,
    private token: string | undefined,
  ) {
    this.origin = Object.freeze({ kind: 'client', connId: this.id });
    this.canWrite = hasRight(grant, 'write', docName);
    this.bucket = createTokenBucket(options.maxMessagesPerSecond, options.messageBurst);
  }

  /** The room's key for this subscriber. */
  get connId(): number {
    return this.id;
  }

  /**
   * Connections of one token subject share the client ids they introduce. Only
   * a token's own `sub`: the stand-ins for no subject ('dev', 'anonymous',
   * 'token') are shared by strangers.
   */
  get writerKey(): string | undefined {
    const { subject } = this.grant;
    if (this.token === undefined || SHARED_SUBJECTS.has(subject)) return undefined;
    return `subject:${subject}`;
  }

  /** Subscribes to the document and handles the socket's frames from now on. */
  start(hub: Hub): void {
    const { socket } = this;
    bySocket.set(socket, this);
    socket.on('message', onMessage);
    socket.on('pong', onPong);
    socket.on('error', onError);
    socket.on('close', onClose);
    this.armExpiry();
    hub.open(this.docName).then(
      (opened) => this.opened(opened),
      (err: unknown) => this.fail(toStateweaveError(err)),
    );
  }

  fail(err: StateweaveError): void {
    if (this.closed) return;
    this.closed = true;
    // Nothing more is read from it: a reconnecting client need not wait for the close handshake.
    this.lease?.room.releaseClientIds(this.id);
    this.options.metrics.errors.inc({ code: err.code });
    const level = err.code === 'INTERNAL' ? 'error' : 'warn';
    this.logger()[level](
      { code: err.code, err: err.cause ?? undefined, reason: err.message },
      'closing connection',
    );
    this.socket.close(err.closeCode, closeReason(err));
    // A peer that does not read will not complete the closing handshake either.
    if (err.code === 'SLOW_CONSUMER' || err.code === 'HEARTBEAT_TIMEOUT') this.socket.terminate();
  }

  /** The room ends the subscription (eviction): the client reconnects to a fresh room. */
  close(err: StateweaveError): void {
    this.fail(err);
  }

  send(frame: Uint8Array): void {
    const { socket: ws, options } = this;
    if (this.closed || ws.readyState !== ws.OPEN) return;
    const socket = socketOf(ws);
    if (!socket || socket.writableCorked === 0) {
      this.backlogBeforeTurn = ws.bufferedAmount;
      if (socket) corkUntilNextTurn(socket);
    }
    if (this.backlogBeforeTurn > options.maxBufferedBytes) {
      this.fail(
        new StateweaveError('SLOW_CONSUMER', `more than ${options.maxBufferedBytes} bytes unsent`),
      );
      return;
    }
    options.metrics.bytesOut.inc(frame.byteLength);
    ws.send(frame);
  }

  /** A frame from the socket (the `message` listener). */
  receive(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    const frame = data instanceof Buffer ? data : Buffer.concat(data as Buffer[]);
    // An Invoke frame is bounded by the in-flight cap instead (invoke-channel.ts).
    if (!(isBinary && frame[0] === MessageType.Invoke) && !this.charge(FRAME_COST)) return;
    if (!isBinary) return this.fail(new StateweaveError('TEXT_FRAME'));
    this.options.metrics.bytesIn.inc(frame.byteLength);
    if (this.lease) return this.process(frame);
    const pending = (this.pending ??= []);
    if (pending.length >= this.options.maxPendingFrames) {
      return this.fail(
        new StateweaveError('INVALID_FRAME', 'too many frames before the document loaded'),
      );
    }
    pending.push(frame);
  }

  /** The socket reported an error (the `error` listener); ws closes it itself. */
  socketError(err: Error & { code?: string }): void {
    // ws reports protocol violations here and then closes the socket itself
    // (e.g. WS_ERR_UNSUPPORTED_MESSAGE_LENGTH → 1009 for frames over maxFrameBytes).
    if (this.closed) return; // already refused and counted
    this.closed = true;
    const code =
      err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'FRAME_TOO_LARGE' : 'INVALID_FRAME';
    this.options.metrics.errors.inc({ code });
    this.logger().warn({ code, wsCode: err.code, reason: err.message }, 'socket error');
  }

  /** The socket has closed (the `close` listener). */
  socketClosed(code: number, reason: Buffer): void {
    const { options, lease } = this;
    this.closed = true;
    this.pending = undefined;
    expiries.delete(this);
    options.metrics.connections.dec();
    if (lease) {
      lease.room.unsubscribe(this.id);
      lease.release();
    }
    options.logger.info(
      { conn: this.id, doc: this.docName, code, reason: reason.toString() },
      'connection closed',
    );
    options.onClose?.(this);
  }

  private logger(): Logger {
    return (this.child ??= this.options.logger.child({ conn: this.id, doc: this.docName }));
  }

  private opened(opened: RoomLease): void {
    if (this.closed) return opened.release();
    try {
      opened.room.subscribe(this);
    } catch (err) {
      opened.release();
      return this.fail(toStateweaveError(err));
    }
    this.lease = opened;
    // As the reference server: our state vector first, then who is present.
    this.send(encodeSyncStep1(Y.encodeStateVector(opened.room.doc)));
    const states = opened.room.encodeAwarenessStates();
    if (states) this.send(states);
    const held = this.pending ?? [];
    this.pending = undefined;
    for (const frame of held) this.process(frame);
  }

  private sendAck(): void {
    this.ackScheduled = false;
    if (this.savedSeq > this.ackedSeq) {
      this.ackedSeq = this.savedSeq;
      this.send(encodeSaved(this.ackedSeq));
    }
  }

  private onSaved(seq: number): void {
    // Saves resolve in order; many resolving in one batch share one ack frame.
    this.savedSeq = Math.max(this.savedSeq, seq);
    if (this.acksEnabled && !this.ackScheduled) {
      this.ackScheduled = true;
      atEndOfTurn(() => this.sendAck());
    }
  }

  /** Rate limit: false (and the socket is closed) once the bucket is empty. */
  private charge(cost: number): boolean {
    if (this.bucket.take(cost)) return true;
    this.fail(
      new StateweaveError(
        'RATE_LIMITED',
        `more than ${this.options.maxMessagesPerSecond} messages/s`,
      ),
    );
    return false;
  }

  /** The grant's deadline, if any, is queued; a grant already past it closes the connection. */
  private armExpiry(): void {
    const { expiresAt } = this.grant;
    if (expiresAt !== undefined && expiresAt > Date.now()) return expiries.set(this, expiresAt);
    expiries.delete(this);
    if (expiresAt !== undefined) this.expired();
  }

  /** The grant's deadline has passed (called by `expiries`). */
  expired(): void {
    this.fail(new StateweaveError('TOKEN_EXPIRED', 'the token expired during the session'));
  }

  private async refreshToken(token: string): Promise<void> {
    try {
      const next = await this.options.policy.authenticate(token);
      requireRight(next, 'read', this.docName);
      this.grant = next;
      this.canWrite = hasRight(next, 'write', this.docName);
      this.logger().debug({ subject: next.subject, canWrite: this.canWrite }, 'token refreshed');
      this.armExpiry();
    } catch (err) {
      this.fail(toStateweaveError(err));
    }
  }

  /**
   * A refused write (a read-only grant, someone else's client id). A client that
   * speaks the extension is told with an `error` message and stays connected (its
   * message still takes its seq, acknowledged in order); a stock client is closed
   * with the code, since it would not understand anything else.
   */
  private refuseWrite(lease: RoomLease, seq: number, err: StateweaveError): void {
    if (!this.refuse(err, seq)) return;
    void lease.room.covered().then(() => this.onSaved(seq));
  }

  /**
   * A refused message (write or presence): an `error` message for a client that
   * said hello, which stays (true); a stock client is closed with the code (false).
   */
  private refuse(err: StateweaveError, seq?: number): boolean {
    if (!this.acksEnabled) {
      this.fail(err);
      return false;
    }
    this.options.metrics.errors.inc({ code: err.code });
    this.logger().warn({ code: err.code, seq }, 'message refused');
    this.send(encodeError(err.code, err.message));
    return true;
  }

  private invokes(): InvokeChannel {
    const { options } = this;
    return (this.invokeChannel ??= createInvokeChannel({
      functions: options.functions,
      forwarder: options.forwarder,
      maxInFlight: options.maxInvocationsInFlight ?? DEFAULT_MAX_INVOCATIONS_IN_FLIGHT,
      grant: () => this.grant,
      token: () => this.token,
      send: (frame) => this.send(frame),
      logger: this.logger(),
      metrics: options.metrics,
    }));
  }

  private handle(lease: RoomLease, message: ClientMessage): void {
    const { room } = lease;
    switch (message.type) {
      case 'sync-step-1': {
        // A fresh client (empty state vector) gets the room's cached whole document.
        let step2: Uint8Array;
        try {
          step2 = room.syncStep2For(message.stateVector);
        } catch (err) {
          throw new StateweaveError('INVALID_FRAME', 'malformed state vector', { cause: err });
        }
        this.send(step2);
        return;
      }
      case 'sync-step-2':
      case 'update': {
        const seq = ++this.receivedSeq;
        // A read-only client's sync step 2 usually carries nothing new: accept that.
        if (!this.canWrite && !room.containsUpdate(message.update))
          return this.refuseWrite(lease, seq, readOnly());
        let applied: Promise<void>;
        try {
          applied = room.applyUpdate(message.update, this.origin, this.grant.subject);
        } catch (err) {
          // Someone else's client id, or one document too many: nothing was
          // applied; the client may go on.
          if (
            err instanceof StateweaveError &&
            (err.code === 'CLIENT_ID_TAKEN' || err.code === 'DOC_CREATION_LIMITED')
          )
            return this.refuseWrite(lease, seq, err);
          throw err;
        }
        applied.then(
          () => this.onSaved(seq),
          (err: unknown) => this.fail(toStateweaveError(err)),
        );
        return;
      }
      case 'awareness': {
        // Stock clients echo everyone's presence back; an echo costs only the frame.
        const { own, refused } = room.applyAwareness(message.update, this.origin);
        if (own > 0 && !this.charge(MESSAGE_COST)) return;
        if (refused) this.refuse(refused);
        return;
      }
      case 'query-awareness': {
        const states = room.encodeAwarenessStates();
        if (states) this.send(states);
        return;
      }
      case 'hello':
        this.acksEnabled = true;
        if (this.savedSeq > this.ackedSeq) this.onSaved(this.savedSeq);
        return;
      case 'token':
        void this.refreshToken(message.token).then(() => {
          if (!this.closed) this.token = message.token; // accepted: a refused token closes the connection
        });
        return;
      case 'invoke':
        // Results are extension messages: only a client that said hello may call.
        if (!this.acksEnabled) throw new StateweaveError('INVALID_FRAME', 'invoke before hello');
        this.invokes().handle(message);
        return;
    }
  }

  private process(frame: Uint8Array): void {
    const { lease } = this;
    if (!lease || this.closed) return;
    try {
      const message = decodeClientMessage(frame);
      if (message.type !== 'awareness' && message.type !== 'invoke' && !this.charge(MESSAGE_COST))
        return;
      this.handle(lease, message);
    } catch (err) {
      this.fail(
        err instanceof ProtocolError
          ? new StateweaveError('INVALID_FRAME', err.message)
          : toStateweaveError(err),
      );
    }
  }
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  bySocket.get(this)?.receive(data, isBinary);
}

function onPong(this: WebSocket): void {
  const connection = bySocket.get(this);
  if (connection) connection.alive = true;
}

function onError(this: WebSocket, err: Error): void {
  bySocket.get(this)?.socketError(err);
}

function onClose(this: WebSocket, code: number, reason: Buffer): void {
  bySocket.get(this)?.socketClosed(code, reason);
}

export const acceptConnection = (
  ws: WebSocket,
  docName: string,
  remote: string,
  initialGrant: Grant,
  options: ConnectionOptions,
  initialToken?: string,
): Connection => {
  const connection = new ClientConnection(ws, docName, remote, initialGrant, options, initialToken);
  options.metrics.connections.inc();
  options.logger.info(
    { conn: connection.id, doc: docName, remote, subject: initialGrant.subject },
    'connection open',
  );
  connection.start(options.hub);
  return connection;
};

/**
 * One client WebSocket on one document (`ws://HOST:PORT/<doc>`, y-websocket):
 * the socket is the document session (doc-session.ts), so an idle connection is
 * one object. Its four listeners are shared by every socket and find their
 * connection through `bySocket`.
 */
import type { RawData, WebSocket } from 'ws';
import type { Grant } from '../auth/grant.js';
import type { ConnectionId } from '../connection-id.js';
import type { DocName } from '../doc-name.js';
import { closeReason, StateweaveError } from '../errors.js';
import { DocSession, type SessionOptions } from './doc-session.js';
import { ownBacklog, writeFrame, type SharedBacklog, type TurnBacklog } from './socket-writer.js';

export interface ConnectionOptions extends SessionOptions {
  /** Told once, after the socket has closed (the endpoint's bookkeeping). One function for every connection. */
  readonly onClose?: (connection: ClientSocket) => void;
}

/** What the endpoint sees of any client socket (heartbeat, send budget, shutdown). */
export interface ClientSocket {
  readonly socket: WebSocket;
  /** The client's address, as the endpoint counted it against its per-IP limit. */
  readonly remote: string;
  /** Set by the heartbeat: false after a ping until the pong arrives. */
  alive: boolean;
  fail(err: StateweaveError): void;
  /** Unsent bytes of its own: the backlog less shared frames still queued (socket-writer.ts). */
  unsent(): number;
}

export interface Connection extends ClientSocket {
  readonly id: ConnectionId;
  readonly docName: DocName;
}

/** Every socket's listeners are the four functions at the end of this file; they find their connection here. */
const bySocket = new WeakMap<WebSocket, ClientConnection>();

class ClientConnection extends DocSession implements Connection, TurnBacklog {
  /** Set by the heartbeat: false after a ping until the pong arrives. */
  alive = true;
  backlogBeforeTurn = 0;
  shared: SharedBacklog | undefined = undefined;

  constructor(
    readonly socket: WebSocket,
    docName: DocName,
    remote: string,
    grant: Grant,
    private readonly connectionOptions: ConnectionOptions,
    token: string | undefined,
  ) {
    super(docName, remote, grant, connectionOptions, token);
  }

  /** Handles the socket's frames from now on and subscribes to the document. */
  start(): void {
    const { socket } = this;
    bySocket.set(socket, this);
    socket.on('message', onMessage);
    socket.on('pong', onPong);
    socket.on('error', onError);
    socket.on('close', onClose);
    this.open(this.options.hub);
  }

  unsent(): number {
    return ownBacklog(this.socket, this);
  }

  protected transmit(frame: Uint8Array): void {
    const { socket, options } = this;
    if (socket.readyState !== socket.OPEN) return;
    if (!writeFrame(socket, this, frame, options.maxBufferedBytes, options.metrics)) {
      this.fail(
        new StateweaveError('SLOW_CONSUMER', `more than ${options.maxBufferedBytes} bytes unsent`),
      );
    }
  }

  protected end(err: StateweaveError): void {
    this.socket.close(err.closeCode, closeReason(err));
    // A peer that does not read will not complete the closing handshake either.
    if (err.code === 'SLOW_CONSUMER' || err.code === 'HEARTBEAT_TIMEOUT') this.socket.terminate();
  }

  /** A frame from the socket (the `message` listener). */
  frame(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    const frame = data instanceof Buffer ? data : Buffer.concat(data as Buffer[]);
    if (!isBinary) return this.fail(new StateweaveError('TEXT_FRAME'));
    this.options.metrics.bytesIn.inc(frame.byteLength);
    this.receive(frame);
  }

  /** The socket reported an error (the `error` listener); ws closes it itself. */
  socketError(err: Error & { code?: string }): void {
    // ws reports protocol violations here and then closes the socket itself
    // (e.g. WS_ERR_UNSUPPORTED_MESSAGE_LENGTH → 1009 for frames over maxFrameBytes).
    if (this.ended) return; // already refused and counted
    this.ended = true;
    const code =
      err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'FRAME_TOO_LARGE' : 'INVALID_FRAME';
    this.options.metrics.errors.inc({ code });
    this.logger().warn({ code, wsCode: err.code, reason: err.message }, 'socket error');
  }

  /** The socket has closed (the `close` listener). */
  socketClosed(code: number, reason: Buffer): void {
    const { options } = this;
    this.detach();
    options.metrics.connections.dec();
    options.logger.info(
      { conn: this.id, doc: this.docName, code, reason: reason.toString() },
      'connection closed',
    );
    this.connectionOptions.onClose?.(this);
  }
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  bySocket.get(this)?.frame(data, isBinary);
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
  docName: DocName,
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
  connection.start();
  return connection;
};

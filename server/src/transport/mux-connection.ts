/**
 * One client WebSocket carrying many documents (`ws://HOST:PORT/`): the
 * Hocuspocus framing (multiplex.ts, PROTOCOL.md). Every frame names its document;
 * each document is a session of its own (doc-session.ts, the same code as a
 * one-document socket), opened by an Auth message with a token and ended by the
 * client's Close or by the node. A refused or ended document is answered alone
 * (PermissionDenied, Close); the socket and its other documents stay. What is
 * wrong with the socket itself (a malformed frame, a text frame, a slow reader,
 * the socket-wide rate) closes the socket.
 *
 * Limits: each document keeps its own (rate, size, rights, connections per
 * document); the socket has at most `maxDocsPerSocket` documents open or
 * authenticating, and pays a frame cost for every frame in its own bucket.
 */
import type { RawData, WebSocket } from 'ws';
import { encodeToken, ProtocolError } from '@stateweave/client/protocol';
import {
  decodeAuth,
  decodeMuxFrame,
  encodeAuthenticated,
  encodeCloseDoc,
  encodeDocPrefix,
  encodePermissionDenied,
  messageTypeOf,
  MuxType,
  PING_FRAME,
  prefixFrame,
} from '@stateweave/client/multiplex';
import { requireRight } from '../auth/access.js';
import type { Grant } from '../auth/grant.js';
import { validateDocName, type DocName } from '../doc-name.js';
import { closeReason, StateweaveError, toStateweaveError } from '../errors.js';
import { createTokenBucket, type TokenBucket } from '../limits/token-bucket.js';
import type { ClientSocket, ConnectionOptions } from './connection.js';
import { DocSession, FRAME_COST } from './doc-session.js';
import { ownBacklog, writeFrame, type SharedBacklog, type TurnBacklog } from './socket-writer.js';

export interface MuxOptions extends ConnectionOptions {
  /** Documents one socket may have open (or authenticating) at once. */
  readonly maxDocsPerSocket: number;
}

/** Failures that are the socket's, not one document's: they close the socket. */
const SOCKET_CODES: ReadonlySet<string> = new Set([
  'INVALID_FRAME',
  'TEXT_FRAME',
  'SLOW_CONSUMER',
  'HEARTBEAT_TIMEOUT',
  'SHUTTING_DOWN',
]);

/** Hocuspocus providers from 4.0 answer a connection-level Ping; older ones would misread it. */
const answersPing = (version: string | undefined): boolean => {
  const major = /^(\d+)\./.exec(version ?? '')?.[1];
  return major !== undefined && Number(major) >= 4;
};

/** A document between its Auth and the verdict: what arrives for it meanwhile is held. */
interface Authenticating {
  readonly held: Uint8Array[];
}

class MuxDocSession extends DocSession {
  constructor(
    private readonly mux: MuxConnection,
    private readonly prefix: Uint8Array,
    docName: DocName,
    grant: Grant,
    options: MuxOptions,
    token: string | undefined,
  ) {
    super(docName, mux.remote, grant, options, token);
    // Until it says hello, a client on this socket is a Hocuspocus provider: it counts
    // its unsynced changes down with SyncStatus.
    this.syncStatus = true;
  }

  start(): void {
    this.open(this.options.hub);
  }

  protected transmit(frame: Uint8Array): void {
    this.mux.write(prefixFrame(this.prefix, frame));
  }

  protected end(err: StateweaveError): void {
    if (SOCKET_CODES.has(err.code)) return this.mux.fail(err, true);
    this.mux.write(prefixFrame(this.prefix, encodeCloseDoc(closeReason(err))));
    this.leave();
  }

  /** The document is over on this socket (the client's Close, an end, the socket's close). */
  leave(): void {
    this.detach();
    this.mux.forget(this);
  }
}

export class MuxConnection implements ClientSocket, TurnBacklog {
  alive = true;
  backlogBeforeTurn = 0;
  shared: SharedBacklog | undefined = undefined;
  /** The client answers a connection-level Ping (a Hocuspocus 4 provider said so in its Auth). */
  answersPing = false;
  /** Heartbeats in a row that found no document open or authenticating (see `heartbeat`). */
  private emptyBeats = 0;
  private closed = false;
  private readonly docs = new Map<string, MuxDocSession | Authenticating>();
  private readonly bucket: TokenBucket;

  constructor(
    readonly socket: WebSocket,
    readonly remote: string,
    private readonly options: MuxOptions,
    /** The upgrade's `?token=`, used for a document whose Auth carries an empty token. */
    private readonly upgradeToken: string | undefined,
  ) {
    // Frames cost FRAME_COST here: 20 × maxMessagesPerSecond frames/s for the whole socket.
    this.bucket = createTokenBucket(options.maxMessagesPerSecond, options.messageBurst);
  }

  start(): void {
    const { socket } = this;
    socket.on('message', (data: RawData, isBinary: boolean) => this.frame(data, isBinary));
    socket.on('pong', () => (this.alive = true));
    socket.on('error', (err: Error & { code?: string }) => this.socketError(err));
    socket.on('close', (code: number, reason: Buffer) => this.socketClosed(code, reason));
  }

  /** Documents open or authenticating on this socket. */
  get documentCount(): number {
    return this.docs.size;
  }

  write(frame: Uint8Array): void {
    const { socket, options } = this;
    if (this.closed || socket.readyState !== socket.OPEN) return;
    if (!writeFrame(socket, this, frame, options.maxBufferedBytes, options.metrics)) {
      this.fail(
        new StateweaveError('SLOW_CONSUMER', `more than ${options.maxBufferedBytes} bytes unsent`),
      );
    }
  }

  /**
   * Called on every heartbeat, before the ping: a socket that has had no document
   * through two heartbeats in a row is closed (UNAUTHORIZED). The upgrade of the
   * root path is not authenticated, so without this a socket that never sends an
   * Auth would hold its place (and a slot of its address) for as long as it answers pings.
   */
  heartbeat(): void {
    if (this.docs.size > 0) this.emptyBeats = 0;
    else if (++this.emptyBeats > 2)
      this.fail(new StateweaveError('UNAUTHORIZED', 'no document opened on this socket'));
  }

  /** Sends the connection-level Ping to a client that answers it (keeps its idle timer quiet). */
  keepAlive(): void {
    if (this.answersPing) this.write(PING_FRAME);
  }

  /** Closes the whole socket with `err` (every document on it ends); `counted`: a session already counted it. */
  unsent(): number {
    return ownBacklog(this.socket, this);
  }

  fail(err: StateweaveError, counted = false): void {
    if (this.closed) return;
    this.closed = true;
    if (!counted) this.options.metrics.errors.inc({ code: err.code });
    this.options.logger.warn(
      { remote: this.remote, code: err.code, reason: err.message, docs: this.docs.size },
      'closing multiplexed connection',
    );
    this.socket.close(err.closeCode, closeReason(err));
    if (err.code === 'SLOW_CONSUMER' || err.code === 'HEARTBEAT_TIMEOUT') this.socket.terminate();
  }

  forget(session: MuxDocSession): void {
    if (this.docs.get(session.docName) === session) this.docs.delete(session.docName);
  }

  private frame(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    const frame = data instanceof Buffer ? data : Buffer.concat(data as Buffer[]);
    if (!isBinary) return this.fail(new StateweaveError('TEXT_FRAME'));
    this.options.metrics.bytesIn.inc(frame.byteLength);
    if (!this.bucket.take(FRAME_COST)) {
      return this.fail(
        new StateweaveError(
          'RATE_LIMITED',
          `more than ${this.options.maxMessagesPerSecond * 20} frames/s on one socket`,
        ),
      );
    }
    try {
      const parsed = decodeMuxFrame(frame);
      if (parsed.type === 'pong') {
        this.alive = true;
        return;
      }
      if (parsed.type === 'ping') return this.write(Uint8Array.of(MuxType.Pong));
      this.route(parsed.docName, parsed.body);
    } catch (err) {
      this.fail(
        err instanceof ProtocolError
          ? new StateweaveError('INVALID_FRAME', err.message)
          : toStateweaveError(err),
      );
    }
  }

  private route(docName: string, body: Uint8Array): void {
    const type = messageTypeOf(body);
    const entry = this.docs.get(docName);
    if (type === MuxType.Auth) {
      const auth = decodeAuth(body);
      if (auth.type !== 'token') throw new ProtocolError('only a token may be sent in an auth');
      if (entry instanceof MuxDocSession) return entry.receive(encodeToken(auth.token));
      if (entry) return; // already authenticating: the first token decides
      if (answersPing(auth.version)) this.answersPing = true;
      return this.authenticate(docName, auth.token);
    }
    if (type === MuxType.Close) {
      if (entry instanceof MuxDocSession) entry.leave();
      else if (entry) this.docs.delete(docName);
      return;
    }
    if (type === MuxType.Stateless) return; // accepted and ignored: the node has no stateless hooks
    if (entry instanceof MuxDocSession) return entry.receive(body);
    if (entry) {
      if (entry.held.length >= this.options.maxPendingFrames)
        throw new StateweaveError('INVALID_FRAME', 'too many frames before the document opened');
      entry.held.push(body);
    }
    // No entry: a document this socket has not opened, or one the node refused or
    // ended. A provider keeps sending for it until it learns so: dropped.
  }

  private refuse(docName: string, err: StateweaveError): void {
    this.options.metrics.errors.inc({ code: err.code });
    this.options.logger.warn(
      { remote: this.remote, doc: docName.slice(0, 300), code: err.code, reason: err.message },
      'document refused',
    );
    this.write(prefixFrame(encodeDocPrefix(docName), encodePermissionDenied(closeReason(err))));
  }

  private authenticate(requested: string, tokenText: string): void {
    const { options } = this;
    let docName: DocName;
    try {
      docName = validateDocName(requested);
    } catch (err) {
      return this.refuse(requested, toStateweaveError(err));
    }
    if (this.docs.size >= options.maxDocsPerSocket) {
      return this.refuse(
        docName,
        new StateweaveError(
          'TOO_MANY_DOCUMENTS',
          `this socket already has ${options.maxDocsPerSocket} documents open`,
        ),
      );
    }
    const pending: Authenticating = { held: [] };
    this.docs.set(docName, pending);
    const token = tokenText === '' ? this.upgradeToken : tokenText;
    const authorize = async (): Promise<Grant> => {
      const grant = await options.policy.authenticate(token);
      requireRight(grant, 'read', docName);
      return grant;
    };
    authorize().then(
      (grant) => {
        if (this.closed || this.docs.get(docName) !== pending) return; // closed meanwhile
        const prefix = encodeDocPrefix(docName);
        const session = new MuxDocSession(this, prefix, docName, grant, options, token);
        this.docs.set(docName, session);
        this.write(
          prefixFrame(prefix, encodeAuthenticated(session.writable ? 'read-write' : 'readonly')),
        );
        options.logger.info(
          { conn: session.id, doc: docName, remote: this.remote, subject: grant.subject },
          'document open on multiplexed connection',
        );
        session.start();
        for (const frame of pending.held) session.receive(frame);
      },
      (err: unknown) => {
        if (this.closed || this.docs.get(docName) !== pending) return;
        this.docs.delete(docName);
        this.refuse(docName, toStateweaveError(err));
      },
    );
  }

  private socketError(err: Error & { code?: string }): void {
    if (this.closed) return;
    this.closed = true;
    const code =
      err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'FRAME_TOO_LARGE' : 'INVALID_FRAME';
    this.options.metrics.errors.inc({ code });
    this.options.logger.warn({ code, wsCode: err.code, reason: err.message }, 'socket error');
  }

  private socketClosed(code: number, reason: Buffer): void {
    this.closed = true;
    const entries = [...this.docs.values()];
    this.docs.clear();
    for (const entry of entries) if (entry instanceof MuxDocSession) entry.leave();
    this.options.metrics.connections.dec();
    this.options.logger.info(
      { remote: this.remote, code, reason: reason.toString(), docs: entries.length },
      'multiplexed connection closed',
    );
    this.options.onClose?.(this);
  }
}

export const acceptMuxConnection = (
  ws: WebSocket,
  remote: string,
  options: MuxOptions,
  upgradeToken: string | undefined,
): MuxConnection => {
  const connection = new MuxConnection(ws, remote, options, upgradeToken);
  options.metrics.connections.inc();
  options.logger.info({ remote }, 'multiplexed connection open');
  connection.start();
  return connection;
};

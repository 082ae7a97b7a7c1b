/**
 * One client's session on one document: decodes its messages, hands them to the
 * room, and writes the room's frames back. Frames that arrive while the document
 * is still loading are held (bounded) and processed in order once it is ready, so
 * a client is never synced against a half-loaded document.
 *
 * What carries the session is a subclass's business: a socket of its own
 * (connection.ts, `ws://HOST/<doc>`) or one document among many on a multiplexed
 * socket (mux-connection.ts, `ws://HOST/`). They supply `transmit` (write one
 * frame) and `end` (the session was refused or ended). A subclass rather than a
 * member object: idle memory is per session (thousands of sockets sit idle), and
 * this keeps a one-document socket one object.
 *
 * The session is the room's subscriber. Anything only some sessions need (a child
 * logger, the function-call channel, frames held during a load) is made at first
 * use.
 */
import * as Y from 'yjs';
import {
  decodeClientMessage,
  encodeError,
  encodeSaved,
  encodeSyncStep1,
  MessageType,
  ProtocolError,
  type ClientMessage,
} from '@stateweave/client/protocol';
import { encodeSyncStatus } from '@stateweave/client/multiplex';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import { namedSubject, SHARED_SUBJECTS, type Grant } from '../auth/grant.js';
import { nextConnectionId, type ConnectionId } from '../connection-id.js';
import type { DocName } from '../doc-name.js';
import { atEndOfTurn } from '../end-of-turn.js';
import { assertNever } from '../assert-never.js';
import { StateweaveError, toStateweaveError } from '../errors.js';
import { createTokenBucket, type TokenBucket } from '../limits/token-bucket.js';
import type { Hub, RoomLease } from '../hub/hub.js';
import type { Subscriber } from '../hub/room.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Origin } from '../origin.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import { createExpiryQueue, type Expiring } from './expiry-queue.js';
import {
  createInvokeChannel,
  DEFAULT_MAX_INVOCATIONS_IN_FLIGHT,
  type InvokeChannel,
  type InvokeChannelOptions,
} from './invoke-channel.js';

export interface SessionOptions {
  readonly hub: Hub;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Close a client whose unsent backlog passes this many bytes. */
  readonly maxBufferedBytes: number;
  /** Frames held while the document loads; more closes the socket. */
  readonly maxPendingFrames: number;
  /** Verifies tokens sent in-band (the `token` message). */
  readonly policy: AccessPolicy;
  /** Sustained messages per second per document session (token bucket refill). */
  readonly maxMessagesPerSecond: number;
  /** Messages a session may send at once above the sustained rate. */
  readonly messageBurst: number;
  /** Runs function calls sent over the socket (Invoke); without it they are answered NOT_FOUND. */
  readonly functions?: FunctionRuntime;
  /** In a cluster: forwards `owner` invocations to the document's primary. */
  readonly forwarder?: NonNullable<InvokeChannelOptions['forwarder']>;
  /** Function calls in flight per session before OVERLOADED. @default 1024 */
  readonly maxInvocationsInFlight?: number;
}

/**
 * Rate-limit costs: every frame pays FRAME_COST, every message that makes the
 * node work (sync, own presence) pays the rest of one token. Echoed presence
 * from stock clients then costs 1/20 of a message.
 */
export const FRAME_COST = 0.05;
const MESSAGE_COST = 1 - FRAME_COST;

const readOnly = (): StateweaveError =>
  new StateweaveError('FORBIDDEN', 'this token is read-only: document writes are refused');

/** Token expiry of every session, on one timer (expiry-queue.ts). */
const expiries = createExpiryQueue<DocSession>((session) => session.expired());

export const hasWriteRight = (grant: Grant, docName: string): boolean => {
  try {
    requireRight(grant, 'write', docName);
    return true;
  } catch {
    return false; // FORBIDDEN or TOKEN_EXPIRED: either way, no write
  }
};

export abstract class DocSession implements Subscriber, Expiring {
  readonly id = nextConnectionId();
  /** The origin of this client's changes (the room sends them to everyone else). */
  readonly origin: Origin;
  // A child logger costs memory per session: made only when this session logs.
  private child: Logger | undefined = undefined;
  private lease: RoomLease | undefined = undefined;
  /** Counted in the socketDocuments gauge (from `open` until `detach`). */
  private counted = false;
  /** Frames that arrived before the document loaded (made at the first one). */
  private pending: Uint8Array[] | undefined = undefined;
  // Set once the node has refused the session (fail) or it has ended: from then
  // on nothing is read or sent, so input still in flight behind a refused frame
  // never reaches the document, and a refusal is counted once.
  protected ended = false;
  // "Saved" acknowledgements (extension; only after the client said hello).
  private acksEnabled = false;
  private receivedSeq = 0;
  private savedSeq = 0;
  private ackedSeq = 0;
  private ackScheduled = false;
  /**
   * Hocuspocus clients (multiplexed, no hello) count their unsynced changes down
   * by SyncStatus: one per update-bearing message, sent when it is stored; a
   * refused one gets SyncStatus(false) at once and is skipped here.
   */
  protected syncStatus = false;
  private refusedSeqs: number[] | undefined = undefined;
  // Access: the grant can be replaced in-band (token refresh) and expires.
  private canWrite: boolean;
  /** Position in `expiries` (-1: no deadline queued). */
  expiryIndex = -1;
  private readonly bucket: TokenBucket;
  // Function calls over this session; bounded by their own in-flight cap, not the bucket.
  // Made at the first call: most sessions never call.
  private invokeChannel: InvokeChannel | undefined = undefined;

  constructor(
    readonly docName: DocName,
    readonly remote: string,
    private grant: Grant,
    protected readonly options: SessionOptions,
    private token: string | undefined,
  ) {
    const sub = token !== undefined ? namedSubject(grant) : undefined;
    this.origin = Object.freeze({
      kind: 'client',
      connId: this.id,
      ...(sub !== undefined ? { sub } : {}),
    });
    this.canWrite = hasWriteRight(grant, docName);
    this.bucket = createTokenBucket(options.maxMessagesPerSecond, options.messageBurst);
  }

  /** Writes one single-document frame to the client (the carrier adds what it needs). */
  protected abstract transmit(frame: Uint8Array): void;
  /** The session was refused or ended by the node (`fail` has already stopped it). */
  protected abstract end(err: StateweaveError): void;

  /** The room's key for this subscriber. */
  get connId(): ConnectionId {
    return this.id;
  }

  /** May write: the Authenticated scope of a multiplexed session. */
  get writable(): boolean {
    return this.canWrite;
  }

  /**
   * Sessions of one token subject share the client ids they introduce. Only a
   * token's own `sub`: the stand-ins for no subject ('dev', 'anonymous', 'token')
   * are shared by strangers.
   */
  get writerKey(): string | undefined {
    const { subject } = this.grant;
    if (this.token === undefined || SHARED_SUBJECTS.has(subject)) return undefined;
    return `subject:${subject}`;
  }

  /** Opens the document and subscribes to it; frames received meanwhile are held. */
  protected open(hub: Hub): void {
    this.options.metrics.socketDocuments.inc();
    this.counted = true;
    this.armExpiry();
    hub.open(this.docName).then(
      (opened) => this.opened(opened),
      (err: unknown) => this.fail(toStateweaveError(err)),
    );
  }

  fail(err: StateweaveError): void {
    if (this.ended) return;
    this.ended = true;
    // Nothing more is read from it: a reconnecting client need not wait for the close handshake.
    this.lease?.room.releaseClientIds(this.id);
    this.options.metrics.errors.inc({ code: err.code });
    const level = err.code === 'INTERNAL' ? 'error' : 'warn';
    this.logger()[level](
      { code: err.code, err: err.cause ?? undefined, reason: err.message },
      'closing connection',
    );
    this.end(err);
  }

  /** The room ends the subscription (eviction): the client reconnects to a fresh room. */
  close(err: StateweaveError): void {
    this.fail(err);
  }

  send(frame: Uint8Array): void {
    if (this.ended) return;
    this.transmit(frame);
  }

  /** One message from the client (rate-charged, held while the document loads). */
  receive(frame: Uint8Array): void {
    if (this.ended) return;
    // An Invoke frame is bounded by the in-flight cap instead (invoke-channel.ts).
    if (frame[0] !== MessageType.Invoke && !this.charge(FRAME_COST)) return;
    if (this.lease) return this.process(frame);
    const pending = (this.pending ??= []);
    if (pending.length >= this.options.maxPendingFrames) {
      return this.fail(
        new StateweaveError('INVALID_FRAME', 'too many frames before the document loaded'),
      );
    }
    pending.push(frame);
  }

  /** Leaves the room and forgets everything; idempotent. The carrier calls it when the session is over. */
  protected detach(): void {
    this.ended = true;
    this.pending = undefined;
    expiries.delete(this);
    const { lease } = this;
    this.lease = undefined;
    if (lease) {
      lease.room.unsubscribe(this.id);
      lease.release();
    }
    if (this.counted) this.options.metrics.socketDocuments.dec();
    this.counted = false;
  }

  protected logger(): Logger {
    return (this.child ??= this.options.logger.child({ conn: this.id, doc: this.docName }));
  }

  private opened(opened: RoomLease): void {
    if (this.ended) return opened.release();
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
    if (this.savedSeq <= this.ackedSeq) return;
    const from = this.ackedSeq;
    this.ackedSeq = this.savedSeq;
    if (this.acksEnabled) return this.send(encodeSaved(this.ackedSeq));
    if (this.syncStatus) this.sendSyncStatuses(from, this.ackedSeq);
  }

  /** One SyncStatus(true) per stored message numbered in (from, to], skipping refused ones. */
  private sendSyncStatuses(from: number, to: number): void {
    let count = to - from;
    const refused = this.refusedSeqs;
    while (refused && refused.length > 0 && refused[0]! <= to) {
      refused.shift();
      count--;
    }
    const applied = encodeSyncStatus(true);
    for (let i = 0; i < count; i++) this.send(applied);
  }

  private onSaved(seq: number): void {
    // Saves resolve in order; many resolving in one batch share one ack frame.
    this.savedSeq = Math.max(this.savedSeq, seq);
    if ((this.acksEnabled || this.syncStatus) && !this.ackScheduled) {
      this.ackScheduled = true;
      atEndOfTurn(() => this.sendAck());
    }
  }

  /** Rate limit: false (and the session is refused) once the bucket is empty. */
  protected charge(cost: number): boolean {
    if (this.bucket.take(cost)) return true;
    this.fail(
      new StateweaveError(
        'RATE_LIMITED',
        `more than ${this.options.maxMessagesPerSecond} messages/s`,
      ),
    );
    return false;
  }

  /** The grant's deadline, if any, is queued; a grant already past it ends the session. */
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
      this.canWrite = hasWriteRight(next, this.docName);
      this.logger().debug({ subject: next.subject, canWrite: this.canWrite }, 'token refreshed');
      this.armExpiry();
    } catch (err) {
      this.fail(toStateweaveError(err));
    }
  }

  /**
   * A refused write (a read-only grant, someone else's client id). A client that
   * speaks the extension is told with an `error` message and stays connected (its
   * message still takes its seq, acknowledged in order); a Hocuspocus client gets
   * SyncStatus(false) and stays; a stock y-websocket client is closed with the
   * code, since it would not understand anything else.
   */
  private refuseWrite(lease: RoomLease, seq: number, err: StateweaveError): void {
    if (this.syncStatus && !this.acksEnabled) (this.refusedSeqs ??= []).push(seq);
    if (!this.refuse(err, seq)) return;
    if (this.syncStatus && !this.acksEnabled) this.send(encodeSyncStatus(false));
    void lease.room.covered().then(() => this.onSaved(seq));
  }

  /**
   * A refused message (write or presence): an `error` message for a client that
   * said hello, which stays (true); a Hocuspocus client stays too (it has no error
   * message; a write is answered SyncStatus(false)); a stock y-websocket client is
   * closed with the code (false).
   */
  private refuse(err: StateweaveError, seq?: number): boolean {
    if (!this.acksEnabled && !this.syncStatus) {
      this.fail(err);
      return false;
    }
    this.options.metrics.errors.inc({ code: err.code });
    this.logger().warn({ code: err.code, seq }, 'message refused');
    if (this.acksEnabled) this.send(encodeError(err.code, err.message));
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
        // A fresh client (empty state vector) gets the room's cached whole document
        // (and the changes since it was encoded).
        let frames: readonly Uint8Array[];
        try {
          frames = room.syncFramesFor(message.stateVector);
        } catch (err) {
          throw new StateweaveError('INVALID_FRAME', 'malformed state vector', { cause: err });
        }
        for (const frame of frames) this.send(frame);
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
          applied = room.applyUpdate(
            message.update,
            this.origin,
            this.grant.subject,
            message.type === 'sync-step-2' ? 'resend' : 'edit',
          );
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
          if (!this.ended) this.token = message.token; // accepted: a refused token ends the session
        });
        return;
      case 'invoke':
        // Results are extension messages: only a client that said hello may call.
        if (!this.acksEnabled) throw new StateweaveError('INVALID_FRAME', 'invoke before hello');
        this.invokes().handle(message);
        return;
      default:
        return assertNever(message, 'client message');
    }
  }

  private process(frame: Uint8Array): void {
    const { lease } = this;
    if (!lease || this.ended) return;
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

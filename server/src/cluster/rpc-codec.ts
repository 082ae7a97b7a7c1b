/**
 * Request/response frames between nodes over a backplane's directed messages
 * (backplane-rpc.ts). Pure encode/decode, no I/O. They share the directed
 * channel with the replicator's frames (channel-codec.ts, kinds 0–2) and take
 * kinds 8–10, so one byte tells them apart. Bytes: varuint kind, varuint
 * request id, then
 *
 * - `request` (8): varuint request type, then its fields;
 * - `reply` (9): varuint reply type, then its fields;
 * - `error` (10): varstring code, varstring message.
 *
 * Requests: `invoke` (0) an `owner` call forwarded to the primary (the lease
 * holder on a backplane): varstring name, varstring body, varuint flags (1:
 * idempotency key, 2: authorization follow, each a varstring). `diff` (1):
 * varstring document, varUint8Array state vector: what the receiver has that the
 * vector lacks. The function registry of the mesh (registry-sync.ts):
 * `deployment-meta` (2) and `deployment-code` (3), no fields: the receiver's
 * deployment without or with its code; `deployment-push` (4): varstring JSON of
 * a deployment the sender asks the receiver to adopt. The stored catch-up
 * (stored-catch-up.ts): `state-vector` (5): varstring document; `apply` (6):
 * varstring document, varUint8Array update, answered once it is stored;
 * `catch-up-cursor` (7), no fields: where the receiver's record of the sender's
 * catch-up stands; `catch-up-done` (8): a cursor (varstring epoch, varuint seq, varuint ms): record it.
 * `tombstones` (9): varuint n, n × varUint8Array tombstone (hub/tombstone.ts): deleted
 * documents the receiver must delete too (cluster/tombstones.ts), then varuint flag (1: a
 * cursor follows; absent in older frames), varstring epoch, varuint base, varuint seq:
 * answered `cursor` once stored, with the receiver's record of the sender's tombstones.
 * Replies: `invoked` (0): varstring json, varuint replayed, varstring version.
 * `diff` (1): varUint8Array update. `deployment` (2): varstring JSON (what the
 * registry answers; its receiver validates it). `state-vector` (3):
 * varUint8Array. `done` (4), no fields. `cursor` (5): varuint flag (1: present),
 * then a cursor.
 */
import { assertNever } from '../assert-never.js';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { ProtocolError } from '@stateweave/client/protocol';
import { decodeTombstone, encodeTombstone, type Tombstone } from '../hub/tombstone.js';

export type RpcRequest =
  | {
      readonly type: 'invoke';
      readonly name: string;
      readonly body: string;
      readonly idempotencyKey?: string;
      readonly authorization?: string;
    }
  | { readonly type: 'diff'; readonly doc: string; readonly stateVector: Uint8Array }
  | { readonly type: 'deployment-meta' }
  | { readonly type: 'deployment-code' }
  | { readonly type: 'deployment-push'; readonly json: string }
  | { readonly type: 'state-vector'; readonly doc: string }
  | { readonly type: 'apply'; readonly doc: string; readonly update: Uint8Array }
  | { readonly type: 'catch-up-cursor' }
  | { readonly type: 'catch-up-done'; readonly cursor: CatchUpCursor }
  | {
      readonly type: 'tombstones';
      readonly tombstones: readonly Tombstone[];
      readonly cursor?: TombstoneCursor;
    };

/**
 * How far a node's tombstones reached a peer (cluster/tombstones.ts): the peer
 * holds every one of the sender's store `epoch` with a seq up to `seq` — once
 * it stored these, if it held those up to `base` already.
 */
export interface TombstoneCursor {
  readonly epoch: string;
  readonly base: number;
  readonly seq: number;
}

/** How far a node's stored changes reached a peer. */
export interface CatchUpCursor {
  /** The sender's store and membership when it was taken: another one makes it void. */
  readonly epoch: string;
  /** Every change of the sender's store up to this sequence number is stored at the peer. */
  readonly seq: number;
  /** The sender's clock (ms) when `seq` was read: its change index may be trimmed past it later. */
  readonly at: number;
}

export type RpcReply =
  | {
      readonly type: 'invoked';
      readonly json: string;
      readonly replayed: boolean;
      readonly version: string;
    }
  | { readonly type: 'diff'; readonly update: Uint8Array }
  | { readonly type: 'deployment'; readonly json: string }
  | { readonly type: 'state-vector'; readonly stateVector: Uint8Array }
  | { readonly type: 'done' }
  | { readonly type: 'cursor'; readonly cursor: CatchUpCursor | undefined };

export type RpcFrame =
  | { readonly kind: 'request'; readonly id: number; readonly request: RpcRequest }
  | { readonly kind: 'reply'; readonly id: number; readonly reply: RpcReply }
  | {
      readonly kind: 'error';
      readonly id: number;
      readonly code: string;
      readonly message: string;
    };

const KIND = { request: 8, reply: 9, error: 10 } as const;
const REQUEST = {
  invoke: 0,
  diff: 1,
  'deployment-meta': 2,
  'deployment-code': 3,
  'deployment-push': 4,
  'state-vector': 5,
  apply: 6,
  'catch-up-cursor': 7,
  'catch-up-done': 8,
  tombstones: 9,
} as const;
const REPLY = {
  invoked: 0,
  diff: 1,
  deployment: 2,
  'state-vector': 3,
  done: 4,
  cursor: 5,
} as const;
const HAS_KEY = 1;
const HAS_AUTHORIZATION = 2;

/** True when `bytes` is an RPC frame (not a replicator frame). */
export const isRpcFrame = (bytes: Uint8Array): boolean =>
  bytes[0] !== undefined && bytes[0] >= KIND.request && bytes[0] <= KIND.error;

const writeCursor = (e: encoding.Encoder, cursor: CatchUpCursor): void => {
  encoding.writeVarString(e, cursor.epoch);
  encoding.writeVarUint(e, cursor.seq);
  encoding.writeVarUint(e, cursor.at);
};

const readCursor = (d: decoding.Decoder): CatchUpCursor => ({
  epoch: decoding.readVarString(d),
  seq: decoding.readVarUint(d),
  at: decoding.readVarUint(d),
});

const writeRequest = (e: encoding.Encoder, request: RpcRequest): void => {
  switch (request.type) {
    case 'invoke':
      encoding.writeVarUint(e, REQUEST.invoke);
      encoding.writeVarString(e, request.name);
      encoding.writeVarString(e, request.body);
      encoding.writeVarUint(
        e,
        (request.idempotencyKey !== undefined ? HAS_KEY : 0) |
          (request.authorization !== undefined ? HAS_AUTHORIZATION : 0),
      );
      if (request.idempotencyKey !== undefined) encoding.writeVarString(e, request.idempotencyKey);
      if (request.authorization !== undefined) encoding.writeVarString(e, request.authorization);
      return;
    case 'diff':
      encoding.writeVarUint(e, REQUEST.diff);
      encoding.writeVarString(e, request.doc);
      encoding.writeVarUint8Array(e, request.stateVector);
      return;
    case 'deployment-meta':
    case 'deployment-code':
    case 'catch-up-cursor':
      encoding.writeVarUint(e, REQUEST[request.type]);
      return;
    case 'state-vector':
      encoding.writeVarUint(e, REQUEST['state-vector']);
      encoding.writeVarString(e, request.doc);
      return;
    case 'apply':
      encoding.writeVarUint(e, REQUEST.apply);
      encoding.writeVarString(e, request.doc);
      encoding.writeVarUint8Array(e, request.update);
      return;
    case 'catch-up-done':
      encoding.writeVarUint(e, REQUEST['catch-up-done']);
      writeCursor(e, request.cursor);
      return;
    case 'deployment-push':
      encoding.writeVarUint(e, REQUEST['deployment-push']);
      encoding.writeVarString(e, request.json);
      return;
    case 'tombstones':
      encoding.writeVarUint(e, REQUEST.tombstones);
      encoding.writeVarUint(e, request.tombstones.length);
      for (const t of request.tombstones) encoding.writeVarUint8Array(e, encodeTombstone(t));
      encoding.writeVarUint(e, request.cursor ? 1 : 0);
      if (request.cursor) {
        encoding.writeVarString(e, request.cursor.epoch);
        encoding.writeVarUint(e, request.cursor.base);
        encoding.writeVarUint(e, request.cursor.seq);
      }
      return;
    default:
      return assertNever(request, 'rpc request');
  }
};

const readRequest = (d: decoding.Decoder): RpcRequest => {
  const type = decoding.readVarUint(d);
  if (type === REQUEST.invoke) {
    const name = decoding.readVarString(d);
    const body = decoding.readVarString(d);
    const flags = decoding.readVarUint(d);
    const idempotencyKey = flags & HAS_KEY ? decoding.readVarString(d) : undefined;
    const authorization = flags & HAS_AUTHORIZATION ? decoding.readVarString(d) : undefined;
    return {
      type: 'invoke',
      name,
      body,
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      ...(authorization !== undefined ? { authorization } : {}),
    };
  }
  if (type === REQUEST.diff)
    return {
      type: 'diff',
      doc: decoding.readVarString(d),
      stateVector: decoding.readVarUint8Array(d),
    };
  if (type === REQUEST['deployment-meta']) return { type: 'deployment-meta' };
  if (type === REQUEST['deployment-code']) return { type: 'deployment-code' };
  if (type === REQUEST['deployment-push'])
    return { type: 'deployment-push', json: decoding.readVarString(d) };
  if (type === REQUEST['state-vector'])
    return { type: 'state-vector', doc: decoding.readVarString(d) };
  if (type === REQUEST.apply)
    return {
      type: 'apply',
      doc: decoding.readVarString(d),
      update: decoding.readVarUint8Array(d),
    };
  if (type === REQUEST['catch-up-cursor']) return { type: 'catch-up-cursor' };
  if (type === REQUEST['catch-up-done'])
    return {
      type: 'catch-up-done',
      cursor: readCursor(d),
    };
  if (type === REQUEST.tombstones) {
    const tombstones: Tombstone[] = [];
    for (let n = decoding.readVarUint(d); n > 0; n--)
      tombstones.push(decodeTombstone(decoding.readVarUint8Array(d)));
    if (!decoding.hasContent(d) || decoding.readVarUint(d) === 0)
      return { type: 'tombstones', tombstones };
    const cursor: TombstoneCursor = {
      epoch: decoding.readVarString(d),
      base: decoding.readVarUint(d),
      seq: decoding.readVarUint(d),
    };
    return { type: 'tombstones', tombstones, cursor };
  }
  throw new ProtocolError(`unknown request type ${type}`);
};

const writeReply = (e: encoding.Encoder, reply: RpcReply): void => {
  switch (reply.type) {
    case 'invoked':
      encoding.writeVarUint(e, REPLY.invoked);
      encoding.writeVarString(e, reply.json);
      encoding.writeVarUint(e, reply.replayed ? 1 : 0);
      encoding.writeVarString(e, reply.version);
      return;
    case 'diff':
      encoding.writeVarUint(e, REPLY.diff);
      encoding.writeVarUint8Array(e, reply.update);
      return;
    case 'deployment':
      encoding.writeVarUint(e, REPLY.deployment);
      encoding.writeVarString(e, reply.json);
      return;
    case 'state-vector':
      encoding.writeVarUint(e, REPLY['state-vector']);
      encoding.writeVarUint8Array(e, reply.stateVector);
      return;
    case 'done':
      encoding.writeVarUint(e, REPLY.done);
      return;
    case 'cursor':
      encoding.writeVarUint(e, REPLY.cursor);
      encoding.writeVarUint(e, reply.cursor ? 1 : 0);
      if (reply.cursor) writeCursor(e, reply.cursor);
      return;
    default:
      return assertNever(reply, 'rpc reply');
  }
};

const readReply = (d: decoding.Decoder): RpcReply => {
  const type = decoding.readVarUint(d);
  if (type === REPLY.invoked)
    return {
      type: 'invoked',
      json: decoding.readVarString(d),
      replayed: decoding.readVarUint(d) === 1,
      version: decoding.readVarString(d),
    };
  if (type === REPLY.diff) return { type: 'diff', update: decoding.readVarUint8Array(d) };
  if (type === REPLY.deployment) return { type: 'deployment', json: decoding.readVarString(d) };
  if (type === REPLY['state-vector'])
    return { type: 'state-vector', stateVector: decoding.readVarUint8Array(d) };
  if (type === REPLY.done) return { type: 'done' };
  if (type === REPLY.cursor) {
    const present = decoding.readVarUint(d) === 1;
    return {
      type: 'cursor',
      cursor: present ? readCursor(d) : undefined,
    };
  }
  throw new ProtocolError(`unknown reply type ${type}`);
};

export const encodeRpcFrame = (frame: RpcFrame): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, KIND[frame.kind]);
  encoding.writeVarUint(e, frame.id);
  switch (frame.kind) {
    case 'request':
      writeRequest(e, frame.request);
      break;
    case 'reply':
      writeReply(e, frame.reply);
      break;
    case 'error':
      encoding.writeVarString(e, frame.code);
      encoding.writeVarString(e, frame.message);
      break;
    default:
      return assertNever(frame, 'rpc frame');
  }
  return encoding.toUint8Array(e);
};

/** Decodes one frame; throws ProtocolError on anything else. */
export const decodeRpcFrame = (bytes: Uint8Array): RpcFrame => {
  const d = decoding.createDecoder(bytes);
  let frame: RpcFrame;
  try {
    const kind = decoding.readVarUint(d);
    const id = decoding.readVarUint(d);
    if (kind === KIND.request) frame = { kind: 'request', id, request: readRequest(d) };
    else if (kind === KIND.reply) frame = { kind: 'reply', id, reply: readReply(d) };
    else if (kind === KIND.error)
      frame = {
        kind: 'error',
        id,
        code: decoding.readVarString(d),
        message: decoding.readVarString(d),
      };
    else throw new ProtocolError(`unknown rpc frame kind ${kind}`);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`truncated or malformed rpc frame: ${(err as Error).message}`);
  }
  if (decoding.hasContent(d)) throw new ProtocolError('trailing bytes after rpc frame');
  return frame;
};

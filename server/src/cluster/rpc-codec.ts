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
 * Requests: `invoke` (0) an `owner` call forwarded to the lease holder: varstring
 * name, varstring body, varuint flags (1: idempotency key, 2: authorization
 * follow, each a varstring). `diff` (1): varstring document, varUint8Array state
 * vector: what the receiver has that the vector lacks.
 * Replies: `invoked` (0): varstring json, varuint replayed, varstring version.
 * `diff` (1): varUint8Array update.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { ProtocolError } from '@stateweave/client/protocol';

export type RpcRequest =
  | {
      readonly type: 'invoke';
      readonly name: string;
      readonly body: string;
      readonly idempotencyKey?: string;
      readonly authorization?: string;
    }
  | { readonly type: 'diff'; readonly doc: string; readonly stateVector: Uint8Array };

export type RpcReply =
  | {
      readonly type: 'invoked';
      readonly json: string;
      readonly replayed: boolean;
      readonly version: string;
    }
  | { readonly type: 'diff'; readonly update: Uint8Array };

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
const REQUEST = { invoke: 0, diff: 1 } as const;
const REPLY = { invoked: 0, diff: 1 } as const;
const HAS_KEY = 1;
const HAS_AUTHORIZATION = 2;

/** True when `bytes` is an RPC frame (not a replicator frame). */
export const isRpcFrame = (bytes: Uint8Array): boolean =>
  bytes[0] !== undefined && bytes[0] >= KIND.request && bytes[0] <= KIND.error;

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

/**
 * Many documents over one socket: the Hocuspocus framing (protocol version 2 and
 * later) spoken on a node's root path, `ws://HOST:PORT/`. Every frame but the two
 * connection-level ones (Ping, Pong) is `varString docName ‖ message`, where the
 * message is one of the single-document protocol's (protocol.ts: sync, awareness,
 * query-awareness and our extensions 100–105) or one of the Hocuspocus messages
 * below. Pure encode/decode, no I/O; the bytes are in PROTOCOL.md. Node and SDK
 * both import this module.
 */
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import { ProtocolError } from './protocol.js';

/** Message types that exist only on a multiplexed socket (Hocuspocus' numbers). */
export const MuxType = {
  /** `varUint authType ‖ …` (AuthType): the client's token, the node's answer. */
  Auth: 2,
  /** `varString payload`: application text; the node accepts it and ignores it. */
  Stateless: 5,
  /** Client → node: stop syncing this document. Node → client: `varString reason`, the document was ended. */
  Close: 7,
  /** Node → client: `varInt applied`, one per update-bearing message of a client that did not say hello. */
  SyncStatus: 8,
  /** Node → client, the whole frame is this one byte: answer Pong. */
  Ping: 9,
  /** Client → node, the whole frame is this one byte. */
  Pong: 10,
} as const;

/** Sub-types of an Auth message. */
export const AuthType = { Token: 0, PermissionDenied: 1, Authenticated: 2 } as const;

/** The scope an Authenticated answer carries. */
export type AuthScope = 'read-write' | 'readonly';

export type MuxFrame =
  | { readonly type: 'ping' }
  | { readonly type: 'pong' }
  /** `body` is the message after the name: its first varUint is the message type. */
  | { readonly type: 'doc'; readonly docName: string; readonly body: Uint8Array };

const malformed = (err: unknown): ProtocolError =>
  err instanceof ProtocolError
    ? err
    : new ProtocolError(`truncated or malformed frame: ${(err as Error).message}`);

/** Splits a frame into its document name and message; throws `ProtocolError` if it has neither. */
export const decodeMuxFrame = (frame: Uint8Array): MuxFrame => {
  if (frame.length === 1 && frame[0] === MuxType.Ping) return { type: 'ping' };
  if (frame.length === 1 && frame[0] === MuxType.Pong) return { type: 'pong' };
  const decoder = decoding.createDecoder(frame);
  try {
    const docName = decoding.readVarString(decoder);
    if (!decoding.hasContent(decoder))
      throw new ProtocolError('no message after the document name');
    return { type: 'doc', docName, body: frame.subarray(decoder.pos) };
  } catch (err) {
    throw malformed(err);
  }
};

/** The first varUint of a message body (its type); throws `ProtocolError` on truncation. */
export const messageTypeOf = (body: Uint8Array): number => {
  try {
    return decoding.readVarUint(decoding.createDecoder(body));
  } catch (err) {
    throw malformed(err);
  }
};

export type AuthMessage =
  | { readonly type: 'token'; readonly token: string }
  | { readonly type: 'permission-denied'; readonly reason: string }
  | { readonly type: 'authenticated'; readonly scope: string };

/**
 * Decodes an Auth message body (type 2 first). A client's Token may be followed by
 * the provider's version as a varString (Hocuspocus 2+ sends it): returned as
 * `version`, anything after it is ignored, as Hocuspocus servers do.
 */
export const decodeAuth = (body: Uint8Array): AuthMessage & { readonly version?: string } => {
  const decoder = decoding.createDecoder(body);
  try {
    if (decoding.readVarUint(decoder) !== MuxType.Auth)
      throw new ProtocolError('not an auth message');
    const authType = decoding.readVarUint(decoder);
    if (authType === AuthType.Token) {
      const token = decoding.readVarString(decoder);
      if (!decoding.hasContent(decoder)) return { type: 'token', token };
      return { type: 'token', token, version: decoding.readVarString(decoder) };
    }
    if (authType === AuthType.PermissionDenied)
      return { type: 'permission-denied', reason: decoding.readVarString(decoder) };
    if (authType === AuthType.Authenticated)
      return { type: 'authenticated', scope: decoding.readVarString(decoder) };
    throw new ProtocolError(`unknown auth message type ${authType}`);
  } catch (err) {
    throw malformed(err);
  }
};

/** Decodes a node's Close body (type 7 first): the reason, `CODE: message`. */
export const decodeCloseReason = (body: Uint8Array): string => {
  const decoder = decoding.createDecoder(body);
  try {
    decoding.readVarUint(decoder);
    return decoding.hasContent(decoder) ? decoding.readVarString(decoder) : '';
  } catch (err) {
    throw malformed(err);
  }
};

/** The varString of a document name: the prefix of every frame about it. */
export const encodeDocPrefix = (docName: string): Uint8Array => {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, docName);
  return encoding.toUint8Array(encoder);
};

/** `prefix ‖ message`: one single-document message for the document of `prefix`. */
export const prefixFrame = (prefix: Uint8Array, message: Uint8Array): Uint8Array => {
  const out = new Uint8Array(prefix.length + message.length);
  out.set(prefix, 0);
  out.set(message, prefix.length);
  return out;
};

const body = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
};

/** Client → node: the token for one document, and the client's version (Hocuspocus' layout). */
export const encodeAuthToken = (token: string, version: string): Uint8Array =>
  body((e) => {
    encoding.writeVarUint(e, MuxType.Auth);
    encoding.writeVarUint(e, AuthType.Token);
    encoding.writeVarString(e, token);
    encoding.writeVarString(e, version);
  });

export const encodeAuthenticated = (scope: AuthScope): Uint8Array =>
  body((e) => {
    encoding.writeVarUint(e, MuxType.Auth);
    encoding.writeVarUint(e, AuthType.Authenticated);
    encoding.writeVarString(e, scope);
  });

/** `reason` is `CODE: message`, as a close reason. */
export const encodePermissionDenied = (reason: string): Uint8Array =>
  body((e) => {
    encoding.writeVarUint(e, MuxType.Auth);
    encoding.writeVarUint(e, AuthType.PermissionDenied);
    encoding.writeVarString(e, reason);
  });

/** Node → client: the document was ended (`CODE: message`). */
export const encodeCloseDoc = (reason: string): Uint8Array =>
  body((e) => {
    encoding.writeVarUint(e, MuxType.Close);
    encoding.writeVarString(e, reason);
  });

/** Client → node: stop syncing the document (Hocuspocus' CloseMessage has no payload). */
export const encodeLeaveDoc = (): Uint8Array =>
  body((e) => encoding.writeVarUint(e, MuxType.Close));

export const encodeSyncStatus = (applied: boolean): Uint8Array =>
  body((e) => {
    encoding.writeVarUint(e, MuxType.SyncStatus);
    encoding.writeVarInt(e, applied ? 1 : 0);
  });

export const PING_FRAME: Uint8Array = Uint8Array.of(MuxType.Ping);
export const PONG_FRAME: Uint8Array = Uint8Array.of(MuxType.Pong);

/** Documents one multiplexed socket may have open unless the node says otherwise. */
export const DEFAULT_MAX_DOCS_PER_SOCKET = 256;

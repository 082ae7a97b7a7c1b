/**
 * The Stateweave wire protocol: the standard Yjs messages plus the extension
 * messages. Pure encode/decode over lib0 encoders, no I/O; byte layouts are in
 * PROTOCOL.md next to this file. Server and SDK both import this one module.
 */
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';

/** Top-level message types (first varUint of every frame). 0–3 are y-protocols'. */
export const MessageType = {
  Sync: 0,
  Awareness: 1,
  Auth: 2,
  QueryAwareness: 3,
  /** Client → node: opt in to extension messages (stock clients never send it). */
  Hello: 100,
  /** Node → client: every update message up to `seq` is durably stored. */
  Saved: 101,
  /** Node → client: a refusal that does not close the socket. */
  Error: 102,
  /** Client → node: a fresh token for this connection (refresh before expiry). */
  Token: 103,
  /** Client → node (after hello): call a function; answered by Result with the same call id. */
  Invoke: 104,
  /** Node → client: the outcome of one Invoke, sent when it completes (any order). */
  Result: 105,
  /** Node ↔ node (peer links only): `varString doc ‖ varUint8Array message`, a standard message for one document. */
  PeerDoc: 110,
  /** Node ↔ node (peer links only): `varString doc`, the sender no longer needs the document. */
  PeerLeave: 111,
} as const;

/** Sub-types of a Sync message (y-protocols/sync). */
export const SyncType = { Step1: 0, Step2: 1, Update: 2 } as const;

/** Version of the extension protocol announced in Hello. */
export const PROTOCOL_VERSION = 1;

export type ClientMessage =
  | { readonly type: 'sync-step-1'; readonly stateVector: Uint8Array }
  | { readonly type: 'sync-step-2'; readonly update: Uint8Array }
  | { readonly type: 'update'; readonly update: Uint8Array }
  | { readonly type: 'awareness'; readonly update: Uint8Array }
  | { readonly type: 'query-awareness' }
  | { readonly type: 'hello'; readonly version: number }
  | { readonly type: 'token'; readonly token: string }
  | InvokeMessage;

/** What the caller says it calls: `query` is read-only (the function's own declaration decides on the node). */
export type InvokeKind = 'invoke' | 'query';

/** Message 104: one function call over the socket. */
export interface InvokeMessage {
  readonly type: 'invoke';
  /** Chosen by the client, echoed in the Result; unique among its calls in flight. */
  readonly callId: number;
  readonly kind: InvokeKind;
  readonly name: string;
  /** The input as JSON text ('' = no input, like an empty HTTP body). */
  readonly input: string;
  /** Absent when the frame carries '' (no key). */
  readonly idempotencyKey?: string;
}

/** Message 105: the outcome of one call. */
export type InvokeResultMessage =
  | {
      readonly type: 'result';
      readonly callId: number;
      readonly ok: true;
      readonly json: string;
      readonly version: string;
    }
  | {
      readonly type: 'result';
      readonly callId: number;
      readonly ok: false;
      /** The HTTP status the same failure has over HTTP (400, 403, 404, 500, 503, …). */
      readonly status: number;
      readonly code: string;
      readonly message: string;
    };

const INVOKE_KINDS: readonly InvokeKind[] = ['invoke', 'query'];

export type ServerExtensionMessage =
  | { readonly type: 'saved'; readonly seq: number }
  | { readonly type: 'error'; readonly code: string; readonly message: string };

/** Thrown for any frame that is not exactly one well-formed message. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

const readBytes = (decoder: decoding.Decoder): Uint8Array => decoding.readVarUint8Array(decoder);

const readInvoke = (decoder: decoding.Decoder): InvokeMessage => {
  const callId = decoding.readVarUint(decoder);
  const kindIndex = decoding.readVarUint(decoder);
  const kind = INVOKE_KINDS[kindIndex];
  if (kind === undefined) throw new ProtocolError(`unknown invoke kind ${kindIndex}`);
  const name = decoding.readVarString(decoder);
  const input = decoding.readVarString(decoder);
  const key = decoding.readVarString(decoder);
  return key === ''
    ? { type: 'invoke', callId, kind, name, input }
    : { type: 'invoke', callId, kind, name, input, idempotencyKey: key };
};

/**
 * Decodes one frame sent by a client. Throws `ProtocolError` on unknown types,
 * truncation, or trailing bytes: a frame is exactly one message.
 */
export const decodeClientMessage = (frame: Uint8Array): ClientMessage => {
  const decoder = decoding.createDecoder(frame);
  let message: ClientMessage;
  try {
    const type = decoding.readVarUint(decoder);
    switch (type) {
      case MessageType.Sync: {
        const syncType = decoding.readVarUint(decoder);
        if (syncType === SyncType.Step1)
          message = { type: 'sync-step-1', stateVector: readBytes(decoder) };
        else if (syncType === SyncType.Step2)
          message = { type: 'sync-step-2', update: readBytes(decoder) };
        else if (syncType === SyncType.Update)
          message = { type: 'update', update: readBytes(decoder) };
        else throw new ProtocolError(`unknown sync message type ${syncType}`);
        break;
      }
      case MessageType.Awareness:
        message = { type: 'awareness', update: readBytes(decoder) };
        break;
      case MessageType.QueryAwareness:
        message = { type: 'query-awareness' };
        break;
      case MessageType.Hello:
        message = { type: 'hello', version: decoding.readVarUint(decoder) };
        break;
      case MessageType.Token:
        message = { type: 'token', token: decoding.readVarString(decoder) };
        break;
      case MessageType.Invoke:
        message = readInvoke(decoder);
        break;
      default:
        throw new ProtocolError(`unknown message type ${type}`);
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    // lib0 throws plain Errors ("Unexpected end of array", "Integer out of Range").
    throw new ProtocolError(`truncated or malformed frame: ${(err as Error).message}`);
  }
  if (decoding.hasContent(decoder)) throw new ProtocolError('trailing bytes after message');
  return message;
};

/**
 * Decodes one of the node's extension messages; `undefined` for any other type.
 * Like `decodeClientMessage`, a truncated or over-long extension frame is a
 * `ProtocolError` (not lib0's plain Error), so the SDK can handle both alike.
 */
export const decodeServerExtension = (frame: Uint8Array): ServerExtensionMessage | undefined => {
  const decoder = decoding.createDecoder(frame);
  let message: ServerExtensionMessage;
  try {
    const type = decoding.readVarUint(decoder);
    if (type === MessageType.Saved) message = { type: 'saved', seq: decoding.readVarUint(decoder) };
    else if (type === MessageType.Error) {
      message = {
        type: 'error',
        code: decoding.readVarString(decoder),
        message: decoding.readVarString(decoder),
      };
    } else return undefined;
  } catch (err) {
    throw new ProtocolError(`truncated or malformed frame: ${(err as Error).message}`);
  }
  if (decoding.hasContent(decoder)) throw new ProtocolError('trailing bytes after message');
  return message;
};

/**
 * Decodes a Result (105); `undefined` for any other type. Strict like the other
 * decoders: truncation, an unknown status or trailing bytes are a `ProtocolError`.
 */
export const decodeInvokeResult = (frame: Uint8Array): InvokeResultMessage | undefined => {
  const decoder = decoding.createDecoder(frame);
  let message: InvokeResultMessage;
  try {
    if (decoding.readVarUint(decoder) !== MessageType.Result) return undefined;
    const callId = decoding.readVarUint(decoder);
    const status = decoding.readVarUint(decoder);
    const first = decoding.readVarString(decoder);
    const second = decoding.readVarString(decoder);
    if (status === 0) message = { type: 'result', callId, ok: true, json: first, version: second };
    else if (status >= 400 && status <= 599)
      message = { type: 'result', callId, ok: false, status, code: first, message: second };
    else throw new ProtocolError(`result status ${status} is neither 0 nor an error status`);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`truncated or malformed frame: ${(err as Error).message}`);
  }
  if (decoding.hasContent(decoder)) throw new ProtocolError('trailing bytes after message');
  return message;
};

const frame = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
};

const syncFrame = (syncType: number, payload: Uint8Array): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Sync);
    encoding.writeVarUint(e, syncType);
    encoding.writeVarUint8Array(e, payload);
  });

export const encodeSyncStep1 = (stateVector: Uint8Array): Uint8Array =>
  syncFrame(SyncType.Step1, stateVector);
export const encodeSyncStep2 = (update: Uint8Array): Uint8Array =>
  syncFrame(SyncType.Step2, update);
export const encodeUpdate = (update: Uint8Array): Uint8Array => syncFrame(SyncType.Update, update);

export const encodeAwareness = (update: Uint8Array): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Awareness);
    encoding.writeVarUint8Array(e, update);
  });

export const encodeQueryAwareness = (): Uint8Array =>
  frame((e) => encoding.writeVarUint(e, MessageType.QueryAwareness));

export const encodeHello = (version: number = PROTOCOL_VERSION): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Hello);
    encoding.writeVarUint(e, version);
  });

export const encodeToken = (token: string): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Token);
    encoding.writeVarString(e, token);
  });

export const encodeSaved = (seq: number): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Saved);
    encoding.writeVarUint(e, seq);
  });

export const encodeError = (code: string, message: string): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Error);
    encoding.writeVarString(e, code);
    encoding.writeVarString(e, message);
  });

export const encodeInvoke = (call: Omit<InvokeMessage, 'type'>): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Invoke);
    encoding.writeVarUint(e, call.callId);
    encoding.writeVarUint(e, INVOKE_KINDS.indexOf(call.kind));
    encoding.writeVarString(e, call.name);
    encoding.writeVarString(e, call.input);
    encoding.writeVarString(e, call.idempotencyKey ?? '');
  });

/** A successful Result: status 0, the result JSON and the function version that ran. */
export const encodeInvokeOk = (callId: number, json: string, version: string): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Result);
    encoding.writeVarUint(e, callId);
    encoding.writeVarUint(e, 0);
    encoding.writeVarString(e, json);
    encoding.writeVarString(e, version);
  });

/** A failed Result: the HTTP status of the error code (400–599), the code and a message. */
export const encodeInvokeError = (
  callId: number,
  status: number,
  code: string,
  message: string,
): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, MessageType.Result);
    encoding.writeVarUint(e, callId);
    encoding.writeVarUint(e, status);
    encoding.writeVarString(e, code);
    encoding.writeVarString(e, message);
  });

export interface AwarenessEntry {
  readonly clientId: number;
  readonly clock: number;
  /** The JSON state, or null when the client removed itself. */
  readonly state: unknown;
}

/**
 * Decodes a y-protocols awareness update completely before anything is applied,
 * so a malformed one is refused whole instead of half-applied.
 */
/** Deepest JSON nesting accepted in an awareness state (cursors need about 5). */
export const MAX_AWARENESS_DEPTH = 32;

/**
 * Nesting depth of a JSON text, counted without recursion; stops early once past
 * `limit`. A state nested thousands deep parses fine but overflows the stack
 * wherever it is later stringified (y-protocols re-encodes states on every change
 * and timeout). The node uses the same count for function inputs.
 */
export const jsonDepth = (text: string, limit = Infinity): number => {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
};

export const decodeAwarenessUpdate = (update: Uint8Array): AwarenessEntry[] => {
  const decoder = decoding.createDecoder(update);
  const entries: AwarenessEntry[] = [];
  try {
    const count = decoding.readVarUint(decoder);
    for (let i = 0; i < count; i++) {
      const clientId = decoding.readVarUint(decoder);
      const clock = decoding.readVarUint(decoder);
      const json = decoding.readVarString(decoder);
      if (jsonDepth(json) > MAX_AWARENESS_DEPTH)
        throw new ProtocolError(`state nested deeper than ${MAX_AWARENESS_DEPTH}`);
      entries.push({ clientId, clock, state: JSON.parse(json) as unknown });
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`malformed awareness update: ${(err as Error).message}`);
  }
  if (decoding.hasContent(decoder))
    throw new ProtocolError('trailing bytes after awareness update');
  return entries;
};

/** Encodes awareness entries as a y-protocols awareness update (the inverse of decodeAwarenessUpdate). */
export const encodeAwarenessEntries = (entries: readonly AwarenessEntry[]): Uint8Array =>
  frame((e) => {
    encoding.writeVarUint(e, entries.length);
    for (const { clientId, clock, state } of entries) {
      encoding.writeVarUint(e, clientId);
      encoding.writeVarUint(e, clock);
      encoding.writeVarString(e, JSON.stringify(state));
    }
  });

export { ERRORS, type NodeErrorCode } from './error-codes.js';
export { docNameProblem, MAX_DOC_NAME_LENGTH } from './doc-name.js';
export { createBackoff, type Backoff, type BackoffOptions } from './backoff.js';
export { assertNever } from './assert-never.js';

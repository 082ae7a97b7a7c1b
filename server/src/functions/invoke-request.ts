/**
 * One call, as HTTP and the WebSocket `invoke` message both deliver it (name,
 * input as JSON text, idempotency key, the caller's grant), turned into the
 * runtime's InvokeRequest: the same checks, rights and forwarding for both.
 */
import { requireRight } from '../auth/access.js';
import type { Grant } from '../auth/grant.js';
import type { ForwardRequest, Forwarder } from '../node-ports.js';
import { StateweaveError } from '../errors.js';
import { parseJsonWithin } from '../limits/json-depth.js';
import type { InvokeRequest } from './runtime.js';

export const MAX_IDEMPOTENCY_KEY_CHARS = 256;

export interface Call {
  readonly name: string;
  /** The input as JSON text; empty means no input. */
  readonly body: string;
  readonly idempotencyKey?: string;
  /** The caller's `Authorization` header, passed on when the call is forwarded. */
  readonly authorization?: string;
  readonly grant: Grant;
  /** Present when the call may be forwarded to the document's primary (not for a call that was forwarded here). */
  readonly forwarder?: Forwarder;
}

const parseInput = (body: string): unknown =>
  body.trim() === '' ? undefined : parseJsonWithin(body);

/** What the primary receives when this call is forwarded. */
export const forwardedOf = (call: Omit<Call, 'grant' | 'forwarder'>): ForwardRequest => ({
  name: call.name,
  body: call.body,
  ...(call.idempotencyKey !== undefined ? { idempotencyKey: call.idempotencyKey } : {}),
  ...(call.authorization !== undefined ? { authorization: call.authorization } : {}),
});

export const toInvokeRequest = (call: Call): InvokeRequest => {
  const { idempotencyKey: key, grant, forwarder } = call;
  if (key !== undefined && (key === '' || key.length > MAX_IDEMPOTENCY_KEY_CHARS)) {
    throw new StateweaveError(
      'BAD_REQUEST',
      `the idempotency key must be 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} characters`,
    );
  }
  return {
    name: call.name,
    input: parseInput(call.body),
    ...(key !== undefined ? { idempotencyKey: key } : {}),
    ...(forwarder
      ? {
          forward: async (nodeId: string, doc: string) => ({
            ...(await forwarder.forward(nodeId, forwardedOf(call))),
            doc,
          }),
        }
      : {}),
    grant,
    // A query and ctx.read hand document content back: they need the read right
    // (invoke alone would let a token that may not read a document read it
    // through a function); an invocation needs invoke.
    authorize: (doc, kind) => requireRight(grant, kind === 'query' ? 'read' : 'invoke', doc),
  };
};

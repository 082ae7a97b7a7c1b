/**
 * A function call in the one shape it keeps from the edge that received it (an
 * HTTP request, a WebSocket Invoke, a call a peer forwarded, a schedule's tick) to
 * the executor. The edge builds it with `functionCall`, which validates it (the
 * idempotency key, the input's JSON and depth), so everything behind takes it as
 * given. The worker receives a projection of it (WorkerCall in
 * worker-protocol.ts: only what survives structured cloning).
 */
import { requireRight } from '../auth/access.js';
import type { Grant } from '../auth/grant.js';
import { StateweaveError } from '../errors.js';
import { parseJsonWithin } from '../limits/json-depth.js';
import type { ForwardRequest, ForwardResponse, Forwarder } from '../node-ports.js';
import type { FunctionKind } from './define.js';

export const MAX_IDEMPOTENCY_KEY_CHARS = 256;

/**
 * What travels to another node when a call is forwarded, its answer, and the
 * port that carries them (the peer link or the backplane): the one shape
 * node-ports.ts defines for every edge.
 */
export type ForwardedCall = ForwardRequest;
export type ForwardedAnswer = ForwardResponse;
export type CallForwarder = Forwarder;

export interface FunctionCall extends ForwardedCall {
  /** The input, parsed from `body` (undefined when `body` is empty). */
  readonly input: unknown;
  readonly grant: Grant;
  /** Present when the call may go on to its document's primary (absent for a call forwarded here). */
  readonly forwarder?: CallForwarder;
  /**
   * A schedule's tick: every node ticks, and only the document's primary runs it, so a
   * slot runs once cluster-wide and its time is the primary's clock (no duplicate run
   * per node, none from a node whose clock is off).
   */
  readonly primaryOnly?: boolean;
}

/** The answer to a call, wherever it ran. */
export interface CallResult extends ForwardedAnswer {
  /** The document it worked on (its first, for a call on several). */
  readonly doc: string;
}

/** Validates what an edge received and builds the call; throws BAD_REQUEST, INPUT_TOO_DEEP. */
export const functionCall = (fields: Omit<FunctionCall, 'input'>): FunctionCall => {
  const key = fields.idempotencyKey;
  if (key !== undefined && (key === '' || key.length > MAX_IDEMPOTENCY_KEY_CHARS)) {
    throw new StateweaveError(
      'BAD_REQUEST',
      `the idempotency key must be 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} characters`,
    );
  }
  const input = fields.body.trim() === '' ? undefined : parseJsonWithin(fields.body);
  return { ...fields, input };
};

/** The part of a call that goes to another node (no grant, no forwarder: they are this node's). */
export const forwardedOf = (call: ForwardedCall): ForwardedCall => ({
  name: call.name,
  body: call.body,
  ...(call.idempotencyKey !== undefined ? { idempotencyKey: call.idempotencyKey } : {}),
  ...(call.authorization !== undefined ? { authorization: call.authorization } : {}),
});

/**
 * Throws (FORBIDDEN, TOKEN_EXPIRED) unless the caller may run a `kind` function on
 * `doc`. A query and ctx.read hand document content back: they need the read right
 * (invoke alone would let a token that may not read a document read it through a
 * function); anything else needs invoke.
 */
export const authorizeCall = (call: FunctionCall, doc: string, kind: FunctionKind): void =>
  requireRight(call.grant, kind === 'query' ? 'read' : 'invoke', doc);

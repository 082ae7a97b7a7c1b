/**
 * Function calls over a client's open WebSocket (message Invoke, 104 → Result,
 * 105; PROTOCOL.md). The same call as `POST /v1/functions/:name/invoke`, without
 * a request per call: every Invoke goes straight to `runtime.invoke`, so a client
 * can keep hundreds of calls in flight on one socket and the runtime sees them
 * together (one document's queue, one batch).
 *
 * - Access: the connection's *current* grant (a token refreshed in-band counts),
 *   checked against the document the function names, exactly as over HTTP: a
 *   query needs `read`, anything else `invoke`.
 * - Bound: at most `maxInFlight` calls per connection; past it a call is answered
 *   OVERLOADED at once and the connection stays open. This cap, not the message
 *   token bucket, bounds Invoke frames (the bucket would stop a client at
 *   `maxMessagesPerSecond`).
 * - Results leave in the order the calls complete, each with its call id; errors
 *   carry the code and HTTP status of the one table in errors.ts.
 * - In a cluster an `owner` function is forwarded to the document's primary over
 *   HTTP (as the HTTP path does), authenticated with the connection's token.
 * - A result that completes after the socket closed is dropped (`send` ignores it).
 */
import type { InvokeMessage } from '@stateweave/client/protocol';
import { encodeInvokeError, encodeInvokeOk } from '@stateweave/client/protocol';
import type { Grant } from '../auth/grant.js';
import { StateweaveError, toStateweaveError } from '../errors.js';
import { functionCall, type CallForwarder, type FunctionCall } from '../functions/function-call.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/** Calls one connection may have in flight unless configured otherwise. */
export const DEFAULT_MAX_INVOCATIONS_IN_FLIGHT = 1024;

export interface InvokeChannelOptions {
  /** The node's function runtime; absent means this node runs no functions. */
  readonly functions: FunctionRuntime | undefined;
  /** In a cluster: sends `owner` invocations to the document's primary. */
  readonly forwarder: CallForwarder | undefined;
  /** Calls in flight on this connection before OVERLOADED. */
  readonly maxInFlight: number;
  /** The connection's grant now. */
  readonly grant: () => Grant;
  /** The connection's token now (forwarded as `Authorization: Bearer`); undefined without one. */
  readonly token: () => string | undefined;
  /** Sends a frame on the connection (a no-op once it is closed). */
  readonly send: (frame: Uint8Array) => void;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface InvokeChannel {
  /** Starts one call; its Result is sent when it completes. Never throws. */
  handle(message: InvokeMessage): void;
  /** Calls started and not yet answered. */
  readonly inFlight: number;
}

export const createInvokeChannel = (options: InvokeChannelOptions): InvokeChannel => {
  const { logger, metrics } = options;
  let inFlight = 0;

  const fail = (callId: number, err: StateweaveError): void => {
    metrics.errors.inc({ code: err.code });
    // Refusals are the caller's business (and could flood the log): counted, logged at debug.
    const level =
      err.code === 'INTERNAL'
        ? 'error'
        : err.status >= 500 && err.code !== 'OVERLOADED'
          ? 'warn'
          : 'debug';
    logger[level]({ callId, code: err.code, err: err.cause ?? undefined }, err.message);
    options.send(encodeInvokeError(callId, err.status, err.code, err.message));
  };

  /** The message as a call; validated here, as every edge validates what it received. */
  const callOf = (message: InvokeMessage): FunctionCall => {
    const token = options.token();
    const { forwarder } = options;
    return functionCall({
      name: message.name,
      body: message.input,
      ...(message.idempotencyKey !== undefined ? { idempotencyKey: message.idempotencyKey } : {}),
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      grant: options.grant(),
      ...(forwarder ? { forwarder } : {}),
    });
  };

  const run = async (message: InvokeMessage): Promise<void> => {
    const runtime = options.functions;
    if (!runtime) throw new StateweaveError('NOT_FOUND', 'this node runs no functions');
    const result = await runtime.invoke(callOf(message));
    options.send(encodeInvokeOk(message.callId, result.json, result.version));
  };

  return {
    handle(message) {
      if (inFlight >= options.maxInFlight) {
        return fail(
          message.callId,
          new StateweaveError(
            'OVERLOADED',
            `more than ${options.maxInFlight} calls in flight on this connection`,
          ),
        );
      }
      inFlight++;
      run(message)
        .catch((err: unknown) => fail(message.callId, toStateweaveError(err)))
        .finally(() => inFlight--);
    },
    get inFlight() {
      return inFlight;
    },
  };
};

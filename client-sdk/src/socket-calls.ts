/**
 * Function calls over one document's open socket (messages Invoke 104 → Result
 * 105, PROTOCOL.md): many calls in flight at once, each answered by call id in
 * whatever order they complete. At most `maxInFlight` are on the wire; the rest
 * wait here, in order, and leave as answers come back (the node answers calls
 * past its own cap with OVERLOADED).
 *
 * When the socket goes away every call gets an outcome the caller can act on:
 * `unsent` (it never left: safe to send anywhere) or `lost` (it was sent and not
 * answered: whether it ran is unknown). Knows nothing about retries or HTTP.
 */
import { StateweaveClientError } from './errors.js';
import { encodeInvoke, type InvokeKind, type InvokeResultMessage } from './protocol.js';

export type SocketCallOutcome =
  | { readonly type: 'answered'; readonly result: InvokeResultMessage }
  | { readonly type: 'unsent' }
  | { readonly type: 'lost' };

export interface SocketCall {
  readonly kind: InvokeKind;
  readonly name: string;
  /** The input as JSON text. */
  readonly input: string;
  readonly idempotencyKey?: string;
  /** Aborting rejects the call with NETWORK; a late answer is ignored. */
  readonly signal?: AbortSignal;
}

/** What the function caller needs of a socket. */
export interface SocketCaller {
  /** The node URL of the socket. */
  readonly url: string | undefined;
  call(call: SocketCall): Promise<SocketCallOutcome>;
}

export interface SocketCalls extends SocketCaller {
  /** A Result frame arrived on the socket. */
  receive(result: InvokeResultMessage): void;
  /** The socket is gone: queued calls are `unsent`, calls on the wire `lost`. */
  drop(): void;
}

export interface SocketCallsOptions {
  /** Sends a frame; false when the socket is not open (nothing was sent). */
  readonly send: (frame: Uint8Array) => boolean;
  readonly url: () => string | undefined;
  /** Calls on the wire at once. */
  readonly maxInFlight: number;
}

interface Pending {
  readonly call: SocketCall;
  settle: (outcome: SocketCallOutcome) => void;
}

const aborted = (name: string): StateweaveClientError =>
  new StateweaveClientError('NETWORK', `${name}: the call was aborted`);

export const createSocketCalls = (options: SocketCallsOptions): SocketCalls => {
  /** On the wire, by call id. An aborted call stays here (it holds a slot) until answered. */
  const onWire = new Map<number, Pending>();
  const waiting: Pending[] = [];
  let nextCallId = 1;

  const transmit = (pending: Pending): void => {
    const callId = nextCallId++;
    const { call } = pending;
    const frame = encodeInvoke({
      callId,
      kind: call.kind,
      name: call.name,
      input: call.input,
      ...(call.idempotencyKey !== undefined ? { idempotencyKey: call.idempotencyKey } : {}),
    });
    if (!options.send(frame)) return pending.settle({ type: 'unsent' });
    onWire.set(callId, pending);
  };

  const pump = (): void => {
    while (onWire.size < options.maxInFlight && waiting.length > 0) transmit(waiting.shift()!);
  };

  return {
    get url() {
      return options.url();
    },

    call(call) {
      return new Promise<SocketCallOutcome>((resolve, reject) => {
        if (call.signal?.aborted) return reject(aborted(call.name));
        const onAbort = (): void => {
          pending.settle = () => undefined;
          const index = waiting.indexOf(pending);
          if (index >= 0) waiting.splice(index, 1);
          reject(aborted(call.name));
        };
        const pending: Pending = {
          call,
          settle(outcome) {
            call.signal?.removeEventListener('abort', onAbort);
            resolve(outcome);
          },
        };
        call.signal?.addEventListener('abort', onAbort, { once: true });
        waiting.push(pending);
        pump();
      });
    },

    receive(result) {
      const pending = onWire.get(result.callId);
      if (!pending) return; // not ours (e.g. from before a reconnect): ignore
      onWire.delete(result.callId);
      pending.settle({ type: 'answered', result });
      pump();
    },

    drop() {
      const lost = [...onWire.values()];
      const unsent = waiting.splice(0);
      onWire.clear();
      for (const pending of lost) pending.settle({ type: 'lost' });
      for (const pending of unsent) pending.settle({ type: 'unsent' });
    },
  };
};

/**
 * The node's errors. The code table (status and close code of each) is shared
 * with the SDK and lives in the protocol module.
 */
import { ERRORS, type NodeErrorCode } from '@stateweave/client/protocol';

export { ERRORS };
export type ErrorCode = NodeErrorCode;

/** An error the node reports to a client: stable `code`, human `message`. */
export class StateweaveError extends Error {
  override readonly name = 'StateweaveError';
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].summary,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  get status(): number {
    return ERRORS[this.code].status;
  }
  get closeCode(): number {
    return ERRORS[this.code].close;
  }
}

/** Any thrown value as a StateweaveError (unknown errors become INTERNAL). */
export const toStateweaveError = (err: unknown): StateweaveError =>
  err instanceof StateweaveError
    ? err
    : new StateweaveError('INTERNAL', 'internal error', { cause: err });

/**
 * A WebSocket close reason must fit in 123 bytes of UTF-8; `CODE: message`,
 * truncated on a character boundary.
 */
export const closeReason = (err: StateweaveError): string => {
  const full = `${err.code}: ${err.message}`;
  const bytes = Buffer.from(full);
  if (bytes.length <= 123) return full;
  return new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD+$/, '') + '...';
};

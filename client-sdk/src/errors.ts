/**
 * Errors the SDK reports: one class with a stable `code`. Codes the node sends
 * (close reasons `CODE: message`, HTTP `{"error":{"code","message"}}`) are passed
 * through unchanged; the SDK adds its own for what happens on this side.
 */
import { ERRORS, type NodeErrorCode } from './error-codes.js';

/** Codes the SDK itself produces. */
export type ClientErrorCode =
  /** `createClient` options are unusable (no URL, no WebSocket implementation, ...). */
  | 'INVALID_OPTIONS'
  /** A document name the node would refuse (checked before connecting). */
  | 'INVALID_DOC_NAME'
  /** `getToken` threw or returned something that is not a non-empty string. */
  | 'TOKEN_FAILED'
  /** The node could not be reached (fetch failed) or the request was aborted. */
  | 'NETWORK'
  /** The node answered with a status and a body that is not our JSON error. */
  | 'HTTP_ERROR'
  /** The node answered 2xx with a body that is not JSON. */
  | 'INVALID_RESPONSE'
  /** The node sent a frame the SDK cannot decode. */
  | 'INVALID_FRAME'
  /** Local persistence (IndexedDB) could not be opened or read. */
  | 'PERSISTENCE_FAILED'
  /** The handle was closed (e.g. before it synced). */
  | 'CLOSED'
  /** The client was destroyed. */
  | 'DESTROYED';

/** Codes the node sends: the table in error-codes.ts (also PROTOCOL.md and the README). */
export type { NodeErrorCode };

/** A known code, or any other string a newer node may send. */
export type ErrorCode = ClientErrorCode | NodeErrorCode | (string & {});

export interface ErrorDetails {
  /** HTTP status, for errors from an HTTP call. */
  readonly status?: number;
  /** WebSocket close code, for errors that ended a connection. */
  readonly closeCode?: number;
  readonly cause?: unknown;
}

export class StateweaveClientError extends Error {
  override readonly name = 'StateweaveClientError';
  readonly code: ErrorCode;
  readonly status: number | undefined;
  readonly closeCode: number | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.closeCode = details.closeCode;
  }
}

/** Close codes by what the SDK does about them. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: ERRORS.SHUTTING_DOWN.close,
  Unauthorized: ERRORS.UNAUTHORIZED.close,
  TokenExpired: ERRORS.TOKEN_EXPIRED.close,
  Forbidden: ERRORS.FORBIDDEN.close,
} as const;

/**
 * What to do after the node closed a connection:
 * - `token`: get a fresh token, then reconnect;
 * - `terminal`: retrying would fail the same way; stop and report;
 * - `failover`: the node is going away; reconnect promptly, to the next URL;
 * - `retry`: reconnect with backoff.
 */
export type CloseAction = 'token' | 'terminal' | 'failover' | 'retry';

/**
 * The one policy, by code; a close code or a per-document refusal is looked up
 * here. Terminal: the same bytes would be refused again (malformed frames and
 * names, no right, too large, text frames, not an update); DOC_DELETED:
 * reconnecting would write the local copy back into a deleted document.
 * Anything not listed is retried with backoff.
 */
const ACTIONS: Partial<Record<NodeErrorCode, CloseAction>> = {
  UNAUTHORIZED: 'token',
  TOKEN_EXPIRED: 'token',
  INVALID_FRAME: 'terminal',
  INVALID_DOC_NAME: 'terminal',
  FORBIDDEN: 'terminal',
  DOC_DELETED: 'terminal',
  DOC_TOO_LARGE: 'terminal',
  TEXT_FRAME: 'terminal',
  INVALID_UPDATE: 'terminal',
  SHUTTING_DOWN: 'failover',
};
const ACTION_OF_CLOSE: ReadonlyMap<number, CloseAction> = new Map(
  Object.entries(ACTIONS).map(([code, action]) => [ERRORS[code as NodeErrorCode].close, action]),
);

export const closeAction = (closeCode: number): CloseAction =>
  ACTION_OF_CLOSE.get(closeCode) ?? 'retry';

/**
 * What to do after the node ended one document on a multiplexed socket (its
 * PermissionDenied or Close carries `CODE: message`, no close code): the same
 * actions as `closeAction`, decided by the code.
 */
export const codeAction = (code: string): CloseAction =>
  (Object.hasOwn(ACTIONS, code) ? ACTIONS[code as NodeErrorCode] : undefined) ?? 'retry';

/** The error a document refusal on a multiplexed socket (`CODE: message`) stands for. */
export const errorFromReason = (reason: string): StateweaveClientError => {
  const match = /^([A-Z][A-Z0-9_]*): ?(.*)$/s.exec(reason);
  return new StateweaveClientError(match?.[1] ?? 'FORBIDDEN', match?.[2] ?? reason);
};

/**
 * Some runtimes (Node's `ws`) report the HTTP status of a refused upgrade; the
 * browser only reports 1006. Maps such a status to the close code it stands for.
 */
export const closeCodeForUpgradeStatus = (status: number): number | undefined => {
  if (status === 401) return CloseCode.Unauthorized;
  if (status === 403) return CloseCode.Forbidden;
  if (status === 503) return CloseCode.GoingAway;
  return undefined;
};

/** The error a node's close (`code`, reason `CODE: message`) stands for. */
export const errorFromClose = (closeCode: number, reason: string): StateweaveClientError => {
  const match = /^([A-Z][A-Z0-9_]*): ?(.*)$/s.exec(reason);
  const code =
    match?.[1] ?? (closeCode === CloseCode.Forbidden ? 'FORBIDDEN' : `CLOSE_${closeCode}`);
  const message = match?.[2] ?? (reason || `connection closed with code ${closeCode}`);
  return new StateweaveClientError(code, message, { closeCode });
};

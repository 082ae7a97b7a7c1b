/**
 * Errors the SDK reports: one class with a stable `code`. Codes the node sends
 * (close reasons `CODE: message`, HTTP `{"error":{"code","message"}}`) are passed
 * through unchanged; the SDK adds its own for what happens on this side.
 */

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

/** Codes the node sends (see PROTOCOL.md and the README's error table). */
export type NodeErrorCode =
  | 'INVALID_FRAME'
  | 'INVALID_DOC_NAME'
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'TOKEN_EXPIRED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'DOC_DELETED'
  | 'FRAME_TOO_LARGE'
  | 'BODY_TOO_LARGE'
  | 'DOC_TOO_LARGE'
  | 'TEXT_FRAME'
  | 'INVALID_UPDATE'
  | 'TOO_MANY_CONNECTIONS'
  | 'SLOW_CONSUMER'
  | 'NODE_FULL'
  | 'HANDSHAKE_TIMEOUT'
  | 'PRESENCE_LIMIT'
  | 'PRESENCE_TOO_LARGE'
  | 'CLIENT_ID_TAKEN'
  | 'DOC_CREATION_LIMITED'
  | 'HEARTBEAT_TIMEOUT'
  | 'LOAD_FAILED'
  | 'STORE_FAILED'
  | 'SHUTTING_DOWN'
  | 'INTERNAL';

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
  GoingAway: 1001,
  Unauthorized: 4401,
  TokenExpired: 4419,
  Forbidden: 4403,
} as const;

/**
 * What to do after the node closed a connection:
 * - `token`: get a fresh token, then reconnect;
 * - `terminal`: retrying would fail the same way; stop and report;
 * - `failover`: the node is going away; reconnect promptly, to the next URL;
 * - `retry`: reconnect with backoff.
 */
export type CloseAction = 'token' | 'terminal' | 'failover' | 'retry';

// 4400 INVALID_FRAME / INVALID_DOC_NAME, 4403 FORBIDDEN, 4413 DOC_TOO_LARGE,
// 4415 TEXT_FRAME, 4422 INVALID_UPDATE: the same bytes would be refused again.
// 4410 DOC_DELETED: reconnecting would write the local copy back into a deleted document.
const TERMINAL_CLOSE_CODES: ReadonlySet<number> = new Set([4400, 4403, 4410, 4413, 4415, 4422]);

export const closeAction = (closeCode: number): CloseAction => {
  if (closeCode === CloseCode.Unauthorized || closeCode === CloseCode.TokenExpired) return 'token';
  if (TERMINAL_CLOSE_CODES.has(closeCode)) return 'terminal';
  if (closeCode === CloseCode.GoingAway) return 'failover';
  return 'retry';
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

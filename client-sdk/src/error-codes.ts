/**
 * The one list of error codes the node sends and the SDK understands. Each code
 * maps to an HTTP status and a WebSocket close code (4000 + status where that is
 * free, so clients can switch on it) in exactly one place; the node's
 * StateweaveError and the SDK's types both read it, and README and PROTOCOL.md
 * document it.
 */
export const ERRORS = {
  INVALID_FRAME: { status: 400, close: 4400, summary: 'malformed, truncated or unknown message' },
  INVALID_DOC_NAME: {
    status: 400,
    close: 4400,
    summary: 'document name is empty, too long or has characters outside [A-Za-z0-9._~/:@=+-]',
  },
  BAD_REQUEST: { status: 400, close: 4400, summary: 'the request is malformed' },
  UNAUTHORIZED: {
    status: 401,
    close: 4401,
    summary: 'no valid token (missing, malformed, bad signature, wrong issuer or audience)',
  },
  TOKEN_EXPIRED: {
    status: 401,
    close: 4419,
    summary: 'the token expired; reconnect with a fresh one',
  },
  FORBIDDEN: {
    status: 403,
    close: 4403,
    summary: 'the token does not grant this right on this document',
  },
  NOT_FOUND: { status: 404, close: 4404, summary: 'no such route or document' },
  DOC_DELETED: {
    status: 410,
    close: 4410,
    summary: 'the document was deleted; connections to it are closed',
  },
  FRAME_TOO_LARGE: { status: 413, close: 1009, summary: 'a WebSocket frame exceeds maxFrameBytes' },
  BODY_TOO_LARGE: {
    status: 413,
    close: 1009,
    summary: 'an HTTP request body exceeds maxFrameBytes',
  },
  DOC_TOO_LARGE: {
    status: 413,
    close: 4413,
    summary: 'the update would grow the document past maxDocBytes',
  },
  TEXT_FRAME: {
    status: 415,
    close: 4415,
    summary: 'text frames are not part of the protocol; send binary',
  },
  INVALID_UPDATE: { status: 422, close: 4422, summary: 'the bytes are not a Yjs update' },
  TYPE_CONFLICT: {
    status: 409,
    close: 4490,
    summary:
      'a JSON write names a top-level type that already holds another kind (text, map, array)',
  },
  RATE_LIMITED: {
    status: 429,
    close: 4420,
    summary: 'the client sent more than maxMessagesPerSecond (beyond its burst)',
  },
  TOO_MANY_CONNECTIONS: {
    status: 429,
    close: 4429,
    summary:
      'the document has maxConnectionsPerDoc connections, or the address has maxConnectionsPerIp',
  },
  NODE_FULL: {
    status: 503,
    close: 4514,
    summary: 'the node holds maxConnections WebSockets; try another node or later',
  },
  HANDSHAKE_TIMEOUT: {
    status: 408,
    close: 4418,
    summary: 'the HTTP request or WebSocket upgrade was not complete within handshakeTimeoutMs',
  },
  TOO_MANY_DOCUMENTS: {
    status: 429,
    close: 4431,
    summary: 'the multiplexed socket already has maxDocsPerSocket documents open',
  },
  DOC_CREATION_LIMITED: {
    status: 429,
    close: 4432,
    summary:
      'the token subject has created its maxNewDocsPerSubject documents, or newDocsPerSubjectPerMinute this minute',
  },
  PRESENCE_LIMIT: {
    status: 429,
    close: 4430,
    summary: 'the connection spoke for more than maxPresenceIdsPerConnection presence client ids',
  },
  PRESENCE_TOO_LARGE: {
    status: 413,
    close: 4414,
    summary: 'a presence (awareness) state is larger than maxPresenceBytes',
  },
  CLIENT_ID_TAKEN: {
    status: 409,
    close: 4491,
    summary: 'the update adds content under a Yjs client id another live connection introduced',
  },
  SLOW_CONSUMER: {
    status: 503,
    close: 4408,
    summary: 'the client did not read and its send buffer passed maxBufferedBytes',
  },
  HEARTBEAT_TIMEOUT: {
    status: 408,
    close: 4409,
    summary: 'the client did not answer a ping within heartbeatMs',
  },
  LOAD_FAILED: {
    status: 503,
    close: 4503,
    summary: 'the document could not be loaded from storage',
  },
  STORE_FAILED: {
    status: 503,
    close: 4507,
    summary: 'storage refused a write; the change is kept in memory and retried',
  },
  PRIMARY_UNREACHABLE: {
    status: 503,
    close: 4505,
    summary: "the document's primary node did not answer a forwarded owner invocation; retry",
  },
  FENCED: {
    status: 503,
    close: 4508,
    summary:
      "this node lost the document's owner lease before the call's write was stored; nothing was applied; retry (with the idempotency key)",
  },
  SHUTTING_DOWN: { status: 503, close: 1001, summary: 'the node is shutting down' },
  BACKPLANE_DOWN: {
    status: 503,
    close: 4506,
    summary: 'the cluster backplane (Redis) is unreachable; retry',
  },
  INVALID_INPUT: {
    status: 400,
    close: 4460,
    summary: "the function's input validator refused the input",
  },
  FUNCTION_ERROR: {
    status: 500,
    close: 4500,
    summary: 'the function threw; terminal, nothing was applied (do not retry)',
  },
  FUNCTION_CRASHED: {
    status: 500,
    close: 4501,
    summary: 'the function ran out of memory or its sandbox died; nothing was applied',
  },
  TIMEOUT: {
    status: 504,
    close: 4504,
    summary: 'the function ran past its time limit; nothing was applied',
  },
  OVERLOADED: {
    status: 503,
    close: 4513,
    summary: "the document's function queue is full; retry later",
  },
  OUTPUT_TOO_LARGE: {
    status: 500,
    close: 4502,
    summary: "the function's result exceeds maxFunctionOutputBytes; nothing was applied",
  },
  INPUT_TOO_DEEP: {
    status: 400,
    close: 4461,
    summary: 'the input JSON nests deeper than the node accepts (arrays and objects)',
  },
  DEPLOY_OUT_OF_SCOPE: {
    status: 403,
    close: 4471,
    summary:
      "a deployed function may touch documents outside the deployer's admin patterns (or a node-wide deploy lacks admin on *)",
  },
  FUNCTION_NAME_TAKEN: {
    status: 409,
    close: 4472,
    summary: 'a function of this name belongs to another scope; the deployer cannot replace it',
  },
  INTERNAL: { status: 500, close: 1011, summary: 'unexpected server error' },
} as const satisfies Record<string, { status: number; close: number; summary: string }>;

/** A code the node may send. */
export type NodeErrorCode = keyof typeof ERRORS;

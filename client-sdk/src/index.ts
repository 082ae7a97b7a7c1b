/**
 * `@stateweave/client`: open shared documents on Stateweave nodes, see what is
 * saved, call functions. The wire protocol is exported separately as
 * `@stateweave/client/protocol` (the node imports it from there).
 */
export { createClient } from './client.js';
export type { ClientOptions, OpenOptions, StateweaveClient } from './client.js';
export type { Awareness, DocHandle, DocHandleEvents } from './doc-handle.js';
export type { ConnectionStatus } from './connection.js';
export type { BackoffOptions } from './backoff.js';
export { StateweaveClientError } from './errors.js';
export type { ClientErrorCode, ErrorCode, NodeErrorCode } from './errors.js';
export type {
  CallOptions,
  FetchLike,
  FunctionSignature,
  FunctionTypes,
  InvokeOptions,
  RequestInitLike,
  ResponseLike,
  UntypedFunctions,
} from './functions.js';
export type {
  ChangeEvent,
  ChangesOptions,
  DocumentHistory,
  JsonChange,
  Version,
} from './history.js';
export type {
  DeletionReport,
  DocumentAdmin,
  DocumentPage,
  DocumentSummary,
  ExportedDocument,
  ListOptions,
} from './admin.js';
export type { NetworkMonitor } from './network.js';
export type { Persistence, PersistenceFactory } from './persistence.js';
export type {
  CloseEventLike,
  ErrorEventLike,
  MessageEventLike,
  WebSocketConstructor,
  WebSocketLike,
} from './websocket.js';

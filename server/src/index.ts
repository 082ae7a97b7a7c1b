export { createServer, DEFAULTS, type ServerOptions, type StateweaveServer } from './server.js';
export {
  createLevelStore,
  createMemoryStore,
  createAbstractLevelStore,
  type LevelStoreOptions,
} from './storage/level-store.js';
export { StoreError, type Store, type StoredDoc } from './storage/store.js';
export { ERRORS, StateweaveError, type ErrorCode } from './errors.js';
export type { Origin } from './origin.js';
export type { Hub, RoomLease } from './hub/hub.js';
export type { Room, RoomState, Subscriber } from './hub/room.js';
export { validateDocName, type DocName } from './doc-name.js';
export type { Cluster, ClusterStatus } from './cluster/cluster.js';
export type { PeerStatus, LinkState } from './cluster/peer-links.js';
export type { Placement } from './cluster/placement.js';
export {
  defineFunction,
  type FunctionDefinition,
  type FunctionContext,
  type InputValidator,
  type CallerAuth,
  type SignatureOf,
  type FunctionTypesOf,
} from './functions/define.js';
export type { FunctionRuntime } from './functions/runtime.js';

export { createServer, DEFAULTS, type ServerOptions, type StateweaveServer } from './server.js';
export { createLevelStore, createMemoryStore, createAbstractLevelStore, type LevelStoreOptions } from './storage/level-store.js';
export { StoreError, type Store, type StoredDoc } from './storage/store.js';
export { ERRORS, StateweaveError, type ErrorCode } from './errors.js';
export type { Origin } from './origin.js';
export type { Hub, RoomLease } from './hub/hub.js';
export type { Room, RoomState, Subscriber } from './hub/room.js';
export { validateDocName } from './doc-name.js';

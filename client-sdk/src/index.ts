// The SDK entry point. `createClient` lands with the client-SDK issue; until then
// the package carries the wire protocol that the node and any client share.
export * from './protocol.js';

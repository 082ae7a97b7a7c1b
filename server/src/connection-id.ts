/**
 * A client connection's id on this node: the key of its subscription in a room
 * and the `connId` of its origin. Branded so that a Yjs client id, a peer's
 * subscriber key or a count cannot pass for one; nextConnectionId is the one
 * place that makes them (each connection, and each document of a multiplexed
 * socket, gets its own).
 */
declare const connectionIdBrand: unique symbol;

export type ConnectionId = number & { readonly [connectionIdBrand]: true };

let next = 1;

export const nextConnectionId = (): ConnectionId => next++ as ConnectionId;

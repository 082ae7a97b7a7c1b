/**
 * `@stateweave/client/react`: React bindings for the SDK. Put a client in a
 * `StateweaveProvider`, open documents with `useDoc`, render shared types with
 * `useText` / `useMap` / `useArray`, presence with `usePresence` / `useOthers` /
 * `useSelf`, the connection with `useStatus` / `useSaved`, and call functions
 * with `useInvoke` / `useQuery` (typed by `createFunctionHooks<F>()`).
 */
export { StateweaveProvider, useClient } from './provider.js';
export type { StateweaveProviderProps } from './provider.js';
export { useDoc } from './use-doc.js';
export { useArray, useMap, useText } from './use-y-type.js';
export { useOthers, usePresence, useSelf } from './use-presence.js';
export type { Peer, Presence } from './use-presence.js';
export { useSaved, useStatus } from './use-handle-state.js';
export type { SavedOptions, SavedState } from './use-handle-state.js';
export { createFunctionHooks, useInvoke, useQuery } from './use-functions.js';
export type { CallState, Invoker, Query, QueryOptions } from './use-functions.js';

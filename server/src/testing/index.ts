/**
 * `@stateweave/server/testing`: what an adapter author needs to prove an adapter
 * fits its port. `storeContract(name, makeStore)` runs the suite every built-in
 * Store passes (node:test), against a fresh store from `makeStore` per test.
 */
export { storeContract, bytesOf, listAll } from './store-contract.js';

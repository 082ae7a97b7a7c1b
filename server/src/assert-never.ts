/** One assertNever for node and SDK (client-sdk/src/assert-never.ts), through the protocol module. */
export { assertNever } from '@stateweave/client/protocol';

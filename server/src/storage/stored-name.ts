import { docNameProblem } from '@stateweave/client/protocol';
import { isDocName, type DocName } from '../doc-name.js';
import { StoreError } from './store.js';

/**
 * A document name read back from a store's own bytes (a key, an index line).
 * Only DocNames are ever written, so one that fails the rule means the bytes
 * are damaged: a StoreError, not a name passed on unchecked.
 */
export const storedDocName = (name: string): DocName => {
  if (isDocName(name)) return name;
  throw new StoreError(`stored document name fails the name rule: ${docNameProblem(name)}`);
};

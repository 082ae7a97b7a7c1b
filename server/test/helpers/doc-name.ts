import { validateDocName, type DocName } from '../../src/doc-name.js';

/**
 * A document name in a test, checked by the node's own rule (the same edge
 * validator, no cast): what a test hands the hub or the store directly has
 * passed the rule like every name that enters a node.
 */
export const docName = (name: string): DocName => validateDocName(name);

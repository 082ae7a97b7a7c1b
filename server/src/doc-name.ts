import { docNameProblem, MAX_DOC_NAME_LENGTH, ProtocolError } from '@stateweave/client/protocol';
import { StateweaveError } from './errors.js';

export { MAX_DOC_NAME_LENGTH };

declare const docNameBrand: unique symbol;

/**
 * A document name that passed the name rule. Only validateDocName makes one: an
 * edge (a WebSocket URL or multiplexed frame, an HTTP route, a name a function
 * returned) checks once, and what takes a DocName behind it need not check again.
 */
export type DocName = string & { readonly [docNameBrand]: true };

/** True when `name` passes the rule: for an edge that filters names rather than refusing them. */
export const isDocName = (name: string): name is DocName => docNameProblem(name) === undefined;

/** Returns the name if valid, else throws INVALID_DOC_NAME (the rule is shared with the SDK). */
export const validateDocName = (name: string): DocName => {
  const problem = docNameProblem(name);
  if (problem !== undefined) throw new StateweaveError('INVALID_DOC_NAME', problem);
  return name as DocName;
};

/**
 * For a frame decoder (peer, channel and presence frames): the name if valid,
 * else throws ProtocolError, so the frame is refused as malformed.
 */
export const decodedDocName = (name: string): DocName => {
  if (isDocName(name)) return name;
  throw new ProtocolError(docNameProblem(name) ?? 'invalid document name');
};

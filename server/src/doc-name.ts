import { docNameProblem, MAX_DOC_NAME_LENGTH } from '@stateweave/client/protocol';
import { StateweaveError } from './errors.js';

export { MAX_DOC_NAME_LENGTH };

/** Returns the name if valid, else throws INVALID_DOC_NAME (the rule is shared with the SDK). */
export const validateDocName = (name: string): string => {
  const problem = docNameProblem(name);
  if (problem !== undefined) throw new StateweaveError('INVALID_DOC_NAME', problem);
  return name;
};

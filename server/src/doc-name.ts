import { StateweaveError } from './errors.js';

/** Longest accepted document name, in characters. */
export const MAX_DOC_NAME_LENGTH = 255;

// Printable, URL-safe, no NUL (the store's key separator), no backslash, no
// whitespace. '/' is allowed for namespaces (`team-42/notes`) but names are keys,
// never file paths, so '..' carries no meaning; still refused to avoid confusion.
const NAME = /^[A-Za-z0-9._~:@=+-]+(?:\/[A-Za-z0-9._~:@=+-]+)*$/;

/** Returns the name if valid, else throws INVALID_DOC_NAME. */
export const validateDocName = (name: string): string => {
  if (name.length === 0 || name.length > MAX_DOC_NAME_LENGTH) {
    throw new StateweaveError(
      'INVALID_DOC_NAME',
      `document name must be 1-${MAX_DOC_NAME_LENGTH} characters`,
    );
  }
  if (!NAME.test(name) || name.split('/').some((part) => part === '.' || part === '..')) {
    throw new StateweaveError(
      'INVALID_DOC_NAME',
      `invalid document name ${JSON.stringify(name.slice(0, 64))}: use letters, digits and . _ ~ : @ = + - in segments separated by /, with no empty, '.' or '..' segment`,
    );
  }
  return name;
};

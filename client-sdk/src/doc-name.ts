/**
 * The document-name rule, shared by the node (which refuses a bad name) and the
 * SDK (which checks before connecting, so a typo fails at `open()` instead of in
 * a reconnect loop): 1–255 characters of `A-Z a-z 0-9 . _ ~ : @ = + -`, `/`
 * between non-empty segments, no `.` or `..` segment.
 *
 * Printable, URL-safe, no NUL (the store's key separator), no backslash, no
 * whitespace. Names are keys, never file paths, so `..` carries no meaning; it
 * is still refused to avoid confusion.
 */
import { StateweaveClientError } from './errors.js';

/** Longest accepted document name, in characters. */
export const MAX_DOC_NAME_LENGTH = 255;
const NAME = /^[A-Za-z0-9._~:@=+-]+(?:\/[A-Za-z0-9._~:@=+-]+)*$/;
/** A `.` or `..` segment (a regex: the node checks every name it reads back from disk too). */
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;

/** Why `name` is not a document name, or undefined when it is one. */
export const docNameProblem = (name: string): string | undefined => {
  if (name.length === 0 || name.length > MAX_DOC_NAME_LENGTH)
    return `document name must be 1-${MAX_DOC_NAME_LENGTH} characters`;
  if (!NAME.test(name) || DOT_SEGMENT.test(name))
    return `invalid document name ${JSON.stringify(name.slice(0, 64))}: use letters, digits and . _ ~ : @ = + - in segments separated by /, with no empty, '.' or '..' segment`;
  return undefined;
};

/** Returns the name if valid, else throws INVALID_DOC_NAME. */
export const validateDocName = (name: string): string => {
  const problem = docNameProblem(name);
  if (problem !== undefined) throw new StateweaveClientError('INVALID_DOC_NAME', problem);
  return name;
};

/** `team-42/notes` → `team-42/notes` with each segment percent-encoded. */
export const docPath = (name: string): string => name.split('/').map(encodeURIComponent).join('/');

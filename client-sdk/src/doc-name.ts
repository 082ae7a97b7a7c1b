/**
 * Document names, checked before connecting with the node's rules (1–255
 * characters of `A-Z a-z 0-9 . _ ~ : @ = + -`, `/` between non-empty segments,
 * no `.` or `..` segment), so a typo fails at `open()` instead of in a reconnect loop.
 */
import { StateweaveClientError } from './errors.js';

export const MAX_DOC_NAME_LENGTH = 255;
const NAME = /^[A-Za-z0-9._~:@=+-]+(?:\/[A-Za-z0-9._~:@=+-]+)*$/;

export const validateDocName = (name: string): string => {
  if (
    name.length === 0 ||
    name.length > MAX_DOC_NAME_LENGTH ||
    !NAME.test(name) ||
    name.split('/').some((part) => part === '.' || part === '..')
  ) {
    throw new StateweaveClientError(
      'INVALID_DOC_NAME',
      `invalid document name ${JSON.stringify(name.slice(0, 64))}: use letters, digits and . _ ~ : @ = + - in segments separated by /, with no empty, '.' or '..' segment`,
    );
  }
  return name;
};

/** `team-42/notes` → `team-42/notes` with each segment percent-encoded. */
export const docPath = (name: string): string => name.split('/').map(encodeURIComponent).join('/');

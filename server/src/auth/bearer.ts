import type { IncomingMessage } from 'node:http';
import { StateweaveError } from '../errors.js';

/** The token of `Authorization: Bearer <token>`; undefined when absent, UNAUTHORIZED when malformed. */
export const bearerToken = (req: Pick<IncomingMessage, 'headers'>): string | undefined => {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  if (!match)
    throw new StateweaveError('UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"');
  return match[1];
};

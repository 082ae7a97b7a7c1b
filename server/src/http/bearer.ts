import type { Request } from 'express';
import { StateweaveError } from '../errors.js';

/** The token of `Authorization: Bearer <token>`; undefined when absent, UNAUTHORIZED when malformed. */
export const bearerToken = (req: Request): string | undefined => {
  const header = req.get('authorization');
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  if (!match) throw new StateweaveError('UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"');
  return match[1];
};

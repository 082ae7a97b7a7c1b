/** The right check of the document routes, before any body is read. */
import type { RequestHandler } from 'express';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import type { Right } from '../auth/grant.js';
import { bearerToken } from '../auth/bearer.js';
import { docParam } from './doc-param.js';

/** Checks the right on the route's document and leaves the grant in `res.locals.grant`. */
export const authorizeDoc =
  (policy: AccessPolicy, right: Right): RequestHandler =>
  async (req, res, next) => {
    const grant = await policy.authenticate(bearerToken(req));
    requireRight(grant, right, docParam(req));
    res.locals.grant = grant;
    next();
  };

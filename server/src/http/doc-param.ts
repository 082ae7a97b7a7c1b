/** The document name of a `/v1/docs/*name…` route, validated once at the edge. */
import type { Request } from 'express';
import { validateDocName, type DocName } from '../doc-name.js';

/** `/v1/docs/a/b` → `a/b`: names may contain '/', so the route takes the rest of the path. */
export const docParam = (req: Request): DocName => {
  const raw = (req.params as { name?: string | string[] }).name;
  return validateDocName(Array.isArray(raw) ? raw.join('/') : (raw ?? ''));
};

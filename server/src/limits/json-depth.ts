/**
 * JSON.parse with a nesting limit. V8's parser recurses per array or object, so
 * a body nested 100,000 deep either overflows the stack here or later in every
 * step that walks it (structured clone to a worker, copies into a sandbox, JSON
 * again); refusing it at the edge keeps the failure with the one bad request.
 */
import { StateweaveError } from '../errors.js';

/** Deepest nesting of arrays and objects an input may have. */
export const MAX_JSON_DEPTH = 64;

/** The deepest nesting of `text`, counting brackets outside strings; stops early past `limit`. */
export const jsonDepth = (text: string, limit = Infinity): number => {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > limit) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
};

/** Parses JSON text, refusing nesting deeper than `maxDepth` (INPUT_TOO_DEEP) and bad JSON (BAD_REQUEST). */
export const parseJsonWithin = (text: string, maxDepth = MAX_JSON_DEPTH): unknown => {
  if (jsonDepth(text, maxDepth) > maxDepth)
    throw new StateweaveError(
      'INPUT_TOO_DEEP',
      `the input nests arrays and objects deeper than ${maxDepth} levels`,
    );
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    // JSON.parse names the position ("… in JSON at position 13"): keep it for the caller.
    throw new StateweaveError('BAD_REQUEST', `the input is not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
};

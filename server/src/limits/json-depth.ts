/**
 * JSON.parse with a nesting limit. V8's parser recurses per array or object, so
 * a body nested 100,000 deep either overflows the stack here or later in every
 * step that walks it (structured clone to a worker, copies into a sandbox, JSON
 * again); refusing it at the edge keeps the failure with the one bad request.
 */
import { jsonDepth } from '@stateweave/client/protocol';
import { StateweaveError } from '../errors.js';

/** Deepest nesting of arrays and objects an input may have. */
export const MAX_JSON_DEPTH = 64;

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

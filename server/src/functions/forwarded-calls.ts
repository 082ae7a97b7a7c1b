/**
 * `owner` calls another node forwarded here (its document's primary): the
 * caller's token travels with the call and is verified again on this node, so
 * a node never runs a call on another node's word about who may make it.
 */
import type { AccessPolicy } from '../auth/access.js';
import { bearerToken } from '../auth/bearer.js';
import type { ForwardRequest, ForwardResponse } from '../node-ports.js';
import { functionCall } from './function-call.js';
import type { FunctionRuntime } from './runtime.js';

export const createForwardedCalls =
  (policy: AccessPolicy, functions: FunctionRuntime) =>
  async (_from: string, call: ForwardRequest): Promise<ForwardResponse> => {
    const grant = await policy.authenticate(
      bearerToken({ headers: { authorization: call.authorization } }),
    );
    const result = await functions.invoke(functionCall({ ...call, grant }));
    return { json: result.json, replayed: result.replayed, version: result.version };
  };

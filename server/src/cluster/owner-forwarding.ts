/**
 * Forwarding an `owner` call to the document's primary as a request over the
 * cluster's own medium (backplane-rpc.ts: the mesh's peer link or a backplane),
 * never over the public HTTP API. The primary authenticates the caller's token
 * again and runs the call there (node-requests.ts). Counted by outcome.
 */
import { StateweaveError, toStateweaveError } from '../errors.js';
import type { Forwarder } from '../node-ports.js';
import type { BackplaneRpc } from './backplane-rpc.js';
import type { OwnerMetrics } from './owner-metrics.js';

export const createOwnerForwarding = (
  rpc: BackplaneRpc,
  timeoutMs: number,
  metrics: OwnerMetrics | undefined,
): Forwarder => ({
  async forward(to, request) {
    try {
      const reply = await rpc.request(to, { type: 'invoke', ...request }, timeoutMs);
      if (reply.type !== 'invoked')
        throw new StateweaveError(
          'INTERNAL',
          `node ${to} answered an owner call with ${reply.type}`,
        );
      metrics?.forwarded.inc({ outcome: 'ok' });
      return { json: reply.json, replayed: reply.replayed, version: reply.version };
    } catch (err) {
      metrics?.forwarded.inc({ outcome: toStateweaveError(err).code });
      throw err;
    }
  },
});

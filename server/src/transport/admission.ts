/**
 * Who may open a WebSocket: at most `maxConnectionsPerIp` per client address
 * (as client-address.ts resolves it) and at most `maxConnections` on the whole
 * node. Only upgrades are counted; plain HTTP requests (`/healthz`, `/readyz`,
 * `/metrics`, the API) are never refused here, so an orchestrator does not
 * restart a node that is merely full.
 */
import { StateweaveError } from '../errors.js';
import { createIpConnections } from '../limits/ip-connections.js';

export interface Admission {
  /** Counts one more connection from `address`, or returns why it is refused. */
  admit(address: string): StateweaveError | undefined;
  /** Frees what one successful `admit` took; exactly once per admission. */
  release(address: string): void;
  readonly total: number;
}

export const createAdmission = (limits: {
  readonly maxConnectionsPerIp: number;
  readonly maxConnections: number;
}): Admission => {
  const perIp = createIpConnections(limits.maxConnectionsPerIp);
  let total = 0;
  return {
    admit(address) {
      if (total >= limits.maxConnections)
        return new StateweaveError(
          'NODE_FULL',
          `the node holds ${limits.maxConnections} connections`,
        );
      if (!perIp.acquire(address))
        return new StateweaveError(
          'TOO_MANY_CONNECTIONS',
          `more than ${limits.maxConnectionsPerIp} connections from ${address}`,
        );
      total++;
      return undefined;
    },
    release(address) {
      perIp.release(address);
      total--;
    },
    get total() {
      return total;
    },
  };
};

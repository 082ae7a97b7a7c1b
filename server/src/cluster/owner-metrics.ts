/** Prometheus series of owner leases and owner calls over a backplane (owner-leases.ts). */
import * as prom from 'prom-client';
import type { Metrics } from '../metrics.js';

export interface OwnerMetrics {
  readonly grants: prom.Counter;
  /** Owner calls this node sent to another node (peer link or backplane), by outcome. */
  readonly forwarded: prom.Counter<'outcome'>;
  /** Writes of owner calls the medium refused: the lease had moved on. */
  readonly fenced: prom.Counter;
  /** Reads the number of leases held when scraped. */
  setHeldCounter(count: () => number): void;
}

export const createOwnerMetrics = (metrics: Metrics): OwnerMetrics => {
  const registers = [metrics.registry];
  let held = (): number => 0;
  new prom.Gauge({
    name: 'stateweave_owner_leases_held',
    help: 'Owner leases (one per document) this node holds',
    registers,
    collect() {
      this.set(held());
    },
  });
  return {
    grants: new prom.Counter({
      name: 'stateweave_owner_lease_grants_total',
      help: 'Owner leases this node was granted (each with a new fencing token)',
      registers,
    }),
    forwarded: new prom.Counter({
      name: 'stateweave_owner_calls_forwarded_total',
      help: "Owner calls forwarded to the document's primary (over the peer link or the backplane), by outcome (ok or an error code)",
      labelNames: ['outcome'],
      registers,
    }),
    fenced: new prom.Counter({
      name: 'stateweave_owner_fenced_writes_total',
      help: 'Owner call writes refused because this node no longer held the lease (nothing applied)',
      registers,
    }),
    setHeldCounter(count) {
      held = count;
    },
  };
};

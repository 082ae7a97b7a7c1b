/**
 * Prometheus metrics for one node. Each server gets its own Registry, so two
 * nodes in one test process never collide.
 */
import * as prom from 'prom-client';

export interface Metrics {
  readonly registry: prom.Registry;
  readonly connections: prom.Gauge;
  readonly openDocuments: prom.Gauge;
  /** Documents open on client WebSockets: one per y-websocket socket, any number per multiplexed one. */
  readonly socketDocuments: prom.Gauge;
  readonly updatesIn: prom.Counter<'origin'>;
  /** `updatesIn` for one origin kind, labelled once: `inc({ origin })` hashes its labels on every call (hot path). */
  updatesInFrom(kind: string): { inc(): void };
  /** Update frames sent to client connections (a merged tick's frame counts once per connection). */
  readonly updatesOut: prom.Counter;
  /** Updates of hot rooms that waited for a tick and left merged with others (hub/update-relay.ts). */
  readonly updatesMerged: prom.Counter;
  readonly bytesIn: prom.Counter;
  readonly bytesOut: prom.Counter;
  readonly storeBatchSeconds: prom.Histogram<'result'>;
  readonly storeBatchOps: prom.Histogram;
  readonly errors: prom.Counter<'code'>;
  readonly documentLoadSeconds: prom.Histogram;
  readonly compactions: prom.Counter<'result'>;
  /** Documents created by token subjects, and creations refused by the per-subject limit. */
  readonly newDocs: prom.Counter<'result'>;
}

export const createMetrics = (options: { collectDefault?: boolean } = {}): Metrics => {
  const registry = new prom.Registry();
  if (options.collectDefault ?? true)
    prom.collectDefaultMetrics({ register: registry, prefix: 'stateweave_process_' });
  const registers = [registry];
  const updatesIn = new prom.Counter({
    name: 'stateweave_updates_in_total',
    help: 'Document updates that changed a document, by origin kind',
    labelNames: ['origin'],
    registers,
  });
  const updatesInByKind = new Map<string, { inc(): void }>();
  return {
    registry,
    connections: new prom.Gauge({
      name: 'stateweave_connections',
      help: 'Open WebSocket connections',
      registers,
    }),
    socketDocuments: new prom.Gauge({
      name: 'stateweave_socket_documents',
      help: 'Documents open on client WebSockets (one per document socket, any number per multiplexed socket)',
      registers,
    }),
    openDocuments: new prom.Gauge({
      name: 'stateweave_open_documents',
      help: 'Documents loaded in memory',
      registers,
    }),
    updatesIn,
    updatesInFrom(kind) {
      let counter = updatesInByKind.get(kind);
      if (!counter) updatesInByKind.set(kind, (counter = updatesIn.labels(kind)));
      return counter;
    },
    updatesOut: new prom.Counter({
      name: 'stateweave_updates_out_total',
      help: 'Update frames sent to client connections',
      registers,
    }),
    updatesMerged: new prom.Counter({
      name: 'stateweave_updates_merged_total',
      help: 'Updates of rooms past their frame budget that left merged with others after a tick',
      registers,
    }),
    bytesIn: new prom.Counter({
      name: 'stateweave_bytes_in_total',
      help: 'WebSocket payload bytes received',
      registers,
    }),
    bytesOut: new prom.Counter({
      name: 'stateweave_bytes_out_total',
      help: 'WebSocket payload bytes sent',
      registers,
    }),
    storeBatchSeconds: new prom.Histogram({
      name: 'stateweave_store_batch_seconds',
      help: 'Latency of one group-commit batch written to the store',
      labelNames: ['result'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    storeBatchOps: new prom.Histogram({
      name: 'stateweave_store_batch_ops',
      help: 'Operations per group-commit batch',
      buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 4096],
      registers,
    }),
    errors: new prom.Counter({
      name: 'stateweave_errors_total',
      help: 'Errors by code',
      labelNames: ['code'],
      registers,
    }),
    documentLoadSeconds: new prom.Histogram({
      name: 'stateweave_document_load_seconds',
      help: 'Time to load a document from the store',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    compactions: new prom.Counter({
      name: 'stateweave_compactions_total',
      help: 'Log compactions by result',
      labelNames: ['result'],
      registers,
    }),
    newDocs: new prom.Counter({
      name: 'stateweave_new_docs_total',
      help: 'Documents created by a token subject (result="created") or refused by the per-subject limit (result="refused")',
      labelNames: ['result'],
      registers,
    }),
  };
};

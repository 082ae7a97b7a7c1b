/** Prometheus series of the functions layer, registered on the node's registry. */
import * as prom from 'prom-client';
import type { Metrics } from '../metrics.js';

export interface FunctionMetrics {
  /** Finished invocations by function and outcome (`ok`, `replayed` or an error code). */
  readonly invocations: prom.Counter<'function' | 'outcome'>;
  /** From arrival at this node to the stored, answerable result. */
  readonly seconds: prom.Histogram<'function'>;
  /** Invocations per worker message and store write on one document. */
  readonly batchSize: prom.Histogram;
  /** Document batches (groups) per invoke message to a worker. */
  readonly messageGroups: prom.Histogram;
  /** Worker threads replaced after a timeout, crash or memory limit. */
  readonly respawns: prom.Gauge;
}

export const createFunctionMetrics = (
  metrics: Metrics,
  respawns: () => number,
): FunctionMetrics => {
  const registers = [metrics.registry];
  return {
    invocations: new prom.Counter({
      name: 'stateweave_function_invocations_total',
      help: 'Function invocations by function and outcome (ok, replayed, or the error code)',
      labelNames: ['function', 'outcome'],
      registers,
    }),
    seconds: new prom.Histogram({
      name: 'stateweave_function_duration_seconds',
      help: 'Invocation time from arrival to stored result',
      labelNames: ['function'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    }),
    batchSize: new prom.Histogram({
      name: 'stateweave_function_batch_size',
      help: 'Invocations run in one worker message and stored in one write',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    }),
    messageGroups: new prom.Histogram({
      name: 'stateweave_function_message_groups',
      help: 'Document batches sent to a function worker in one message',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    }),
    respawns: new prom.Gauge({
      name: 'stateweave_function_worker_respawns',
      help: 'Function workers (threads or processes) replaced after a timeout, crash or memory limit',
      registers,
      collect() {
        this.set(respawns());
      },
    }),
  };
};

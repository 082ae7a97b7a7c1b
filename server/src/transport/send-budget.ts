/**
 * A memory budget for unsent bytes across every connection. Each connection is
 * dropped past its own `maxBufferedBytes`, but a thousand readers that never read
 * could together hold a thousand times that; past `maxTotalBufferedBytes` for the
 * node, the connections with the largest backlogs (the slowest readers) are
 * dropped first, until the rest fits. Checked on a timer, not per frame: between
 * two checks the total can overshoot by what the node sends in `intervalMs`.
 */
import * as prom from 'prom-client';
import { StateweaveError } from '../errors.js';
import type { Metrics } from '../metrics.js';

/** What the budget sees of a connection. */
export interface Backlogged {
  readonly socket: { readonly bufferedAmount: number };
  /** Its own unsent bytes, when some of `bufferedAmount` is shared with other sockets. */
  unsent?(): number;
  fail(err: StateweaveError): void;
}

export interface SendBudgetOptions {
  readonly maxTotalBufferedBytes: number;
  readonly connections: () => Iterable<Backlogged>;
  readonly metrics: Metrics;
  /** @default 100 */
  readonly intervalMs?: number;
}

export interface SendBudget {
  /** Checks once now (the timer calls this); returns how many connections it dropped. */
  check(): number;
  stop(): void;
}

export const createSendBudget = (options: SendBudgetOptions): SendBudget => {
  const registers = [options.metrics.registry];
  const buffered = new prom.Gauge({
    name: 'stateweave_buffered_bytes',
    help: 'Bytes written to WebSockets and not yet sent, summed over all connections (at the last check)',
    registers,
  });
  const drops = new prom.Counter({
    name: 'stateweave_send_budget_drops_total',
    help: 'Connections dropped because the node held more than maxTotalBufferedBytes unsent',
    registers,
  });
  const { maxTotalBufferedBytes } = options;

  const check = (): number => {
    let total = 0;
    let backlogged: Array<{ connection: Backlogged; bytes: number }> | undefined;
    for (const connection of options.connections()) {
      // Shared frames (the cached whole document sent to every joiner) cost memory once,
      // not once per socket: they are not counted (socket-writer.ts, ownBacklog).
      const bytes = connection.unsent ? connection.unsent() : connection.socket.bufferedAmount;
      if (bytes === 0) continue;
      total += bytes;
      (backlogged ??= []).push({ connection, bytes });
    }
    buffered.set(total);
    if (total <= maxTotalBufferedBytes || !backlogged) return 0;
    backlogged.sort((a, b) => b.bytes - a.bytes);
    let dropped = 0;
    for (const { connection, bytes } of backlogged) {
      if (total <= maxTotalBufferedBytes) break;
      connection.fail(
        new StateweaveError(
          'SLOW_CONSUMER',
          `the node holds more than ${maxTotalBufferedBytes} unsent bytes; this client had ${bytes}`,
        ),
      );
      total -= bytes;
      dropped++;
    }
    drops.inc(dropped);
    buffered.set(total);
    return dropped;
  };

  const timer = setInterval(check, options.intervalMs ?? 100);
  timer.unref();
  return {
    check,
    stop: () => clearInterval(timer),
  };
};

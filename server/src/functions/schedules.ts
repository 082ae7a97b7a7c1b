/**
 * Schedules (`every: '10s'`). Each tick invokes the function like a request
 * with input `{ at }` (the start of its time slot) and an idempotency key made
 * from the slot, so a tick applies at most once even if a timer fires twice or
 * the node restarts within the slot. On one node; in a cluster every node ticks
 * and the slot key is what keeps the effect single (per node until the registry
 * and records replicate).
 */
import type { Logger } from '../log.js';
import type { DeployedFunction } from './registry.js';

export interface Schedules {
  set(functions: readonly DeployedFunction[]): void;
  close(): void;
}

export const createSchedules = (
  tick: (fn: DeployedFunction, at: number) => Promise<unknown>,
  logger: Logger,
): Schedules => {
  const timers = new Map<string, NodeJS.Timeout>();
  return {
    set(functions) {
      for (const fn of functions) {
        clearInterval(timers.get(fn.name));
        timers.delete(fn.name);
        const everyMs = fn.everyMs;
        if (everyMs === undefined) continue;
        const timer = setInterval(() => {
          const at = Math.floor(Date.now() / everyMs) * everyMs;
          tick(fn, at).catch((err: unknown) =>
            logger.warn({ schedule: fn.name, at, err }, 'scheduled run failed'),
          );
        }, everyMs);
        timer.unref();
        timers.set(fn.name, timer);
      }
    },
    close() {
      for (const timer of timers.values()) clearInterval(timer);
      timers.clear();
    },
  };
};

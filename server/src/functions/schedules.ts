/**
 * Schedules (`every: '10s'`). Each tick invokes the function like a request
 * with input `{ at }` (the start of its time slot) and an idempotency key made
 * from the slot, so a tick applies at most once even if a timer fires twice or
 * the node restarts within the slot. In a cluster every node ticks and only the
 * primary of the function's document runs the tick (FunctionCall.primaryOnly),
 * so a slot runs once cluster-wide, timed by the primary's clock. While the
 * primary changes (membership, a lease moving), a slot may run on both or on
 * neither: a schedule is at-least-once per slot at a handover, not exactly once.
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

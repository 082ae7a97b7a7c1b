/**
 * How long this process's event loop has been stalled, in total: the node was
 * paused (SIGSTOP, a VM migration), starved of CPU, or blocked by a long task.
 * While it stalls, clients keep sending; when it resumes, everything they sent
 * meanwhile arrives in one instant. Rate limits read this clock so that those
 * queued messages are charged to the time they were sent in, not to the instant
 * they were read: without it a well-behaved client is closed with RATE_LIMITED
 * after every stall longer than its burst lasts.
 *
 * A timer ticks every TICK_MS; a tick later than STALL_MS counts its lateness as
 * stalled time. A stall still in progress (the timer has not run yet, because
 * the socket callbacks that follow a resume run first) counts up to now, so
 * `stalledMs()` is right from the first message after a resume. It never
 * decreases.
 */

const TICK_MS = 100;
/** Lateness below this is ordinary jitter (GC, a busy turn), not a stall. */
const STALL_MS = 250;

let lastTick = 0;
let recorded = 0;
let timer: NodeJS.Timeout | undefined;
/** Stalls that ended in the last RECENT_MS: when, and how long. */
const recent: Array<{ readonly endedAt: number; readonly ms: number }> = [];
const RECENT_MS = 10_000;

const lateness = (now: number): number => {
  const late = now - lastTick - TICK_MS;
  return late > STALL_MS ? late : 0;
};

const tick = (): void => {
  const now = performance.now();
  const late = lateness(now);
  recorded += late;
  if (late > 0) recent.push({ endedAt: now, ms: late });
  while (recent.length > 0 && now - recent[0]!.endedAt > RECENT_MS) recent.shift();
  lastTick = now;
};

const start = (now: number): void => {
  if (timer !== undefined) return;
  lastTick = now;
  timer = setInterval(tick, TICK_MS);
  timer.unref();
};

/** Milliseconds the event loop has stalled since the clock started (first use). */
export const stalledMs = (now = performance.now()): number => {
  start(now);
  return recorded + lateness(now);
};

/**
 * True while a stall longer than `minMs` goes on, and for `minMs` after one
 * ended: whoever reads next after a pause learns of it, whether the pause ended
 * before its timer ran or inside it (Redis readers: position-check.ts).
 */
export const stalledWithin = (minMs: number, now = performance.now()): boolean => {
  start(now);
  if (lateness(now) > minMs) return true;
  return recent.some((s) => s.ms > minMs && now - s.endedAt < minMs);
};

/**
 * Deadlines for many objects on one timer: a binary min-heap by time and one
 * `setTimeout` for the earliest. Token expiry is per connection, and a timer
 * per connection costs about 250 bytes of idle memory (the Timeout, a
 * TimersList for each distinct delay, the argument array); an entry here is two
 * array slots and the item's `expiryIndex`.
 */

/** Something with a deadline: the queue keeps its heap position here (-1 = not queued). */
export interface Expiring {
  expiryIndex: number;
}

export interface ExpiryQueue<T extends Expiring> {
  /** Schedules `item` at `at` (epoch ms), or moves it there if already queued. */
  set(item: T, at: number): void;
  /** Unschedules `item`; a no-op when it is not queued. */
  delete(item: T): void;
  readonly size: number;
}

/** Longest delay setTimeout accepts; a later deadline is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `onExpired` runs once per item whose time has come (at or after `at`, by
 * `now`), after the item has left the queue; it may set or delete any item.
 */
export const createExpiryQueue = <T extends Expiring>(
  onExpired: (item: T) => void,
  now: () => number = Date.now,
): ExpiryQueue<T> => {
  const items: T[] = [];
  const times: number[] = [];
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;

  const place = (i: number, item: T, at: number): void => {
    items[i] = item;
    times[i] = at;
    item.expiryIndex = i;
  };

  /** Moves the entry at `i` up or down until the heap is ordered again. */
  const restore = (i: number): void => {
    const item = items[i]!;
    const at = times[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent]! <= at) break;
      place(i, items[parent]!, times[parent]!);
      i = parent;
    }
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && times[right]! < times[left]! ? right : left;
      if (times[child]! >= at) break;
      place(i, items[child]!, times[child]!);
      i = child;
    }
    place(i, item, at);
  };

  const remove = (i: number): T => {
    const item = items[i]!;
    const lastItem = items.pop()!;
    const lastAt = times.pop()!;
    if (i < items.length) {
      place(i, lastItem, lastAt);
      restore(i);
    }
    item.expiryIndex = -1;
    return item;
  };

  const fire = (): void => {
    timer = undefined;
    timerAt = Infinity;
    const t = now();
    while (items.length > 0 && times[0]! <= t) onExpired(remove(0));
    arm();
  };

  /** Keeps the one timer on the earliest deadline. */
  const arm = (): void => {
    const next = items.length > 0 ? times[0]! : Infinity;
    if (next === timerAt) return;
    clearTimeout(timer);
    timer = undefined;
    timerAt = next;
    if (next === Infinity) return;
    timer = setTimeout(fire, Math.min(Math.max(0, next - now()), MAX_TIMER_MS));
    timer.unref();
  };

  return {
    set(item, at) {
      if (item.expiryIndex >= 0) {
        times[item.expiryIndex] = at;
        restore(item.expiryIndex);
      } else {
        items.push(item);
        times.push(at);
        restore(items.length - 1);
      }
      arm();
    },
    delete(item) {
      if (item.expiryIndex < 0) return;
      remove(item.expiryIndex);
      arm();
    },
    get size() {
      return items.length;
    },
  };
};

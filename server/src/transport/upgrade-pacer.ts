/**
 * Spreads a burst of WebSocket upgrades over turns of the event loop. After a
 * node restart thousands of clients come back within a second; each upgrade
 * (handshake, room open, first sync) costs about a millisecond, and handled all
 * in one turn they held `/healthz` behind them (p99 103–139 ms for 5,000 clients
 * on an otherwise idle 2-core machine; 82–99 ms with 16 per turn). Here at
 * most `perTurn` upgrades run per turn; the rest wait in arrival order for the
 * next turns, and whatever else arrived (health checks, other clients' frames)
 * is served in between.
 */
export interface UpgradePacer {
  /** Runs `upgrade` now, or in a later turn when this turn's share is spent. */
  admit(upgrade: () => void): void;
  /** Upgrades waiting for a later turn. */
  readonly waiting: number;
}

export const createUpgradePacer = (perTurn: number): UpgradePacer => {
  let budget = perTurn;
  let scheduled = false;
  let queue: Array<() => void> = [];
  let head = 0;

  const turn = (): void => {
    scheduled = false;
    budget = perTurn;
    while (budget > 0 && head < queue.length) {
      budget--;
      const upgrade = queue[head]!;
      queue[head++] = noop; // release the closure (and its request) at once
      upgrade();
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
    } else schedule();
  };
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(turn);
  };

  return {
    admit(upgrade) {
      schedule(); // this turn's budget is given back in the next one
      if (head === queue.length && budget > 0) {
        budget--;
        upgrade();
        return;
      }
      queue.push(upgrade);
    },
    get waiting() {
      return queue.length - head;
    },
  };
};

const noop = (): void => undefined;

/**
 * One timer for the presence timeouts of every open room, instead of the
 * interval each y-protocols `Awareness` starts for itself (a Timeout, a closure
 * and its context per open document, most of them idle).
 *
 * It does what that interval does on a node, which has no presence of its own
 * (the room sets its local state to null, so there is nothing to renew): every
 * outdatedTimeout/10 it removes the states not renewed for outdatedTimeout (30 s),
 * with origin 'timeout', so a client that vanished without a goodbye disappears
 * from everyone's list as it would with the stock server.
 */
import * as awarenessProtocol from 'y-protocols/awareness';

const rooms = new Set<awarenessProtocol.Awareness>();
let timer: NodeJS.Timeout | undefined;

const expireOutdated = (awareness: awarenessProtocol.Awareness, now: number): void => {
  let outdated: number[] | undefined;
  awareness.meta.forEach((meta, clientId) => {
    if (
      clientId !== awareness.clientID &&
      awarenessProtocol.outdatedTimeout <= now - meta.lastUpdated &&
      awareness.states.has(clientId)
    )
      (outdated ??= []).push(clientId);
  });
  if (outdated) awarenessProtocol.removeAwarenessStates(awareness, outdated, 'timeout');
};

const sweep = (): void => {
  const now = Date.now();
  let failure: unknown;
  let failed = false;
  // One room's listener that throws must not keep the others' presence forever.
  for (const awareness of rooms) {
    try {
      expireOutdated(awareness, now);
    } catch (err) {
      if (!failed) failure = err;
      failed = true;
    }
  }
  if (failed) throw failure;
};

/** Takes over `awareness`'s own timeout interval (stopped here) until `stopExpiring`. */
export const expirePresence = (awareness: awarenessProtocol.Awareness): void => {
  clearInterval(awareness._checkInterval as NodeJS.Timeout);
  awareness._checkInterval = undefined; // or the stopped Timeout and its closure stay
  rooms.add(awareness);
  if (timer) return;
  timer = setInterval(sweep, Math.floor(awarenessProtocol.outdatedTimeout / 10));
  timer.unref();
};

/** The room is gone: its awareness is no longer swept (the timer stops with the last room). */
export const stopExpiring = (awareness: awarenessProtocol.Awareness): void => {
  rooms.delete(awareness);
  if (rooms.size > 0) return;
  clearInterval(timer);
  timer = undefined;
};

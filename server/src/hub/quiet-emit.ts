/**
 * A room document's `emit`, without garbage for events nobody listens to. Yjs emits
 * six or seven events per transaction (beforeTransaction, afterTransaction, …), and
 * lib0's `emit` copies the listeners into a new array for each — from a new empty
 * Map when there are none. A room's document has listeners for `update` only: the
 * rest was ~1.5 µs and a dozen short-lived objects per applied update (in-process
 * profile of the room path). Listeners are still copied before they are called,
 * as lib0 does, so one added or removed by a listener does not change this emit.
 */
import type * as Y from 'yjs';

type Listener = (...args: unknown[]) => void;

export const quietEmits = (doc: Y.Doc): void => {
  const emit = (name: string, args: unknown[]): void => {
    // Read at each call: `destroy()` replaces the map.
    const listeners = doc._observers.get(name) as Set<Listener> | undefined;
    if (listeners === undefined || listeners.size === 0) return;
    for (const listener of Array.from(listeners)) listener(...args);
  };
  doc.emit = emit as typeof doc.emit;
};

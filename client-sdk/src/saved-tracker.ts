/**
 * Turns the node's cumulative `saved(seq)` acknowledgements into `pending`: how
 * many local updates the node has not yet confirmed as durably stored.
 *
 * Local updates are numbered 1, 2, 3, … for the life of the handle. On each
 * connection the SDK numbers the update-bearing messages it sends (its sync
 * step 2 and each update) from 1, as the node does, and records for each the
 * highest local update number it covers:
 * - the sync step 2 carries everything the node lacks, so it covers every local
 *   update made so far;
 * - after it, each local update is sent at once, in order, so it covers itself
 *   and (through the step 2 and the earlier messages) everything before it.
 * The SDK sends no local update on a connection before its step 2, so the
 * marks never skip one. A new connection starts a new numbering; what the old
 * one had not acknowledged is covered again by the new step 2.
 */

export interface SavedTracker {
  /** Local updates not yet acknowledged as stored. */
  readonly pending: number;
  /** A local update happened. */
  local(): void;
  /** An update-bearing message was sent; returns its number on this connection. */
  sent(): number;
  /** The node acknowledged every message up to `seq`; true if `pending` changed. */
  ack(seq: number): boolean;
  /** A new connection: numbering restarts at 1, unacknowledged marks are dropped. */
  reset(): void;
}

/**
 * Marks kept per connection. Past this (a node that never acknowledges), the
 * oldest is dropped: an ack then counts only from the next mark on, which can
 * only keep `pending` high for longer, never report unsaved work as saved.
 */
const MAX_MARKS = 1024;

export const createSavedTracker = (): SavedTracker => {
  let localCount = 0;
  let ackedCount = 0;
  let seq = 0;
  // (seq, covers local updates ≤ upTo), both increasing; acknowledged ones are shifted off.
  let marks: Array<{ readonly seq: number; readonly upTo: number }> = [];

  return {
    get pending() {
      return localCount - ackedCount;
    },
    local() {
      localCount++;
    },
    sent() {
      seq++;
      marks.push({ seq, upTo: localCount });
      if (marks.length > MAX_MARKS) marks.shift();
      return seq;
    },
    ack(ackSeq) {
      const before = ackedCount;
      while (marks.length > 0 && marks[0]!.seq <= ackSeq) {
        ackedCount = Math.max(ackedCount, marks.shift()!.upTo);
      }
      return ackedCount !== before;
    },
    reset() {
      seq = 0;
      marks = [];
    },
  };
};

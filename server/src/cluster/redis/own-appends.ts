/**
 * This node's own appends to the streams it reads by push (stream-push.ts).
 * They are not pushed back to it: the reply to each append (its id and the id
 * before it) moves the node's position past the entry. The reply and the
 * pushes of other nodes travel on two connections, so a push that follows an
 * entry of this node's may come before that entry's reply: it waits for the
 * replies in flight, in order, at most `waitMs`.
 *
 * Per stream, the bookkeeping only (no I/O); bell-reader.ts decides what to
 * do with a push that still does not follow.
 */
import { isAfter, type PushedEntry } from './stream-push.js';

interface Own {
  readonly key: string;
  inFlight: number;
  /** previous id → id of each answered entry the position has not reached. */
  readonly after: Map<string, string>;
  /** Pushes held for replies in flight, in order. */
  readonly waiting: PushedEntry[];
  /** When the first of `waiting` came. */
  waitingSince: number;
}

/** One append in flight, as `start` returned it. */
export interface Ticket {
  readonly key: string;
}

export interface OwnAppends {
  /** An append to `key` left. */
  start(key: string): Ticket;
  /**
   * The append was answered (`appended`) or failed (undefined). A ticket of a
   * stream forgotten since (unfollowed) changes nothing.
   */
  settle(
    ticket: Ticket,
    appended: { readonly previous: string; readonly id: string } | undefined,
  ): void;
  /** `position` moved past the answered entries of this node that follow it. */
  pass(key: string, position: string): string;
  /** Pushes of `key` that do not follow wait (an append is in flight, and not for too long). */
  waits(key: string): boolean;
  /** Pushes of `key` are held (a later push goes behind them). */
  holds(key: string): boolean;
  hold(key: string, pushed: readonly PushedEntry[]): void;
  /** The held pushes of `key`, in order, no longer held. */
  take(key: string): PushedEntry[];
  /** Keys whose held pushes waited too long for a reply. */
  overdue(): string[];
  forget(key: string): void;
}

export const createOwnAppends = (waitMs: number): OwnAppends => {
  const own = new Map<string, Own>();
  const tidy = (key: string, mine: Own): void => {
    if (mine.inFlight === 0 && mine.after.size === 0 && mine.waiting.length === 0) own.delete(key);
  };
  const waits = (mine: Own | undefined): boolean =>
    mine !== undefined &&
    mine.inFlight > 0 &&
    (mine.waiting.length === 0 || Date.now() - mine.waitingSince < waitMs);

  return {
    start(key) {
      let mine = own.get(key);
      if (!mine)
        own.set(key, (mine = { key, inFlight: 0, after: new Map(), waiting: [], waitingSince: 0 }));
      mine.inFlight++;
      return mine;
    },
    settle(ticket, appended) {
      const { key } = ticket;
      const mine = own.get(key);
      if (mine !== ticket) return; // forgotten meanwhile (unfollowed)
      mine.inFlight--;
      if (appended) mine.after.set(appended.previous, appended.id);
      tidy(key, mine);
    },
    pass(key, position) {
      const mine = own.get(key);
      if (!mine) return position;
      for (
        let next = mine.after.get(position);
        next !== undefined;
        next = mine.after.get(position)
      ) {
        mine.after.delete(position);
        position = next;
      }
      // Entries the position passed otherwise (a read) are of no more use.
      for (const [previous, id] of mine.after)
        if (!isAfter(id, position)) mine.after.delete(previous);
      tidy(key, mine);
      return position;
    },
    waits: (key) => waits(own.get(key)),
    holds: (key) => (own.get(key)?.waiting.length ?? 0) > 0,
    hold(key, pushed) {
      const mine = own.get(key);
      if (!mine || pushed.length === 0) return;
      if (mine.waiting.length === 0) mine.waitingSince = Date.now();
      mine.waiting.push(...pushed);
    },
    take(key) {
      const mine = own.get(key);
      if (!mine) return [];
      const taken = mine.waiting.splice(0);
      tidy(key, mine);
      return taken;
    },
    overdue: () =>
      [...own].filter(([, mine]) => mine.waiting.length > 0 && !waits(mine)).map(([key]) => key),
    forget: (key) => void own.delete(key),
  };
};

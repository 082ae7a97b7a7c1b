/**
 * Relays presence (awareness) changes of one room, coalesced per tick. Relaying
 * each change as it came cost one frame per change per subscriber: 500 people
 * moving their cursors once a second in one document made 250,000 frames a
 * second. Here the first change after a quiet tick leaves at once (no added
 * latency when presence is sparse); changes within the next `tickMs` wait and
 * leave together as one awareness update with the latest state of each client.
 *
 * Nobody gets back what they said: a subscriber whose own entries are in a
 * tick's frame gets the frame without them (built only for those subscribers;
 * everyone else shares one encoding).
 */
import { sameOrigin, type Origin } from '../origin.js';
import { CoalescingTick } from './coalescing-tick.js';

export interface PresenceRelayOptions {
  /** The coalescing window; a function is asked at the start of every tick (a room sizes it by its subscribers). */
  readonly tickMs: number | (() => number);
  /**
   * One awareness frame (MessageType.Awareness) with the current state of `ids`.
   * Every call of one tick gets the same `memo` (client id → its encoded entry),
   * so a state is encoded once per tick however many frames list it.
   */
  readonly encode: (ids: readonly number[], memo: Map<number, Uint8Array>) => Uint8Array;
  /**
   * Sends a tick's frame to every subscriber: each gets `frameFor(is it this
   * origin?)` — `frame` itself for most, a frame without its own entries for a
   * sender, nothing for a sender that alone changed this tick.
   */
  readonly fanOut: (frame: Uint8Array, frameFor: FrameFor) => void;
}

/**
 * The frame for one subscriber, told by `isOrigin` which origins it is; null:
 * nothing to send. `clientConnId`, when given, says the subscriber is that client
 * connection and no other origin: its own entries are then found by one lookup
 * instead of asking `isOrigin` about every sender of the tick (500 subscribers ×
 * 50 senders a tick was most of the relay's own CPU).
 */
export type FrameFor = (
  isOrigin: (origin: Origin) => boolean,
  clientConnId?: number,
) => Uint8Array | null;

export interface PresenceRelay {
  /** These clients' presence changed, by `origin` (never sent back to it). */
  changed(ids: readonly number[], origin: Origin | undefined): void;
  /** Stops the timer; what is pending is dropped (the room is going away). */
  close(): void;
}

/**
 * A class, not closures: one per room with presence, and what waits for a tick
 * exists only while something does (idle rooms hold three fields).
 */
class TickedPresenceRelay implements PresenceRelay {
  /** Changed client ids of this tick and who changed each (the last change wins). */
  private pending: Map<number, Origin | undefined> | undefined;
  private readonly tick: CoalescingTick;

  constructor(private readonly options: PresenceRelayOptions) {
    const { tickMs } = options;
    this.tick = new CoalescingTick(typeof tickMs === 'number' ? () => tickMs : tickMs, () =>
      this.flush(),
    );
  }

  changed(ids: readonly number[], origin: Origin | undefined): void {
    const pending = (this.pending ??= new Map());
    for (const id of ids) {
      pending.delete(id); // re-insert: the frame lists ids in the order they last changed
      pending.set(id, origin);
    }
    this.tick.poke();
  }

  close(): void {
    this.tick.stop();
    this.pending = undefined;
  }

  private flush(): boolean {
    const changed = this.pending;
    this.pending = undefined;
    if (!changed) return false;
    const { options } = this;
    const ids = [...changed.keys()];
    // Group the ids by origin; client connections' groups are also found by connId.
    const byOrigin: Array<{ origin: Origin; ids: Set<number> }> = [];
    const byClient = new Map<number, { origin: Origin; ids: Set<number> }>();
    for (const [id, origin] of changed) {
      if (!origin) continue;
      let group =
        origin.kind === 'client'
          ? byClient.get(origin.connId)
          : byOrigin.find((g) => sameOrigin(g.origin, origin));
      if (!group) {
        group = { origin, ids: new Set() };
        byOrigin.push(group);
        if (origin.kind === 'client') byClient.set(origin.connId, group);
      }
      group.ids.add(id);
    }
    const memo = new Map<number, Uint8Array>();
    const frame = options.encode(ids, memo);
    const without = (own: Set<number>): Uint8Array | null => {
      const rest = ids.filter((id) => !own.has(id));
      return rest.length === 0 ? null : options.encode(rest, memo);
    };
    options.fanOut(frame, (isOrigin, clientConnId) => {
      if (clientConnId !== undefined) {
        const group = byClient.get(clientConnId);
        return group ? without(group.ids) : frame;
      }
      let own: Set<number> | undefined;
      for (const group of byOrigin) {
        if (!isOrigin(group.origin)) continue;
        own ??= new Set();
        for (const id of group.ids) own.add(id);
      }
      return own ? without(own) : frame;
    });
    return true;
  }
}

export const createPresenceRelay = (options: PresenceRelayOptions): PresenceRelay =>
  new TickedPresenceRelay(options);

/**
 * Relays a room's updates to its client connections, and coalesces them once
 * the room is hot. Each frame a client gets is a `ws.send` and a socket write:
 * 500 people in one document making 100 edits a second between them is 49,900
 * frames a second, half a core for a relay that does nothing else. A room sends
 * every update at once while it stays within its budget of frames for the
 * current second (`framesPerSecond`, counted as connections × updates sent); past
 * it, the first update after a quiet tick still leaves at once, those within the
 * next tick wait and leave at its end merged into one update (Y.mergeUpdates),
 * one frame for every connection. The tick is sized so the room keeps to its
 * budget (500 connections at 10,000 frames a second: 50 ms, the cap), and a
 * room within its budget adds no latency at all.
 *
 * Nobody gets back what they wrote while a tick holds one writer's updates; a
 * tick of several writers goes to all of them, each writer's own edits included
 * (an echo Yjs ignores), as a room's turn of several writers does (room.ts
 * applyBatch). An update that must not wait (a function's write, which its
 * caller expects to see before the result) takes what waits with it.
 */
import * as Y from 'yjs';
import { sameOrigin, type Origin } from '../origin.js';
import { CoalescingTick } from './coalescing-tick.js';
import { updateFrame } from './update-frame.js';

/** One hot room costs at most ~10,000 frames a second (a tenth to a fifth of a core here) before it coalesces. */
export const DEFAULT_UPDATE_FRAMES_PER_SECOND = 10_000;
/** Keystrokes still show within 50 ms (a frame at 20 Hz), however large the room. */
const MAX_UPDATE_TICK_MS = 50;

/**
 * The tick of a room past its budget: each of its `subscribers` connections then
 * gets at most `framesPerSecond / subscribers` frames a second (at least 1 ms).
 */
export const updateTickMs = (subscribers: number, framesPerSecond: number): number =>
  Math.min(MAX_UPDATE_TICK_MS, Math.max(1, (subscribers * 1000) / framesPerSecond));

/** An update on its way out, its frame, and whose change it is (not sent back to it). */
export interface OutgoingUpdate {
  readonly update: Uint8Array;
  readonly frame: Uint8Array;
  readonly origin: Origin | undefined;
}

export interface UpdateRelayOptions {
  /** The room's client connections: what a frame for each costs, and how long a tick is. */
  readonly subscribers: () => number;
  /** Frames a second the room sends at once before it coalesces. @default DEFAULT_UPDATE_FRAMES_PER_SECOND */
  readonly framesPerSecond?: number;
  /** Sends the frame to every client connection not of `origin` (none: to all). */
  readonly fanOut: (frame: Uint8Array, origin: Origin | undefined) => void;
  /** Told how many updates left merged into one frame. */
  readonly onMerged?: (updates: number) => void;
}

export interface UpdateRelay {
  /** Sends the update now, or with the tick's others while the room is past its budget; `now`: at once, after what waits. */
  send(update: OutgoingUpdate, now?: boolean): void;
  /** Stops the timer; what waits is dropped (the room is going away). */
  close(): void;
}

class BudgetedUpdateRelay implements UpdateRelay {
  private pending: OutgoingUpdate[] = [];
  private readonly tick: CoalescingTick;
  private readonly framesPerSecond: number;
  /** Frames sent in the current second, which began at `second`. */
  private frames = 0;
  private second = 0;

  constructor(private readonly options: UpdateRelayOptions) {
    this.framesPerSecond = options.framesPerSecond ?? DEFAULT_UPDATE_FRAMES_PER_SECOND;
    // Asked right after a flush, which brought `frames` up to date.
    this.tick = new CoalescingTick(
      () =>
        this.frames >= this.framesPerSecond
          ? updateTickMs(options.subscribers(), this.framesPerSecond)
          : 0,
      () => this.flush(),
    );
  }

  send(update: OutgoingUpdate, now = false): void {
    this.pending.push(update);
    if (now) this.flush();
    else this.tick.poke();
  }

  close(): void {
    this.tick.stop();
    this.pending = [];
  }

  /** Counts a fan-out's frames in the current second (a new second starts from zero). */
  private count(frames: number): void {
    const at = performance.now();
    if (at - this.second >= 1000) {
      this.second = at;
      this.frames = 0;
    }
    this.frames += frames;
  }

  private flush(): boolean {
    const waiting = this.pending;
    if (waiting.length === 0) return false;
    this.pending = [];
    this.count(this.options.subscribers());
    if (waiting.length === 1) {
      const { frame, origin } = waiting[0]!;
      this.options.fanOut(frame, origin);
      return true;
    }
    let origin = waiting[0]!.origin;
    for (const { origin: other } of waiting)
      if (origin && (!other || !sameOrigin(origin, other))) origin = undefined;
    this.options.fanOut(updateFrame(Y.mergeUpdates(waiting.map((u) => u.update))), origin);
    this.options.onMerged?.(waiting.length);
    return true;
  }
}

export const createUpdateRelay = (options: UpdateRelayOptions): UpdateRelay =>
  new BudgetedUpdateRelay(options);

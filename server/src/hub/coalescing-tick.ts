/**
 * The timing both relays of a room share (presence-relay.ts, update-relay.ts):
 * the first thing after a quiet tick leaves at once, so a quiet room adds no
 * latency; whatever comes within the next `tickMs` waits and leaves together at
 * the tick's end, which starts another tick; a tick that ends with nothing to
 * send ends the busy spell.
 */
export class CoalescingTick {
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param tickMs asked at the start of every tick (a room sizes it by its
   *   subscribers); 0 or less: no tick, everything leaves at once.
   * @param flush sends what waits; returns false when nothing did.
   */
  constructor(
    private readonly tickMs: () => number,
    private readonly flush: () => boolean,
  ) {}

  /** Something waits: it leaves now in a quiet spell, else at the tick's end. */
  poke(): void {
    if (this.timer) return;
    this.flush();
    this.start();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private start(): void {
    const ms = this.tickMs();
    if (ms <= 0) return;
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    if (this.flush()) this.start(); // else quiet: the next thing leaves at once
  }
}
